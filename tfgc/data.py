"""tf.data pipelines over folders of photographs, and the bundled default images."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np
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


def _decode(path):
    image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
    return tf.cast(image, tf.float32)


def _at_least(image, size: int, method: str = "bicubic"):
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
    dataset = dataset.map(_decode, num_parallel_calls=tf.data.AUTOTUNE)
    dataset = dataset.map(lambda x: _at_least(x, crop_size), num_parallel_calls=tf.data.AUTOTUNE)
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
    dataset = tf.data.Dataset.from_tensor_slices(list(paths)).map(_decode)
    dataset = dataset.map(lambda x: tf.image.resize_with_crop_or_pad(_at_least(x, crop_size), crop_size, crop_size))
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


# ---- base layers: whole images coded by a classic codec, decoded once and cached -----------------------------------
BASE_CACHE_ENV = "TFGC_BASE_CACHE"


def default_base_cache() -> Path:
    """Where decoded bases are kept between runs: $TFGC_BASE_CACHE, else $XDG_CACHE_HOME/tfgc/bases (~/.cache/...)."""
    import os

    if os.environ.get(BASE_CACHE_ENV):
        return Path(os.environ[BASE_CACHE_ENV])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tfgc" / "bases"


@dataclass(frozen=True)
class BaseLayerImage:
    """A training image (its path) and the decoded bases of it, one PNG per quality, in the order of `qualities`."""

    path: str
    bases: Tuple[str, ...]


def _codec_versions() -> str:
    """The libraries that make a base, so a cache made by other versions (other bytes) is not reused."""
    import PIL

    versions = [f"pillow {PIL.__version__}"]
    try:
        import pillow_heif
    except ImportError:
        pass
    else:
        versions.append(f"pillow_heif {pillow_heif.__version__}")
    return ", ".join(versions)


def _base_file(cache: Path, path: str, base: str, scale: int, quality: int) -> Path:
    import hashlib
    import os

    stat = os.stat(path)
    identity = f"{Path(path).resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{_codec_versions()}"
    key = hashlib.sha256(identity.encode()).hexdigest()[:20]
    return cache / f"{base}-x{scale}" / f"q{quality:03d}" / f"{Path(path).stem}-{key}.png"


def _make_bases(job) -> None:
    """Code one image at each quality whose cached base is missing, and store the decoded bases as PNG."""
    import io

    from tfgc.codec import sr
    from tfgc.codec.io import load_image
    from tfgc.utils import write_atomic

    path, base, scale, targets = job
    low = sr.downsample(load_image(path), scale)
    for quality, target in targets:
        decoded = sr.degrade_low(low, quality, base)
        buffer = io.BytesIO()
        Image.fromarray(decoded, "RGB").save(buffer, format="PNG", compress_level=1)
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(target, buffer.getvalue(), force=True)


def base_layer_images(paths: Sequence[str], base: str, scale: int, qualities: Sequence[int], crop_size: int,
                      cache: Optional[Path] = None, progress: bool = True) -> List[BaseLayerImage]:
    """Every image of `paths` large enough for `crop_size` crops, with its bases: the image downsampled by `scale`,
    coded by the `base` codec at each quality and decoded, made once and kept in `cache` (default_base_cache()).
    Images are coded whole, as files code them, so the artefacts of a crop are those a file holds."""
    from concurrent.futures import ThreadPoolExecutor

    from tfgc.codec import sr

    sr.base_codec(base)  # a missing plugin fails before any work
    cache = Path(cache) if cache is not None else default_base_cache()
    images, jobs, small = [], [], 0
    for path in paths:
        with Image.open(path) as image:
            width, height = image.size
        if min(height, width) < crop_size:
            small += 1
            continue
        files = [_base_file(cache, path, base, scale, q) for q in qualities]
        missing = [(q, f) for q, f in zip(qualities, files) if not f.is_file()]
        if missing:
            jobs.append((path, base, scale, missing))
        images.append(BaseLayerImage(path, tuple(str(f) for f in files)))
    if small:
        print(f"tfgc: {small} of {len(paths)} images are smaller than the {crop_size}-pixel crop; left out", flush=True)
    if not images:
        raise DataError(f"no image of at least {crop_size}x{crop_size} pixels to train on")
    if jobs:
        count = sum(len(job[3]) for job in jobs)
        print(f"tfgc: coding {count} bases ({base}, 1/{scale} size, qualities {', '.join(map(str, qualities))}) of "
              f"{len(jobs)} images once, into {cache}", flush=True)
        bar = tf.keras.utils.Progbar(len(jobs), unit_name="image") if progress else None
        # Pillow and its codecs release the GIL while they code: threads use every core without a second TensorFlow.
        with ThreadPoolExecutor() as pool:
            for done, _ in enumerate(pool.map(_make_bases, jobs), 1):
                if bar is not None:
                    bar.update(done)
    return images


def _read_base_layer_image(path: bytes, bases, scale: int):
    from tfgc.codec.io import load_image

    image = load_image(path.decode())
    stack = np.stack([load_image(b.decode()) for b in bases])
    height, width = stack.shape[1] * scale, stack.shape[2] * scale
    # Edge-padded to the bases' size times the scale, as the codec pads before downsampling.
    image = np.pad(image, ((0, height - image.shape[0]), (0, width - image.shape[1]), (0, 0)), mode="edge")
    return image, stack


def _base_layer_source(images: Sequence[BaseLayerImage], scale: int) -> tf.data.Dataset:
    """(image uint8 [H, W, 3], bases uint8 [Q, H/scale, W/scale, 3]) per image."""
    dataset = tf.data.Dataset.from_tensor_slices(([i.path for i in images], [list(i.bases) for i in images]))

    def read(path, bases):
        image, stack = tf.numpy_function(lambda p, b: _read_base_layer_image(p, b, scale), [path, bases],
                                         [tf.uint8, tf.uint8], stateful=False)
        image.set_shape([None, None, 3])
        stack.set_shape([None, None, None, 3])
        return image, stack

    return dataset.map(read, num_parallel_calls=tf.data.AUTOTUNE)


def base_layer_dataset(images: Sequence[BaseLayerImage], scale: int, crop_size: int, batch_size: int,
                       seed: int = 0) -> tf.data.Dataset:
    """Endless batches of {"low": crops of the decoded bases (uint8), "high": the image's crops there (float32 0..255,
    `scale` times the size)}: a random image, quality, aligned crop and horizontal flip each."""
    low_size = crop_size // scale
    dataset = _base_layer_source(images, scale).cache()
    dataset = dataset.shuffle(len(images), seed=seed, reshuffle_each_iteration=True).repeat()

    def crop(image, stack):
        shape = tf.shape(stack)
        quality = tf.random.uniform([], 0, shape[0], tf.int32)
        top = tf.random.uniform([], 0, shape[1] - low_size + 1, tf.int32)
        left = tf.random.uniform([], 0, shape[2] - low_size + 1, tf.int32)
        low = stack[quality, top:top + low_size, left:left + low_size]
        high = image[top * scale:(top + low_size) * scale, left * scale:(left + low_size) * scale]
        if tf.random.uniform([]) < 0.5:
            low, high = low[:, ::-1], high[:, ::-1]
        low.set_shape([low_size, low_size, 3])
        high.set_shape([crop_size, crop_size, 3])
        return {"low": low, "high": tf.cast(high, tf.float32)}

    dataset = dataset.map(crop, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def base_layer_validation_dataset(images: Sequence[BaseLayerImage], scale: int, crop_size: int,
                                  batch_size: int) -> tf.data.Dataset:
    """Centre crops of each image and of its first base, in a fixed order."""
    low_size = crop_size // scale

    def centre(image, stack):
        top = (tf.shape(stack)[1] - low_size) // 2
        left = (tf.shape(stack)[2] - low_size) // 2
        low = stack[0, top:top + low_size, left:left + low_size]
        high = image[top * scale:(top + low_size) * scale, left * scale:(left + low_size) * scale]
        low.set_shape([low_size, low_size, 3])
        high.set_shape([crop_size, crop_size, 3])
        return {"low": low, "high": tf.cast(high, tf.float32)}

    return _base_layer_source(images, scale).map(centre).batch(batch_size).cache()


# ---- semantic data (selective compression) ----------------------------------------------------------------------
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
    from tfgc.semantics import max_label_id

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
    from tfgc.semantics import max_label_id, to_classes

    return tf.constant(to_classes(np.arange(max_label_id(label_set, classes) + 1), label_set, classes))


def _load_pair(lookup, downscale: int, size: int):
    def load(image_path, label_path):
        image = _decode(image_path)
        ids = tf.io.decode_png(tf.io.read_file(label_path), channels=1)
        classes = tf.gather(lookup, tf.cast(ids, tf.int32))
        if downscale > 1:
            shape = tf.shape(image)[:2] // downscale
            image = tf.image.resize(image, shape, method="area")
            classes = tf.image.resize(classes, shape, method="nearest")
        image, classes = _at_least(image, size), _at_least(classes, size, method="nearest")
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
