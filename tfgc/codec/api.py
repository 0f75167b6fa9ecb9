"""compress(image, model) -> bytes and decompress(bytes, model) -> image, with the rate report behind them.

The model's transforms (`analysis`, `synthesis`) never see bytes, and this module never sees weights: it gets symbols
and the model's integer coding table, and range codes each file with that table or with the uniform one, whichever is
shorter, so no file exceeds the rate bound by more than the format's fixed overhead and a few bytes.

Anything with the model's interface serves as `model`: a loaded tfgc model, or the TFLite and ONNX runtimes of
tfgc.export (`family`, `config`, `fingerprint()`, `coding_table()`, `analysis`, `synthesis`).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

import numpy as np

from tfgc.codec import bitstream, sr, tiling
from tfgc.codec.io import load_image, read_file, tensor_to_array
from tfgc.config import checked_alpha
from tfgc.errors import FormatError, ImageError, ModelError, ModelMismatchError


@dataclass(frozen=True)
class EncodeResult:
    data: bytes
    height: int
    width: int
    uniform_table: bool  # coded with the uniform table (the learned prior would have cost more)
    symbols: int  # how many latent symbols the file holds
    bound_bits: float  # symbols * log2(L): the paper's rate bound
    estimated_bits: float  # what the model's entropy model predicts for these symbols
    # sc files: bytes of the label map, the mask, the latents, and the rest (header, section headers, checksum);
    # sr files: bytes of the base image and the rest
    parts: Optional[dict] = None
    preserved: Optional[float] = None  # sc files: fraction of latent cells stored
    sr: Optional[dict] = None  # sr files: base codec, scale and quality

    @property
    def pixels(self) -> int:
        return self.height * self.width

    @property
    def payload_bits(self) -> int:
        return 8 * (len(self.data) - bitstream.OVERHEAD)

    @property
    def file_bits(self) -> int:
        return 8 * len(self.data)

    @property
    def bpp(self) -> float:
        """Bits per pixel of the whole file, header and checksum included."""
        return self.file_bits / self.pixels

    def report(self) -> dict:
        if self.sr is not None:
            return {"height": self.height, "width": self.width, "bytes": len(self.data), "bpp": self.bpp,
                    "payload_bpp": self.payload_bits / self.pixels, "base_bpp": 8 * self.parts["base"] / self.pixels,
                    "base_bytes": self.parts["base"], **self.sr}
        report = {
            "height": self.height, "width": self.width, "bytes": len(self.data), "bpp": self.bpp,
            "payload_bpp": self.payload_bits / self.pixels, "bound_bpp": self.bound_bits / self.pixels,
            "estimated_bpp": self.estimated_bits / self.pixels,
            "coding": "uniform table" if self.uniform_table else "model prior",
        }
        if self.parts is not None:
            report.update({f"{name}_bpp": 8 * size / self.pixels for name, size in self.parts.items()},
                          preserved=self.preserved)
        return report

    def summary(self) -> str:
        r = self.report()
        if self.sr is not None:
            return (f"{r['bytes']} bytes, {r['bpp']:.4f} bpp: {sr.base_label(r['base'])} (quality {r['quality']}) "
                    f"of the image at {sr.size_label(r['scale'])}, {r['base_bytes']} bytes; header and checksum "
                    f"{r['bytes'] - r['base_bytes']} bytes")
        if self.parts is not None:
            return (f"{r['bytes']} bytes, {r['bpp']:.4f} bpp: latents {r['latents_bpp']:.4f} "
                    f"({100 * self.preserved:.1f}% of cells preserved, {r['coding']}), "
                    f"label map {r['label_map_bpp']:.4f}, mask {r['mask_bpp']:.4f}, "
                    f"header and checksum {r['overhead_bpp']:.4f}")
        return (f"{r['bytes']} bytes, {r['bpp']:.4f} bpp ({r['coding']}; payload {r['payload_bpp']:.4f} bpp, "
                f"model estimate {r['estimated_bpp']:.4f} bpp, bound {r['bound_bpp']:.4f} bpp)")


ModelLike = Union[str, Path, object]


def _as_model(model: ModelLike):
    if isinstance(model, (str, Path)):
        from tfgc.models.store import load_model

        return load_model(model)
    return model


def _fingerprint(model) -> bytes:
    manifest = getattr(model, "manifest", None)
    return bytes.fromhex(manifest["fingerprint"]) if manifest else model.fingerprint()


@dataclass(frozen=True)
class _Described:
    """What the checks of encode and decode need of a model, read from its folder without loading it (and without
    TensorFlow), so a wrong argument fails in a fraction of a second."""
    source: ModelLike  # the folder, or the loaded model as given
    family: str
    config: object
    fingerprint: bytes


MODEL_TYPES = "a model folder, an installed model's name, or a model from tfgc.load_model"


def _describe(model: ModelLike) -> _Described:
    if model is None:
        model = default_model()
        if model is None:
            raise ModelError("no model given and none is installed (saved_models/ or $TFGC_MODEL_PATH)")
    if isinstance(model, (str, os.PathLike)):
        from tfgc.models.store import describe_model, is_keras_save, load_keras_save

        if is_keras_save(model):
            return _describe(load_keras_save(model))

        directory, manifest, config = describe_model(model)
        return _Described(directory, manifest["family"], config, bytes.fromhex(manifest["fingerprint"]))
    if not all(hasattr(model, name) for name in ("family", "config", "fingerprint", "synthesis")):
        raise ModelError(f"the model must be {MODEL_TYPES}; not {type(model).__name__}")
    return _Described(model, model.family, model.config, _fingerprint(model))


def default_model() -> Optional[Path]:
    """The installed model that compress uses without one: the first in DEFAULT that runs on this machine
    (tfgc.models.store.default_model)."""
    from tfgc.models.store import default_model as first_default

    return first_default(sr.cannot_run)


def _checked_max_pixels(max_pixels) -> Optional[int]:
    if max_pixels is None:
        return None
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, (int, np.integer)) or max_pixels < 1:
        raise ImageError(f"max_pixels must be a positive integer, not {max_pixels!r}")
    return int(max_pixels)


def file_bytes(data) -> bytes:
    """A .tfgc file given as bytes (bytes, bytearray, memoryview, a scalar string tf.Tensor) or as a path."""
    data = tensor_to_array(data, ".tfgc file")
    if isinstance(data, np.ndarray) and data.ndim == 0 and isinstance(data.item(), bytes):
        data = data.item()
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    if isinstance(data, (str, os.PathLike)):
        return read_file(data)
    raise FormatError(f"a .tfgc file must be given as bytes or as a path, not {type(data).__name__}")


def encode(image, model: Optional[ModelLike] = None, semantics=None, preserve=None, preserve_classes=None,
           max_pixels: Optional[int] = None) -> EncodeResult:
    """Compress `image` and report its rate: a path, an image file's bytes, a Pillow image, or an array or tf.Tensor
    [H, W(, 1|3|4)] of uint8 (or integers 0..255, or floats in [0, 1]). `model` is a model folder, an installed
    model's name or a loaded model; None means the installed default model.

    An sc model also needs `semantics`, the image's label map (path, bytes or array of ids in the model's label set),
    and takes what to preserve: `preserve` = "all" (the default), "none", or a binary mask (array or image path, at
    the image's size or the latent grid's), or `preserve_classes` = class names or ids. Images of more than
    `max_pixels` pixels (default: tfgc.codec.bitstream.MAX_IMAGE_PIXELS) are refused before they are decoded.
    """
    max_pixels = _checked_max_pixels(max_pixels)
    described = _describe(model)
    if described.family != "sc" and (semantics is not None or preserve is not None or preserve_classes is not None):
        raise ModelError(f"a {described.family} model takes no label map or preservation mask; those are for sc "
                         "models")
    if described.family == "sc" and semantics is None:
        raise ModelError("an sc model needs the image's semantic label map (--semantics LABELS.png)")
    pixels = load_image(image, max_pixels)
    if described.family == "sr":  # the base codec does the encoding: no network runs
        m = described.config.model
        return encode_sr(pixels, m.scale, m.base_quality, m.base_codec)
    model = _as_model(described.source)
    if model.family == "sc":
        return _encode_selective(pixels, model, semantics, preserve, preserve_classes)
    from tfgc.codec import entropy

    height, width = pixels.shape[:2]
    symbols = _analysis(model, pixels)
    use_uniform, latents = _code_latents(symbols, model)
    header = bitstream.Header(model.family, bitstream.FLAG_UNIFORM_TABLE if use_uniform else 0,
                              _fingerprint(model), height, width)
    levels = model.config.model.levels
    return EncodeResult(bitstream.pack(header, latents), height, width, use_uniform, int(symbols.size),
                        symbols.size * math.log2(levels), entropy.ideal_bits(symbols, model.coding_table()))


def _analysis(model, pixels: np.ndarray, classes: Optional[np.ndarray] = None) -> np.ndarray:
    """The model's symbols [h, w, C] of an image (and an sc model's classes), in tiles when it is large."""
    down = model.config.model.downsampling
    inputs = [(tiling.edge_pad(pixels[None], down), down)]
    if classes is not None:
        inputs.append((tiling.edge_pad(classes[None], down), down))
    grid = (inputs[0][0].shape[1] // down, inputs[0][0].shape[2] // down)
    tile = tiling.tile_cells(down)
    if not tiling.needs_tiles(model.config, grid, tile, pixels.shape[0] * pixels.shape[1]):
        return np.asarray(model.analysis(*[array for array, _ in inputs]))[0]
    return tiling.run(model.analysis, inputs, grid, 1, tiling.ANALYSIS_HALO, tile)[0]


def _synthesis(model, inputs, scale: int, height: int, width: int, transform) -> np.ndarray:
    """transform(*arrays, height, width) -> the decoded image [height, width, 3], in tiles when it is large.

    inputs: (array [1, ...], pixels per cell of the first array's grid) pairs, the first on the grid; `scale`: output
    pixels per cell."""
    grid = inputs[0][0].shape[1:3]
    tile = tiling.tile_cells(scale)
    if not tiling.needs_tiles(model.config, grid, tile, height * width):
        return np.asarray(transform(*[array for array, _ in inputs], height, width))[0]
    image = tiling.run(lambda *windows: transform(*windows, windows[0].shape[1] * scale, windows[0].shape[2] * scale),
                       inputs, grid, scale, tiling.synthesis_halo(model.config), tile)
    return image[0, :height, :width]


def _code_latents(symbols: np.ndarray, model):
    """(uniform table used, bytes): symbols [..., C] range coded with the model's table or the uniform one, whichever
    is shorter."""
    from tfgc.codec import entropy

    table = model.coding_table()
    learned = entropy.range_encode(symbols, table)
    uniform = entropy.range_encode(symbols, entropy.uniform_table(table.shape[0], model.config.model.levels))
    return (True, uniform) if len(uniform) < len(learned) else (False, learned)


def preservation_mask(model, classes: np.ndarray, preserve=None, preserve_classes=None) -> np.ndarray:
    """The latent mask [h, w] (uint8) that `preserve` or `preserve_classes` names for an image with these classes."""
    from tfgc import semantics

    m = model.config.model
    size = classes.shape
    if preserve is not None and preserve_classes is not None:
        raise ModelError("give either a preservation mask or classes to preserve, not both")
    if preserve_classes is not None:
        names = preserve_classes.split(",") if isinstance(preserve_classes, str) else [str(c) for c in preserve_classes]
        return semantics.mask_from_classes(classes, semantics.class_ids(names, m.label_set, m.semantic_classes),
                                           m.downsampling)
    grid = semantics.latent_shape(*size, m.downsampling)
    if preserve is None or (isinstance(preserve, str) and preserve == "all"):
        return np.ones(grid, np.uint8)
    if isinstance(preserve, str) and preserve == "none":
        return np.zeros(grid, np.uint8)
    return semantics.mask_from_image(preserve, size, m.downsampling)


def _encode_selective(pixels, model, label_map, preserve, preserve_classes) -> EncodeResult:
    from tfgc import semantics
    from tfgc.codec import entropy, selective

    m = model.config.model
    height, width = pixels.shape[:2]
    classes = semantics.load_classes(label_map, m.label_set, m.semantic_classes, size=(height, width))
    mask = preservation_mask(model, classes, preserve, preserve_classes)
    symbols = _analysis(model, pixels, classes)
    kept = symbols[mask.astype(bool)]  # [n, C], raster order
    use_uniform, latents = _code_latents(kept, model) if kept.size else (False, b"")
    label_coding, label_bytes = selective.encode_label_map(classes)
    mask_kind, mask_bytes = selective.encode_mask(mask)
    sections = bitstream.SelectiveSections(label_coding, label_bytes, mask_kind, mask_bytes, latents)
    header = bitstream.Header(model.family, bitstream.FLAG_UNIFORM_TABLE if use_uniform else 0,
                              _fingerprint(model), height, width)
    data = bitstream.pack(header, bitstream.pack_selective(sections))
    parts = {"latents": len(latents), "mask": len(mask_bytes), "label_map": len(label_bytes)}
    parts["overhead"] = len(data) - sum(parts.values())
    return EncodeResult(data, height, width, use_uniform, int(kept.size), kept.size * math.log2(m.levels),
                        entropy.ideal_bits(kept, model.coding_table()), parts, float(mask.mean()))


def encode_sr(image, scale: int = 4, quality: int = 75, base: str = "jpeg",
              max_pixels: Optional[int] = None) -> EncodeResult:
    """The super-resolution codec's file: `image` downsampled by `scale` (bicubic; 1 keeps its size) and coded by the
    `base` codec ("jpeg" as in RL-SRGAN, "webp", "avif", "heic") at `quality`. No model takes part: any sr decoder of
    that base and scale, learned or classic, reads the file."""
    sr.check_base(base)
    sr.check_scale(scale)
    sr.check_quality(quality, base)
    sr.base_codec(base)  # a missing plugin fails before the image is read
    pixels = load_image(image, max_pixels)
    height, width = pixels.shape[:2]
    stored = sr.encode_base(sr.downsample(pixels, scale), quality, base)
    flags = 0
    packed = bitstream.pack_base_container(stored, base)
    if packed is not None and len(packed) < len(stored):
        stored, flags = packed, bitstream.FLAG_PACKED_BASE
    header = bitstream.Header("sr", flags, sr.fingerprint(scale, base), height, width)
    data = bitstream.pack(header, bitstream.pack_sr(bitstream.SRPayload(base, scale, quality, stored)))
    parts = {"base": len(stored), "overhead": len(data) - len(stored)}
    return EncodeResult(data, height, width, False, 0, 0.0, 0.0, parts,
                        sr={"base": base, "scale": scale, "quality": quality})


def compress(image, model: Optional[ModelLike] = None) -> bytes:
    """The .tfgc file's bytes of `image` (see encode)."""
    return encode(image, model).data


def read_header(data: bytes) -> bitstream.Header:
    return bitstream.unpack(data)[0]


def decode(data: bytes, model: Optional[ModelLike] = None, alpha: Optional[float] = None,
           decoder: Optional[str] = None, max_pixels: Optional[int] = None) -> np.ndarray:
    """Decompress a .tfgc file (its bytes, or its path) to RGB uint8 [H, W, 3].

    Without `model`, the model is looked up by the file's fingerprint in $TFGC_MODEL_PATH and saved_models/.
    `alpha` in [0, 1] chooses the decoder of a fidelity-controlled model (0: the MSE decoder, 1: the GAN decoder,
    between: their interpolation); the file is the same for every alpha. sr files may also be decoded by a classic
    upscaler instead of a model: `decoder` = "bicubic" or "lanczos". A file declaring more than `max_pixels` pixels
    (default: tfgc.codec.bitstream.MAX_IMAGE_PIXELS) is refused before anything is allocated for it.
    """
    header, payload = bitstream.unpack(file_bytes(data), _checked_max_pixels(max_pixels))
    if decoder not in (None, "model"):
        return _decode_sr_classic(header, payload, decoder, model, alpha)
    if model is None:
        from tfgc.models.store import find_model

        found = find_model(header.fingerprint)
        if found is None:
            hint = " (or --decoder lanczos / bicubic)" if header.family == "sr" else ""
            raise ModelError(f"no installed model has fingerprint {header.fingerprint.hex()}; pass --model DIR{hint}")
        model = found
    described = _describe(model)
    if header.family != described.family:
        raise ModelMismatchError(f"file holds a bitstream of the {header.family} family; the model is of the "
                                 f"{described.family} family")
    m = described.config.model
    if described.family == "sr":  # the file names no model, only its base codec and scale
        stored = bitstream.unpack_sr(payload, header.version)
        if (stored.base, stored.scale) != (m.base_codec, m.scale):
            raise ModelMismatchError(f"file holds {sr.base_label(stored.base)} at 1/{stored.scale} size; the model "
                                     f"decodes {m.base_codec} bases at 1/{m.scale}")
    elif header.fingerprint != described.fingerprint:
        raise ModelMismatchError(f"file was written by model {header.fingerprint.hex()}, not by this model "
                                 f"({described.fingerprint.hex()})")
    checked_alpha(described.config, alpha)
    model = _as_model(described.source)
    if model.family == "sr":
        stored = _read_sr(header, payload)
        return _synthesis(model, [(stored.low[None], 1)], m.scale, header.height, header.width,
                          lambda low, h, w: model.synthesis(low, h, w, alpha=alpha))
    from tfgc.codec import entropy

    shape = (-(-header.height // m.downsampling), -(-header.width // m.downsampling), m.latent_channels)
    table = model.coding_table()
    if header.uniform_table:
        table = entropy.uniform_table(table.shape[0], m.levels)
    if model.family == "sc":
        classes, mask, sections = read_selective(header, payload, m.classes)
        symbols = np.zeros(shape, np.int32)
        preserved = mask.astype(bool)
        count = int(preserved.sum())
        if count:
            symbols[preserved] = entropy.range_decode(sections.latents, table, (count, m.latent_channels))
        elif sections.latents:
            raise FormatError("sc file stores latent bytes but its mask preserves nothing")
        down = m.downsampling
        inputs = [(symbols[None], 1), (tiling.edge_pad(classes[None], down), down), (mask[None], 1)]
        return _synthesis(model, inputs, down, header.height, header.width,
                          lambda s, c, k, h, w: model.synthesis(s, c, k, h, w, alpha=alpha))
    symbols = entropy.range_decode(payload, table, shape)
    return _synthesis(model, [(symbols[None], 1)], m.downsampling, header.height, header.width,
                      lambda s, h, w: model.synthesis(s, h, w, alpha=alpha))


def read_selective(header: bitstream.Header, payload: bytes, classes: int = 256):
    """An sc file's label map [H, W], latent mask [h, w] and sections, decoded and checked (no model needed)."""
    from tfgc.codec import selective
    from tfgc.semantics import latent_shape

    sections = bitstream.unpack_selective(payload)
    label_map = selective.decode_label_map(sections.label_coding, sections.label_map, header.height, header.width,
                                           classes)
    mask = selective.decode_mask(sections.mask_kind, sections.mask, *latent_shape(header.height, header.width))
    return label_map, mask, sections


@dataclass(frozen=True)
class StoredLowResolution:
    base: str
    scale: int
    quality: int
    low: np.ndarray  # the decoded base image, uint8 [ceil(H/r), ceil(W/r), 3]


def _read_sr(header: bitstream.Header, payload: bytes) -> StoredLowResolution:
    stored = bitstream.unpack_sr(payload, header.version)
    if header.fingerprint != sr.fingerprint(stored.scale, stored.base):
        raise FormatError("sr file's fingerprint does not match its base codec and scale")
    data = bitstream.unpack_base_container(stored.data, stored.base) if header.packed_base else stored.data
    low = sr.decode_base(data, *sr.low_resolution_size(header.height, header.width, stored.scale), stored.base)
    return StoredLowResolution(stored.base, stored.scale, stored.quality, low)


def _decode_sr_classic(header, payload, decoder: str, model, alpha) -> np.ndarray:
    if decoder not in sr.CLASSIC_DECODERS:
        raise ModelError(f"unknown decoder {decoder!r}: model, {', '.join(sr.CLASSIC_DECODERS)}")
    if header.family != "sr":
        raise ModelError(f"--decoder {decoder} decodes sr files; this one holds a {header.family} bitstream")
    if model is not None or alpha is not None:
        raise ModelError(f"the {decoder} decoder takes no model and no alpha")
    stored = _read_sr(header, payload)
    return sr.upscale(stored.low, stored.scale, decoder, header.height, header.width)


def read_sr(data: bytes) -> StoredLowResolution:
    """An sr file's base codec, scale, quality and decoded base image (no model needed)."""
    header, payload = bitstream.unpack(data)
    if header.family != "sr":
        raise ModelError(f"file holds a {header.family} bitstream, not an sr one")
    return _read_sr(header, payload)


decompress = decode
