"""The .tfgc file format, version 4. All integers are big-endian.

    offset  size  field
    0       4     magic b"TFGC"
    4       1     format version: the oldest whose layout describes the file, so that an older tfgc reads what it
                  can (gc files 2; sc files 4 with a context-coded label map, else 2; sr files 3)
    5       1     model family (1 = gc, 2 = sc, 3 = sr)
    6       1     flags (bit 0, gc and sc files: payload range coded with the uniform table, not the model's; bit 1, sr
                  files: the base's container packed, see below; other bits must be 0)
    7       8     model fingerprint (first 8 bytes of a SHA-256 over the encoder, quantizer and coding table)
    15      4     image height in pixels (>= 1)
    19      4     image width in pixels (>= 1)
    23      4     payload length in bytes
    27      n     payload
    27+n    4     CRC-32 of every byte before it

An sc file's payload is three sections (the semantic label map and the preservation mask, each lossless, then the
preserved latents):

    0       1     label map coding (1 = PNG, 2 = WebP lossless, 3 = JPEG XL lossless, 4 = tfgc's context coder,
                  from version 4: tfgc.codec.context_coder), of the classes 0..K-1
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

With flag bit 1 the base codec's file is stored packed: an HEIC or AVIF file is ISO base media boxes, and all of it up
to the 'mdat' box's payload (ftyp, meta with its item locations and the codec's parameter sets; about 370 bytes for
HEIC, 270 for AVIF, a quarter of a file at 0.02 bpp) is nearly the same in every file. Packed, it is raw deflate with
a fixed template of such a header as its dictionary (BASE_TEMPLATES; about 50 and 20 bytes), the rest verbatim:

    0       2     n, the length of the deflated head
    2       n     the head (every byte before the 'mdat' box's payload, its box header included), deflated
    2+n     rest  the rest of the base codec's file, as it is

Unpacking gives back the codec's file byte for byte.

In version 2, sr payloads held a JPEG only, without the codec byte: scale (2, 4 or 8), JPEG quality (1..100), JPEG.
They are read as they are.

Parsing is strict: every field is checked, and a header that declares more than MAX_IMAGE_PIXELS pixels is refused
before anything is allocated for it. tfgc.codec.graph reads and writes the same format with TensorFlow ops.

Version 4 added label map coding 4 to sc files; nothing else changed, and files that do not use it are still
written as before.

Version 1 differed from version 2 only in flag bit 0, which stored the symbols as one base-L number; version-1 files
without that flag are read as they are, and those with it are refused with a clear message.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

from tfgc.config import SR_SCALES
from tfgc.errors import FormatError

MAGIC = b"TFGC"
VERSION = 4
# The version a file of each family is written with: the oldest whose layout describes it.
WRITTEN_VERSION = {"gc": 2, "sc": 2, "sr": 3}
FAMILIES = {"gc": 1, "sc": 2, "sr": 3}
FLAG_UNIFORM_TABLE = 0x01
FLAG_PACKED_BASE = 0x02
KNOWN_FLAGS = FLAG_UNIFORM_TABLE | FLAG_PACKED_BASE
FAMILY_FLAGS = {"gc": FLAG_UNIFORM_TABLE, "sc": FLAG_UNIFORM_TABLE, "sr": FLAG_PACKED_BASE}
# Like Pillow's Image.MAX_IMAGE_PIXELS: the largest image a file may declare. Raise it to decode larger images.
MAX_IMAGE_PIXELS = 178_956_970
# The largest .tfgc file read from a path (MAX_IMAGE_PIXELS at 12 bits a pixel; tfgc's files hold a hundredth of that).
MAX_FILE_BYTES = 256 * 2**20

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
    # The format version as read, or to write (0: the family's WRITTEN_VERSION); how the file was laid out, not what
    # it holds, so headers compare equal across versions.
    version: int = field(default=0, compare=False)

    @property
    def uniform_table(self) -> bool:
        return bool(self.flags & FLAG_UNIFORM_TABLE)

    @property
    def packed_base(self) -> bool:
        return bool(self.flags & FLAG_PACKED_BASE)


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
    if version < 1:
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
    if flags & ~FAMILY_FLAGS[families[family_code]]:
        raise FormatError(f"flags 0x{flags:02x} are not defined for {families[family_code]} files")
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


LABEL_CODINGS = {1: "png", 2: "webp", 3: "jxl", 4: "context"}
# The format version that introduced each label map coding (the others exist from version 2).
_LABEL_CODING_SINCE = {"context": 4}
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


def selective_version(sections: SelectiveSections) -> int:
    """The format version an sc file with these sections is written as."""
    return _LABEL_CODING_SINCE.get(sections.label_coding, WRITTEN_VERSION["sc"])


def unpack_selective(payload: bytes, version: int = VERSION) -> SelectiveSections:
    """Split an sc payload of a file of format `version` into its sections, checking every length and code."""
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
    if label_code not in LABEL_CODINGS or version < _LABEL_CODING_SINCE.get(LABEL_CODINGS[label_code], 0):
        raise FormatError(f"unknown label map coding {label_code} in a version-{version} file")
    if not label_map:
        raise FormatError("sc payload has an empty label map")
    mask_kind, mask = section("mask")
    if mask_kind not in (MASK_NONE, MASK_ALL, MASK_BITS, MASK_DEFLATE):
        raise FormatError(f"unknown mask kind {mask_kind}")
    if (mask_kind in (MASK_BITS, MASK_DEFLATE)) != bool(mask):
        raise FormatError("sc payload's mask length disagrees with its kind")
    return SelectiveSections(LABEL_CODINGS[label_code], label_map, mask_kind, mask, payload[offset:])


BASE_CODECS = {"jpeg": 1, "webp": 2, "avif": 3, "heic": 4}  # the file's code of each of config.BASE_CODECS
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


# ---- packed base containers (sr flag bit 1) ------------------------------------------------------------------------
# Headers of an HEIC (pillow-heif, x265) and an AVIF (Pillow, libavif) file of a 192x128 image: the dictionaries of
# packed heads. Part of the format: never to be changed.
BASE_TEMPLATES = {
    "heic": bytes.fromhex(
        "0000001c6674797068656963000000006d696631686569636d696166000001556d657461000000000000002168646c72000000"
        "0000000000706963740000000000000000000000000000000022696c6f6300000000444000010001000000000179000100000000"
        "000024290000002369696e6600000000000100000015696e6665020000000001000068766331000000000e7069746d0000000000"
        "01000000d569707270000000b66970636f00000077687663430103700000009000000000001ef000fcfdf8f800000f0360000100"
        "1840010c01ffff03700000030090000003000003001eba0240610001002a42010103700000030090000003000003001ea0182020"
        "596ea4929ae6e021a0c08000000c80000003008462000100074401c172b0624000000013636f6c726e636c780001000d00068000"
        "0000146973706500000000000000c000000080000000107069786900000000030808080000001769706d61000000000000000100"
        "010481020304000024316d646174"),
    "avif": bytes.fromhex(
        "00000020667479706176696600000000617669666d6966316d6961664d413142000000eb6d657461000000000000002168646c72"
        "000000000000000070696374000000000000000000000000000000000e7069746d0000000000010000001e696c6f630000000044"
        "0000010001000000010000011300000b1f0000002869696e660000000000010000001a696e66650200000000010000617630314"
        "36f6c6f72000000006a697072700000004b6970636f000000146973706500000000000000c00000008000000010706978690000"
        "0000030808080000000c6176314381000c0000000013636f6c726e636c780001000d0006800000001769706d6100000000000000"
        "010001040102830400000b276d646174"),
}
MAX_PACKED_HEAD = 65535
_BOX = struct.Struct(">I4s")


def _media_data_offset(data: bytes):
    """The offset of the first 'mdat' box's payload in ISO base media boxes, or None."""
    offset = 0
    while offset + _BOX.size <= len(data):
        size, kind = _BOX.unpack_from(data, offset)
        header = _BOX.size
        if size == 1 and offset + 16 <= len(data):  # a 64-bit size follows
            size, header = struct.unpack_from(">Q", data, offset + 8)[0], 16
        if kind == b"mdat":
            return offset + header
        if size < header:
            return None
        offset += size
    return None


def pack_base_container(data: bytes, base: str):
    """The packed form of a base codec's file, or None where the codec has no template or the file is no such boxes
    (then the file is stored as it is)."""
    template = BASE_TEMPLATES.get(base)
    split = _media_data_offset(data) if template is not None else None
    if split is None or split > MAX_PACKED_HEAD:
        return None
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15, 9, zdict=template)
    head = deflate.compress(data[:split]) + deflate.flush()
    if len(head) > 0xFFFF:
        return None
    return struct.pack(">H", len(head)) + head + data[split:]


def unpack_base_container(packed: bytes, base: str) -> bytes:
    """The base codec's file from its packed form, checked (FormatError on anything but a packed head)."""
    template = BASE_TEMPLATES.get(base)
    if template is None:
        raise FormatError(f"sr file says its {base} base is packed; only {', '.join(BASE_TEMPLATES)} bases are")
    if len(packed) < 2:
        raise FormatError("sr payload's packed base is truncated")
    (length,) = struct.unpack_from(">H", packed)
    if len(packed) < 2 + length:
        raise FormatError(f"sr payload's packed head announces {length} bytes, {len(packed) - 2} remain")
    inflate = zlib.decompressobj(-15, zdict=template)
    try:
        head = inflate.decompress(packed[2:2 + length], MAX_PACKED_HEAD + 1)
    except zlib.error as e:
        raise FormatError(f"sr payload's packed head cannot be inflated: {e}") from None
    if len(head) > MAX_PACKED_HEAD or inflate.unconsumed_tail or not inflate.eof or inflate.unused_data:
        raise FormatError("sr payload's packed head is damaged (too long, or not one whole deflate stream)")
    return head + packed[2 + length:]
