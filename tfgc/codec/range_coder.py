"""tensorflow-compression's range coder in Python, byte for byte: a .tfgc file decodes (and encodes) without
TensorFlow.

A port of tfc 2.14's `RangeEncoder` / `RangeDecoder` (cc/lib/range_coder.cc, Martin 1979) and of the index coding of
`create_range_encoder` / `entropy_encode_index` / `entropy_decode_index` (cc/kernels/range_coder_kernels.cc) for the
tables tfgc writes: one encoder for the whole array, row `i % C` of the coding table for the i-th symbol in C order, no
overflow (escape) coding. tests/test_entropy.py holds the two to the same bytes and symbols.

The coder keeps a 32-bit interval [base, base + size); Python's integers are masked back to 32 bits where C++'s
uint32 arithmetic wraps.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import List, Sequence

from tfgc.errors import FormatError

_MASK32 = 0xFFFFFFFF


def table_rows(table) -> List[List[int]]:
    """Each row of a coding table [C, K] ([precision, 0, cdf_1, ..., 2**precision, padding]) as tfc's range coder reads
    it: the precision and the CDF up to the first 2**precision (tfc's ScanCDF), checked the way ScanCDF checks it."""
    rows = []
    for row in (list(map(int, r)) for r in table):
        precision = row[0]
        if not 1 <= precision <= 16:
            raise FormatError(f"coding table precision {precision} is not in [1, 16]")
        last = 1 << precision
        if len(row) < 3 or row[1] != 0:
            raise FormatError("coding table row must start with 0")
        end = next((i for i in range(2, len(row)) if row[i] == last), None)
        if end is None or any(b < a for a, b in zip(row[1:end], row[2:end + 1])) or \
                any(v != last for v in row[end + 1:]):
            raise FormatError("coding table row is not a CDF ending with 2**precision")
        rows.append(row[:end + 1])
    return rows


def encode(symbols: Sequence[int], table) -> bytes:
    """Symbols in C order (the i-th coded with row i % C of `table`) -> the bytes tfc's range encoder writes."""
    rows = table_rows(table)
    channels = len(rows)
    base, size_minus1, delay = 0, _MASK32, 0
    out = bytearray()
    for i, symbol in enumerate(symbols):
        row = rows[i % channels]
        precision = row[0]
        if not 0 <= symbol < len(row) - 2:
            raise ValueError(f"symbol {symbol} is outside the coding table's {len(row) - 2} levels")
        size = size_minus1 + 1
        a = (size * row[symbol + 1]) >> precision
        b = ((size * row[symbol + 2]) >> precision) - 1
        base = (base + a) & _MASK32
        size_minus1 = b - a
        base_overflow = base < a
        if base + size_minus1 > _MASK32:  # state 1: the interval straddles 2**32
            if size_minus1 >> 16 == 0:
                base = (base << 16) & _MASK32
                size_minus1 = ((size_minus1 << 16) | 0xFFFF) & _MASK32
                delay += 0x20000
            continue
        if delay:
            if not base_overflow:
                delay -= 1
            out += bytes(((delay >> 8) & 0xFF, delay & 0xFF))
            out += (b"\x00" if base_overflow else b"\xff") * (delay >> 16)
            delay = 0
        if size_minus1 >> 16 == 0:
            top = base >> 16
            base = (base << 16) & _MASK32
            size_minus1 = ((size_minus1 << 16) | 0xFFFF) & _MASK32
            if base + size_minus1 <= _MASK32:
                out += bytes((top >> 8, top & 0xFF))
            else:
                delay = top + 1
    if delay:
        out.append((delay >> 8) & 0xFF)
        if delay & 0xFF:
            out.append(delay & 0xFF)
    elif base:
        upper = (base + size_minus1) & _MASK32
        mid = ((base - 1) >> 24) + 1
        if mid <= upper >> 24:
            out.append(mid)
        else:
            mid = ((base - 1) >> 16) + 1
            out.append(mid >> 8)
            if mid & 0xFF:
                out.append(mid & 0xFF)
    return bytes(out)


def decode(data: bytes, table, count: int) -> List[int]:
    """`count` symbols (C order, row i % C for the i-th) from bytes tfc's range encoder wrote with `table`.

    A FormatError where the bytes cannot be such a stream (tfc's decoder reads past its table there), or where the
    decoder's end state is not one an encoder leaves (tfc's entropy_decode_finalize check)."""
    rows = table_rows(table)
    channels = len(rows)
    data = bytes(data)
    length = len(data)
    position = min(4, length)
    value = int.from_bytes(data[:4].ljust(4, b"\x00"), "big")
    base, size_minus1 = 0, _MASK32
    symbols = [0] * count
    for i in range(count):
        row = rows[i % channels]
        precision = row[0]
        size = size_minus1 + 1
        lower_bound = (((value - base) & _MASK32) + 1) << precision
        # The first CDF value v (after cdf_0) with size * v >= lower_bound.
        index = bisect_left(row, -(-lower_bound // size), 2)
        if index >= len(row):
            raise FormatError("entropy-coded payload does not decode (the range decoder left its table)")
        a = (size * row[index - 1]) >> precision
        b = ((size * row[index]) >> precision) - 1
        base = (base + a) & _MASK32
        size_minus1 = (b - a) & _MASK32
        if size_minus1 >> 16 == 0:
            base = (base << 16) & _MASK32
            size_minus1 = ((size_minus1 << 16) | 0xFFFF) & _MASK32
            chunk = data[position:position + 2]
            position += len(chunk)
            value = ((value << 16) | int.from_bytes(chunk.ljust(2, b"\x00"), "big")) & _MASK32
        symbols[i] = index - 2
    if not _finished(position == length, base, size_minus1, value):
        raise FormatError("entropy-coded payload does not decode (range decoder sanity check failed)")
    return symbols


def _finished(at_end: bool, base: int, size_minus1: int, value: int) -> bool:
    """tfc's RangeDecoder::Finalize: every byte read, and the value where the encoder's Finalize puts it."""
    if not at_end:
        return False
    upper = (base + size_minus1) & _MASK32
    if base == 0 or upper < base:
        return value == 0
    shift = 24 if ((base - 1) >> 24) < (upper >> 24) else 16
    return ((((base - 1) >> shift) + 1) << shift) & _MASK32 == value
