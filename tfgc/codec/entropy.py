"""Host-side coding of quantizer symbols with tensorflow-compression's range coder (its Python port,
tfgc.codec.range_coder: the same bytes, and no TensorFlow in the process).

Symbols are integers 0..L-1 in an array [h, w, C]; channel c is coded with row c of a coding table
(`[precision, cdf_0, ..., cdf_L]`, see tfgc.nn.entropy). Two tables are ever used: the model's learned one, and the
uniform one (every level equally likely), which costs log2(L) bits a symbol to within 2**-16 of a level's probability
and so keeps any file at its rate bound plus a few bytes, whatever the learned prior thinks of its symbols. Both go
through the same range coder, so the codec SavedModel reproduces every file with tensorflow-compression's ops.
"""

from __future__ import annotations

import numpy as np

from tfgc.codec import range_coder
from tfgc.config import CODING_PRECISION as PRECISION
from tfgc.errors import FormatError


def uniform_table(channels: int, levels: int) -> np.ndarray:
    """The uniform coding table, in integers so that every platform computes the same one.

    Each level gets floor(2**16 / L); the first (2**16 mod L) levels get one more.
    """
    total = 2**PRECISION
    frequencies = np.full(levels, total // levels, np.int64)
    frequencies[:total % levels] += 1
    cdf = np.concatenate([[0], np.cumsum(frequencies)])
    row = np.concatenate([[PRECISION], cdf]).astype(np.int32)
    return np.tile(row, (channels, 1))


def ideal_bits(symbols: np.ndarray, table: np.ndarray) -> float:
    """What range coding `symbols` with `table` costs ideally: the sum of -log2 of each symbol's probability."""
    symbols = np.asarray(symbols)
    frequencies = np.diff(table[:, 1:], axis=1).astype(np.float64)  # [C, L]
    channel = np.broadcast_to(np.arange(table.shape[0]), symbols.shape)
    return float(np.sum(PRECISION - np.log2(frequencies[channel, symbols])))


# The range coder's output never falls more than a few bytes short of the ideal length; more is a forged or damaged
# payload, which would otherwise decode (to anything) however many symbols its header asks for.
SHORTFALL_BITS = 64


def minimum_bits(table: np.ndarray, cells: int) -> float:
    """The fewest bits `cells` cells of C symbols can cost with `table` (each symbol at its channel's likeliest
    level)."""
    frequencies = np.diff(table[:, 1:], axis=1).astype(np.float64)
    return cells * float(np.sum(PRECISION - np.log2(frequencies.max(axis=1))))


def range_encode(symbols: np.ndarray, table: np.ndarray) -> bytes:
    """Symbols [..., C], channel c coded with row c of `table`."""
    symbols = np.asarray(symbols, np.int32)
    if symbols.ndim and symbols.shape[-1] != table.shape[0]:
        raise ValueError(f"symbols have {symbols.shape[-1]} channels, the coding table {table.shape[0]} rows")
    return range_coder.encode(symbols.ravel().tolist(), table)


def range_decode(payload: bytes, table: np.ndarray, shape) -> np.ndarray:
    """Symbols of `shape` [..., C] from a payload range coded with `table`; a FormatError if the payload is too short to
    hold them (so a small file cannot make the decoder produce a large image) or does not decode."""
    cells = int(np.prod(shape[:-1], dtype=np.int64))
    needed = minimum_bits(table, cells)
    if 8 * len(payload) + SHORTFALL_BITS < needed:
        raise FormatError(f"entropy-coded payload of {len(payload)} bytes cannot hold {cells * shape[-1]} symbols "
                          f"(at least {needed / 8:.0f} bytes): the file is damaged or its image size is wrong")
    symbols = range_coder.decode(payload, table, cells * int(shape[-1]))
    return np.asarray(symbols, np.int32).reshape(tuple(shape))
