"""compress(image, model) -> bytes and decompress(bytes, model) -> image, with the rate report behind them.

The model's transforms (`analysis`, `synthesis`) never see bytes, and this module never sees weights or a family's
format: each family's codec (tfgc.codec.gc, .sc, .sr, found through tfgc.codec.family) encodes and decodes its files,
and this module checks what is given and finds the model and the codec for it.

Anything with the model's interface serves as `model`: a loaded tfgc model, or the TFLite and ONNX runtimes of
tfgc.export (`family`, `config`, `geometry`, `fingerprint()`, `coding_table()`, `analysis`, `synthesis`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import numpy as np

from tfgc.codec import bitstream, sr
from tfgc.codec.family import (MODEL_TYPES, EncodeResult, ModelLike, all_codecs, codec_for,  # noqa: F401
                               describe)
from tfgc.codec.io import load_image, read_file, tensor_to_array
from tfgc.codec.sc import preservation_mask, read_selective  # noqa: F401  (part of the API)
from tfgc.codec.sr import StoredLowResolution, encode_sr  # noqa: F401  (part of the API)
from tfgc.config import checked_alpha
from tfgc.errors import FormatError, ImageError, ModelError, ModelMismatchError


def default_model() -> Optional[Path]:
    """The installed model that compress uses without one: the first in DEFAULT that runs on this machine
    (tfgc.models.store.default_model)."""
    from tfgc.models.store import default_model as first_default

    return first_default(sr.cannot_run)


def _describe(model: ModelLike):
    return describe(model, default_model)


def _checked_max_pixels(max_pixels) -> Optional[int]:
    if max_pixels is None:
        return None
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, (int, np.integer)) or max_pixels < 1:
        raise ImageError(f"max_pixels must be a positive integer, not {max_pixels!r}")
    return int(max_pixels)


def file_bytes(data) -> bytes:
    """A .tfgc file given as bytes (bytes, bytearray, memoryview, a scalar string tf.Tensor) or as a path."""
    data = tensor_to_array(data, ".tfgc file")
    if isinstance(data, np.ndarray) and data.ndim == 0 and isinstance(data.item(), bytes):
        data = data.item()
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    if isinstance(data, (str, os.PathLike)):
        return read_file(data, bitstream.MAX_FILE_BYTES)
    raise FormatError(f"a .tfgc file must be given as bytes or as a path, not {type(data).__name__}")


def encode(image, model: Optional[ModelLike] = None, semantics=None, preserve=None, preserve_classes=None,
           max_pixels: Optional[int] = None) -> EncodeResult:
    """Compress `image` and report its rate: a path, an image file's bytes, a Pillow image, or an array or tf.Tensor
    [H, W(, 1|3|4)] of uint8 (or integers 0..255, or floats in [0, 1]). `model` is a model folder, an installed
    model's name or a loaded model; None means the installed default model.

    An sc model also needs `semantics`, the image's label map (path, bytes or array of ids in the model's label set),
    and takes what to preserve: `preserve` = "all" (the default), "none", or a binary mask (array or image path, at
    the image's size or the latent grid's), or `preserve_classes` = class names or ids. Images of more than
    `max_pixels` pixels (default: tfgc.codec.bitstream.MAX_IMAGE_PIXELS) are refused before they are decoded.
    """
    max_pixels = _checked_max_pixels(max_pixels)
    described = _describe(model)
    codec = codec_for(described.family)
    options = dict(semantics=semantics, preserve=preserve, preserve_classes=preserve_classes)
    codec.check_options(options)
    pixels = load_image(image, max_pixels)
    return codec.encode(pixels, described, **{name: value for name, value in options.items() if value is not None})


def compress(image, model: Optional[ModelLike] = None) -> bytes:
    """The .tfgc file's bytes of `image` (see encode)."""
    return encode(image, model).data


def read_header(data: bytes) -> bitstream.Header:
    return bitstream.unpack(data)[0]


def decode(data: bytes, model: Optional[ModelLike] = None, alpha: Optional[float] = None,
           decoder: Optional[str] = None, max_pixels: Optional[int] = None) -> np.ndarray:
    """Decompress a .tfgc file (its bytes, or its path) to RGB uint8 [H, W, 3].

    Without `model`, the model is looked up by the file's fingerprint in $TFGC_MODEL_PATH and saved_models/.
    `alpha` in [0, 1] chooses the decoder of a fidelity-controlled model (0: the MSE decoder, 1: the GAN decoder,
    between: their interpolation); the file is the same for every alpha. sr files may also be decoded by a classic
    upscaler instead of a model: `decoder` = "bicubic" or "lanczos". A file declaring more than `max_pixels` pixels
    (default: tfgc.codec.bitstream.MAX_IMAGE_PIXELS) is refused before anything is allocated for it.
    """
    header, payload = bitstream.unpack(file_bytes(data), _checked_max_pixels(max_pixels))
    codec = codec_for(header.family)
    if decoder not in (None, "model"):
        return _decode_classic(header, payload, codec, decoder, model, alpha)
    if model is None:
        from tfgc.models.store import find_model

        found = find_model(header.fingerprint)
        if found is None:
            raise ModelError(f"no installed model has fingerprint {header.fingerprint.hex()}; pass --model DIR"
                             f"{codec.classic_hint}")
        model = found
    described = _describe(model)
    if header.family != described.family:
        raise ModelMismatchError(f"file holds a bitstream of the {header.family} family; the model is of the "
                                 f"{described.family} family")
    codec.check_file(header, payload, described)
    checked_alpha(described.config, alpha)
    return codec.decode(header, payload, described.load(), alpha)


def classic_decoders() -> dict:
    """Every decoder that reads some family's files without a model: name -> the families it reads."""
    decoders = {}
    for codec in all_codecs():
        for name in codec.classic_decoders:
            decoders.setdefault(name, []).append(codec.family)
    return decoders


def _decode_classic(header, payload, codec, decoder: str, model, alpha) -> np.ndarray:
    known = classic_decoders()
    if decoder not in known:
        raise ModelError(f"unknown decoder {decoder!r}: model, {', '.join(known)}")
    if decoder not in codec.classic_decoders:
        raise ModelError(f"--decoder {decoder} decodes {' and '.join(known[decoder])} files; this one holds a "
                         f"{header.family} bitstream")
    if model is not None or alpha is not None:
        raise ModelError(f"the {decoder} decoder takes no model and no alpha")
    return codec.decode_classic(header, payload, decoder)


def read_sr(data: bytes) -> StoredLowResolution:
    """An sr file's base codec, scale, quality and decoded base image (no model needed)."""
    header, payload = bitstream.unpack(data)
    if header.family != "sr":
        raise ModelError(f"file holds a {header.family} bitstream, not an sr one")
    return sr.read_stored(header, payload)


decompress = decode
