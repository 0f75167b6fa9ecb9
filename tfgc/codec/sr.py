"""The host side of the super-resolution codec (RL-SRGAN, Savioli 2019): bicubic downsampling and JPEG through Pillow,
and the classic upscalers the learned decoder is compared with.

Training degrades its crops with the same functions, so the generator learns exactly the inputs files hold.
"""

from __future__ import annotations

import hashlib
import io
import json

import numpy as np
from PIL import Image

from tfgc.codec.bitstream import SR_SCALES
from tfgc.codec.io import DECODE_ERRORS
from tfgc.errors import FormatError, TfgcError
from tfgc.utils import first_line

CLASSIC_DECODERS = {"bicubic": Image.BICUBIC, "lanczos": Image.LANCZOS}


def check_scale(scale: int) -> int:
    if scale not in SR_SCALES:
        raise TfgcError(f"scale must be one of {', '.join(map(str, SR_SCALES))}, not {scale}")
    return scale


def check_quality(quality: int) -> int:
    if not 1 <= quality <= 100:
        raise TfgcError(f"JPEG quality must be in 1..100, not {quality}")
    return quality


def low_resolution_size(height: int, width: int, scale: int):
    """(h, w) of the JPEG a height x width image is stored as."""
    return -(-height // scale), -(-width // scale)


def downsample(image: np.ndarray, scale: int) -> np.ndarray:
    """RGB uint8 [H, W, 3] -> [ceil(H/r), ceil(W/r), 3]: edge-padded to multiples of r, then Pillow's bicubic
    (antialiased, as MATLAB's imresize and SRGAN's data)."""
    height, width = image.shape[:2]
    h, w = low_resolution_size(height, width, scale)
    padded = np.pad(image, ((0, h * scale - height), (0, w * scale - width), (0, 0)), mode="edge")
    return np.asarray(Image.fromarray(padded, "RGB").resize((w, h), Image.BICUBIC))


def encode_jpeg(image: np.ndarray, quality: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image, "RGB").save(buffer, format="JPEG", quality=int(quality), optimize=True)
    return buffer.getvalue()


def decode_jpeg(data: bytes, height: int, width: int) -> np.ndarray:
    """A stored JPEG as RGB uint8, checked to be a JPEG of the expected size before its pixels are decoded."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format != "JPEG":
                raise FormatError(f"sr payload holds a {image.format} image, not a JPEG")
            if image.size != (width, height):
                raise FormatError(f"sr payload's JPEG is {image.size[0]}x{image.size[1]}, the header implies "
                                  f"{width}x{height}")
            if image.mode != "RGB":
                raise FormatError(f"sr payload's JPEG is {image.mode}, not RGB")
            image.load()
            return np.asarray(image)
    except DECODE_ERRORS as e:
        raise FormatError(f"sr payload's JPEG cannot be decoded: {first_line(e)}") from None


def degrade(image: np.ndarray, scale: int, quality: int) -> np.ndarray:
    """What a file makes of an image: downsampled, JPEG coded and decoded (uint8 [ceil(H/r), ceil(W/r), 3])."""
    low = downsample(image, scale)
    return decode_jpeg(encode_jpeg(low, quality), *low.shape[:2])


def upscale(low: np.ndarray, scale: int, method: str, height: int, width: int) -> np.ndarray:
    """A classic decoder: Pillow's bicubic or Lanczos upscaling by `scale`, cropped to height x width."""
    try:
        resample = CLASSIC_DECODERS[method]
    except KeyError:
        raise TfgcError(f"unknown decoder {method!r}; classic ones: {', '.join(CLASSIC_DECODERS)}") from None
    h, w = low.shape[:2]
    return np.asarray(Image.fromarray(low, "RGB").resize((w * scale, h * scale), resample))[:height, :width]


def fingerprint(scale: int) -> bytes:
    """What an sr file's fingerprint names: the family and the scale, not weights. The stored JPEG depends on no
    model, so every sr decoder of that scale (trained or classic) reads every such file."""
    settings = json.dumps({"family": "sr", "scale": int(scale)}, sort_keys=True).encode()
    return hashlib.sha256(settings).digest()[:8]
