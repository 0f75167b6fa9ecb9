import struct
import zlib

import pytest

from tfgc.codec import bitstream
from tfgc.codec.bitstream import Header, pack, unpack
from tfgc.errors import FormatError

HEADER = Header("gc", 0, bytes(range(8)), 37, 53)
PAYLOAD = b"\x01\x02\x03payload"


def _recrc(data: bytes) -> bytes:
    body = data[:-4]
    return body + struct.pack(">I", zlib.crc32(body))


def test_round_trip():
    data = pack(HEADER, PAYLOAD)
    assert len(data) == bitstream.OVERHEAD + len(PAYLOAD)
    assert unpack(data) == (HEADER, PAYLOAD)
    uniform = Header("gc", bitstream.FLAG_UNIFORM_TABLE, HEADER.fingerprint, 1, 1)
    assert unpack(pack(uniform, b""))[0].uniform_table


def test_every_truncation_is_refused():
    data = pack(HEADER, PAYLOAD)
    for n in range(len(data)):
        with pytest.raises(FormatError):
            unpack(data[:n])


def test_every_single_bit_flip_is_refused():
    data = pack(HEADER, PAYLOAD)
    for i in range(len(data)):
        for bit in range(8):
            flipped = bytearray(data)
            flipped[i] ^= 1 << bit
            with pytest.raises(FormatError):
                unpack(bytes(flipped))


@pytest.mark.parametrize("offset,value,message", [
    (4, 3, "newer"), (4, 0, "unknown tfgc format version"), (5, 9, "family"), (6, 0x80, "flags"),
])
def test_bad_fields_with_valid_checksum(offset, value, message):
    data = bytearray(pack(HEADER, PAYLOAD))
    data[offset] = value
    with pytest.raises(FormatError, match=message):
        unpack(_recrc(bytes(data)))


def test_format_1_files_are_read_unless_they_use_the_dropped_fixed_length_form():
    data = bytearray(pack(HEADER, PAYLOAD))
    data[4] = 1
    assert unpack(_recrc(bytes(data))) == (HEADER, PAYLOAD)
    data[6] = 0x01
    with pytest.raises(FormatError, match="fixed length"):
        unpack(_recrc(bytes(data)))


def test_huge_and_empty_images_are_refused_before_allocation():
    huge = pack(Header("gc", 0, HEADER.fingerprint, 100_000, 100_000), PAYLOAD)
    with pytest.raises(FormatError, match="exceeds the limit"):
        unpack(huge)
    assert unpack(huge, max_pixels=10**10)[0].height == 100_000
    data = bytearray(pack(HEADER, PAYLOAD))
    data[15:19] = b"\0\0\0\0"
    with pytest.raises(FormatError, match="invalid image size"):
        unpack(_recrc(bytes(data)))


def test_other_refusals():
    data = pack(HEADER, PAYLOAD)
    with pytest.raises(FormatError, match="not a tfgc file"):
        unpack(b"\x89PNG\r\n" + data)
    with pytest.raises(FormatError, match="stray bytes"):
        unpack(data + b"\0")
    with pytest.raises(FormatError, match="not a tfgc file"):
        unpack(b"")
