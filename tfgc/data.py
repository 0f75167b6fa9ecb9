"""tf.data pipelines over folders of photographs, and the bundled default images."""

from __future__ import annotations

from pathlib import Path
from typing import List, Sequence

import tensorflow as tf
from PIL import Image, UnidentifiedImageError

from tfgc.errors import DataError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
BUNDLED_DIR = Path(__file__).resolve().parent / "assets" / "images"


def bundled_images() -> List[str]:
    """The public-domain / CC0 photographs that ship with tfgc (from scikit-image; see their README)."""
    return sorted(str(p) for p in BUNDLED_DIR.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)


def list_images(folders: Sequence[str]) -> List[str]:
    """Every PNG/JPEG under the given folders (recursively), each checked to be readable by its header."""
    paths = []
    for folder in folders:
        folder = Path(folder)
        if not folder.is_dir():
            raise DataError(f"training data folder {folder} does not exist")
        found = sorted(str(p) for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
        if not found:
            raise DataError(f"no PNG or JPEG images in {folder}")
        paths.extend(found)
    for path in paths:
        try:
            with Image.open(path) as image:
                image.verify()
        except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as e:
            raise DataError(f"unreadable image {path}: {str(e) or type(e).__name__}") from None
    return paths


def _decode(path):
    image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
    return tf.cast(image, tf.float32)


def _at_least(image, size: int):
    """Upscale (bicubic) so the shorter side is at least `size`; photographs larger than that are left alone."""
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = tf.maximum(1.0, size / tf.reduce_min(shape))
    new_shape = tf.cast(tf.math.ceil(shape * scale), tf.int32)
    resized = tf.image.resize(image, new_shape, method="bicubic")
    return tf.clip_by_value(resized, 0.0, 255.0)


def training_dataset(paths: Sequence[str], crop_size: int, batch_size: int, seed: int = 0,
                     cache: bool = True) -> tf.data.Dataset:
    """Endless batches of random crops (with random horizontal flips), float32 in 0..255."""
    dataset = tf.data.Dataset.from_tensor_slices(list(paths))
    dataset = dataset.map(_decode, num_parallel_calls=tf.data.AUTOTUNE)
    dataset = dataset.map(lambda x: _at_least(x, crop_size), num_parallel_calls=tf.data.AUTOTUNE)
    if cache:
        dataset = dataset.cache()  # decoded photographs; BSDS500's 400 take about 190 MB
    dataset = dataset.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True).repeat()

    def crop(image):
        image = tf.image.random_crop(image, [crop_size, crop_size, 3])
        return tf.image.random_flip_left_right(image)

    dataset = dataset.map(crop, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def validation_dataset(paths: Sequence[str], crop_size: int, batch_size: int) -> tf.data.Dataset:
    """Centre crops of the given images, in a fixed order: the same pictures at every evaluation."""
    dataset = tf.data.Dataset.from_tensor_slices(list(paths)).map(_decode)
    dataset = dataset.map(lambda x: tf.image.resize_with_crop_or_pad(_at_least(x, crop_size), crop_size, crop_size))
    return dataset.batch(batch_size).cache()
