"""The host side of the super-resolution codec family: a classic codec at reduced resolution (the base layer) and a
learned decoder. Bicubic downsampling, the base codecs through Pillow and its plugins (JPEG as in RL-SRGAN, Savioli
2019; WebP, AVIF, HEIC), and the classic upscalers the learned decoder is compared with.

Training data comes from the same functions, so the decoder learns exactly the inputs files hold.
"""

from __future__ import annotations

import io
from typing import Optional

import numpy as np
from PIL import Image

from tfgc.codec.bitstream import BASE_CODECS
from tfgc.codec.io import DECODE_ERRORS
from tfgc.config import SR_SCALES
from tfgc.errors import FormatError, TfgcError
from tfgc.models.store import sr_fingerprint as fingerprint  # noqa: F401  (an sr file names its model's settings)
from tfgc.utils import first_line

CLASSIC_DECODERS = {"bicubic": Image.BICUBIC, "lanczos": Image.LANCZOS}
BASE_NAMES = {"jpeg": "JPEG", "webp": "WebP", "avif": "AVIF", "heic": "HEIC"}


def check_scale(scale: int) -> int:
    if scale not in SR_SCALES:
        raise TfgcError(f"scale must be one of {', '.join(map(str, SR_SCALES))}, not {scale}")
    return scale


def check_base(base: str) -> str:
    if base not in BASE_CODECS:
        raise TfgcError(f"unknown base codec {base!r}; known: {', '.join(BASE_CODECS)}")
    return base


def base_label(base: str) -> str:
    """'a JPEG', 'an HEIC', ...: how text names a base image."""
    name = BASE_NAMES[base]
    return ("an " if name[0] in "AEH" else "a ") + name


def size_label(scale: int) -> str:
    """'full size', '1/2 size', ...: how text names the base's size."""
    return "full size" if scale == 1 else f"1/{scale} size"


def lowest_quality(base: str) -> int:
    """JPEG's quality scale starts at 1 (libjpeg's 0 is 1 by another name); the others' at 0."""
    return 1 if base == "jpeg" else 0


def check_quality(quality: int, base: str = "jpeg") -> int:
    low = lowest_quality(base)
    if not low <= quality <= 100:
        name = "JPEG" if base == "jpeg" else f"{base} base"
        raise TfgcError(f"{name} quality must be in {low}..100, not {quality}")
    return quality


def base_codec(base: str):
    """The classic codec of a base layer (tfgc.codec.classic), with a clear error where its plugin is missing."""
    from tfgc.codec.classic import get_codec

    return get_codec(check_base(base))


def cannot_run(manifest: dict) -> Optional[str]:
    """Why a model cannot code files on this machine (an sr model whose base codec's plugin is missing), or None."""
    if manifest.get("family") != "sr":
        return None
    from tfgc.models.store import sr_settings

    try:
        base_codec(sr_settings(manifest)[0])
    except TfgcError as e:
        return str(e)
    return None


def low_resolution_size(height: int, width: int, scale: int):
    """(h, w) of the JPEG a height x width image is stored as."""
    return -(-height // scale), -(-width // scale)


def downsample(image: np.ndarray, scale: int) -> np.ndarray:
    """RGB uint8 [H, W, 3] -> [ceil(H/r), ceil(W/r), 3]: edge-padded to multiples of r, then Pillow's bicubic
    (antialiased, as MATLAB's imresize and SRGAN's data). Scale 1 returns the image."""
    if scale == 1:
        return image
    height, width = image.shape[:2]
    h, w = low_resolution_size(height, width, scale)
    padded = np.pad(image, ((0, h * scale - height), (0, w * scale - width), (0, 0)), mode="edge")
    return np.asarray(Image.fromarray(padded, "RGB").resize((w, h), Image.BICUBIC))


def encode_base(image: np.ndarray, quality: int, base: str = "jpeg") -> bytes:
    """The base codec's file of an RGB uint8 image."""
    return base_codec(base).encode(np.ascontiguousarray(image), quality)


def decode_base(data: bytes, height: int, width: int, base: str = "jpeg") -> np.ndarray:
    """A stored base image as RGB uint8, checked to be a file of its codec and of the expected size before its pixels
    are decoded."""
    codec = base_codec(base)
    name = codec.pillow_format
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format != name:
                raise FormatError(f"sr payload holds a {image.format} image, not a {name}")
            if image.size != (width, height):
                raise FormatError(f"sr payload's {name} is {image.size[0]}x{image.size[1]}, the header implies "
                                  f"{width}x{height}")
            if image.mode != "RGB":
                raise FormatError(f"sr payload's {name} is {image.mode}, not RGB")
            image.load()
            return np.asarray(image)
    except DECODE_ERRORS as e:
        raise FormatError(f"sr payload's {name} cannot be decoded: {first_line(e)}") from None


def degrade(image: np.ndarray, scale: int, quality: int, base: str = "jpeg") -> np.ndarray:
    """What a file makes of an image: downsampled, coded by the base codec and decoded (uint8 [ceil(H/r), ceil(W/r),
    3])."""
    return degrade_low(downsample(image, scale), quality, base)


def degrade_low(low: np.ndarray, quality: int, base: str = "jpeg") -> np.ndarray:
    """A downsampled image coded by the base codec and decoded."""
    return decode_base(encode_base(low, quality, base), *low.shape[:2], base)


def upscale(low: np.ndarray, scale: int, method: str, height: int, width: int) -> np.ndarray:
    """A classic decoder: Pillow's bicubic or Lanczos upscaling by `scale`, cropped to height x width."""
    try:
        resample = CLASSIC_DECODERS[method]
    except KeyError:
        raise TfgcError(f"unknown decoder {method!r}; classic ones: {', '.join(CLASSIC_DECODERS)}") from None
    if scale == 1:
        return low[:height, :width]
    h, w = low.shape[:2]
    return np.asarray(Image.fromarray(low, "RGB").resize((w * scale, h * scale), resample))[:height, :width]


