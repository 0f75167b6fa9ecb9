"""The .tfgc file format, version 2. All integers are big-endian.

    offset  size  field
    0       4     magic b"TFGC"
    4       1     format version (2)
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

An sr file's payload is a JPEG of the image downsampled (RL-SRGAN's codec; its fingerprint names the family and scale
only, so any sr decoder of that scale reads it):

    0       1     scale r (2, 4 or 8): the JPEG is ceil(H/r) x ceil(W/r)
    1       1     the JPEG quality it was written with (1..100; for information)
    2       rest  a baseline JPEG (Pillow / libjpeg) of the image, edge-padded to multiples of r, then downsampled by r
                  (Pillow's bicubic)

Parsing is strict: every field is checked, and a header that declares more than MAX_IMAGE_PIXELS pixels is refused
before anything is allocated for it. tfgc.codec.graph reads and writes the same format with TensorFlow ops.

Version 1 differed only in flag bit 0, which stored the symbols as one base-L number; version-1 files without that
flag are read as they are, and those with it are refused with a clear message.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from tfgc.errors import FormatError

MAGIC = b"TFGC"
VERSION = 2
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
    head = _HEADER.pack(MAGIC, VERSION, FAMILIES[header.family], header.flags, header.fingerprint,
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
    if version not in (1, VERSION):
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
    header = Header(families[family_code], flags, fingerprint, height, width)
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


SR_SCALES = (2, 4, 8)
_SR_HEAD = struct.Struct(">BB")


@dataclass(frozen=True)
class SRPayload:
    scale: int
    quality: int
    jpeg: bytes


def pack_sr(payload: SRPayload) -> bytes:
    if payload.scale not in SR_SCALES or not 1 <= payload.quality <= 100:
        raise ValueError("scale or quality out of range")
    return _SR_HEAD.pack(payload.scale, payload.quality) + payload.jpeg


def unpack_sr(payload: bytes) -> SRPayload:
    if len(payload) <= _SR_HEAD.size:
        raise FormatError("sr payload holds no JPEG")
    scale, quality = _SR_HEAD.unpack_from(payload)
    if scale not in SR_SCALES:
        raise FormatError(f"sr payload has scale {scale}; known: {', '.join(map(str, SR_SCALES))}")
    if not 1 <= quality <= 100:
        raise FormatError(f"sr payload has JPEG quality {quality}, not in 1..100")
    return SRPayload(scale, quality, payload[_SR_HEAD.size:])
