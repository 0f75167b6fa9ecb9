"""Hold tfgc's Python range coder to tensorflow-compression's on real images: every symbol of every image.

    python scripts/check_range_coder.py --data kodak --model saved_models/gc-small-c4/1 saved_models/gc-small-c8/1

For each image and gc/sc model, the model's symbols are coded with the learned table and with the uniform one by both
coders; the bytes must be the same, and tfc's bytes must decode (with both decoders) to the symbols. Prints one line per
model and exits 1 on any difference. Needs tensorflow-compression (the reference).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def tfc_encode(symbols, table) -> bytes:
    """tensorflow-compression's kernels coding `symbols` [..., C] the way tfgc codes them (one encoder, row c of
    `table` for channel c): the reference the Python port is held to (here and in the tests)."""
    import numpy as np
    import tensorflow_compression as tfc

    symbols = np.asarray(symbols, np.int32)
    index = np.broadcast_to(np.arange(table.shape[0], dtype=np.int32), symbols.shape)
    handle = tfc.entropy_encode_index(tfc.create_range_encoder([], table), index, symbols)
    return tfc.entropy_encode_finalize(handle).numpy()


def tfc_decode(payload: bytes, table, shape):
    """(symbols of `shape`, whether tfc's end-state check passed), decoded by tensorflow-compression's kernels."""
    import numpy as np
    import tensorflow as tf
    import tensorflow_compression as tfc

    shape = tuple(shape)
    index = np.broadcast_to(np.arange(table.shape[0], dtype=np.int32), shape)
    handle, symbols = tfc.entropy_decode_index(tfc.create_range_decoder(payload, table), index, shape, tf.int32)
    return symbols.numpy(), bool(tfc.entropy_decode_finalize(handle))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="a folder of images")
    p.add_argument("--model", nargs="+", required=True, help="gc model directories")
    args = p.parse_args(argv)

    def run():
        import numpy as np

        from tfgc.codec import entropy
        from tfgc.reports.measure import load_images
        from tfgc.models.store import load_model

        images = load_images([args.data])
        failures = 0
        for directory in args.model:
            model = load_model(directory)
            tables = [model.coding_table()]
            tables.append(entropy.uniform_table(tables[0].shape[0], model.config.model.levels))
            symbols_total = payload_bytes = 0
            port_seconds = {"encode": 0.0, "decode": 0.0}
            for name, image in images:
                symbols = np.asarray(model.analysis(image[None]))[0]
                for table in tables:
                    reference = tfc_encode(symbols, table)
                    start = time.perf_counter()
                    ours = entropy.range_encode(symbols, table)
                    port_seconds["encode"] += time.perf_counter() - start
                    start = time.perf_counter()
                    decoded = entropy.range_decode(reference, table, symbols.shape)
                    port_seconds["decode"] += time.perf_counter() - start
                    by_tfc, finished = tfc_decode(ours, table, symbols.shape)
                    if ours != reference or not (decoded == symbols).all() or not (by_tfc == symbols).all() \
                            or not finished:
                        failures += 1
                        print(f"{directory} {name}: the coders differ", flush=True)
                    symbols_total += symbols.size
                    payload_bytes += len(reference)
            runs = 2 * len(images)
            print(f"{directory}: {len(images)} images, {symbols_total} symbols in {payload_bytes} bytes (learned and "
                  f"uniform tables): {'identical' if not failures else 'DIFFERENT'}; Python port "
                  f"{1000 * port_seconds['encode'] / runs:.1f} ms to encode, "
                  f"{1000 * port_seconds['decode'] / runs:.1f} ms to decode a file's symbols", flush=True)
        return 1 if failures else 0

    from tfgc.utils import run_command

    return run_command("check_range_coder", run)


if __name__ == "__main__":
    sys.exit(main())
