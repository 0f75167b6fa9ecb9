"""The codecs people would use instead, through Pillow and its plugins, each with a quality sweep for RD curves.

JPEG, WebP and AVIF are Pillow's own (AVIF since Pillow 11.2's wheels); HEIC comes from pillow-heif, whose HEVC
encoder is x265 (the intra coder behind BPG); JPEG XL from pillow-jxl-plugin. `pip install "tfgc[bench]"` brings the
plugins.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Callable, Dict, Tuple

import numpy as np
from PIL import Image, features

from tfgc.errors import ConfigError


@dataclass(frozen=True)
class ClassicCodec:
    name: str
    label: str
    pillow_format: str
    qualities: Tuple[int, ...]  # the sweep, from low to high rate
    available: Callable[[], bool]
    save_options: Tuple[Tuple[str, object], ...] = ()

    def encode(self, image: np.ndarray, quality: int) -> bytes:
        buffer = io.BytesIO()
        Image.fromarray(image, "RGB").save(buffer, format=self.pillow_format, quality=int(quality),
                                           **dict(self.save_options))
        return buffer.getvalue()

    def decode(self, data: bytes) -> np.ndarray:
        with Image.open(io.BytesIO(data)) as image:
            return np.asarray(image.convert("RGB"))


def _has_heif() -> bool:
    try:
        import pillow_heif
    except ImportError:
        return False
    pillow_heif.register_heif_opener()
    return True


def _has_jxl() -> bool:
    try:
        import pillow_jxl  # noqa: F401  (registers the JXL plugin on import)
    except ImportError:
        return False
    return True


CODECS: Dict[str, ClassicCodec] = {c.name: c for c in [
    ClassicCodec("jpeg", "JPEG (libjpeg, 4:2:0)", "JPEG", (1, 2, 3, 5, 8, 10, 15, 20, 30, 40, 50, 75),
                 lambda: True, (("optimize", True),)),
    ClassicCodec("webp", "WebP (libwebp)", "WEBP", (0, 2, 5, 10, 20, 30, 40, 50, 70),
                 lambda: features.check("webp"), (("method", 6),)),
    ClassicCodec("avif", "AVIF (libavif/aom)", "AVIF", (0, 5, 10, 15, 20, 25, 30, 40, 50, 60),
                 lambda: features.check("avif")),
    ClassicCodec("heic", "HEIC (x265)", "HEIF", (0, 5, 10, 15, 20, 25, 30, 40, 50, 60), _has_heif),
    ClassicCodec("jxl", "JPEG XL (libjxl)", "JXL", (0, 5, 10, 20, 30, 40, 50, 70), _has_jxl),
]}


def get_codec(name: str) -> ClassicCodec:
    try:
        codec = CODECS[name]
    except KeyError:
        raise ConfigError(f"unknown codec {name!r}; known: {', '.join(CODECS)}") from None
    if not codec.available():
        raise ConfigError(f"codec {name} is not available here: pip install 'tfgc[bench]' "
                          "(pillow-heif for heic, pillow-jxl-plugin for jxl; Pillow >= 11.2 wheels for avif)")
    return codec
