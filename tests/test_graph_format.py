"""The .tfgc format in TensorFlow ops (tfgc.codec.graph) against the host implementation (tfgc.codec.bitstream)."""

import zlib

import numpy as np
import pytest
import tensorflow as tf

from tfgc.codec import bitstream, graph

FINGERPRINT = bytes(range(8))


@tf.function(input_signature=[tf.TensorSpec([], tf.string)])
def _crc(data):
    return graph.crc32(graph.to_bytes(data))


@tf.function(input_signature=[tf.TensorSpec([], tf.string)])
def _unpack(data):
    return graph.unpack(data, "gc", FINGERPRINT)


@pytest.mark.parametrize("size", [4, 5, 255, 256, 257, 1000, 70001])
def test_crc32_equals_zlib(size, rng):
    data = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
    assert int(_crc(data)) == zlib.crc32(data)
    assert int(_crc(b"\xff" * size)) == zlib.crc32(b"\xff" * size)


@pytest.mark.parametrize("flags,height,width,payload", [
    (0, 37, 53, b"\x01\x02\x03payload"), (1, 1, 1, b""), (0, 2**32 - 1, 1, b"\x00" * 300)])
def test_pack_writes_the_bytes_of_bitstream_pack(flags, height, width, payload):
    packed = graph.pack("gc", tf.constant(flags, tf.int64), FINGERPRINT, tf.constant(height, tf.int64),
                        tf.constant(width, tf.int64), tf.constant(payload)).numpy()
    assert packed == bitstream.pack(bitstream.Header("gc", flags, FINGERPRINT, height, width), payload)


@pytest.mark.slow
def test_unpack_reads_what_bitstream_unpack_reads_and_refuses_the_rest():
    data = bitstream.pack(bitstream.Header("gc", 1, FINGERPRINT, 37, 53), b"\x01\x02\x03payload")
    flags, height, width, payload = _unpack(data)
    assert (int(flags), int(height), int(width), payload.numpy()) == (1, 37, 53, b"\x01\x02\x03payload")
    refused = 0
    candidates = [data[:n] for n in range(len(data))] + [data + b"\0"]
    for i in range(bitstream.HEADER_SIZE):  # every bit of the header
        for bit in range(8):
            flipped = bytearray(data)
            flipped[i] ^= 1 << bit
            candidates.append(bytes(flipped))
    for bad in candidates:
        with pytest.raises(tf.errors.InvalidArgumentError):
            _unpack(bad)
        refused += 1
    assert refused == len(candidates)


def test_unpack_reports_the_packages_reasons():
    def file(**fields):
        header = dict(family="gc", flags=0, fingerprint=FINGERPRINT, height=4, width=4)
        header.update(fields)
        return bitstream.pack(bitstream.Header(**header), b"xy")

    with pytest.raises(tf.errors.InvalidArgumentError, match="another model"):
        _unpack(file(fingerprint=b"\xff" * 8))
    with pytest.raises(tf.errors.InvalidArgumentError, match="exceeds the limit"):
        _unpack(file(height=100_000, width=100_000))
    version_1 = bytearray(file())
    version_1[4] = 1
    version_1 = version_1[:-4] + zlib.crc32(bytes(version_1[:-4])).to_bytes(4, "big")
    assert int(_unpack(bytes(version_1))[1]) == 4
