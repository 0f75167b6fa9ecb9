"""The .tfgc file format, version 3. All integers are big-endian.

    offset  size  field
    0       4     magic b"TFGC"
    4       1     format version (3 for sr files; 2 for gc and sc files, whose layout version 3 did not change, so
                  that a tfgc reading version 2 still reads them)
    5       1     model family (1 = gc, 2 = sc, 3 = sr)
    6       1     flags (bit 0: payload range coded with the uniform table, not the model's; other bits must be 0)
    7       8     model fingerprint (first 8 bytes of a SHA-256 over the encoder, quantizer and coding table)
    15      4     image height in pixels (>= 1)
    19      4     image width in pixels (>= 1)
    23      4     payload length in bytes
    27      n     payload
    27+n    4     CRC-32 of every byte before it

An sc file's payload is three sections (the semantic label map and the preservation mask, each lossless, then the
preserved latents):

    0       1     label map coding (1 = PNG, 2 = WebP lossless, 3 = JPEG XL lossless), of the classes 0..K-1
    1       4     label map length a
    5       a     label map
    5+a     1     mask kind (0 = nothing preserved, 1 = everything; the latent grid's bits, row by row, most
                  significant bit first: 2 = as they are, 3 = raw deflate)
    6+a     4     mask length b (0 for kinds 0 and 1)
    10+a    b     mask
    10+a+b  rest  the preserved latents, range coded in raster order (cell by cell, C symbols each)

An sr file's payload is a classic codec's file of the image downsampled (the base layer; RL-SRGAN's codec with JPEG);
its fingerprint names the family, the base codec and the scale only, so any sr decoder of that base and scale reads
it (learned or a classic upscaler):

    0       1     base codec (1 = JPEG, 2 = WebP, 3 = AVIF, 4 = HEIC)
    1       1     scale r (1, 2, 4 or 8): the base image is ceil(H/r) x ceil(W/r); 1 stores it at full size
    2       1     the quality the base was written with (0..100; for information)
    3       rest  the base codec's file (Pillow and its plugins) of the image, edge-padded to multiples of r, then
                  downsampled by r (Pillow's bicubic)

In version 2, sr payloads held a JPEG only, without the codec byte: scale (2, 4 or 8), JPEG quality (1..100), JPEG.
They are read as they are.

Parsing is strict: every field is checked, and a header that declares more than MAX_IMAGE_PIXELS pixels is refused
before anything is allocated for it. tfgc.codec.graph reads and writes the same format with TensorFlow ops.

Version 1 differed from version 2 only in flag bit 0, which stored the symbols as one base-L number; version-1 files without that
flag are read as they are, and those with it are refused with a clear message.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

from tfgc.errors import FormatError

MAGIC = b"TFGC"
VERSION = 3
# The version a file of each family is written with: the oldest whose layout describes it.
WRITTEN_VERSION = {"gc": 2, "sc": 2, "sr": 3}
FAMILIES = {"gc": 1, "sc": 2, "sr": 3}
FLAG_UNIFORM_TABLE = 0x01
KNOWN_FLAGS = FLAG_UNIFORM_TABLE
# Like Pillow's Image.MAX_IMAGE_PIXELS: the largest image a file may declare. Raise it to decode larger images.
MAX_IMAGE_PIXELS = 178_956_970

_HEADER = struct.Struct(">4sBBB8sIII")
_CRC = struct.Struct(">I")
HEADER_SIZE = _HEADER.size
OVERHEAD = HEADER_SIZE + _CRC.size  # bytes a file holds beside its payload


@dataclass(frozen=True)
class Header:
    family: str
    flags: int
    fingerprint: bytes
    height: int
    width: int
    # The format version as read (0 when written: the family's WRITTEN_VERSION); how the file was laid out, not what it
    # holds, so headers compare equal across versions.
    version: int = field(default=0, compare=False)

    @property
    def uniform_table(self) -> bool:
        return bool(self.flags & FLAG_UNIFORM_TABLE)


def pack(header: Header, payload: bytes) -> bytes:
    if header.family not in FAMILIES:
        raise ValueError(f"unknown family {header.family!r}")
    if len(header.fingerprint) != 8:
        raise ValueError("fingerprint must be 8 bytes")
    if not (1 <= header.height < 2**32 and 1 <= header.width < 2**32):
        raise ValueError("image size out of range")
    if len(payload) >= 2**32:
        raise FormatError("payload too large for the format (4 GiB)")
    version = header.version or WRITTEN_VERSION[header.family]
    head = _HEADER.pack(MAGIC, version, FAMILIES[header.family], header.flags, header.fingerprint,
                        header.height, header.width, len(payload))
    body = head + payload
    return body + _CRC.pack(zlib.crc32(body))


def unpack(data: bytes, max_pixels: int = None):
    """Parse and check a file; returns (Header, payload). Raises FormatError with a one-line reason."""
    max_pixels = MAX_IMAGE_PIXELS if max_pixels is None else max_pixels
    data = bytes(data)
    if len(data) < len(MAGIC) or data[:len(MAGIC)] != MAGIC:
        raise FormatError("not a tfgc file (no TFGC magic at its start)")
    if len(data) < OVERHEAD:
        raise FormatError(f"truncated tfgc file ({len(data)} bytes, the header alone takes {OVERHEAD})")
    version = data[4]
    if version > VERSION:
        raise FormatError(f"tfgc format version {version} is newer than this tfgc reads ({VERSION}): upgrade tfgc")
    if version not in (1, 2, VERSION):
        raise FormatError(f"unknown tfgc format version {version}")
    magic, version, family_code, flags, fingerprint, height, width, length = _HEADER.unpack_from(data)
    if len(data) < OVERHEAD + length:
        raise FormatError(f"truncated tfgc file ({len(data)} bytes, its header announces {OVERHEAD + length})")
    if len(data) > OVERHEAD + length:
        raise FormatError(f"tfgc file has {len(data) - OVERHEAD - length} stray bytes after its checksum")
    (crc,) = _CRC.unpack_from(data, HEADER_SIZE + length)
    if zlib.crc32(data[:HEADER_SIZE + length]) != crc:
        raise FormatError("checksum mismatch: the tfgc file is corrupted")
    families = {code: name for name, code in FAMILIES.items()}
    if family_code not in families:
        raise FormatError(f"unknown model family code {family_code}")
    if flags & ~KNOWN_FLAGS:
        raise FormatError(f"unknown flags 0x{flags:02x}")
    if version == 1 and flags & FLAG_UNIFORM_TABLE:
        raise FormatError("this format-1 file stores its symbols at fixed length, which tfgc no longer reads")
    if height < 1 or width < 1:
        raise FormatError(f"invalid image size {width}x{height}")
    if height * width > max_pixels:
        raise FormatError(f"image of {width}x{height} pixels exceeds the limit of {max_pixels} "
                          "(tfgc.codec.bitstream.MAX_IMAGE_PIXELS)")
    if families[family_code] == "sr" and version < 2:
        raise FormatError("sr files exist from format version 2 on; this one says version 1")
    header = Header(families[family_code], flags, fingerprint, height, width, version)
    return header, data[HEADER_SIZE:HEADER_SIZE + length]


LABEL_CODINGS = {1: "png", 2: "webp", 3: "jxl"}
MASK_NONE, MASK_ALL, MASK_BITS, MASK_DEFLATE = 0, 1, 2, 3
_SECTION = struct.Struct(">BI")


@dataclass(frozen=True)
class SelectiveSections:
    label_coding: str
    label_map: bytes
    mask_kind: int
    mask: bytes
    latents: bytes

    @property
    def sizes(self) -> dict:
        """Bytes of each part, the section headers counted with the payload's overhead."""
        return {"label_map": len(self.label_map), "mask": len(self.mask), "latents": len(self.latents),
                "sections": 2 * _SECTION.size}


def pack_selective(sections: SelectiveSections) -> bytes:
    codes = {name: code for code, name in LABEL_CODINGS.items()}
    if sections.mask_kind in (MASK_NONE, MASK_ALL) and sections.mask:
        raise ValueError("only a coded mask has bytes")
    return (_SECTION.pack(codes[sections.label_coding], len(sections.label_map)) + sections.label_map
            + _SECTION.pack(sections.mask_kind, len(sections.mask)) + sections.mask + sections.latents)


def unpack_selective(payload: bytes) -> SelectiveSections:
    """Split an sc payload into its sections, checking every length and code."""
    offset = 0

    def section(what):
        nonlocal offset
        if len(payload) < offset + _SECTION.size:
            raise FormatError(f"sc payload ends inside the {what} section header")
        code, length = _SECTION.unpack_from(payload, offset)
        offset += _SECTION.size
        if len(payload) < offset + length:
            raise FormatError(f"sc payload's {what} announces {length} bytes, {len(payload) - offset} remain")
        body = payload[offset:offset + length]
        offset += length
        return code, body

    label_code, label_map = section("label map")
    if label_code not in LABEL_CODINGS:
        raise FormatError(f"unknown label map coding {label_code}")
    if not label_map:
        raise FormatError("sc payload has an empty label map")
    mask_kind, mask = section("mask")
    if mask_kind not in (MASK_NONE, MASK_ALL, MASK_BITS, MASK_DEFLATE):
        raise FormatError(f"unknown mask kind {mask_kind}")
    if (mask_kind in (MASK_BITS, MASK_DEFLATE)) != bool(mask):
        raise FormatError("sc payload's mask length disagrees with its kind")
    return SelectiveSections(LABEL_CODINGS[label_code], label_map, mask_kind, mask, payload[offset:])


SR_SCALES = (1, 2, 4, 8)
BASE_CODECS = {"jpeg": 1, "webp": 2, "avif": 3, "heic": 4}
_LEGACY_SR_SCALES = (2, 4, 8)
_LEGACY_SR_HEAD = struct.Struct(">BB")
_SR_HEAD = struct.Struct(">BBB")


@dataclass(frozen=True)
class SRPayload:
    base: str  # the base codec, a key of BASE_CODECS
    scale: int
    quality: int
    data: bytes  # the base codec's file


def pack_sr(payload: SRPayload) -> bytes:
    if payload.base not in BASE_CODECS or payload.scale not in SR_SCALES or not 0 <= payload.quality <= 100:
        raise ValueError("base codec, scale or quality out of range")
    return _SR_HEAD.pack(BASE_CODECS[payload.base], payload.scale, payload.quality) + payload.data


def unpack_sr(payload: bytes, version: int = VERSION) -> SRPayload:
    """An sr payload of a file of format `version` (Header.version), every field checked."""
    if version == 2:
        if len(payload) <= _LEGACY_SR_HEAD.size:
            raise FormatError("sr payload holds no JPEG")
        scale, quality = _LEGACY_SR_HEAD.unpack_from(payload)
        _check_sr_fields(scale, quality, _LEGACY_SR_SCALES, 1)
        return SRPayload("jpeg", scale, quality, payload[_LEGACY_SR_HEAD.size:])
    if len(payload) <= _SR_HEAD.size:
        raise FormatError("sr payload holds no base image")
    code, scale, quality = _SR_HEAD.unpack_from(payload)
    bases = {value: name for name, value in BASE_CODECS.items()}
    if code not in bases:
        raise FormatError(f"sr payload has unknown base codec {code}; known: "
                          + ", ".join(f"{value} ({name})" for name, value in BASE_CODECS.items()))
    _check_sr_fields(scale, quality, SR_SCALES, 0)
    return SRPayload(bases[code], scale, quality, payload[_SR_HEAD.size:])


def _check_sr_fields(scale: int, quality: int, scales, lowest_quality: int) -> None:
    if scale not in scales:
        raise FormatError(f"sr payload has scale {scale}; known: {', '.join(map(str, scales))}")
    if not lowest_quality <= quality <= 100:
        raise FormatError(f"sr payload has quality {quality}, not in {lowest_quality}..100")
