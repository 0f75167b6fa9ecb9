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
    (4, 5, "newer"), (4, 0, "unknown tfgc format version"), (5, 9, "family"), (6, 0x80, "flags"),
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


def test_each_family_is_written_at_the_oldest_version_that_describes_it():
    assert pack(HEADER, PAYLOAD)[4] == 2  # gc and sc files: a tfgc that reads version 2 still reads them
    sr_header = Header("sr", 0, HEADER.fingerprint, 37, 53)
    sr_file = pack(sr_header, bitstream.pack_sr(bitstream.SRPayload("heic", 2, 0, b"base")))
    assert sr_file[4] == 3
    header, payload = unpack(sr_file)
    assert header == sr_header and header.version == 3
    assert bitstream.unpack_sr(payload, header.version) == bitstream.SRPayload("heic", 2, 0, b"base")
    data = bytearray(pack(HEADER, PAYLOAD))
    for version in (3, 4):  # a gc file of a later version reads the same
        data[4] = version
        assert unpack(_recrc(bytes(data))) == (HEADER, PAYLOAD)


def test_sc_files_are_version_4_only_with_a_context_coded_label_map():
    def sections(coding):
        return bitstream.SelectiveSections(coding, b"map", bitstream.MASK_ALL, b"", b"latents")

    assert bitstream.selective_version(sections("context")) == 4
    assert bitstream.selective_version(sections("jxl")) == 2
    payload = bitstream.pack_selective(sections("context"))
    assert bitstream.unpack_selective(payload, 4) == sections("context")
    with pytest.raises(FormatError, match="unknown label map coding 4 in a version-2 file"):
        bitstream.unpack_selective(payload, 2)
    assert bitstream.unpack_selective(bitstream.pack_selective(sections("png")), 2) == sections("png")


def test_version_2_sr_payloads_are_jpegs_without_a_codec_byte():
    legacy = bytes([4, 75]) + b"jpeg bytes"
    assert bitstream.unpack_sr(legacy, 2) == bitstream.SRPayload("jpeg", 4, 75, b"jpeg bytes")
    with pytest.raises(FormatError, match="scale 1"):  # version 2 had no scale 1
        bitstream.unpack_sr(bytes([1, 75]) + b"x", 2)
    with pytest.raises(FormatError, match="quality 0"):
        bitstream.unpack_sr(bytes([4, 0]) + b"x", 2)
    with pytest.raises(FormatError, match="no JPEG"):
        bitstream.unpack_sr(bytes([4, 75]), 2)
    data = bytearray(pack(Header("sr", 0, HEADER.fingerprint, 1, 1), b""))
    data[4] = 1
    with pytest.raises(FormatError, match="version 1"):
        unpack(_recrc(bytes(data)))


@pytest.mark.parametrize("payload,message", [
    (bytes([0, 2, 50]) + b"x", "unknown base codec 0"), (bytes([5, 2, 50]) + b"x", "unknown base codec 5"),
    (bytes([4, 3, 50]) + b"x", "scale 3"), (bytes([4, 2, 101]) + b"x", "quality 101"),
    (bytes([4, 2, 50]), "no base image"), (b"", "no base image"),
])
def test_bad_sr_payload_fields(payload, message):
    with pytest.raises(FormatError, match=message):
        bitstream.unpack_sr(payload, 3)


def test_the_format_codes_every_base_codec_a_model_may_use():
    from tfgc import config

    assert tuple(bitstream.BASE_CODECS) == config.BASE_CODECS
    assert sorted(bitstream.BASE_CODECS.values()) == list(range(1, len(config.BASE_CODECS) + 1))
