"""Memory of one loaded model meeting image sizes it has not seen: the diagnosis behind the soak benchmark.

    python scripts/new_sizes.py --model gc-small-c8 --files 400 [--trim] [--out new-sizes.json]

After a warm-up (--warm-up files of random sizes, each encoded and decoded), it encodes --files files of new random
sizes (--min-side to --max-side pixels), then decodes each of them twice: once when its size is new to the process,
once when it is not. The resident set size is printed every 100 files of each phase, beside TensorFlow's CPU
allocator's bytes in use and its peak so far, and with --trim also after glibc's malloc_trim(0), which returns the C
heap's free pages (what it gives back was the heap's free space, not live memory). Growth in the first pass alone is
memory kept per size met; growth in both passes is a leak. Setting TF_ENABLE_ONEDNN_OPTS=0 (TensorFlow's oneDNN
kernels and their allocator off) tells oneDNN's part apart.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import random
import sys

from tfgc.utils import resident_mib


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="a gc, sc or sr model folder or installed name")
    p.add_argument("--files", type=int, default=400)
    p.add_argument("--warm-up", type=int, default=100)
    p.add_argument("--min-side", type=int, default=16)
    p.add_argument("--max-side", type=int, default=768)
    p.add_argument("--trim", action="store_true", help="also report the RSS after malloc_trim(0) (glibc)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", help="write the samples as JSON here")
    args = p.parse_args(argv)

    import numpy as np
    import tensorflow as tf

    from tfgc.codec import api
    from tfgc.codec.io import load_image
    from tfgc.data import bundled_images
    from tfgc.models.store import load_model

    trim = ctypes.CDLL("libc.so.6").malloc_trim if args.trim else None
    rng = random.Random(args.seed)
    photos = [load_image(path) for path in bundled_images()]
    model = load_model(args.model)

    def new_file() -> bytes:
        height, width = (rng.randint(args.min_side, args.max_side) for _ in range(2))
        photo = photos[rng.randrange(len(photos))]
        image = np.tile(photo, (-(-height // photo.shape[0]), -(-width // photo.shape[1]), 1))[:height, :width]
        options = {}
        if model.family == "sc":  # two regions of the label map, every cell kept
            labels = np.full((height, width), 7, np.uint8)
            labels[:, width // 2:] = 26
            options = dict(semantics=labels, preserve="all")
        return api.encode(image, model, **options).data

    samples = []

    def sample(phase: str, count: int) -> None:
        row = {"phase": phase, "files": count, "rss_mib": round(resident_mib(), 1)}
        # TensorFlow's CPU allocator: bytes in use now and at most so far (its pool, which RSS holds, is not shown)
        info = tf.config.experimental.get_memory_info("CPU:0")
        row.update(tensorflow_mib=round(info["current"] / 2**20, 1), tensorflow_peak_mib=round(info["peak"] / 2**20, 1))
        if trim is not None:
            trim(0)
            row["rss_after_trim_mib"] = round(resident_mib(), 1)
        samples.append(row)
        print(json.dumps(row), flush=True)

    for _ in range(args.warm_up):
        api.decode(new_file(), model)
    sample("after warm-up", args.warm_up)
    files = []
    for index in range(args.files):
        files.append(new_file())
        if index % 100 == 99 or index + 1 == args.files:
            sample("encode, new sizes", index + 1)
    for phase in ("decode, new sizes", "decode, the same sizes again"):
        for index, data in enumerate(files):
            api.decode(data, model)
            if index % 100 == 99 or index + 1 == len(files):
                sample(phase, index + 1)
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"command": "python scripts/new_sizes.py " + " ".join(sys.argv[1:] if argv is None else argv),
                       "model": args.model, "samples": samples}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
