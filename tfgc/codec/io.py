"""Reading images into RGB uint8 arrays and writing reconstructions, through Pillow."""

from __future__ import annotations

import io
import os
import stat
import struct
import warnings
import zlib
from pathlib import Path
from typing import Optional

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from tfgc.errors import ImageError, TfgcError
from tfgc.utils import first_line, shown, write_atomic

# The largest image file read: MAX_IMAGE_PIXELS of 16-bit RGBA, uncompressed, is 1.4 GB.
MAX_IMAGE_FILE_BYTES = 2 * 2**30
# What Pillow and its plugins raise on damaged or hostile image data (pillow-jxl-plugin raises RuntimeError; Pillow's
# decoders also EOFError, struct.error and zlib.error): each becomes tfgc's own one-line error where images are read.
DECODE_ERRORS = (OSError, ValueError, SyntaxError, RuntimeError, EOFError, struct.error, zlib.error,
                 Image.DecompressionBombError)


def to_rgb_array(image: Image.Image) -> np.ndarray:
    """Any Pillow image as RGB uint8 [H, W, 3], upright (EXIF orientation applied)."""
    image = ImageOps.exif_transpose(image)
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # Pillow's own conversion clips 16-bit and float images to 0..255 instead of scaling them.
        values = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if image.mode.startswith("I") else max(1.0, float(values.max()))
        grey = np.clip(np.round(values / peak * 255.0), 0, 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        # Transparent pixels are composited over white, as a viewer shows them.
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    if image.mode != "RGB":  # convert copies even an RGB image: one copy fewer of a large one
        image = image.convert("RGB")
    return np.asarray(image, dtype=np.uint8)


IMAGE_TYPES = ("a path, the bytes of an image file, a binary file object, a Pillow image, or an array or tf.Tensor "
               "[H, W], [H, W, 1|3|4] of uint8 0..255, integers 0..255 or floats in [0, 1]")


def load_image(source, max_pixels: Optional[int] = None) -> np.ndarray:
    """Any of IMAGE_TYPES as RGB uint8 [H, W, 3]; anything else is an ImageError.

    An image of more than `max_pixels` pixels (default: tfgc.codec.bitstream.MAX_IMAGE_PIXELS) is refused, a file
    from its header alone, before its pixels are decoded.
    """
    source = tensor_to_array(source, "image")
    if isinstance(source, np.ndarray):
        _check_size(source.shape[1::-1] if source.ndim >= 2 else (0, 0), max_pixels, "image array")
        return _array_to_rgb(source)
    if isinstance(source, Image.Image):
        _check_size(source.size, max_pixels, "image")
        return to_rgb_array(source)
    if isinstance(source, memoryview):
        source = source.tobytes()
    if not isinstance(source, (str, os.PathLike, bytes, bytearray)) and not hasattr(source, "read"):
        raise ImageError(f"an image must be {IMAGE_TYPES}; not {type(source).__name__}")
    name = "image bytes" if isinstance(source, (bytes, bytearray)) else shown(source)
    if isinstance(source, (str, os.PathLike)):
        _check_image_file(source)
    try:
        with warnings.catch_warnings():
            # Pillow's bomb warning (above 89 megapixels): tfgc's own pixel limit, checked below, decides
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            opened = Image.open(io.BytesIO(source)) if isinstance(source, (bytes, bytearray)) else Image.open(source)
            with opened as image:
                _check_size(image.size, max_pixels, name)
                # An animation has no one picture to compress. (A camera's MPO JPEG or a multi-page TIFF has
                # frames too: its first is the picture.)
                if image.format in ("GIF", "PNG", "WEBP") and getattr(image, "n_frames", 1) > 1:
                    raise ImageError(f"cannot read {name}: an animation of {image.n_frames} frames; tfgc compresses "
                                     "still images (save the frame you want as PNG)")
                image.load()
                return to_rgb_array(image)
    except FileNotFoundError:
        raise ImageError(f"cannot read {name}: no such file") from None
    except IsADirectoryError:
        raise ImageError(f"cannot read {name}: it is a directory") from None
    except UnidentifiedImageError:
        raise ImageError(f"cannot read {name}: not an image format Pillow knows") from None
    except Image.DecompressionBombError as e:
        raise ImageError(f"cannot read {name}: {e}") from None
    except DECODE_ERRORS as e:
        raise ImageError(f"cannot read {name}: {first_line(e)} (truncated or corrupt?)") from None


def open_payload_image(data: bytes, formats=None) -> Image.Image:
    """Pillow's image of an image stored in a .tfgc file (a base layer, a label map), opened without Pillow's bomb
    warning: the file's declared size, which the stored image must match, is already under tfgc's pixel cap."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        return Image.open(io.BytesIO(data), formats=formats)


def _check_image_file(path) -> None:
    """Refuse, before Pillow opens it, a path that is no regular file (a FIFO would block, a device never end) or
    that is larger than MAX_IMAGE_FILE_BYTES."""
    name = shown(path)
    if "\0" in os.fspath(path):
        raise ImageError(f"cannot read {name}: a path cannot hold a null byte")
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise ImageError(f"cannot read {name}: no such file") from None
    except OSError as e:
        raise ImageError(f"cannot read {name}: {e.strerror or e}") from None
    check_regular(info.st_mode, path, ImageError)
    if info.st_size > MAX_IMAGE_FILE_BYTES:
        raise ImageError(f"cannot read {name}: {info.st_size} bytes, more than the {MAX_IMAGE_FILE_BYTES} tfgc "
                         "reads of an image file (tfgc.codec.io.MAX_IMAGE_FILE_BYTES)")


def _check_size(size, max_pixels: Optional[int], name: str) -> None:
    from tfgc.codec.bitstream import MAX_IMAGE_PIXELS

    limit = MAX_IMAGE_PIXELS if max_pixels is None else max_pixels
    width, height = size
    if width * height > limit:
        raise ImageError(f"{name}: {width}x{height} pixels exceed the limit of {limit} (--max-pixels, "
                         "tfgc.codec.bitstream.MAX_IMAGE_PIXELS)")


def tensor_to_array(value, what: str):
    """A tf.Tensor's value as a NumPy array (other values as they are), without importing TensorFlow."""
    if type(value).__module__.startswith("tensorflow") and hasattr(value, "dtype") and hasattr(value, "shape"):
        try:
            return np.asarray(value.numpy())
        except (AttributeError, NotImplementedError, TypeError, ValueError):
            raise ImageError(f"the {what} is a symbolic tensor: call tfgc's codec eagerly, outside tf.function") \
                from None
    return value


def _array_to_rgb(array: np.ndarray) -> np.ndarray:
    array = _to_uint8(array)
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4):
        raise ImageError(f"image arrays must be [H, W], [H, W, 1], [H, W, 3] or [H, W, 4], not {list(array.shape)}")
    if array.shape[0] < 1 or array.shape[1] < 1:
        raise ImageError("image is empty")
    if array.shape[2] == 1:
        return np.repeat(array, 3, axis=2)
    if array.shape[2] == 4:
        return to_rgb_array(Image.fromarray(array, "RGBA"))
    return np.ascontiguousarray(array)


def _to_uint8(array: np.ndarray) -> np.ndarray:
    """uint8 arrays as they are; other integers in 0..255 cast; floats in [0, 1] scaled by 255 (TensorFlow's
    convention for float images, tf.image.convert_image_dtype). Anything else would be a guess, so it is refused."""
    if array.dtype == np.uint8:
        return array
    if array.size == 0:
        raise ImageError("image is empty")
    if array.dtype.kind in "iu":
        if array.min() < 0 or array.max() > 255:
            raise ImageError(f"integer image arrays must hold 0..255; this {array.dtype} one holds "
                             f"{array.min()}..{array.max()}")
        return array.astype(np.uint8)
    if array.dtype.kind == "f":
        if not np.isfinite(array).all():
            raise ImageError("the image array holds NaN or infinite values")
        if array.min() < 0.0 or array.max() > 1.0:
            raise ImageError(f"float image arrays must hold values in [0, 1]; this one holds {array.min():g}.."
                             f"{array.max():g} (for 0..255 values pass uint8: np.round(x).astype(np.uint8))")
        return np.round(array.astype(np.float64) * 255.0).astype(np.uint8)
    raise ImageError(f"image arrays must be uint8, integers 0..255 or floats in [0, 1], not {array.dtype}")


def read_file(path, max_bytes: Optional[int] = None, error=TfgcError) -> bytes:
    """A regular file's bytes, at most `max_bytes` of them, or a one-line `error` saying why they cannot be read.
    A FIFO, a device or a socket is refused without waiting on it (it could block forever, or never end)."""
    name = shown(path)
    if "\0" in os.fspath(path):  # the OS cannot name such a file; Python says so with a ValueError
        raise error(f"cannot read {name}: a path cannot hold a null byte")
    try:
        # O_NONBLOCK: opening a FIFO without a writer returns at once, so it can be refused
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as f:
            info = os.fstat(fd)
            check_regular(info.st_mode, path, error)
            size = info.st_size
            if max_bytes is not None and size > max_bytes:
                raise error(f"cannot read {name}: {size} bytes, more than the {max_bytes} tfgc reads of such a file")
            data = f.read() if max_bytes is None else f.read(max_bytes + 1)
    except FileNotFoundError:
        raise error(f"cannot read {name}: no such file") from None
    except IsADirectoryError:
        raise error(f"cannot read {name}: it is a directory") from None
    except OSError as e:
        raise error(f"cannot read {name}: {e.strerror or e}") from None
    if max_bytes is not None and len(data) > max_bytes:
        raise error(f"cannot read {name}: more than the {max_bytes} bytes tfgc reads of such a file")
    return data


def check_regular(mode: int, path, error=TfgcError) -> None:
    """A one-line `error` unless `mode` (a stat's st_mode) is a regular file's."""
    if stat.S_ISREG(mode):
        return
    name = shown(path)
    if stat.S_ISDIR(mode):
        raise error(f"cannot read {name}: it is a directory")
    kind = ("a FIFO" if stat.S_ISFIFO(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
            else "a socket" if stat.S_ISSOCK(mode) else "not a regular file")
    raise error(f"cannot read {name}: it is {kind}, not a regular file")


def output_format(path) -> str:
    """The Pillow format that `path`'s extension names (PNG when it has none); an unknown one is an ImageError."""
    extension = Path(path).suffix.lower()
    if not extension:
        return "PNG"
    image_format = Image.registered_extensions().get(extension)
    if image_format is None or image_format not in Image.SAVE:
        raise ImageError(f"cannot write {path}: Pillow writes no image format with the extension {extension}")
    return image_format


def encode_image(array: np.ndarray, path) -> bytes:
    """The bytes of `array` in the format that `path`'s extension names (PNG by default, lossless)."""
    image_format = output_format(path)
    buffer = io.BytesIO()
    try:
        Image.fromarray(array, "RGB").save(buffer, format=image_format)
    except (KeyError, OSError, ValueError) as e:
        raise ImageError(f"cannot write {path} as {image_format}: {e}") from None
    return buffer.getvalue()


def save_image(array: np.ndarray, path, force: bool = False) -> None:
    path = os.fspath(path)
    write_atomic(path, encode_image(array, path), force=force)
