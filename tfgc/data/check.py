"""Training images decoded once, before training, by the decoder the training pipeline uses (TensorFlow's): a
truncated or corrupted file, an image in a format the pipeline cannot read (a WebP named .jpg), or one larger than
training takes is found before the first step rather than minutes into the run. Each answer is kept in a cache keyed
by the file's path, size and modification time, so a rerun of the same data pays only for new or changed files.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

from PIL import Image

from tfgc.codec.io import DECODE_ERRORS
from tfgc.errors import DataError, TfgcError
from tfgc.utils import cache_home, first_line, progress_bar, write_atomic

# Training keeps its images decoded in memory (float32): a larger one is refused, or skipped with --skip-bad-images.
TRAINING_MAX_PIXELS = 40_000_000
CHECK_CACHE_ENV = "TFGC_CHECK_CACHE"
# Images to check from which a progress bar is shown (fewer take a moment).
PROGRESS_FROM = 50


def default_check_cache() -> Path:
    """$TFGC_CHECK_CACHE, else $XDG_CACHE_HOME/tfgc/checked-images.json (~/.cache/...)."""
    if os.environ.get(CHECK_CACHE_ENV):
        return Path(os.environ[CHECK_CACHE_ENV])
    return cache_home() / "checked-images.json"


def _problem(path: str) -> str:
    """Why training cannot use the image at `path` ("" when it can)."""
    import tensorflow as tf

    try:
        with Image.open(path) as image:
            width, height = image.size
    except DECODE_ERRORS as e:
        return f"not an image Pillow reads ({first_line(e)})"
    if width * height > TRAINING_MAX_PIXELS:
        return (f"{width}x{height} pixels, more than the {TRAINING_MAX_PIXELS} training takes "
                "(tfgc.data.check.TRAINING_MAX_PIXELS); downscale it")
    try:
        with _quiet_stderr():
            tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
    except (tf.errors.OpError, ValueError) as e:
        # TensorFlow's message, without the op's name around it: "jpeg::Uncompress failed. Invalid JPEG data ..."
        message = re.sub(r"^\{\{[^}]*\}\}\s*|\s*\[Op:.*$", "", first_line(e)).strip().rstrip(".")
        return f"does not decode ({message or type(e).__name__})"
    return ""


@contextlib.contextmanager
def _quiet_stderr():
    """libjpeg's and libpng's warnings ("Corrupt JPEG data: ...") written by C code to file descriptor 2, dropped:
    the check says in one line what is wrong."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _key(path: str) -> Tuple[str, list]:
    info = os.stat(path)
    return os.path.realpath(path), [info.st_size, info.st_mtime_ns]


def _read_cache(cache: Path) -> Dict[str, list]:
    try:
        data = json.loads(cache.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def check_images(paths: Sequence[str], skip_bad: bool = False, cache: Path = None) -> Tuple[List[str], List[dict]]:
    """(the paths training can use, [{"path", "reason"}] of those it cannot) of `paths`. Without `skip_bad` the first
    such image is a DataError naming it. `cache`: where answers are kept (default_check_cache(); unwritable: none)."""
    cache = default_check_cache() if cache is None else Path(cache)
    known = _read_cache(cache)
    keys = {path: _key(path) for path in paths}
    unknown = [path for path in paths if known.get(keys[path][0], [None])[:2] != keys[path][1]]
    if unknown:
        print(f"tfgc.train: decoding {len(unknown)} of {len(paths)} training images once to check them "
              f"({len(paths) - len(unknown)} checked before)", flush=True)
        progress = progress_bar(len(unknown), "image") if len(unknown) >= PROGRESS_FROM else None
        for path in unknown:
            realpath, stamp = keys[path]
            known[realpath] = stamp + [_problem(path)]
            if progress is not None:
                progress.add(1)
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(cache, json.dumps(known).encode(), force=True)
        except (OSError, TfgcError) as e:  # a cache that cannot be written costs only time
            print(f"tfgc.train: could not keep the checks in {cache} ({first_line(e)})", flush=True)
    good, bad = [], []
    for path in paths:
        reason = known[keys[path][0]][2]
        if not reason:
            good.append(path)
        elif not skip_bad:
            raise DataError(f"training image {path}: {reason}; remove it, or pass --skip-bad-images to train without "
                            "it")
        else:
            bad.append({"path": path, "reason": reason})
    for item in bad:
        print(f"tfgc.train: skipping {item['path']}: {item['reason']}", flush=True)
    if not good:
        raise DataError(f"none of the {len(paths)} training images can be used")
    return good, bad
