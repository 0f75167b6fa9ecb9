"""How fast tfgc's command line refuses what it can refuse without a model, and whether it imported TensorFlow to
do so: each case runs in a fresh interpreter, as a user's command would.

    python scripts/error_latency.py              # every case, three runs each: median wall seconds
    python scripts/error_latency.py --repeat 5

Every case is a mistake a user makes (a missing file, a wrong model name, a bad output extension, alpha out of
range...). Each must end in one line on stderr and a non-zero exit without TensorFlow being imported; the test suite
runs the same cases (tests/test_cli.py) and checks the import, not the time.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# {image}: a photograph; {file}: a valid .tfgc file (an sr file, written without a model); {text}: a text file;
# {out}: a path that does not exist yet in an existing folder; {folder}: an empty folder; {model}: the installed gc
# model gc-small-c8 (shipped in the repository's saved_models/)
CASES = {
    "compress: missing input": ["-m", "tfgc", "compress", "{folder}/missing.png", "{out}.tfgc"],
    "compress: input is not an image": ["-m", "tfgc", "compress", "{text}", "{out}.tfgc"],
    "compress: unknown model name": ["-m", "tfgc", "compress", "{image}", "{out}.tfgc", "--model", "no-such-model"],
    "compress: folder that is not a model": ["-m", "tfgc", "compress", "{image}", "{out}.tfgc", "--model", "{folder}"],
    "compress: a file as model": ["-m", "tfgc", "compress", "{image}", "{out}.tfgc", "--model", "{text}"],
    "compress: output folder missing": ["-m", "tfgc", "compress", "{image}", "{folder}/no/result.tfgc"],
    "compress: missing input, gc model": ["-m", "tfgc", "compress", "{folder}/missing.png", "{out}.tfgc", "--model",
                                          "{model}"],
    "compress: a folder of no model or versions": ["-m", "tfgc", "compress", "{image}", "{out}.tfgc", "--model",
                                                   "{folder}/.."],
    "compress: output exists": ["-m", "tfgc", "compress", "{image}", "{text}"],
    "compress: label map for a gc model": ["-m", "tfgc", "compress", "{image}", "{out}.tfgc", "--model", "{model}",
                                           "--semantics", "{image}"],
    "decompress: missing input": ["-m", "tfgc", "decompress", "{folder}/missing.tfgc", "{out}.png"],
    "decompress: not a .tfgc file": ["-m", "tfgc", "decompress", "{text}", "{out}.png"],
    "decompress: unknown output extension": ["-m", "tfgc", "decompress", "{file}", "{out}.xyz"],
    "decompress: alpha out of range": ["-m", "tfgc", "decompress", "{file}", "{out}.png", "--alpha", "1.5"],
    "decompress: alpha for a model of one decoder": ["-m", "tfgc", "decompress", "{sr_file}", "{out}.png", "--model",
                                                     "rlsrgan-small-x4", "--alpha", "0.5"],
    "decompress: unknown model name": ["-m", "tfgc", "decompress", "{file}", "{out}.png", "--model", "no-such-model"],
    "decompress: file of another family": ["-m", "tfgc", "decompress", "{file}", "{out}.png", "--model", "{model}"],
    "info: not a .tfgc file": ["-m", "tfgc", "info", "{text}"],
    "eval: missing data folder": ["-m", "tfgc", "eval", "--data", "{folder}/missing", "--model", "{model}"],
    "eval: unknown model name": ["-m", "tfgc", "eval", "--data", "{folder}", "--model", "no-such-model"],
    "export: unknown model name": ["-m", "tfgc", "export", "--model", "no-such-model", "--out", "{out}"],
    "train: missing data folder": ["-m", "tfgc.train", "--preset", "gc-tiny", "--data", "{folder}/missing",
                                   "--out", "{out}"],
    "train: stage 2 from an unknown model": ["-m", "tfgc.train", "--preset", "gc-tiny", "--stage", "2",
                                             "--init-from", "no-such-model", "--out", "{out}"],
}

# Run by the cases' interpreter: the command's exit code and whether TensorFlow was imported, on stdout's last line.
PROBE = """
import runpy, sys
module, argv = sys.argv[1], sys.argv[2:]
sys.argv = [module] + argv
try:
    runpy.run_module(module, run_name="__main__", alter_sys=True)
    code = 0
except SystemExit as e:
    code = e.code if isinstance(e.code, int) else 1
print("PROBE", code, "tensorflow" in sys.modules, file=sys.__stdout__)
"""


def make_fixtures(folder: Path) -> dict:
    """The files the cases name, made in `folder` without TensorFlow."""
    from PIL import Image

    from tfgc.codec import api
    from tfgc.data import bundled_images
    image = folder / "photo.png"
    Image.open(bundled_images()[0]).convert("RGB").resize((96, 64)).save(image)
    tfgc_file = folder / "photo.tfgc"
    tfgc_file.write_bytes(api.encode_sr(str(image), 2, 75, "jpeg").data)
    sr_file = folder / "photo-x4.tfgc"
    sr_file.write_bytes(api.encode_sr(str(image), 4, 75, "jpeg").data)
    text = folder / "notes.txt"
    text.write_text("not an image\n")
    empty = folder / "empty"
    empty.mkdir()
    return {"image": str(image), "file": str(tfgc_file), "sr_file": str(sr_file), "text": str(text),
            "folder": str(empty), "out": str(folder / "result"), "model": "gc-small-c8"}


def run_case(argv, fixtures: dict, cwd: Path):
    """(exit code, TensorFlow imported, stderr, wall seconds) of one case in a fresh interpreter."""
    args = [part.format(**fixtures) for part in argv]
    module = args[1]
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", PROBE, module, *args[2:]], capture_output=True, text=True,
                          cwd=cwd)
    seconds = time.perf_counter() - start
    probe = [line for line in done.stdout.splitlines() if line.startswith("PROBE ")]
    if not probe:
        raise RuntimeError(f"{' '.join(args)}: no probe line; stderr: {done.stderr[-2000:]}")
    _, code, imported = probe[-1].split()
    return int(code), imported == "True", done.stderr, seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per case (the median is printed)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        fixtures = make_fixtures(Path(tmp))
        print(f"{'case':48s} {'exit':>4s} {'TF':>3s} {'median s':>8s}  message")
        failures = 0
        for name, argv in CASES.items():
            runs = [run_case(argv, fixtures, Path(tmp)) for _ in range(args.repeat)]
            code, imported, stderr, _ = runs[0]
            lines = stderr.strip().splitlines()
            ok = code != 0 and not imported and len(lines) == 1
            failures += not ok
            print(f"{name:48s} {code:4d} {'yes' if imported else 'no':>3s} "
                  f"{statistics.median(r[3] for r in runs):8.2f}  {lines[-1] if lines else ''}"
                  f"{'' if ok else '   <- FAILS'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
