"""Host-side coding of what an sc file adds to GC's latents: the label map and the preservation mask, both lossless.

The label map (classes 0..K-1 at the image's size) is coded with the lossless image coders Pillow carries: PNG always,
WebP lossless when Pillow has libwebp (58% of PNG's size on Cityscapes maps), JPEG XL lossless when
pillow-jxl-plugin is installed (86% of WebP's); each file keeps the smallest and names its coder. The mask
(one bit a latent cell) costs nothing when it preserves nothing or everything, and is otherwise its bits, deflated
when that is shorter (a 1-bit PNG would add some 60 bytes of chunks to a mask of a few dozen).
Only the latents the mask preserves are range coded, in raster order, exactly as GC codes a whole grid.
"""

from __future__ import annotations

import io
import zlib
from typing import Tuple

import numpy as np
from PIL import Image

from tfgc.codec import bitstream
from tfgc.codec.io import DECODE_ERRORS
from tfgc.errors import FormatError
from tfgc.utils import first_line

# WebP's own limit on a side.
_WEBP_MAX_SIDE = 16383


def _jxl_available() -> bool:
    try:
        import pillow_jxl  # noqa: F401  (registers the JPEG XL plugin with Pillow)
    except ImportError:
        return False
    return True


def _webp_available() -> bool:
    from PIL import features

    return bool(features.check("webp"))


def encode_label_map(classes: np.ndarray) -> Tuple[str, bytes]:
    """uint8 classes [H, W] -> (coder, bytes), the smallest of the available lossless coders."""
    image = Image.fromarray(np.ascontiguousarray(classes, np.uint8), "L")
    candidates = {}
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    candidates["png"] = buffer.getvalue()
    if _webp_available() and max(classes.shape) <= _WEBP_MAX_SIDE:
        buffer = io.BytesIO()
        image.save(buffer, format="WEBP", lossless=True, quality=100, method=4)
        candidates["webp"] = buffer.getvalue()
    if _jxl_available():
        buffer = io.BytesIO()
        image.save(buffer, format="JXL", lossless=True, effort=7)
        candidates["jxl"] = buffer.getvalue()
    coder = min(candidates, key=lambda name: len(candidates[name]))
    return coder, candidates[coder]


def decode_label_map(coder: str, data: bytes, height: int, width: int, classes: int) -> np.ndarray:
    """The label map of an sc file, checked: the image's size, one channel, every class below `classes`."""
    if coder == "jxl" and not _jxl_available():
        raise FormatError("this file's label map is JPEG XL coded: install pillow-jxl-plugin to decode it")
    if coder == "webp" and not _webp_available():
        raise FormatError("this file's label map is WebP coded and this Pillow has no WebP support")
    array = _read_lossless(data, "label map", (width, height), {"png": "PNG", "webp": "WEBP", "jxl": "JXL"}[coder])
    if array.ndim == 3:  # WebP stores greyscale as RGB
        if not (np.all(array[..., 0] == array[..., 1]) and np.all(array[..., 0] == array[..., 2])):
            raise FormatError("label map is not greyscale")
        array = array[..., 0]
    if array.max(initial=0) >= classes:
        raise FormatError(f"label map holds class {int(array.max())}; the model has {classes} classes")
    return np.ascontiguousarray(array, np.uint8)


def encode_mask(mask: np.ndarray) -> Tuple[int, bytes]:
    mask = np.asarray(mask, np.uint8)
    if not mask.any():
        return bitstream.MASK_NONE, b""
    if mask.all():
        return bitstream.MASK_ALL, b""
    bits = np.packbits(mask.astype(bool), axis=None).tobytes()
    deflater = zlib.compressobj(9, zlib.DEFLATED, -15)
    deflated = deflater.compress(bits) + deflater.flush()
    return (bitstream.MASK_DEFLATE, deflated) if len(deflated) < len(bits) else (bitstream.MASK_BITS, bits)


def decode_mask(kind: int, data: bytes, height: int, width: int) -> np.ndarray:
    """The latent mask [height, width] of an sc file (uint8, 0 or 1)."""
    if kind == bitstream.MASK_NONE:
        return np.zeros((height, width), np.uint8)
    if kind == bitstream.MASK_ALL:
        return np.ones((height, width), np.uint8)
    expected = -(-height * width // 8)
    if kind == bitstream.MASK_DEFLATE:
        inflater = zlib.decompressobj(-15)
        try:
            bits = inflater.decompress(data, expected + 1)  # never more than the grid needs, whatever the stream says
        except zlib.error as e:
            raise FormatError(f"mask does not inflate: {e}") from None
        if not inflater.eof or inflater.unconsumed_tail or inflater.unused_data:
            raise FormatError("mask's deflate stream does not end where its section does")
    else:
        bits = data
    if len(bits) != expected:
        raise FormatError(f"mask holds {len(bits)} bytes of bits, the {width}x{height} latent grid needs {expected}")
    return np.unpackbits(np.frombuffer(bits, np.uint8), count=height * width).reshape(height, width)


def _read_lossless(data: bytes, what: str, size, image_format: str) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(data), formats=[image_format]) as image:
            if image.size != tuple(size):
                raise FormatError(f"{what} is {image.size[0]}x{image.size[1]}, the file declares {size[0]}x{size[1]}")
            if image.mode not in ("L", "RGB"):
                raise FormatError(f"{what} has mode {image.mode}, not a label image")
            image.load()
            return np.asarray(image)
    except FormatError:
        raise
    except DECODE_ERRORS as e:
        raise FormatError(f"{what} does not decode: {first_line(e)}") from None
