"""The host side of the super-resolution codec family: a classic codec at reduced resolution (the base layer) and a
learned decoder. Bicubic downsampling, the base codecs through Pillow and its plugins (JPEG as in RL-SRGAN, Savioli
2019; WebP, AVIF, HEIC), and the classic upscalers the learned decoder is compared with.

Training data comes from the same functions, so the decoder learns exactly the inputs files hold. The files name no
model, only the base codec and the scale: any decoder of those, learned or classic, reads them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
from PIL import Image

from tfgc.codec import bitstream
from tfgc.codec.bitstream import BASE_CODECS
from tfgc.codec.family import Described, EncodeResult, FamilyCodec
from tfgc.codec.io import DECODE_ERRORS, load_image, open_payload_image
from tfgc.config import SR_SCALES
from tfgc.errors import FormatError, ModelMismatchError, TfgcError
from tfgc.models.store import sr_fingerprint as fingerprint  # noqa: F401  (an sr file names its model's settings)
from tfgc.utils import first_line

CLASSIC_DECODERS = {"bicubic": Image.BICUBIC, "lanczos": Image.LANCZOS}
BASE_NAMES = {"jpeg": "JPEG", "webp": "WebP", "avif": "AVIF", "heic": "HEIC"}


def check_scale(scale: int) -> int:
    if scale not in SR_SCALES:
        raise TfgcError(f"scale must be one of {', '.join(map(str, SR_SCALES))}, not {scale}")
    return scale


def check_base(base: str) -> str:
    if base not in BASE_CODECS:
        raise TfgcError(f"unknown base codec {base!r}; known: {', '.join(BASE_CODECS)}")
    return base


def base_label(base: str) -> str:
    """'a JPEG', 'an HEIC', ...: how text names a base image."""
    name = BASE_NAMES[base]
    return ("an " if name[0] in "AEH" else "a ") + name


def size_label(scale: int) -> str:
    """'full size', '1/2 size', ...: how text names the base's size."""
    return "full size" if scale == 1 else f"1/{scale} size"


def lowest_quality(base: str) -> int:
    """JPEG's quality scale starts at 1 (libjpeg's 0 is 1 by another name); the others' at 0."""
    return 1 if base == "jpeg" else 0


def check_quality(quality: int, base: str = "jpeg") -> int:
    low = lowest_quality(base)
    if not low <= quality <= 100:
        name = "JPEG" if base == "jpeg" else f"{base} base"
        raise TfgcError(f"{name} quality must be in {low}..100, not {quality}")
    return quality


def base_codec(base: str):
    """The classic codec of a base layer (tfgc.codec.classic), with a clear error where its plugin is missing."""
    from tfgc.codec.classic import get_codec

    return get_codec(check_base(base))


def cannot_run(manifest: dict) -> Optional[str]:
    """Why a model cannot code files on this machine (an sr model whose base codec's plugin is missing), or None."""
    if manifest.get("family") != "sr":
        return None
    from tfgc.models.store import sr_settings

    try:
        base_codec(sr_settings(manifest)[0])
    except TfgcError as e:
        return str(e)
    return None


def low_resolution_size(height: int, width: int, scale: int):
    """(h, w) of the JPEG a height x width image is stored as."""
    return -(-height // scale), -(-width // scale)


def downsample(image: np.ndarray, scale: int) -> np.ndarray:
    """RGB uint8 [H, W, 3] -> [ceil(H/r), ceil(W/r), 3]: edge-padded to multiples of r, then Pillow's bicubic
    (antialiased, as MATLAB's imresize and SRGAN's data). Scale 1 returns the image."""
    if scale == 1:
        return image
    height, width = image.shape[:2]
    h, w = low_resolution_size(height, width, scale)
    padded = image if (h * scale, w * scale) == (height, width) else np.pad(
        image, ((0, h * scale - height), (0, w * scale - width), (0, 0)), mode="edge")
    return np.asarray(Image.fromarray(padded, "RGB").resize((w, h), Image.BICUBIC))


def encode_base(image: np.ndarray, quality: int, base: str = "jpeg") -> bytes:
    """The base codec's file of an RGB uint8 image."""
    return base_codec(base).encode(np.ascontiguousarray(image), quality)


# JPEG frames coded with Huffman tables (baseline, extended, progressive: what libjpeg writes); arithmetic-coded
# frames, which Pillow also reads, could hold a block in less than a bit.
_JPEG_HUFFMAN_FRAMES = (0xC0, 0xC1, 0xC2)
_JPEG_FRAMES = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def jpeg_frame(data: bytes) -> Optional[int]:
    """The start-of-frame marker's second byte of a JPEG file (0xC0 for baseline), or None when there is none
    before the scan."""
    position = 2
    while position + 4 <= len(data) and data[position] == 0xFF:
        marker = data[position + 1]
        if marker in _JPEG_FRAMES:
            return marker
        if marker == 0xDA:
            return None
        position += 2 + int.from_bytes(data[position + 2:position + 4], "big")
    return None


def check_jpeg_base(data: bytes, height: int, width: int) -> None:
    """Refuse, before its pixels are decoded, a JPEG base that is not Huffman coded or too short for its size: in
    any Huffman-coded scan each 8x8 block of the full-resolution component takes at least one bit."""
    frame = jpeg_frame(data)
    if frame not in _JPEG_HUFFMAN_FRAMES:
        raise FormatError("sr payload's JPEG is not a baseline or progressive (Huffman-coded) JPEG")
    blocks = -(-height // 8) * -(-width // 8)
    minimum = -(-blocks // 8)  # bytes of one bit a block
    if len(data) < minimum:
        raise FormatError(f"sr payload's JPEG holds {len(data)} bytes; a {width}x{height} JPEG takes at least "
                          f"{minimum}")


def decode_base(data: bytes, height: int, width: int, base: str = "jpeg") -> np.ndarray:
    """A stored base image as RGB uint8, checked to be a file of its codec and of the expected size before its pixels
    are decoded."""
    codec = base_codec(base)
    name = codec.pillow_format
    try:
        with open_payload_image(data) as image:
            if image.format != name:
                raise FormatError(f"sr payload holds a {image.format} image, not a {name}")
            if image.size != (width, height):
                raise FormatError(f"sr payload's {name} is {image.size[0]}x{image.size[1]}, the header implies "
                                  f"{width}x{height}")
            if image.mode != "RGB":
                raise FormatError(f"sr payload's {name} is {image.mode}, not RGB")
            if base == "jpeg":
                check_jpeg_base(data, height, width)
            image.load()
            return np.asarray(image)
    except DECODE_ERRORS as e:
        raise FormatError(f"sr payload's {name} cannot be decoded: {first_line(e)}") from None


def degrade(image: np.ndarray, scale: int, quality: int, base: str = "jpeg") -> np.ndarray:
    """What a file makes of an image: downsampled, coded by the base codec and decoded (uint8 [ceil(H/r), ceil(W/r),
    3])."""
    return degrade_low(downsample(image, scale), quality, base)


def degrade_low(low: np.ndarray, quality: int, base: str = "jpeg") -> np.ndarray:
    """A downsampled image coded by the base codec and decoded."""
    return decode_base(encode_base(low, quality, base), *low.shape[:2], base)


def upscale(low: np.ndarray, scale: int, method: str, height: int, width: int) -> np.ndarray:
    """A classic decoder: Pillow's bicubic or Lanczos upscaling by `scale`, cropped to height x width."""
    try:
        resample = CLASSIC_DECODERS[method]
    except KeyError:
        raise TfgcError(f"unknown decoder {method!r}; classic ones: {', '.join(CLASSIC_DECODERS)}") from None
    if scale == 1:
        return low[:height, :width]
    h, w = low.shape[:2]
    return np.asarray(Image.fromarray(low, "RGB").resize((w * scale, h * scale), resample))[:height, :width]


def encode_sr(image, scale: int = 4, quality: int = 75, base: str = "jpeg",
              max_pixels: Optional[int] = None) -> EncodeResult:
    """The super-resolution codec's file: `image` downsampled by `scale` (bicubic; 1 keeps its size) and coded by the
    `base` codec ("jpeg" as in RL-SRGAN, "webp", "avif", "heic") at `quality`. No model takes part: any sr decoder of
    that base and scale, learned or classic, reads the file."""
    check_base(base)
    check_scale(scale)
    check_quality(quality, base)
    base_codec(base)  # a missing plugin fails before the image is read
    pixels = load_image(image, max_pixels)
    return encode_downsampled(downsample(pixels, scale), *pixels.shape[:2], scale, quality, base)


def encode_downsampled(low: np.ndarray, height: int, width: int, scale: int, quality: int, base: str) -> EncodeResult:
    """What encode_sr writes for a height x width image whose downsample(image, scale) is `low`: for callers that
    code one image at several qualities, or look at its base image first, without downsampling it each time."""
    stored = encode_base(low, quality, base)
    flags = 0
    packed = bitstream.pack_base_container(stored, base)
    if packed is not None and len(packed) < len(stored):
        stored, flags = packed, bitstream.FLAG_PACKED_BASE
    header = bitstream.Header("sr", flags, fingerprint(scale, base), height, width)
    data = bitstream.pack(header, bitstream.pack_sr(bitstream.SRPayload(base, scale, quality, stored)))
    parts = {"base": len(stored), "overhead": len(data) - len(stored)}
    return EncodeResult(data, height, width, False, 0, 0.0, 0.0, parts,
                        sr={"base": base, "scale": scale, "quality": quality}, family="sr")


def at_rate(pixels: np.ndarray, target_bpp: float, base: str, scale: int) -> tuple:
    """(file, fits): the sr file of the highest quality whose file fits `target_bpp`, found by bisection on real
    file sizes (they grow with the quality, up to a few bytes of noise, which the neighbours' check absorbs); the
    lowest quality's file when none fits."""
    check_base(base)
    check_scale(scale)
    base_codec(base)
    small = downsample(pixels, scale)
    low, high = lowest_quality(base), 100
    files = {}

    def encoded(quality):
        if quality not in files:
            files[quality] = encode_downsampled(small, *pixels.shape[:2], scale, quality, base)
        return files[quality]

    if not encoded(low).fits(target_bpp):
        return encoded(low), False
    while low < high:  # invariant: quality `low` fits
        middle = (low + high + 1) // 2
        if encoded(middle).fits(target_bpp):
            low = middle
        else:
            high = middle - 1
    for quality in (low + 1, low + 2):  # a non-monotone step: a higher quality may fit after all
        if quality <= 100 and encoded(quality).fits(target_bpp):
            low = quality
    return encoded(low), True


@dataclass(frozen=True)
class StoredLowResolution:
    base: str
    scale: int
    quality: int
    low: np.ndarray  # the decoded base image, uint8 [ceil(H/r), ceil(W/r), 3]


def read_stored(header: bitstream.Header, payload: bytes) -> StoredLowResolution:
    """An sr file's base codec, scale, quality and decoded base image, checked against its header."""
    stored = bitstream.unpack_sr(payload, header.version)
    if header.fingerprint != fingerprint(stored.scale, stored.base):
        raise FormatError("sr file's fingerprint does not match its base codec and scale")
    data = bitstream.unpack_base_container(stored.data, stored.base) if header.packed_base else stored.data
    low = decode_base(data, *low_resolution_size(header.height, header.width, stored.scale), stored.base)
    return StoredLowResolution(stored.base, stored.scale, stored.quality, low)


class SRCodec(FamilyCodec):
    family = "sr"
    classic_decoders = CLASSIC_DECODERS
    classic_hint = " (or --decoder lanczos / bicubic)"
    no_codec_savedmodel = "its base codec is Pillow's"
    chooses_rate = True

    def encode(self, pixels, described: Described, **options) -> EncodeResult:
        m = described.config.model  # the base codec does the encoding: no network runs
        return encode_sr(pixels, m.scale, m.base_quality, m.base_codec)

    def at_rate(self, pixels, target_bpp, model):
        m = model.config.model
        return at_rate(pixels, target_bpp, m.base_codec, m.scale)

    def check_file(self, header, payload, described) -> None:
        m = described.config.model
        stored = bitstream.unpack_sr(payload, header.version)  # the file names no model, only its base and scale
        if (stored.base, stored.scale) != (m.base_codec, m.scale):
            raise ModelMismatchError(f"file holds {base_label(stored.base)} at 1/{stored.scale} size; the model "
                                     f"decodes {m.base_codec} bases at 1/{m.scale}")

    def decode(self, header, payload, model, alpha):
        from tfgc.codec import gc

        gc.check_transform_size(model, low_resolution_size(header.height, header.width, model.config.model.scale),
                                header.height, header.width)
        stored = read_stored(header, payload)
        return gc.synthesis(model, [(stored.low[None], 1)], header.height, header.width,
                            lambda low, h, w: model.synthesis(low, h, w, alpha=alpha))

    def decode_classic(self, header, payload, decoder: str) -> np.ndarray:
        stored = read_stored(header, payload)
        return upscale(stored.low, stored.scale, decoder, header.height, header.width)

    def report(self, result: EncodeResult) -> dict:
        return {"height": result.height, "width": result.width, "bytes": len(result.data), "bpp": result.bpp,
                "payload_bpp": result.payload_bits / result.pixels,
                "base_bpp": 8 * result.parts["base"] / result.pixels, "base_bytes": result.parts["base"],
                **result.sr}

    def summary(self, result: EncodeResult) -> str:
        r = self.report(result)
        return (f"{r['bytes']} bytes, {r['bpp']:.4f} bpp: {base_label(r['base'])} (quality {r['quality']}) "
                f"of the image at {size_label(r['scale'])}, {r['base_bytes']} bytes; header and checksum "
                f"{r['bytes'] - r['base_bytes']} bytes")

    def info(self, header, payload) -> dict:
        pixels = header.width * header.height
        stored = bitstream.unpack_sr(payload, header.version)
        return dict(coding=None, base=stored.base, scale=stored.scale, quality=stored.quality,
                    base_bytes=len(stored.data), base_bpp=8 * len(stored.data) / pixels,
                    packed_base=header.packed_base)

    def rate_label(self, manifest: dict) -> str:
        from tfgc.models.store import sr_settings

        base, scale, quality = sr_settings(manifest)
        return f"{base} q{quality} at 1/{scale}"

    def training_paths(self, config, data, val_data):
        from tfgc.errors import ConfigError

        if not data:
            raise ConfigError("sr models train on photographs: --data FOLDER (e.g. BSDS500's train/)")
        return super().training_paths(config, data, val_data)

    def training_data(self, config, paths, val_paths, base_cache=None):
        """Base images made by this module's own functions, so the decoder learns exactly what files hold: coded
        once per image and quality and cached (training at several qualities), or on the fly at the model's one."""
        from tfgc import data as datasets

        m, t = config.model, config.train
        if t.base_qualities:
            train_images = datasets.base_layer_images(paths, m.base_codec, m.scale, t.base_qualities, t.crop_size,
                                                      base_cache)
            val_images = datasets.base_layer_images(val_paths, m.base_codec, m.scale,
                                                    [t.base_qualities[len(t.base_qualities) // 2]], t.crop_size,
                                                    base_cache)
            return (datasets.base_layer_dataset(train_images, m.scale, t.crop_size, t.batch_size, seed=t.seed),
                    datasets.base_layer_validation_dataset(val_images, m.scale, t.crop_size, len(val_images)))
        example = datasets.super_resolution_example(m.scale, m.base_quality, m.base_codec)
        return (datasets.training_dataset(paths, t.crop_size, t.batch_size, seed=t.seed, example=example),
                datasets.validation_dataset(val_paths, t.crop_size, batch_size=len(val_paths), example=example))

    def rate_line(self, config) -> str:
        m, t = config.model, config.train
        qualities = "q" + ",".join(map(str, t.base_qualities or [m.base_quality]))
        return (f"{m.base_codec} {qualities} at 1/{m.scale}"
                + (", actor-critic" if m.actor_critic else ", no actor-critic"))

    def parity_inputs(self, model, image):
        m = model.config.model  # the decoder's input: the stored base's pixels
        return degrade(image, m.scale, m.base_quality, m.base_codec)[None], [], None


CODEC = SRCodec()
