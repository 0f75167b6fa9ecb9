"""Measurements of real files: each image coded to a file (tfgc models through tfgc.codec.api, the .tfgc file with
its header and checksum; classic codecs through Pillow), decoded, and compared with the original. bpp = 8 * file bytes
/ pixels."""

from __future__ import annotations

import os
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from tfgc import metrics
from tfgc.errors import DataError, TfgcError
from tfgc.models.store import model_label
from tfgc.utils import first_line


@dataclass
class Measurement:
    """One image coded once: by a tfgc model, or by a classic codec at one quality setting."""

    image: str
    codec: str
    setting: str
    width: int
    height: int
    bytes: int
    bpp: float
    psnr: float
    ms_ssim: float
    detail: float
    encode_seconds: float
    decode_seconds: float
    extra: Dict[str, float] = field(default_factory=dict)  # tfgc: bound_bpp, estimated_bpp

    def row(self) -> dict:
        row = asdict(self)
        row.update(row.pop("extra"))
        return row


def measure(name: str, codec: str, setting: str, original: np.ndarray, data: bytes, reconstruction: np.ndarray,
            encode_seconds: float, decode_seconds: float, **extra) -> Measurement:
    height, width = original.shape[:2]
    return Measurement(name, codec, setting, width, height, len(data), 8 * len(data) / (width * height),
                       metrics.psnr(original, reconstruction), metrics.ms_ssim(original, reconstruction),
                       metrics.detail_ratio(original, reconstruction), encode_seconds, decode_seconds, dict(extra))


def load_images(folders: Sequence[str], limit: Optional[int] = None) -> List[Tuple[str, np.ndarray]]:
    from tfgc.codec.io import load_image
    from tfgc.data import list_images

    paths = list_images(folders)[:limit]
    root = os.path.commonpath([os.path.abspath(f) for f in folders])
    return [(os.path.relpath(os.path.abspath(p), root), load_image(p)) for p in paths]


def load_tfds(name: str, limit: Optional[int] = None) -> List[Tuple[str, np.ndarray]]:
    try:
        import tensorflow_datasets as tfds
    except ImportError:
        raise TfgcError("--tfds needs tensorflow-datasets: pip install 'tfgc[tfds]'") from None
    try:
        dataset = tfds.load(name, split="test" if "test" in tfds.builder(name).info.splits else "train")
    except Exception as e:  # tfds raises many kinds: unknown name, no network, checksum
        raise DataError(f"cannot load tfds dataset {name}: {first_line(e)}") from None
    images = []
    for i, example in enumerate(tfds.as_numpy(dataset)):
        if limit is not None and i >= limit:
            break
        images.append((f"{name}/{i:04d}", np.asarray(example["image"], np.uint8)))
    return images


def evaluate_model(model, images, label: str, progress=None, keep=None, alpha=None) -> List[Measurement]:
    """Each image coded and decoded in turn, after one untimed round trip of the first (which traces the model)."""
    from tfgc.codec import api

    def encode(image):
        return api.encode(image, model)

    def decode(data):
        return api.decode(data, model, alpha)

    if images:
        decode(encode(images[0][1]).data)
    rows = []
    for item in images:
        coded = encode_images([item], encode, warm_up=False)
        rows += measure_decodes([item], coded, label, label, decode, progress, keep, warm_up=False)
    return rows


def encode_images(images, encode, warm_up: bool = True) -> List[Tuple[object, float]]:
    """(EncodeResult, seconds) of each image coded once by encode(image). With `warm_up`, a first call untimed: it
    traces a model's functions, which is no image's coding time."""
    if warm_up and images:
        encode(images[0][1])
    coded = []
    for _, original in images:
        started = time.perf_counter()
        result = encode(original)
        coded.append((result, time.perf_counter() - started))
    return coded


def measure_decodes(images, coded, label: str, setting: str, decode, progress=None, keep=None,
                    warm_up: bool = True) -> List[Measurement]:
    """Each coded image (encode_images) decoded by decode(data) and measured against its original; with `warm_up`, a
    first call untimed, as for encoding. The same files may be measured with several decoders."""
    if warm_up and coded:
        decode(coded[0][0].data)
    rows = []
    for (name, original), (result, encode_seconds) in zip(images, coded):
        started = time.perf_counter()
        reconstruction = decode(result.data)
        decode_seconds = time.perf_counter() - started
        report = result.report()
        rows.append(measure(name, label, setting, original, result.data, reconstruction, encode_seconds,
                            decode_seconds, **{k: report[k] for k in ("bound_bpp", "estimated_bpp") if k in report}))
        if keep is not None:
            keep.append(reconstruction)
        if progress is not None:
            progress.add(1)
    return rows


def summarize(rows: Sequence[Measurement]) -> dict:
    keys = ["bpp", "psnr", "ms_ssim", "detail", "encode_seconds", "decode_seconds"]
    keys += [k for k in rows[0].extra] if rows else []
    summary = {k: float(np.mean([r.row()[k] for r in rows])) for k in keys}
    pixels = sum(r.width * r.height for r in rows)
    summary["encode_mpixels_per_second"] = pixels / 1e6 / max(1e-12, sum(r.encode_seconds for r in rows))
    summary["decode_mpixels_per_second"] = pixels / 1e6 / max(1e-12, sum(r.decode_seconds for r in rows))
    summary["images"] = len(rows)
    return summary


def inception_or_none(weights: Optional[str]):
    if not weights:
        print("FID/KID skipped: no --inception-weights (a Keras InceptionV3 .h5 without top, or 'imagenet' to let "
              "Keras download them)", file=sys.stderr)
        return None
    return metrics.InceptionFeatures(weights)


def unique_model_labels(directories) -> List[str]:
    """model_label of each directory; labels two directories share become the directories as given, so that no
    model's results stand under another's name."""
    labels = [model_label(d) for d in directories]
    labels = [str(d) if labels.count(label) > 1 else label for d, label in zip(directories, labels)]
    for label in labels:
        if labels.count(label) > 1:
            raise TfgcError(f"model {label} is given twice")
    return labels


def crop_image_name(images, requested: Optional[str]) -> str:
    """The image a report's crops figure shows: `requested` (--crop-image), which must be among the images, or the
    first."""
    name = requested or images[0][0]
    if name not in dict(images):
        raise TfgcError(f"--crop-image {name} is not among the images")
    return name
