"""tf.data pipelines over folders of photographs, and the bundled default images."""

from __future__ import annotations

from pathlib import Path
from typing import List, Sequence

from PIL import Image

from tfgc.codec.io import DECODE_ERRORS
from tfgc.errors import DataError
from tfgc.utils import first_line


class _TensorFlowOnUse:
    """`tf` of this module, imported on first use: listing and checking the images of a folder needs no TensorFlow,
    so a missing folder or a damaged image is refused in a fraction of a second rather than after its import."""

    def __getattr__(self, name):
        import tensorflow

        return getattr(tensorflow, name)


tf = _TensorFlowOnUse()

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
BUNDLED_DIR = Path(__file__).resolve().parents[1] / "assets" / "images"


def bundled_images() -> List[str]:
    """The public-domain / CC0 photographs that ship with tfgc (from scikit-image; see their README)."""
    return sorted(str(p) for p in BUNDLED_DIR.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)


def list_images(folders: Sequence[str]) -> List[str]:
    """Every PNG/JPEG under the given folders (recursively), each checked to be readable by its header."""
    paths = []
    for folder in folders:
        folder = Path(folder)
        if not folder.is_dir():
            raise DataError(f"image folder {folder} does not exist")
        found = sorted(str(p) for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
        if not found:
            raise DataError(f"no PNG or JPEG images in {folder}")
        paths.extend(found)
    for path in paths:
        try:
            with Image.open(path) as image:
                image.verify()
        except DECODE_ERRORS as e:
            raise DataError(f"unreadable image {path}: {first_line(e)}") from None
    return paths


def read_image(path):
    image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
    return tf.cast(image, tf.float32)


def at_least(image, size: int, method: str = "bicubic"):
    """Upscale so the shorter side is at least `size`; images larger than that are left alone. Photographs are
    resized bicubic (and clipped to 0..255), label maps with method "nearest"."""
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = tf.maximum(1.0, size / tf.reduce_min(shape))
    new_shape = tf.cast(tf.math.ceil(shape * scale), tf.int32)
    resized = tf.image.resize(image, new_shape, method=method)
    return resized if method == "nearest" else tf.clip_by_value(resized, 0.0, 255.0)


def training_dataset(paths: Sequence[str], crop_size: int, batch_size: int, seed: int = 0,
                     cache: bool = True, example=None) -> tf.data.Dataset:
    """Endless batches of random crops (with random horizontal flips), float32 in 0..255; `example` maps each crop to
    the training example (default: the crop itself)."""
    dataset = tf.data.Dataset.from_tensor_slices(list(paths))
    dataset = dataset.map(read_image, num_parallel_calls=tf.data.AUTOTUNE)
    dataset = dataset.map(lambda x: at_least(x, crop_size), num_parallel_calls=tf.data.AUTOTUNE)
    if cache:
        dataset = dataset.cache()  # decoded photographs; BSDS500's 400 take about 190 MB
    dataset = dataset.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True).repeat()

    def crop(image):
        image = tf.image.random_crop(image, [crop_size, crop_size, 3])
        image = tf.image.random_flip_left_right(image)
        return image if example is None else example(image)

    dataset = dataset.map(crop, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def validation_dataset(paths: Sequence[str], crop_size: int, batch_size: int, example=None) -> tf.data.Dataset:
    """Centre crops of the given images, in a fixed order: the same pictures at every evaluation."""
    dataset = tf.data.Dataset.from_tensor_slices(list(paths)).map(read_image)
    dataset = dataset.map(lambda x: tf.image.resize_with_crop_or_pad(at_least(x, crop_size), crop_size, crop_size))
    if example is not None:
        dataset = dataset.map(example)
    return dataset.batch(batch_size).cache()


def super_resolution_example(scale: int, quality: int, base: str = "jpeg"):
    """A crop (float32 0..255, sides multiples of `scale`) -> {"low": what an sr file stores of it, decoded (uint8,
    1/scale the size), "high": the crop}: the crop alone goes through the base codec (the RL-SRGAN presets' data;
    base_layer_dataset codes whole images instead)."""
    from tfgc.codec.sr import degrade

    def example(image):
        pixels = tf.cast(tf.round(tf.clip_by_value(image, 0.0, 255.0)), tf.uint8)
        low = tf.numpy_function(lambda x: degrade(x, scale, quality, base), [pixels], tf.uint8, stateful=False)
        shape = tf.shape(image)
        low.set_shape([None, None, 3])
        low = tf.reshape(low, [shape[0] // scale, shape[1] // scale, 3])
        return {"low": low, "high": image}

    return example
