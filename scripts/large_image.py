"""Peak memory and time of compressing and decompressing a large image (24 megapixels by default), each in a fresh
`python -m tfgc` process, as a user runs them.

    python scripts/large_image.py --model runs/gc-small/model [--model ...] [--width 6000 --height 4000]

The image is a bundled photograph resized (bicubic) to the size, saved as PNG. Peak memory is the process's maximum
resident set size (wait4's ru_maxrss), TensorFlow's own footprint included; for scale, the baseline is `python -m tfgc
info` on the compressed file, which starts Python, tfgc and TensorFlow and reads the file but transforms nothing. The
decoded PNG is checked to have the original's size.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def measured(args) -> dict:
    """Run `python -m tfgc ARGS` and return its exit code, wall seconds and peak RSS in MiB."""
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "tfgc", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    stdout, stderr = process.stdout.read().decode(), process.stderr.read().decode()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"python -m tfgc {' '.join(args)} failed ({code}): {stderr.strip()}")
    return {"seconds": round(seconds, 1), "peak_rss_mib": round(usage.ru_maxrss / 1024), "stdout": stdout.strip()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", nargs="+", required=True,
                   help="model folders or installed names (gc, sc needs labels: not here; sr)")
    p.add_argument("--width", type=int, default=6000)
    p.add_argument("--height", type=int, default=4000)
    p.add_argument("--out", help="write the results as JSON here")
    args = p.parse_args(argv)
    from PIL import Image

    from tfgc.data import bundled_images
    from tfgc.models.store import read_manifest

    with tempfile.TemporaryDirectory(prefix="tfgc-large-") as folder:
        folder = Path(folder)
        source = folder / "large.png"
        with Image.open(bundled_images()[0]) as photo:
            photo.convert("RGB").resize((args.width, args.height), Image.BICUBIC).save(source)
        pixels = args.width * args.height
        rows = []
        for model in args.model:
            manifest = read_manifest(model)  # a folder, a folder of versions or an installed name
            codec = ["--codec", "sr"] if manifest["family"] == "sr" else []
            compressed, decoded = folder / "large.tfgc", folder / "decoded.png"
            for path in (compressed, decoded):
                path.unlink(missing_ok=True)
            compress = measured(["compress", str(source), str(compressed), "--model", str(model), *codec, "--quiet"])
            baseline = measured(["info", str(compressed)])
            decompress = measured(["decompress", str(compressed), str(decoded), "--model", str(model), "--quiet"])
            with Image.open(decoded) as image:
                if image.size != (args.width, args.height):
                    raise SystemExit(f"decoded {image.size}, expected {(args.width, args.height)}")
            row = {"model": str(model), "family": manifest["family"], "preset": manifest.get("preset"),
                   "pixels": pixels, "bytes": compressed.stat().st_size,
                   "bpp": 8 * compressed.stat().st_size / pixels, "compress": compress, "decompress": decompress,
                   "baseline": baseline}
            rows.append(row)
            print(f"{model} ({manifest['family']}): {args.width}x{args.height} = {pixels / 1e6:.1f} MP, "
                  f"{row['bytes']} bytes ({row['bpp']:.4f} bpp); compress {compress['seconds']} s, peak "
                  f"{compress['peak_rss_mib']} MiB; decompress {decompress['seconds']} s, peak "
                  f"{decompress['peak_rss_mib']} MiB; baseline (info) {baseline['peak_rss_mib']} MiB", flush=True)
    result = {"command": "python scripts/large_image.py " + " ".join(sys.argv[1:] if argv is None else argv),
              "width": args.width, "height": args.height, "rows": rows}
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
