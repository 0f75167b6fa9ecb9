"""compress(image, model) -> bytes and decompress(bytes, model) -> image, with the rate report behind them.

The model's transforms (`analysis`, `synthesis`) never see bytes, and this module never sees weights: it gets symbols
and the model's integer coding table, and range codes each file with that table or with the uniform one, whichever is
shorter, so no file exceeds the rate bound by more than the format's fixed overhead and a few bytes.

Anything with the model's interface serves as `model`: a loaded tfgc model, or the TFLite and ONNX runtimes of
tfgc.export (`family`, `config`, `fingerprint()`, `coding_table()`, `analysis`, `synthesis`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

import numpy as np

from tfgc.codec import bitstream, entropy
from tfgc.codec.io import load_image
from tfgc.errors import ModelError, ModelMismatchError


@dataclass(frozen=True)
class EncodeResult:
    data: bytes
    height: int
    width: int
    uniform_table: bool  # coded with the uniform table (the learned prior would have cost more)
    symbols: int  # how many latent symbols the file holds
    bound_bits: float  # symbols * log2(L): the paper's rate bound
    estimated_bits: float  # what the model's entropy model predicts for these symbols

    @property
    def pixels(self) -> int:
        return self.height * self.width

    @property
    def payload_bits(self) -> int:
        return 8 * (len(self.data) - bitstream.OVERHEAD)

    @property
    def file_bits(self) -> int:
        return 8 * len(self.data)

    @property
    def bpp(self) -> float:
        """Bits per pixel of the whole file, header and checksum included."""
        return self.file_bits / self.pixels

    def report(self) -> dict:
        return {
            "height": self.height, "width": self.width, "bytes": len(self.data), "bpp": self.bpp,
            "payload_bpp": self.payload_bits / self.pixels, "bound_bpp": self.bound_bits / self.pixels,
            "estimated_bpp": self.estimated_bits / self.pixels,
            "coding": "uniform table" if self.uniform_table else "model prior",
        }

    def summary(self) -> str:
        r = self.report()
        return (f"{r['bytes']} bytes, {r['bpp']:.4f} bpp ({r['coding']}; payload {r['payload_bpp']:.4f} bpp, "
                f"model estimate {r['estimated_bpp']:.4f} bpp, bound {r['bound_bpp']:.4f} bpp)")


ModelLike = Union[str, Path, object]


def _as_model(model: ModelLike):
    if isinstance(model, (str, Path)):
        from tfgc.models.store import load_model

        return load_model(model)
    return model


def _fingerprint(model) -> bytes:
    manifest = getattr(model, "manifest", None)
    return bytes.fromhex(manifest["fingerprint"]) if manifest else model.fingerprint()


def encode(image, model: ModelLike) -> EncodeResult:
    """Compress `image` (path, bytes, Pillow image or uint8 array) and report its rate."""
    model = _as_model(model)
    pixels = load_image(image)
    height, width = pixels.shape[:2]
    symbols = np.asarray(model.analysis(pixels[None]))[0]
    levels = model.config.model.levels
    table = model.coding_table()
    learned = entropy.range_encode(symbols, table)
    uniform = entropy.range_encode(symbols, entropy.uniform_table(table.shape[0], levels))
    use_uniform = len(uniform) < len(learned)
    header = bitstream.Header(model.family, bitstream.FLAG_UNIFORM_TABLE if use_uniform else 0,
                              _fingerprint(model), height, width)
    return EncodeResult(bitstream.pack(header, uniform if use_uniform else learned), height, width, use_uniform,
                        int(symbols.size), symbols.size * math.log2(levels), entropy.ideal_bits(symbols, table))


def compress(image, model: ModelLike) -> bytes:
    return encode(image, model).data


def read_header(data: bytes) -> bitstream.Header:
    return bitstream.unpack(data)[0]


def decode(data: bytes, model: Optional[ModelLike] = None, alpha: Optional[float] = None) -> np.ndarray:
    """Decompress a .tfgc file's bytes to RGB uint8 [H, W, 3].

    Without `model`, the model is looked up by the file's fingerprint in $TFGC_MODEL_PATH and saved_models/.
    `alpha` in [0, 1] chooses the decoder of a fidelity-controlled model (0: the MSE decoder, 1: the GAN decoder,
    between: their interpolation); the file is the same for every alpha.
    """
    header, payload = bitstream.unpack(data)
    if model is None:
        from tfgc.models.store import find_model

        found = find_model(header.fingerprint)
        if found is None:
            raise ModelError(f"no installed model has fingerprint {header.fingerprint.hex()}; pass --model DIR")
        model = found
    model = _as_model(model)
    if header.family != model.family:
        raise ModelMismatchError(f"file holds a {header.family} bitstream, the model is a {model.family} model")
    expected = _fingerprint(model)
    if header.fingerprint != expected:
        raise ModelMismatchError(f"file was written by model {header.fingerprint.hex()}, not by this model "
                                 f"({expected.hex()})")
    m = model.config.model
    shape = (-(-header.height // m.downsampling), -(-header.width // m.downsampling), m.latent_channels)
    table = model.coding_table()
    if header.uniform_table:
        table = entropy.uniform_table(table.shape[0], m.levels)
    symbols = entropy.range_decode(payload, table, shape)
    return np.asarray(model.synthesis(symbols[None], header.height, header.width, alpha=alpha))[0]


decompress = decode
