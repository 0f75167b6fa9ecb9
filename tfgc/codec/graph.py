"""The .tfgc format (tfgc.codec.bitstream) in TensorFlow ops, for the codec SavedModel of tfgc.export.

Writes the same bytes as `bitstream.pack` and checks what `bitstream.unpack` checks; a refused file raises
InvalidArgumentError whose message is the package's own. Bytes are int64 tensors 0..255 here, so the bitwise ops
need no unsigned types.
"""

from __future__ import annotations

import functools

import numpy as np
import tensorflow as tf

from tfgc.codec import bitstream

_POLYNOMIAL = 0xEDB88320  # CRC-32 as zlib computes it: reflected, initial and final value 0xFFFFFFFF
_CHUNK = 256  # bytes per chunk: chunks are hashed in parallel, then combined in order


@functools.lru_cache(maxsize=None)
def _crc_table() -> np.ndarray:
    table = np.zeros(256, np.int64)
    for byte in range(256):
        value = byte
        for _ in range(8):
            value = (value >> 1) ^ (_POLYNOMIAL if value & 1 else 0)
        table[byte] = value
    return table


def _raw_update(state: int, data: bytes, table: np.ndarray) -> int:
    for byte in data:
        state = int(table[(state ^ byte) & 0xFF]) ^ (state >> 8)
    return state


@functools.lru_cache(maxsize=None)
def _zero_shift_tables() -> np.ndarray:
    """[4, 256]: row j, entry v is the register v << 8j after _CHUNK zero bytes. The shift is linear over GF(2), so a
    register's shift is the XOR of its four bytes' entries."""
    zeros, table = bytes(_CHUNK), _crc_table()
    return np.array([[_raw_update(v << (8 * j), zeros, table) for v in range(256)] for j in range(4)], np.int64)




def crc32(data) -> tf.Tensor:
    """zlib.crc32 of a byte tensor (int64 [n], n >= 4) as an int64 scalar.

    The register starting at 0xFFFFFFFF equals one starting at 0 over the data with its first four bytes inverted;
    from 0, leading zero bytes change nothing, so the data is zero-padded in front to whole chunks, each chunk is
    hashed from 0 in parallel, and the chunk hashes are folded in order through the shift by one chunk.
    """
    table = tf.constant(_crc_table())
    shift = tf.constant(_zero_shift_tables())
    data = tf.bitwise.bitwise_xor(data, tf.pad(tf.fill([4], tf.constant(0xFF, tf.int64)), [[0, tf.size(data) - 4]]))
    padding = (-tf.size(data)) % _CHUNK
    chunks = tf.reshape(tf.pad(data, [[padding, 0]]), [-1, _CHUNK])

    def update(state, byte):
        index = tf.bitwise.bitwise_and(tf.bitwise.bitwise_xor(state, byte), 0xFF)
        return tf.bitwise.bitwise_xor(tf.gather(table, index), tf.bitwise.right_shift(state, 8))

    chunk_hashes = tf.foldl(update, tf.transpose(chunks), initializer=tf.zeros(tf.shape(chunks)[:1], tf.int64))

    def combine(state, chunk_hash):
        shifted = chunk_hash
        for j in range(4):
            part = tf.bitwise.bitwise_and(tf.bitwise.right_shift(state, 8 * j), 0xFF)
            shifted = tf.bitwise.bitwise_xor(shifted, tf.gather(shift[j], part))
        return shifted

    state = tf.foldl(combine, chunk_hashes, initializer=tf.constant(0, tf.int64))
    return tf.bitwise.bitwise_xor(state, 0xFFFFFFFF)


def to_bytes(data) -> tf.Tensor:
    """A string scalar -> its bytes, int64 [n]."""
    return tf.cast(tf.io.decode_raw(data, tf.uint8), tf.int64)


def to_string(values) -> tf.Tensor:
    """Bytes (int64 [n], 0..255) -> a string scalar."""
    characters = tf.constant([bytes([i]) for i in range(256)])
    return tf.strings.reduce_join(tf.gather(characters, values))


def _big_endian(value, size: int):
    value = tf.cast(value, tf.int64)
    return tf.stack([tf.bitwise.bitwise_and(tf.bitwise.right_shift(value, 8 * (size - 1 - i)), 0xFF)
                     for i in range(size)])


def pack(family: str, flags, fingerprint: bytes, height, width, payload) -> tf.Tensor:
    """bitstream.pack with TensorFlow ops: the header fields and a payload string -> the file as a string."""
    fixed = list(bitstream.MAGIC) + [bitstream.WRITTEN_VERSION[family], bitstream.FAMILIES[family]]
    header = tf.concat([tf.constant(fixed, tf.int64), _big_endian(flags, 1), tf.constant(list(fingerprint), tf.int64),
                        _big_endian(height, 4), _big_endian(width, 4), _big_endian(tf.strings.length(payload), 4)], 0)
    body = tf.strings.join([to_string(header), payload])
    return tf.strings.join([body, to_string(_big_endian(crc32(to_bytes(body)), 4))])


def _read(data, offset: int, size: int):
    value = tf.constant(0, tf.int64)
    for i in range(size):
        value = value * 256 + data[offset + i]
    return value


def unpack(data, family: str, fingerprint: bytes, max_pixels: int = bitstream.MAX_IMAGE_PIXELS):
    """bitstream.unpack with TensorFlow ops, for files of one model: -> (flags, height, width, payload).

    Every check runs before the payload is returned; the first that fails raises InvalidArgumentError.
    """
    raw = to_bytes(data)
    size = tf.size(raw, out_type=tf.int64)
    # Header fields are read from a zero-padded copy, so a short file fails its check, never an out-of-range slice.
    padded = tf.pad(raw, [[0, bitstream.OVERHEAD]])
    version, family_code, flags = padded[4], padded[5], padded[6]
    height, width, length = _read(padded, 15, 4), _read(padded, 19, 4), _read(padded, 23, 4)
    overhead = bitstream.OVERHEAD
    header_size = bitstream.HEADER_SIZE

    def check(condition, message):
        return tf.debugging.Assert(condition, [message])

    checks = [
        check(tf.reduce_all(tf.equal(padded[:4], tf.constant(list(bitstream.MAGIC), tf.int64))),
              "not a tfgc file (no TFGC magic at its start)"),
        check(size >= overhead, "truncated tfgc file (shorter than the header)"),
        check(version <= bitstream.VERSION, "tfgc format version is newer than this model reads: upgrade tfgc"),
        check(version >= 1, "unknown tfgc format version"),
        check(size >= overhead + length, "truncated tfgc file (shorter than its header announces)"),
        check(size <= overhead + length, "tfgc file has stray bytes after its checksum"),
    ]
    with tf.control_dependencies(checks):
        body = raw[:header_size + length]
        stored_crc = _read(tf.pad(raw[header_size + length:], [[0, 4]]), 0, 4)
        checks = [check(tf.equal(crc32(body), stored_crc), "checksum mismatch: the tfgc file is corrupted")]
    with tf.control_dependencies(checks):
        checks = [
            check(tf.equal(family_code, bitstream.FAMILIES[family]),
                  f"file holds another model family's bitstream, not {family}"),
            check(tf.equal(tf.bitwise.bitwise_and(flags, ~bitstream.FAMILY_FLAGS[family] & 0xFF), 0),
                  f"unknown flags (or flags not defined for {family} files)"),
            check(tf.logical_not(tf.logical_and(tf.equal(version, 1), tf.equal(flags, bitstream.FLAG_UNIFORM_TABLE))),
                  "this format-1 file stores its symbols at fixed length, which tfgc no longer reads"),
            check(tf.logical_and(height >= 1, width >= 1), "invalid image size"),
            check(height * width <= max_pixels,
                  f"image exceeds the limit of {max_pixels} pixels (tfgc.codec.bitstream.MAX_IMAGE_PIXELS)"),
            check(tf.reduce_all(tf.equal(padded[7:15], tf.constant(list(fingerprint), tf.int64))),
                  f"file was written by another model, not by this model ({fingerprint.hex()})"),
        ]
    with tf.control_dependencies(checks):
        payload = tf.strings.substr(data, header_size, tf.cast(length, tf.int32))
        return (tf.identity(flags), tf.cast(height, tf.int32), tf.cast(width, tf.int32), payload)
