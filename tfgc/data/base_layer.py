"""Training data of the sr family from whole images: each coded by the base codec at reduced size, decoded once and
cached on disk (tfgc.codec.sr's own functions, so the decoder learns exactly what files hold)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image

from tfgc.data.images import tf
from tfgc.errors import DataError

BASE_CACHE_ENV = "TFGC_BASE_CACHE"


def default_base_cache() -> Path:
    """Where decoded bases are kept between runs: $TFGC_BASE_CACHE, else $XDG_CACHE_HOME/tfgc/bases (~/.cache/...)."""
    import os

    if os.environ.get(BASE_CACHE_ENV):
        return Path(os.environ[BASE_CACHE_ENV])
    from tfgc.utils import cache_home

    return cache_home() / "bases"


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
