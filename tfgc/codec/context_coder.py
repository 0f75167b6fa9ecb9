"""A lossless coder made for label maps: each pixel's class is range coded with adaptive counts kept per context, the
classes of its four causal neighbours (west, north-west, north, north-east; outside the map is a class of its own).

Label maps are large regions of one class with thin borders, and a class is nearly always one of its neighbours'; the
general-purpose lossless image coders spend most of their bits on what this model predicts. On the 23 Cityscapes
sample maps at 1024x512 it takes 0.0358 bpp against JPEG XL lossless's 0.0585 (effort 7) and 0.0533 (effort 9), and
0.0162 against 0.0288 at 2048x1024 (`python scripts/label_map_rates.py cityscapes_samples`, which prints the figures
and the timings).

Stream: one byte, the alphabet size n (1..256; every class is below it), then the range coder's bytes (a carry-less
32-bit range coder as LZMA's). The counts of a context start at 1 for every class and grow by INCREMENT for each
coded pixel (so an unseen class keeps a small probability), halved when their total passes LIMIT.

It codes in pure Python, a pixel at a time (about 2 seconds a megapixel each way on a 2-core Xeon), so it is used
only up to MAX_PIXELS; larger maps fall back to the image coders, and a stream that declares more is refused before
any decoding.
"""

from __future__ import annotations

from typing import List

import numpy as np

from tfgc.errors import FormatError

INCREMENT = 64
LIMIT = 1 << 16
MAX_PIXELS = 4096 * 2048
_TOP = 1 << 24
_MASK32 = 0xFFFFFFFF
# The encoder's first byte is always 0 (LZMA's cache); the decoder reads it with the next four as its first code.
_HEAD = 5


class _Encoder:
    def __init__(self):
        self.low, self.range, self.cache, self.pending = 0, _MASK32, 0, 1
        self.out = bytearray()

    def encode(self, cumulative: int, frequency: int, total: int) -> None:
        step = self.range // total
        self.low += step * cumulative
        self.range = step * frequency
        while self.range < _TOP:
            self.range <<= 8
            self._shift()

    def _shift(self) -> None:
        if self.low < 0xFF000000 or self.low > _MASK32:
            carry = self.low >> 32
            byte = self.cache
            while self.pending:
                self.out.append((byte + carry) & 0xFF)
                byte = 0xFF
                self.pending -= 1
            self.cache = (self.low >> 24) & 0xFF
        self.pending += 1
        self.low = (self.low << 8) & _MASK32

    def finish(self) -> bytes:
        for _ in range(5):
            self._shift()
        return bytes(self.out)


def _padded(above: List[int], outside: int) -> List[int]:
    """The row above, padded, so that [x], [x + 1], [x + 2] are north-west, north and north-east of column x."""
    return [outside] + above + [outside]


def encode(classes: np.ndarray) -> bytes:
    """uint8 classes [H, W] -> the stream (see the module's docstring)."""
    classes = np.asarray(classes, np.uint8)
    height, width = classes.shape
    if height * width > MAX_PIXELS:
        raise ValueError(f"the context coder takes at most {MAX_PIXELS} pixels")
    n = int(classes.max(initial=0)) + 1
    outside, base = n, n + 1
    encoder = _Encoder()
    models = {}
    above = [outside] * width
    for row in classes.tolist():
        padded = _padded(above, outside)
        west = outside
        for x, symbol in enumerate(row):
            context = ((west * base + padded[x]) * base + padded[x + 1]) * base + padded[x + 2]
            counts = models.get(context)
            if counts is None:
                counts = models[context] = [1] * n + [n]
            encoder.encode(sum(counts[:symbol]), counts[symbol], counts[n])
            _update(counts, symbol, n)
            west = symbol
        above = row
    return bytes([n - 1]) + encoder.finish()


def decode(data: bytes, height: int, width: int, classes: int = 256) -> np.ndarray:
    """The stream of a [height, width] map -> uint8 classes; a stream that is not one is a FormatError."""
    if height * width > MAX_PIXELS:
        raise FormatError(f"a context-coded label map holds at most {MAX_PIXELS} pixels; this one declares "
                          f"{width}x{height}")
    if len(data) < 1 + _HEAD:
        raise FormatError("label map stream is too short")
    n = data[0] + 1
    if n > classes:
        raise FormatError(f"label map's alphabet has {n} classes; the model has {classes}")
    outside, base = n, n + 1
    stream = data[1:]
    if stream[0] != 0:
        raise FormatError("label map stream does not start as the range coder writes it")
    code = int.from_bytes(stream[1:_HEAD], "big")
    position, end = _HEAD, len(stream)
    span = _MASK32
    models = {}
    out = np.empty((height, width), np.uint8)
    above = [outside] * width
    for y in range(height):
        padded = _padded(above, outside)
        row = [0] * width
        west = outside
        for x in range(width):
            context = ((west * base + padded[x]) * base + padded[x + 1]) * base + padded[x + 2]
            counts = models.get(context)
            if counts is None:
                counts = models[context] = [1] * n + [n]
            step = span // counts[n]
            target = code // step
            if target >= counts[n]:
                raise FormatError("label map stream is corrupt")
            symbol, cumulative = 0, 0
            while cumulative + counts[symbol] <= target:
                cumulative += counts[symbol]
                symbol += 1
            code -= step * cumulative
            span = step * counts[symbol]
            while span < _TOP:
                if position >= end:
                    raise FormatError("label map stream ends early")
                code = ((code << 8) | stream[position]) & _MASK32
                span <<= 8
                position += 1
            _update(counts, symbol, n)
            row[x] = west = symbol
        out[y] = row
        above = row
    if position != end:  # the encoder's flush writes exactly the bytes the decoder reads
        raise FormatError("label map stream does not end where its section does")
    return out



def _update(counts: List[int], symbol: int, n: int) -> None:
    counts[symbol] += INCREMENT
    counts[n] += INCREMENT
    if counts[n] > LIMIT:
        for i in range(n):
            counts[i] = (counts[i] + 1) // 2
        counts[n] = sum(counts[:n])
