"""Training data of the sc family: photographs with label maps in the Cityscapes layout."""

from __future__ import annotations

from pathlib import Path
from typing import List, Sequence, Tuple

import numpy as np
from PIL import Image

from tfgc.codec.io import DECODE_ERRORS
from tfgc.data.images import at_least, read_image, tf
from tfgc.errors import DataError
from tfgc.utils import first_line

IMAGE_SUFFIX = "_leftImg8bit.png"
LABEL_SUFFIX = "_gtFine_labelIds.png"


def semantic_pairs(folders: Sequence[str]) -> List[Tuple[str, str]]:
    """(photograph, label map) pairs in the Cityscapes layout under `folders` (searched recursively): every
    `NAME_leftImg8bit.png` with its `NAME_gtFine_labelIds.png`, wherever each lies (Cityscapes keeps them in
    leftImg8bit/ and gtFine/ trees). Label maps without a photograph are ignored (Cityscapes' test labels); a
    photograph without a label map is an error."""
    images, labels = {}, {}
    for folder in folders:
        folder = Path(folder)
        if not folder.is_dir():
            raise DataError(f"training data folder {folder} does not exist")
        for path in folder.rglob(f"*{IMAGE_SUFFIX}"):
            images[path.name[:-len(IMAGE_SUFFIX)]] = str(path)
        for path in folder.rglob(f"*{LABEL_SUFFIX}"):
            labels[path.name[:-len(LABEL_SUFFIX)]] = str(path)
    if not images:
        raise DataError(f"no *{IMAGE_SUFFIX} photographs in {', '.join(str(f) for f in folders)} (selective "
                        f"compression trains on the Cityscapes layout: NAME{IMAGE_SUFFIX} with NAME{LABEL_SUFFIX}; "
                        "python -m tfgc.scenes makes such a folder)")
    missing = sorted(set(images) - set(labels))
    if missing:
        raise DataError(f"{len(missing)} photographs have no {LABEL_SUFFIX} label map, e.g. {images[missing[0]]}")
    return [(images[key], labels[key]) for key in sorted(images)]


def check_label_maps(pairs, label_set: str, classes: int) -> None:
    """Each label map is 8-bit greyscale, of its photograph's size, with ids inside the label set."""
    from tfgc.data.labels import max_label_id

    limit = max_label_id(label_set, classes)
    for image_path, label_path in pairs:
        try:
            with Image.open(image_path) as image, Image.open(label_path) as labels:
                if labels.mode != "L":
                    raise DataError(f"label map {label_path} is a {labels.mode} image; training reads 8-bit "
                                    "greyscale ids (Cityscapes' *_labelIds.png)")
                if labels.size != image.size:
                    raise DataError(f"label map {label_path} is {labels.size[0]}x{labels.size[1]}, its photograph "
                                    f"{image.size[0]}x{image.size[1]}")
                low, high = labels.getextrema()
        except DECODE_ERRORS as e:
            raise DataError(f"unreadable pair {image_path}: {first_line(e)}") from None
        if high > limit:
            raise DataError(f"label map {label_path} holds id {high}, outside the {label_set} label set (0..{limit})")


def _class_lookup(label_set: str, classes: int):
    from tfgc.data.labels import max_label_id, to_classes

    return tf.constant(to_classes(np.arange(max_label_id(label_set, classes) + 1), label_set, classes))


def _load_pair(lookup, downscale: int, size: int):
    def load(image_path, label_path):
        image = read_image(image_path)
        ids = tf.io.decode_png(tf.io.read_file(label_path), channels=1)
        classes = tf.gather(lookup, tf.cast(ids, tf.int32))
        if downscale > 1:
            shape = tf.shape(image)[:2] // downscale
            image = tf.image.resize(image, shape, method="area")
            classes = tf.image.resize(classes, shape, method="nearest")
        image, classes = at_least(image, size), at_least(classes, size, method="nearest")
        return tf.concat([image, tf.cast(classes, tf.float32)], axis=-1)  # cropped together

    return load


def _split(stacked):
    return stacked[..., :3], tf.cast(stacked[..., 3], tf.uint8)


def semantic_training_dataset(pairs, crop_size: int, batch_size: int, label_set: str, classes: int,
                              downscale: int = 1, seed: int = 0, cache: bool = True) -> tf.data.Dataset:
    """Endless batches of (photographs float32 0..255 [B, S, S, 3], classes uint8 [B, S, S]): random crops of
    pairs shrunk by `downscale` (area for photographs, nearest for label maps), flipped together."""
    images, labels = zip(*pairs)
    dataset = tf.data.Dataset.from_tensor_slices((list(images), list(labels)))
    dataset = dataset.map(_load_pair(_class_lookup(label_set, classes), downscale, crop_size),
                          num_parallel_calls=tf.data.AUTOTUNE)
    if cache:
        dataset = dataset.cache()
    dataset = dataset.shuffle(len(pairs), seed=seed, reshuffle_each_iteration=True).repeat()

    def crop(stacked):
        stacked = tf.image.random_crop(stacked, [crop_size, crop_size, 4])
        return _split(tf.image.random_flip_left_right(stacked))

    dataset = dataset.map(crop, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def semantic_validation_dataset(pairs, crop_size: int, batch_size: int, label_set: str, classes: int,
                                downscale: int = 1) -> tf.data.Dataset:
    images, labels = zip(*pairs)
    dataset = tf.data.Dataset.from_tensor_slices((list(images), list(labels)))
    dataset = dataset.map(_load_pair(_class_lookup(label_set, classes), downscale, crop_size))
    dataset = dataset.map(lambda s: _split(tf.image.resize_with_crop_or_pad(s, crop_size, crop_size)))
    return dataset.batch(batch_size).cache()
