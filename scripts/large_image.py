"""Peak memory and time of compressing and decompressing a large image (24 megapixels by default), each in a fresh
`python -m tfgc` process, as a user runs them.

    python scripts/large_image.py --model runs/gc-small/model [--model ...] [--width 6000 --height 4000]

The image is a bundled photograph resized (bicubic) to the size, saved as PNG; an sc model also gets a street-like
label map of that size (Cityscapes ids: sky, buildings, road and a band of cars) and preserves the cars. Peak memory
is the process's maximum resident set size (wait4's ru_maxrss), TensorFlow's own footprint included; for scale, the
baseline is `python -m tfgc info` on the compressed file, which starts Python, tfgc and TensorFlow and reads the
file but transforms nothing. The decoded PNG is checked to have the original's size.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def measured(args) -> dict:
    """Run `python -m tfgc ARGS` and return its exit code, wall seconds and peak RSS in MiB; a refusal (exit 1)
    with its line of stderr; anything else that fails (a signal, an abort, a traceback) ends the script."""
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "tfgc", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    stdout, stderr = process.stdout.read().decode(), process.stderr.read().decode()
    code = os.waitstatus_to_exitcode(status)
    lines = stderr.strip().splitlines()
    if code not in (0, 1) or (code == 1 and len(lines) != 1):
        raise SystemExit(f"python -m tfgc {' '.join(args)} failed ({code}): {stderr.strip()}")
    result = {"seconds": round(seconds, 1), "peak_rss_mib": round(usage.ru_maxrss / 1024), "stdout": stdout.strip()}
    if code:
        result["refused"] = lines[0]
    return result


def _make_inputs(folder: Path, width: int, height: int) -> None:
    """large.png (a bundled photograph resized) and labels.png, a Cityscapes label-id map of its size: sky,
    buildings, a band of cars, road."""
    import numpy as np
    from PIL import Image

    from tfgc.data import bundled_images

    with Image.open(bundled_images()[0]) as photo:
        photo.convert("RGB").resize((width, height), Image.BICUBIC).save(folder / "large.png")
    rows = np.empty(height, np.uint8)
    for start, label in ((0, 23), (0.3, 11), (0.6, 26), (0.7, 7)):  # sky, building, car, road
        rows[int(start * height):] = label
    Image.fromarray(np.repeat(rows[:, None], width, axis=1), "L").save(folder / "labels.png")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", nargs="+", required=True, help="model folders or installed names (gc, sc, sr)")
    p.add_argument("--width", type=int, default=6000)
    p.add_argument("--height", type=int, default=4000)
    p.add_argument("--compress-only", action="store_true", help="measure compress alone (no decompress)")
    p.add_argument("--out", help="write the results as JSON here")
    args = p.parse_args(argv)
    from PIL import Image

    from tfgc.models.store import read_manifest

    with tempfile.TemporaryDirectory(prefix="tfgc-large-") as folder:
        folder = Path(folder)
        source = folder / "large.png"
        # Made in a process of its own: Linux starts a child's peak RSS at its parent's, so this process stays small
        # for the measured ones.
        maker = multiprocessing.get_context("spawn").Process(target=_make_inputs,
                                                             args=(folder, args.width, args.height))
        maker.start()
        maker.join()
        if maker.exitcode:
            raise SystemExit(f"could not make the {args.width}x{args.height} image")
        pixels = args.width * args.height
        rows = []
        for model in args.model:
            manifest = read_manifest(model)  # a folder, a folder of versions or an installed name
            codec = {"sr": ["--codec", "sr"],
                     "sc": ["--semantics", str(folder / "labels.png"),
                            "--preserve-classes", "car"]}.get(manifest["family"], [])
            compressed, decoded = folder / "large.tfgc", folder / "decoded.png"
            for path in (compressed, decoded):
                path.unlink(missing_ok=True)
            compress = measured(["compress", str(source), str(compressed), "--model", str(model), *codec, "--quiet"])
            row = {"model": str(model), "family": manifest["family"], "preset": manifest.get("preset"),
                   "pixels": pixels, "compress": compress}
            rows.append(row)
            if "refused" in compress:
                print(f"{model} ({manifest['family']}): {args.width}x{args.height} = {pixels / 1e6:.1f} MP refused "
                      f"in {compress['seconds']} s, peak {compress['peak_rss_mib']} MiB: {compress['refused']}",
                      flush=True)
                continue
            baseline = measured(["info", str(compressed)])
            size = compressed.stat().st_size
            row.update({"bytes": size, "bpp": 8 * size / pixels, "baseline": baseline})
            line = (f"{model} ({manifest['family']}): {args.width}x{args.height} = {pixels / 1e6:.1f} MP, "
                    f"{size} bytes ({row['bpp']:.4f} bpp); compress {compress['seconds']} s, peak "
                    f"{compress['peak_rss_mib']} MiB")
            baseline_text = f"baseline (info) {baseline['peak_rss_mib']} MiB"
            if args.compress_only:
                print(f"{line}; {baseline_text}", flush=True)
                continue
            decompress = measured(["decompress", str(compressed), str(decoded), "--model", str(model), "--quiet"])
            if "refused" in decompress:
                raise SystemExit(f"{model}: compressed, then refused to decompress: {decompress['refused']}")
            with Image.open(decoded) as image:
                if image.size != (args.width, args.height):
                    raise SystemExit(f"decoded {image.size}, expected {(args.width, args.height)}")
            row["decompress"] = decompress
            print(f"{line}; decompress {decompress['seconds']} s, peak {decompress['peak_rss_mib']} MiB; "
                  f"{baseline_text}", flush=True)
    result = {"command": "python scripts/large_image.py " + " ".join(sys.argv[1:] if argv is None else argv),
              "width": args.width, "height": args.height, "rows": rows}
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
