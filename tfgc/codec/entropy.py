"""Host-side coding of quantizer symbols: tensorflow-compression's range coder, or fixed length.

Symbols are integers 0..L-1 in an array [h, w, C]; channel c is coded with row c of the model's coding table
(`[precision, cdf_0, ..., cdf_L]`, see tfgc.nn.entropy). The fixed-length form stores the symbols as one base-L
number in exactly ceil(n * log2(L) / 8) bytes: never more than the rate bound dim * log2(L), so a file can always
be kept within that bound, whatever the prior.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf
import tensorflow_compression as tfc

from tfgc.errors import FormatError
from tfgc.utils import first_line


def _channel_index(shape):
    return np.broadcast_to(np.arange(shape[-1], dtype=np.int32), shape)


def range_encode(symbols: np.ndarray, table: np.ndarray) -> bytes:
    symbols = np.asarray(symbols, np.int32)
    handle = tfc.create_range_encoder([], table)
    handle = tfc.entropy_encode_index(handle, _channel_index(symbols.shape), symbols)
    return tfc.entropy_encode_finalize(handle).numpy()


def range_decode(payload: bytes, table: np.ndarray, shape) -> np.ndarray:
    try:
        handle = tfc.create_range_decoder(payload, table)
        handle, symbols = tfc.entropy_decode_index(handle, _channel_index(tuple(shape)), shape, tf.int32)
        ok = tfc.entropy_decode_finalize(handle)
    except tf.errors.OpError as e:
        raise FormatError(f"entropy-coded payload does not decode: {first_line(e)}") from None
    if not bool(ok):
        raise FormatError("entropy-coded payload does not decode (range decoder sanity check failed)")
    return symbols.numpy()


def fixed_length_bytes(count: int, levels: int) -> int:
    """Bytes that hold any `count` symbols of `levels` values: ceil(log2(levels**count) / 8)."""
    if count == 0:
        return 0
    return ((levels**count - 1).bit_length() + 7) // 8


def fixed_encode(symbols: np.ndarray, levels: int) -> bytes:
    digits = np.asarray(symbols, np.int64).ravel()
    value = _digits_to_int(digits, levels)
    return value.to_bytes(fixed_length_bytes(digits.size, levels), "little")


def fixed_decode(payload: bytes, levels: int, shape) -> np.ndarray:
    count = int(np.prod(shape))
    if len(payload) != fixed_length_bytes(count, levels):
        raise FormatError(f"fixed-length payload has {len(payload)} bytes, expected "
                          f"{fixed_length_bytes(count, levels)}")
    value = int.from_bytes(payload, "little")
    if value >= levels**count:
        raise FormatError("fixed-length payload holds a value out of range")
    return _int_to_digits(value, levels, count).reshape(shape).astype(np.int32)


# Symbols are packed in numpy chunks of k digits (base**k < 2**62), and the chunks are combined by halving, so
# packing a million symbols takes big-integer multiplications of balanced size instead of a million small ones.
def _chunk_digits(base: int) -> int:
    return max(1, int(62 / math.log2(base)))


def _digits_to_int(digits: np.ndarray, base: int) -> int:
    k = _chunk_digits(base)
    padded = np.zeros(-(-digits.size // k) * k, np.int64)
    padded[:digits.size] = digits
    weights = base ** np.arange(k, dtype=np.int64)
    chunks = [int(v) for v in (padded.reshape(-1, k) * weights).sum(axis=1)]
    return _combine(chunks, base**k)


def _combine(chunks, radix: int) -> int:
    if not chunks:
        return 0
    if len(chunks) == 1:
        return chunks[0]
    half = len(chunks) // 2
    return _combine(chunks[:half], radix) + _combine(chunks[half:], radix) * radix**half


def _int_to_digits(value: int, base: int, count: int) -> np.ndarray:
    k = _chunk_digits(base)
    chunk_count = -(-count // k)
    chunks = np.array(_split(value, base**k, chunk_count), dtype=np.int64)
    digits = (chunks[:, None] // base ** np.arange(k, dtype=np.int64)) % base
    return digits.ravel()[:count]


def _split(value: int, radix: int, count: int):
    if count == 1:
        return [value]
    half = count // 2
    high, low = divmod(value, radix**half)
    return _split(low, radix, half) + _split(high, radix, count - half)
