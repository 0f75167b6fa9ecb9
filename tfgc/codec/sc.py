"""The sc family's files (Agustsson et al. 2019, selective compression): GC's latents of the cells a mask preserves,
with the image's label map and the mask, both lossless, from which the decoder synthesizes the rest.

The label map (classes 0..K-1 at the image's size) is coded with tfgc's context coder (tfgc.codec.context_coder,
made for label maps: about 60% of JPEG XL lossless's size on Cityscapes maps, up to its pixel limit) and with
the lossless image coders Pillow carries: PNG always, WebP lossless when Pillow has libwebp, JPEG XL lossless when
pillow-jxl-plugin is installed; each file keeps the smallest and names its coder. The mask
(one bit a latent cell) costs nothing when it preserves nothing or everything, and is otherwise its bits, deflated
when that is shorter (a 1-bit PNG would add some 60 bytes of chunks to a mask of a few dozen).
Only the latents the mask preserves are range coded, in raster order, exactly as GC codes a whole grid.

A few bytes can hold a large picture: a map of one class takes a handful of bytes in the context coder, WebP or
JPEG XL, and every size the pixel cap admits decodes in tiles. Where a coder does bound its size from below, the
bound is checked before anything is decoded: deflate (PNG's, and the mask's) codes at most DEFLATE_MAX_RATIO bytes
per byte, so a PNG map or a deflated mask shorter than its picture allows is refused unread.
"""

from __future__ import annotations

import io
import math
import zlib
from typing import Tuple

import numpy as np
from PIL import Image

from tfgc.codec import bitstream, context_coder, gc
from tfgc.codec.family import Described, EncodeResult, FamilyCodec, model_fingerprint
from tfgc.codec.io import DECODE_ERRORS, open_payload_image
from tfgc.errors import FormatError, ModelError
from tfgc.utils import first_line

# WebP's own limit on a side.
_WEBP_MAX_SIDE = 16383
# Deflate's best case: a 258-byte match in two bits (a one-bit length code and a one-bit distance code).
DEFLATE_MAX_RATIO = 1032


def deflated_minimum(raw_bytes: int) -> int:
    """The fewest bytes a deflate stream of `raw_bytes` can take."""
    return -(-raw_bytes // DEFLATE_MAX_RATIO)


def png_minimum(height: int, width: int) -> int:
    """The fewest bytes of a greyscale PNG that Pillow reads as a label image (mode L: 2 bits a pixel at the least,
    and a filter byte a row), for the compressed rows alone."""
    return deflated_minimum(height * (-(-width // 4) + 1))


def _jxl_available() -> bool:
    try:
        import pillow_jxl  # noqa: F401  (registers the JPEG XL plugin with Pillow)
    except ImportError:
        return False
    return True


def _webp_available() -> bool:
    from PIL import features

    return bool(features.check("webp"))


def encode_label_map(classes: np.ndarray) -> Tuple[str, bytes]:
    """uint8 classes [H, W] -> (coder, bytes), the smallest of the available lossless coders."""
    image = Image.fromarray(np.ascontiguousarray(classes, np.uint8), "L")
    candidates = {}
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    candidates["png"] = buffer.getvalue()
    if _webp_available() and max(classes.shape) <= _WEBP_MAX_SIDE:
        buffer = io.BytesIO()
        image.save(buffer, format="WEBP", lossless=True, quality=100, method=4)
        candidates["webp"] = buffer.getvalue()
    if _jxl_available():
        buffer = io.BytesIO()
        image.save(buffer, format="JXL", lossless=True, effort=7)
        candidates["jxl"] = buffer.getvalue()
    if classes.size <= context_coder.MAX_PIXELS:
        candidates["context"] = context_coder.encode(classes)
    coder = min(candidates, key=lambda name: len(candidates[name]))
    return coder, candidates[coder]


def decode_label_map(coder: str, data: bytes, height: int, width: int, classes: int) -> np.ndarray:
    """The label map of an sc file, checked: the image's size, one channel, every class below `classes`."""
    if coder == "jxl" and not _jxl_available():
        raise FormatError("this file's label map is JPEG XL coded: install pillow-jxl-plugin to decode it")
    if coder == "webp" and not _webp_available():
        raise FormatError("this file's label map is WebP coded and this Pillow has no WebP support")
    if coder == "context":
        return context_coder.decode(data, height, width, classes)
    minimum = png_minimum(height, width) if coder == "png" else 0
    if len(data) < minimum:
        raise FormatError(f"label map's PNG holds {len(data)} bytes; a {width}x{height} map takes at least {minimum}")
    array = _read_lossless(data, "label map", (width, height), {"png": "PNG", "webp": "WEBP", "jxl": "JXL"}[coder])
    if array.ndim == 3:  # WebP stores greyscale as RGB
        if not (np.all(array[..., 0] == array[..., 1]) and np.all(array[..., 0] == array[..., 2])):
            raise FormatError("label map is not greyscale")
        array = array[..., 0]
    if array.max(initial=0) >= classes:
        raise FormatError(f"label map holds class {int(array.max())}; the model has {classes} classes")
    return np.ascontiguousarray(array, np.uint8)


def encode_mask(mask: np.ndarray) -> Tuple[int, bytes]:
    mask = np.asarray(mask, np.uint8)
    if not mask.any():
        return bitstream.MASK_NONE, b""
    if mask.all():
        return bitstream.MASK_ALL, b""
    bits = np.packbits(mask.astype(bool), axis=None).tobytes()
    deflater = zlib.compressobj(9, zlib.DEFLATED, -15)
    deflated = deflater.compress(bits) + deflater.flush()
    return (bitstream.MASK_DEFLATE, deflated) if len(deflated) < len(bits) else (bitstream.MASK_BITS, bits)


def decode_mask(kind: int, data: bytes, height: int, width: int) -> np.ndarray:
    """The latent mask [height, width] of an sc file (uint8, 0 or 1)."""
    if kind == bitstream.MASK_NONE:
        return np.zeros((height, width), np.uint8)
    if kind == bitstream.MASK_ALL:
        return np.ones((height, width), np.uint8)
    expected = -(-height * width // 8)
    if kind == bitstream.MASK_DEFLATE:
        if len(data) < deflated_minimum(expected):
            raise FormatError(f"mask holds {len(data)} deflated bytes; the {width}x{height} latent grid needs at least "
                              f"{deflated_minimum(expected)}")
        inflater = zlib.decompressobj(-15)
        try:
            bits = inflater.decompress(data, expected + 1)  # never more than the grid needs, whatever the stream says
        except zlib.error as e:
            raise FormatError(f"mask does not inflate: {e}") from None
        if not inflater.eof or inflater.unconsumed_tail or inflater.unused_data:
            raise FormatError("mask's deflate stream does not end where its section does")
    else:
        bits = data
    if len(bits) != expected:
        raise FormatError(f"mask holds {len(bits)} bytes of bits, the {width}x{height} latent grid needs {expected}")
    return np.unpackbits(np.frombuffer(bits, np.uint8), count=height * width).reshape(height, width)


def _read_lossless(data: bytes, what: str, size, image_format: str) -> np.ndarray:
    try:
        with open_payload_image(data, formats=[image_format]) as image:
            if image.size != tuple(size):
                raise FormatError(f"{what} is {image.size[0]}x{image.size[1]}, the file declares {size[0]}x{size[1]}")
            if image.mode not in ("L", "RGB"):
                raise FormatError(f"{what} has mode {image.mode}, not a label image")
            image.load()
            return np.asarray(image)
    except FormatError:
        raise
    except DECODE_ERRORS as e:
        raise FormatError(f"{what} does not decode: {first_line(e)}") from None


def read_selective(header: bitstream.Header, payload: bytes, classes: int = 256):
    """An sc file's label map [H, W], latent mask [h, w] and sections, decoded and checked (no model needed)."""
    from tfgc.data.labels import latent_shape

    sections = bitstream.unpack_selective(payload, header.version or bitstream.VERSION)
    label_map = decode_label_map(sections.label_coding, sections.label_map, header.height, header.width, classes)
    mask = decode_mask(sections.mask_kind, sections.mask, *latent_shape(header.height, header.width))
    return label_map, mask, sections


def preservation_mask(model, classes: np.ndarray, preserve=None, preserve_classes=None) -> np.ndarray:
    """The latent mask [h, w] (uint8) that `preserve` or `preserve_classes` names for an image with these classes."""
    from tfgc.data import labels

    m = model.config.model
    size = classes.shape
    if preserve is not None and preserve_classes is not None:
        raise ModelError("give either a preservation mask or classes to preserve, not both")
    if preserve_classes is not None:
        names = preserve_classes.split(",") if isinstance(preserve_classes, str) else [str(c) for c in preserve_classes]
        return labels.mask_from_classes(classes, labels.class_ids(names, m.label_set, m.semantic_classes),
                                           m.downsampling)
    grid = labels.latent_shape(*size, m.downsampling)
    if preserve is None or (isinstance(preserve, str) and preserve == "all"):
        return np.ones(grid, np.uint8)
    if isinstance(preserve, str) and preserve == "none":
        return np.zeros(grid, np.uint8)
    return labels.mask_from_image(preserve, size, m.downsampling)


class SCCodec(FamilyCodec):
    family = "sc"
    options = ("semantics", "preserve", "preserve_classes")
    no_codec_savedmodel = "its label map and mask are coded on the host"

    def check_options(self, options: dict) -> None:
        super().check_options(options)
        if options.get("semantics") is None:
            raise ModelError("an sc model needs the image's semantic label map (--semantics LABELS.png)")

    def encode(self, pixels: np.ndarray, described: Described, semantics=None, preserve=None,
               preserve_classes=None) -> EncodeResult:
        from tfgc.data import labels as label_maps
        from tfgc.codec import entropy

        model = described.load()
        m = model.config.model
        height, width = pixels.shape[:2]
        classes = label_maps.load_classes(semantics, m.label_set, m.semantic_classes, size=(height, width))
        mask = preservation_mask(model, classes, preserve, preserve_classes)
        symbols = gc.analysis(model, pixels, classes)
        kept = symbols[mask.astype(bool)]  # [n, C], raster order
        use_uniform, latents = gc.code_latents(kept, model) if kept.size else (False, b"")
        label_coding, label_bytes = encode_label_map(classes)
        mask_kind, mask_bytes = encode_mask(mask)
        sections = bitstream.SelectiveSections(label_coding, label_bytes, mask_kind, mask_bytes, latents)
        header = bitstream.Header(self.family, bitstream.FLAG_UNIFORM_TABLE if use_uniform else 0,
                                  model_fingerprint(model), height, width, bitstream.selective_version(sections))
        data = bitstream.pack(header, bitstream.pack_selective(sections))
        parts = {"latents": len(latents), "mask": len(mask_bytes), "label_map": len(label_bytes)}
        parts["overhead"] = len(data) - sum(parts.values())
        return EncodeResult(data, height, width, use_uniform, int(kept.size), kept.size * math.log2(m.levels),
                            entropy.ideal_bits(kept, model.coding_table()), parts, float(mask.mean()),
                            family=self.family)

    def decode(self, header, payload, model, alpha):
        from tfgc.codec import entropy, tiling

        m = model.config.model
        shape = gc.latent_shape(header, model.config)
        gc.check_transform_size(model, shape[:2], header.height, header.width)  # before the map is decoded
        classes, mask, sections = read_selective(header, payload, m.classes)
        symbols = np.zeros(shape, np.int32)
        preserved = mask.astype(bool)
        count = int(preserved.sum())
        if count:
            symbols[preserved] = entropy.range_decode(sections.latents, gc.decoding_table(header, model),
                                                      (count, m.latent_channels))
        elif sections.latents:
            raise FormatError("sc file stores latent bytes but its mask preserves nothing")
        down = m.downsampling
        inputs = [(symbols[None], 1), (tiling.edge_pad(classes[None], down), down), (mask[None], 1)]
        return gc.synthesis(model, inputs, header.height, header.width,
                            lambda s, c, k, h, w: model.synthesis(s, c, k, h, w, alpha=alpha))

    def report(self, result: EncodeResult) -> dict:
        report = gc.latent_report(result)
        report.update({f"{name}_bpp": 8 * size / result.pixels for name, size in result.parts.items()},
                      preserved=result.preserved)
        return report

    def summary(self, result: EncodeResult) -> str:
        r = self.report(result)
        return (f"{r['bytes']} bytes, {r['bpp']:.4f} bpp: latents {r['latents_bpp']:.4f} "
                f"({100 * result.preserved:.1f}% of cells preserved, {r['coding']}), "
                f"label map {r['label_map_bpp']:.4f}, mask {r['mask_bpp']:.4f}, "
                f"header and checksum {r['overhead_bpp']:.4f}")

    def training_paths(self, config, data, val_data):
        from tfgc import data as datasets
        from tfgc.errors import ConfigError

        if not data:
            raise ConfigError("sc models train on photographs with label maps: --data CITYSCAPES_ROOT (NAME"
                              f"{datasets.IMAGE_SUFFIX} beside NAME{datasets.LABEL_SUFFIX}; python -m tfgc.scenes OUT "
                              "writes procedural ones)")
        paths = datasets.semantic_pairs(data)
        val_paths = datasets.semantic_pairs(val_data) if val_data else paths
        checked = paths + (val_paths if val_data else [])
        print(f"tfgc.train: checking {len(checked)} label maps", flush=True)
        datasets.check_label_maps(checked, config.model.label_set, config.model.classes)
        return paths, val_paths

    def training_data(self, config, paths, val_paths, base_cache=None):
        from tfgc import data as datasets

        m, t = config.model, config.train
        return (datasets.semantic_training_dataset(paths, t.crop_size, t.batch_size, m.label_set, m.classes,
                                                   t.downscale, seed=t.seed),
                datasets.semantic_validation_dataset(val_paths, t.crop_size, len(val_paths), m.label_set, m.classes,
                                                     t.downscale))

    def parity_inputs(self, model, image):
        # Vertical bands of the model's classes as the label map, and every other latent cell preserved, so both the
        # stored and the synthesized regions are compared.
        m = model.config.model
        height, width = image.shape[:2]
        classes = (np.arange(width) * m.classes // width).astype(np.uint8)
        classes = np.broadcast_to(classes, (1, height, width)).copy()
        cells = (-(-height // m.downsampling), -(-width // m.downsampling))
        mask = (np.indices(cells).sum(axis=0) % 2).astype(np.uint8)[None]
        return np.asarray(model.analysis(image[None], classes)), [classes, mask], [classes]

    def info(self, header, payload) -> dict:
        pixels = header.width * header.height
        _, mask, sections = read_selective(header, payload)
        return dict(label_map_coding=sections.label_coding, preserved=float(mask.mean()),
                    **{f"{name}_bpp": 8 * size / pixels for name, size in sections.sizes.items()})


CODEC = SCCodec()
