"""Memory of one long-lived decoding process: many decodes of valid and hostile files of every family through loaded
models, then many decodes that load their model by path, the resident set size sampled throughout.

    python scripts/soak.py --decodes 10000 --loads 200 --out soak.json --plot soak.png

Models: --model DIR ... (default: the shipped gc-small-c8, heic-x2 and rlsrgan-small-x4 from saved_models/, and a tiny
sc model with GDN and fixed random weights, as no sc model ships). For each model, valid files are made of crops of
random sizes (--min-side to --max-side pixels) of the bundled photographs, --large of them larger than a tile (1,100 to
1,600 pixels a side), and hostile ones from them: truncated, bit-flipped behind a fixed checksum, and with forged image
sizes. Decodes take the files in a random order, mixed across models; every --fresh-every decodes, one more valid file
of a new random size is made and decoded, so new sizes keep coming after the warm-up. Refusals (tfgc's one-line
errors) are expected; anything else stops the run. The growth after warm-up (the first --warm-up decodes, which meet
each model's shapes for the first time) is the figure that matters: a leak shows as a steady rise, a cache as a plateau.
The decodes by path are measured the same way after their own warm-up (--load-warm-up: the first loads of each model).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

from tfgc.utils import resident_mib


def hostile(data: bytes, rng: random.Random):
    """(kind, bytes) of one damaged or forged variant of a valid file."""
    from tfgc import fuzz
    from tfgc.codec import bitstream

    kind = rng.choice(["truncated", "payload bit flip, checksum fixed", "forged size"])
    if kind == "truncated":
        return kind, data[:rng.randrange(len(data))]
    if kind == "forged size":
        return kind, fuzz.set_header(fuzz.set_header(data, 15, ">I", rng.randrange(1, 4096)), 19, ">I",
                                     rng.randrange(1, 4096))
    bit = rng.randrange(8 * bitstream.HEADER_SIZE, 8 * (len(data) - 4)) if len(data) > bitstream.OVERHEAD else 0
    return kind, fuzz.with_crc(fuzz.flip(data, bit))


def make_files(model, family: str, sizes, rng: random.Random, photos):
    """Valid files of the given (height, width) sizes (an sc file with a label map of two regions, every cell
    kept)."""
    import numpy as np

    from tfgc.codec import api

    files = []
    for height, width in sizes:
        photo = photos[rng.randrange(len(photos))]
        image = np.tile(photo, (-(-height // photo.shape[0]), -(-width // photo.shape[1]), 1))[:height, :width]
        if family == "sc":
            labels = np.full((height, width), 7, np.uint8)
            labels[:, width // 2:] = 26
            files.append(api.encode(image, model, semantics=labels, preserve="all").data)
        else:
            files.append(api.encode(image, model).data)
    return files


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", nargs="+", help="model directories (default: the shipped ones and a tiny sc model)")
    p.add_argument("--decodes", type=int, default=10000)
    p.add_argument("--loads", type=int, default=200, help="decodes that load their model by path")
    p.add_argument("--files", type=int, default=40, help="valid files per model")
    p.add_argument("--large", type=int, default=2, help="of those, files larger than a tile")
    p.add_argument("--fresh-every", type=int, default=20, help="decodes between files of new sizes (0: none)")
    p.add_argument("--min-side", type=int, default=16)
    p.add_argument("--max-side", type=int, default=768)
    p.add_argument("--warm-up", type=int, default=1000, help="decodes before the growth is measured")
    p.add_argument("--load-warm-up", type=int, default=20,
                   help="decodes by path before the growth over loads is measured (each model's first loads)")
    p.add_argument("--sample-every", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="write the samples and figures as JSON here")
    p.add_argument("--plot", help="draw the resident set size over the run into this PNG")
    args = p.parse_args(argv)
    if args.warm_up >= args.decodes or (args.loads and args.load_warm_up >= args.loads):
        raise SystemExit("--warm-up must be below --decodes and --load-warm-up below --loads")

    from tfgc.codec import api
    from tfgc.config import preset
    from tfgc.codec.io import load_image
    from tfgc.data import bundled_images
    from tfgc.errors import TfgcError
    from tfgc.models.registry import build_model
    from tfgc.models.store import load_model, save_model
    from tfgc.reports.writer import environment

    rng = random.Random(args.seed)
    photos = [load_image(path) for path in bundled_images()]
    with tempfile.TemporaryDirectory(prefix="tfgc-soak-") as work:
        directories = [Path(d) for d in args.model] if args.model else \
            [Path("saved_models") / name for name in ("gc-small-c8", "heic-x2", "rlsrgan-small-x4")] + \
            [Path(work) / "sc"]
        if not args.model:  # an sc model that works in tiles, as the shipped gc and sr ones do
            import tensorflow as tf

            tf.keras.utils.set_random_seed(0)
            save_model(build_model(preset("sc-tiny").replace(normalization="gdn"), for_training=False),
                       Path(work) / "sc")

        def sizes(count, large=0):
            return [(rng.randint(1100, 1600), rng.randint(1100, 1600)) if i < large else
                    (rng.randint(args.min_side, args.max_side), rng.randint(args.min_side, args.max_side))
                    for i in range(count)]

        models, pool = [], []
        for directory in directories:
            model = load_model(directory)
            models.append((directory, model))
            valid = make_files(model, model.family, sizes(args.files, args.large), rng, photos)
            pool += [(len(models) - 1, "valid", data) for data in valid]
            pool += [(len(models) - 1, *hostile(data, rng)) for data in valid]
            print(f"{directory} ({model.family}): {len(valid)} valid files and as many hostile", flush=True)

        samples, outcomes = [], {}
        started = time.perf_counter()
        for index in range(args.decodes + args.loads):
            by_path = index >= args.decodes
            which, kind, data = pool[rng.randrange(len(pool))]
            directory, model = models[which]
            if args.fresh_every and index % args.fresh_every == args.fresh_every - 1:
                kind, data = "valid, new size", make_files(model, model.family, sizes(1), rng, photos)[0]
            try:
                api.decode(data, directory if by_path else model)
                outcome = "decoded"
            except TfgcError:
                outcome = "refused"
            key = f"{'by path' if by_path else 'loaded'}, {kind}: {outcome}"
            outcomes[key] = outcomes.get(key, 0) + 1
            if index % args.sample_every == 0 or index + 1 in (args.decodes, args.decodes + args.load_warm_up,
                                                               args.decodes + args.loads):
                samples.append({"decode": index + 1, "by_path": by_path, "rss_mib": round(resident_mib(), 1),
                                "seconds": round(time.perf_counter() - started, 1)})
                if index % (10 * args.sample_every) == 0:
                    print(f"{index + 1} decodes, {samples[-1]['rss_mib']:.0f} MiB, {samples[-1]['seconds']:.0f} s",
                          flush=True)

    def rss_at(decode):
        return min((s for s in samples if s["decode"] >= decode), key=lambda s: s["decode"])["rss_mib"]

    warm = rss_at(args.warm_up)
    loaded_end = rss_at(args.decodes)
    loads_warm = rss_at(args.decodes + args.load_warm_up) if args.loads else loaded_end
    end = samples[-1]["rss_mib"]
    result = {
        "command": "python scripts/soak.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "models": [str(d) if args.model or d.name != "sc" else "sc-tiny with GDN (fixed random weights)"
                   for d, _ in models],
        "environment": environment(), "decodes": args.decodes, "loads": args.loads,
        "rss_after_warm_up_mib": warm, "rss_after_decodes_mib": loaded_end, "rss_end_mib": end,
        "growth_after_warm_up_percent": round(100 * (loaded_end - warm) / warm, 1),
        "rss_after_load_warm_up_mib": loads_warm,
        "growth_over_loads_percent": round(100 * (end - loads_warm) / loads_warm, 1),
        "peak_rss_mib": max(s["rss_mib"] for s in samples), "seconds": samples[-1]["seconds"],
        "outcomes": dict(sorted(outcomes.items())), "samples": samples,
    }
    print(f"RSS after {args.warm_up} decodes (warm-up) {warm:.0f} MiB; after {args.decodes} decodes {loaded_end:.0f} "
          f"MiB ({result['growth_after_warm_up_percent']:+.1f} %); then decodes that load their model by path: "
          f"{loads_warm:.0f} MiB after {args.load_warm_up}, {end:.0f} MiB after {args.loads} "
          f"({result['growth_over_loads_percent']:+.1f} %); peak {result['peak_rss_mib']:.0f} MiB; "
          f"{result['seconds']:.0f} s")
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        figure, axis = plt.subplots(figsize=(8, 4))
        for by_path, label in ((False, "loaded models"), (True, "model loaded by path for each decode")):
            points = [s for s in samples if s["by_path"] == by_path]
            axis.plot([s["decode"] for s in points], [s["rss_mib"] for s in points], label=label)
        axis.axvline(args.warm_up, color="grey", linestyle=":", label="end of warm-up")
        axis.set_xlabel("decodes")
        axis.set_ylabel("resident set size (MiB)")
        axis.set_ylim(bottom=0)
        axis.legend()
        axis.set_title("tfgc: memory of one decoding process")
        figure.tight_layout()
        figure.savefig(args.plot, dpi=100)
    return 0


if __name__ == "__main__":
    sys.exit(main())
