"""What each lossless coder an sc file can use costs on real label maps, and how long tfgc's context coder takes.

    python scripts/label_map_rates.py cityscapes_samples --downscale 2

Reads every *_labelIds.png under the folders (Cityscapes' gtFine labelIds; any one-channel label map with
--pattern), maps ids to the model's classes (--label-set), shrinks it as `tfgc selective` does (nearest, by
--downscale), and prints bits per pixel of PNG, WebP lossless, JPEG XL lossless (where pillow-jxl-plugin is installed;
effort 7, the one sc files use, and 9) and the context coder, then the context coder's seconds per megapixel. Every
context-coded map is decoded and compared.
"""

from __future__ import annotations

import argparse
import io
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image


def _coded_size(image: Image.Image, **options) -> int:
    buffer = io.BytesIO()
    image.save(buffer, **options)
    return len(buffer.getvalue())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("folders", nargs="+")
    p.add_argument("--pattern", default="*_labelIds.png")
    p.add_argument("--downscale", type=int, default=2)
    p.add_argument("--label-set", default="cityscapes", choices=["cityscapes", "identity"])
    args = p.parse_args(argv)

    from tfgc.codec import context_coder
    from tfgc.codec.sc import _jxl_available
    from tfgc.data.labels import read_label_ids, to_classes

    paths = sorted(path for folder in args.folders for path in Path(folder).rglob(args.pattern))
    if not paths:
        print(f"label_map_rates: no {args.pattern} under {' '.join(args.folders)}", file=sys.stderr)
        return 1
    coders = {"png": {"format": "PNG", "optimize": True},
              "webp": {"format": "WEBP", "lossless": True, "quality": 100, "method": 4}}
    if _jxl_available():
        coders.update({"jxl (effort 7)": {"format": "JXL", "lossless": True, "effort": 7},
                       "jxl (effort 9)": {"format": "JXL", "lossless": True, "effort": 9}})
    rates = {name: [] for name in [*coders, "context"]}
    encode_seconds, decode_seconds, megapixels = 0.0, 0.0, 0.0
    for path in paths:
        ids = read_label_ids(str(path))
        if args.downscale > 1:
            size = (ids.shape[1] // args.downscale, ids.shape[0] // args.downscale)
            ids = np.asarray(Image.fromarray(ids).resize(size, Image.NEAREST))
        classes = np.ascontiguousarray(to_classes(ids, args.label_set, 256 if args.label_set == "identity" else 0),
                                       np.uint8)
        image = Image.fromarray(classes, "L")
        for name, options in coders.items():
            rates[name].append(8 * _coded_size(image, **options) / classes.size)
        start = time.perf_counter()
        data = context_coder.encode(classes)
        encode_seconds += time.perf_counter() - start
        start = time.perf_counter()
        decoded = context_coder.decode(data, *classes.shape)
        decode_seconds += time.perf_counter() - start
        if not np.array_equal(decoded, classes):
            print(f"label_map_rates: {path.name} did not decode to itself", file=sys.stderr)
            return 1
        rates["context"].append(8 * len(data) / classes.size)
        megapixels += classes.size / 1e6
    from tfgc.reports.writer import describe_machine, environment

    height, width = classes.shape
    print(f"{len(paths)} label maps, {width}x{height} (downscale {args.downscale}); "
          f"{describe_machine(environment()['machine'])}, Python {platform.python_version()}")
    for name, values in rates.items():
        print(f"  {name:16s} {statistics.mean(values):.4f} bpp (min {min(values):.4f}, max {max(values):.4f})")
    print(f"  context coder: encode {encode_seconds / megapixels:.2f} s/MP, decode {decode_seconds / megapixels:.2f} "
          "s/MP")
    return 0


if __name__ == "__main__":
    sys.exit(main())
