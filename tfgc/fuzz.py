"""python -m tfgc.fuzz: damaged, forged and random .tfgc files against the decoders, through the Python API and the CLI.

Every input must end in tfgc's own error (one line; at the CLI a non-zero exit, nothing written) or in a valid image of
the size its header declares. Anything else is a failure: another exception, a hang past --timeout, an image of the
wrong shape. Inputs come from seed files that tiny models (random weights, one per family: gc, sc, sr) write for a
small photograph, mutated systematically (a truncation at every offset, every bit of the header flipped, every format
version, every family code) and at random through hypothesis (random bytes, bit flips in header and payload, forged
fingerprints, image sizes and sc section lengths). Mutations that change the checksummed part are also tried with the
checksum recomputed, so the parsers behind the checksum see them. Decoding runs with --max-pixels (default 2**20) as the
pixel limit, so a forged image size costs at most a decode of that size; one category of forged sizes ("image size up
to the pixel cap") is decoded with tfgc's real limit (tfgc.codec.bitstream.MAX_IMAGE_PIXELS), every size it admits.
So are "small files for large pictures": valid files that decode to megapixels from a few dozen bytes (an sc file
of one class with nothing preserved) or a few kilobytes (an sr file whose base is of one colour), and files forged
to look like them at up to the cap (a PNG label map or a JPEG base whose own header claims the large size its bytes
cannot hold; an arithmetic-coded JPEG base).

    python -m tfgc.fuzz --examples 10000 --out fuzz.json        # the long run (a few minutes on 2 cores)

The tests run a small number of the same inputs (tests/test_reliability.py).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import resource
import signal
import struct
import sys
import tempfile
import time
import zlib
from collections import Counter
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Tuple

import numpy as np

from tfgc.codec import bitstream
from tfgc.errors import TfgcError

FUZZ_MAX_PIXELS = 2**20
HEADER = bitstream.HEADER_SIZE


class FuzzFailure(Exception):
    """An input the decoder did not handle as it must."""


class Hang(BaseException):  # not an Exception: the decoder's own handlers must not swallow it
    pass


def with_crc(data: bytes) -> bytes:
    """`data` with its last 4 bytes replaced by the CRC-32 of the rest (as a valid file has)."""
    body = data[:-4]
    return body + struct.pack(">I", zlib.crc32(body))


def set_header(data: bytes, offset: int, fmt: str, value) -> bytes:
    """A file with one header field replaced, checksum recomputed."""
    out = bytearray(data)
    struct.pack_into(fmt, out, offset, value)
    return with_crc(bytes(out))


def flip(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[bit // 8] ^= 0x80 >> (bit % 8)
    return bytes(out)


# ---- seed files -----------------------------------------------------------------------------------------------------

def seed_models(directory: Path) -> Dict[str, object]:
    """Tiny models of each family with fixed random weights (GC with GDN, so large images are tiled)."""
    import tensorflow as tf

    from tfgc.config import preset
    from tfgc.models.registry import build_model
    from tfgc.models.store import load_model, save_model

    from tfgc.codec.classic import CODECS

    configs = {"gc": preset("gc-tiny").replace(normalization="gdn"), "sc": preset("sc-tiny"),
               "sr": preset("rlsrgan-tiny")}
    if CODECS["heic"].available():  # a base-layer decoder of HEIC files, whose container is stored packed
        configs["sr-heic"] = preset("sr-tiny").replace(base_codec="heic", base_qualities=[])
    models = {}
    for family, config in configs.items():
        tf.keras.utils.set_random_seed(0)
        save_model(build_model(config, for_training=False), directory / family, force=True)
        models[family] = load_model(directory / family)
    return models


def seed_files(models: Dict[str, object]) -> Dict[str, bytes]:
    """One valid file per family, of a 40x56 crop of a bundled photograph (sc: with a label map, half preserved)."""
    from tfgc.codec import api
    from tfgc.codec.io import load_image
    from tfgc.data import bundled_images

    image = load_image(bundled_images()[0])[100:140, 120:176]
    label_ids = np.full(image.shape[:2], 7, np.uint8)  # Cityscapes "road"
    label_ids[:, 28:] = 26  # "car"
    mask = np.zeros((3, 4), np.uint8)
    mask[:, 2:] = 1
    seeds = {"gc": api.encode(image, models["gc"]).data,
             "sc": api.encode(image, models["sc"], semantics=label_ids, preserve=mask).data,
             "sr": api.encode(image, models["sr"]).data}
    if "sr-heic" in models:
        seeds["sr-heic"] = api.encode(image, models["sr-heic"]).data
    return seeds


def png_claiming(array: np.ndarray, height: int, width: int) -> bytes:
    """A greyscale PNG of `array` whose IHDR claims height x width (its CRC fixed)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array, "L").save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    struct.pack_into(">II", data, 16, width, height)  # IHDR's fields follow the 8-byte signature and 8 chunk bytes
    struct.pack_into(">I", data, 29, zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def jpeg_claiming(data: bytes, height: int, width: int, marker: Optional[int] = None) -> bytes:
    """A JPEG whose start-of-frame claims height x width (and, given `marker`, another kind of frame)."""
    from tfgc.codec.sr import jpeg_frame

    frame = data.index(bytes([0xFF, jpeg_frame(data)]))
    out = bytearray(data)
    struct.pack_into(">HH", out, frame + 5, height, width)
    if marker is not None:
        out[frame + 1] = marker
    return bytes(out)


def large_pictures(models: Dict[str, object], seeds: Dict[str, bytes]) -> Iterator[Tuple[str, str, bytes, int]]:
    """(category, family, data, pixel limit): small files that claim large pictures, decoded under the real cap."""
    from tfgc.codec import api

    cap = bitstream.MAX_IMAGE_PIXELS
    category = "small files for large pictures"
    height, width = 1024, 2048  # decodes in seconds
    one_class = np.full((height, width), 7, np.uint8)  # Cityscapes "road"
    sc_file = api.encode(np.zeros((height, width, 3), np.uint8), models["sc"], semantics=one_class,
                         preserve="none").data
    yield category, "sc", sc_file, cap
    header = bitstream.unpack(seeds["sc"])[0]
    for claimed in [(4000, 4000), (12_000, 14_000)]:
        forged = bitstream.SelectiveSections("png", png_claiming(one_class[:40, :56], *claimed), bitstream.MASK_NONE,
                                             b"", b"")
        head = bitstream.Header("sc", header.flags, header.fingerprint, *claimed)
        yield f"{category}, forged", "sc", bitstream.pack(head, bitstream.pack_selective(forged)), cap
    yield category, "sr", api.encode(np.full((4 * height, 2 * width, 3), 90, np.uint8), models["sr"]).data, cap
    header, payload = bitstream.unpack(seeds["sr"])
    stored = bitstream.unpack_sr(payload)
    scale = stored.scale
    for claimed, marker in [((3000, 3000), None), ((10, 14), 0xC9)]:
        base = jpeg_claiming(stored.data, *claimed, marker)
        head = bitstream.Header("sr", header.flags, header.fingerprint, claimed[0] * scale, claimed[1] * scale)
        data = bitstream.pack(head, bitstream.pack_sr(bitstream.SRPayload(stored.base, scale, stored.quality, base)))
        yield f"{category}, forged", "sr", data, cap


# ---- inputs ---------------------------------------------------------------------------------------------------------

def systematic(seeds: Dict[str, bytes]) -> Iterator[Tuple[str, str, bytes]]:
    """(category, family of the seed, data): every truncation, header bit, version and family code."""
    for family, data in seeds.items():
        for end in range(len(data)):
            yield "truncation", family, data[:end]
        for bit in range(8 * HEADER):
            flipped = flip(data, bit)
            yield "header bit flip", family, flipped
            yield "header bit flip, checksum fixed", family, with_crc(flipped)
        for version in range(256):
            yield "format version", family, set_header(data, 4, ">B", version)
        for code in range(256):
            yield "family code", family, set_header(data, 5, ">B", code)


def _hypothesis():
    try:
        import hypothesis
    except ImportError:
        raise TfgcError("python -m tfgc.fuzz needs hypothesis: pip install 'tfgc[test]'") from None
    return hypothesis


def strategies(seeds: Dict[str, bytes]):
    """Hypothesis strategies of (category, family, data) for the random categories."""
    _hypothesis()
    from hypothesis import strategies as st

    families = st.sampled_from(sorted(seeds))

    def payload_flips(family, bits, fix):
        data = seeds[family]
        for bit in bits:
            data = flip(data, 8 * HEADER + bit % (8 * (len(data) - HEADER - 4)))
        return ("payload bit flips" + (", checksum fixed" if fix else ""), family, with_crc(data) if fix else data)

    def sized(family, height, width):
        return "image size", family, with_crc(struct.pack(">II", height, width).join(
            [seeds[family][:15], seeds[family][23:]]))

    def sized_to_cap(family, size):
        height, width = size
        return ("image size up to the pixel cap", family, sized(family, height, width)[2], bitstream.MAX_IMAGE_PIXELS)

    sizes_to_cap = st.integers(1, 2**16).flatmap(
        lambda height: st.tuples(st.just(height), st.integers(1, bitstream.MAX_IMAGE_PIXELS // height)))

    def fingerprint(family, value):
        return "fingerprint", family, set_header(seeds[family], 7, ">8s", value)

    def spliced(family, offset, junk):
        data = seeds[family]
        offset = HEADER + offset % (len(data) - HEADER - 4)
        body = data[:offset] + junk + data[offset:-4]
        body = body[:23] + struct.pack(">I", len(body) - HEADER) + body[27:]
        return "payload splice, length fixed", family, with_crc(body + b"\0\0\0\0")

    def section_length(label_section: bool, value):
        # The label map's length follows its coding byte; the mask's follows its kind byte, after the label map.
        data = bytearray(seeds["sc"])
        struct.pack_into(">I", data, HEADER + 1 if label_section else HEADER + 5 + label_length + 1, value)
        return "sc section length", "sc", with_crc(bytes(data))

    label_length = struct.unpack_from(">I", seeds["sc"], HEADER + 1)[0]
    return st.one_of(
        st.tuples(st.just("random bytes"), families, st.binary(max_size=200)),
        st.tuples(st.just("magic + random bytes"), families, st.binary(max_size=200).map(lambda b: b"TFGC" + b)),
        st.builds(payload_flips, families, st.lists(st.integers(0, 10**6), min_size=1, max_size=8), st.booleans()),
        st.builds(sized, families, st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1)),
        st.builds(sized, families, st.integers(1, 3000), st.integers(1, 3000)),
        st.builds(sized_to_cap, families, sizes_to_cap),
        st.builds(fingerprint, families, st.binary(min_size=8, max_size=8)),
        st.builds(spliced, families, st.integers(0, 10**6), st.binary(min_size=1, max_size=64)),
        st.builds(section_length, st.booleans(), st.integers(0, 2**32 - 1)),
    )


# ---- checking one input ----------------------------------------------------------------------------------------

def decode_api(data: bytes, model, max_pixels: int) -> str:
    """'refused' or 'decoded'; a FuzzFailure for anything else."""
    from tfgc.codec import api

    try:
        image = api.decode(data, model, max_pixels=max_pixels)
    except TfgcError as e:
        if "\n" in str(e):
            raise FuzzFailure(f"multi-line error: {str(e)!r}") from None
        return "refused"
    header = bitstream.unpack(data, max_pixels)[0]
    if not (isinstance(image, np.ndarray) and image.dtype == np.uint8
            and image.shape == (header.height, header.width, 3)):
        raise FuzzFailure(f"decoded to {getattr(image, 'shape', type(image))} "
                          f"{getattr(image, 'dtype', '')}, header says {header.height}x{header.width}")
    return "decoded"


def decode_cli(data: bytes, model_dir: Path, max_pixels: int, work: Path) -> str:
    """The same through `python -m tfgc decompress` (in this process): exit 0 with a PNG of the declared size, or a
    non-zero exit with one line on stderr and nothing written."""
    from PIL import Image

    from tfgc.__main__ import main

    source, target = work / "input.tfgc", work / "output.png"
    source.write_bytes(data)
    target.unlink(missing_ok=True)
    stderr, stdout = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(stdout):
        code = main(["decompress", str(source), str(target), "--model", str(model_dir), "--max-pixels",
                     str(max_pixels), "--quiet"])
    lines = stderr.getvalue().splitlines()
    if code == 0:
        header = bitstream.unpack(data, max_pixels)[0]
        with Image.open(target) as image:
            if image.size != (header.width, header.height):
                raise FuzzFailure(f"CLI wrote {image.size}, header says {header.width}x{header.height}")
        return "decoded"
    if target.exists():
        raise FuzzFailure(f"CLI exited {code} but wrote {target}")
    if len(lines) != 1 or not lines[0].startswith("tfgc: error: "):
        raise FuzzFailure(f"CLI exited {code} with stderr {stderr.getvalue()!r}")
    return "refused"


@contextlib.contextmanager
def time_limit(seconds: float):
    def expired(signum, frame):
        raise Hang()

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class Fuzzer:
    """Runs inputs through the API (every one) and the CLI (every `cli_every`-th), and keeps the tally."""

    def __init__(self, models: Dict[str, object], model_dirs: Dict[str, Path], work: Path,
                 max_pixels: int = FUZZ_MAX_PIXELS, timeout: float = 60.0, cli_every: int = 10):
        self.models, self.model_dirs, self.work = models, model_dirs, work
        self.max_pixels, self.timeout, self.cli_every = max_pixels, timeout, cli_every
        self.counts: Dict[str, Counter] = {}
        self.failures: List[dict] = []
        self.seen = 0
        self.slowest = 0.0

    def check(self, category: str, family: str, data: bytes, max_pixels: Optional[int] = None) -> None:
        """One input, decoded with `max_pixels` (default: the fuzzer's); raises FuzzFailure (after recording it) if it
        is mishandled."""
        self.seen += 1
        limit = max_pixels or self.max_pixels
        paths = [("api", lambda: decode_api(data, self.models[family], limit))]
        if self.seen % self.cli_every == 0:
            paths.append(("cli", lambda: decode_cli(data, self.model_dirs[family], limit, self.work)))
        for path, run in paths:
            started = time.perf_counter()
            try:
                with time_limit(self.timeout):
                    outcome = run()
            except Hang:
                outcome = self._fail(category, family, path, data, f"no answer within {self.timeout:g} s")
            except FuzzFailure as e:
                outcome = self._fail(category, family, path, data, str(e))
            except Exception as e:  # anything but tfgc's own errors is a failure
                outcome = self._fail(category, family, path, data, f"{type(e).__name__}: {e}")
            self.slowest = max(self.slowest, time.perf_counter() - started)
            self.counts.setdefault(category, Counter())[f"{path} {outcome}"] += 1
            if outcome == "failed":
                raise FuzzFailure(self.failures[-1]["reason"])

    def _fail(self, category, family, path, data, reason) -> str:
        self.failures.append({"category": category, "family": family, "path": path, "reason": reason.splitlines()[0],
                              "input_hex": data[:256].hex()})
        return "failed"

    def run_systematic(self, seeds) -> None:
        for category, family, data in systematic(seeds):
            try:
                self.check(category, family, data)
            except FuzzFailure:
                pass  # recorded; go on with the rest

    def run_large_pictures(self, seeds) -> None:
        for category, family, data, max_pixels in large_pictures(self.models, seeds):
            try:
                self.check(category, family, data, max_pixels)
            except FuzzFailure:
                pass  # recorded; go on with the rest

    def run_random(self, seeds, examples: int, seed: int = 0) -> None:
        hypothesis = _hypothesis()

        @hypothesis.seed(seed)
        @hypothesis.settings(max_examples=examples, deadline=None, database=None,
                             suppress_health_check=list(hypothesis.HealthCheck), phases=[hypothesis.Phase.generate])
        @hypothesis.given(strategies(seeds))
        def one(example):
            try:
                self.check(*example)
            except FuzzFailure:
                pass  # recorded; hypothesis goes on generating

        one()

    def summary(self) -> dict:
        api_inputs = sum(sum(n for k, n in c.items() if k.startswith("api")) for c in self.counts.values())
        cli_inputs = sum(sum(n for k, n in c.items() if k.startswith("cli")) for c in self.counts.values())
        return {"inputs": api_inputs, "cli_inputs": cli_inputs, "failures": len(self.failures),
                "categories": {k: dict(sorted(v.items())) for k, v in sorted(self.counts.items())},
                "slowest_seconds": round(self.slowest, 3),
                "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                "failure_examples": self.failures[:20]}


def run(examples: int, max_pixels: int = FUZZ_MAX_PIXELS, timeout: float = 60.0, cli_every: int = 10,
        seed: int = 0, include_systematic: bool = True, progress: Optional[Callable[[str], None]] = None) -> dict:
    with tempfile.TemporaryDirectory(prefix="tfgc-fuzz-") as folder:
        work = Path(folder)
        models = seed_models(work / "models")
        seeds = seed_files(models)
        fuzzer = Fuzzer(models, {f: work / "models" / f for f in models}, work, max_pixels, timeout, cli_every)
        started = time.perf_counter()
        if include_systematic:
            fuzzer.run_systematic(seeds)
            fuzzer.run_large_pictures(seeds)
            if progress:
                progress(f"systematic: {fuzzer.seen} inputs, {len(fuzzer.failures)} failures, "
                         f"{time.perf_counter() - started:.0f} s")
        fuzzer.run_random(seeds, examples, seed)
        result = fuzzer.summary()
        result.update(seconds=round(time.perf_counter() - started, 1), max_pixels=max_pixels, timeout=timeout,
                      seed_bytes={f: len(d) for f, d in seeds.items()}, random_examples=examples)
        return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m tfgc.fuzz", description=__doc__.split("\n\n")[0])
    p.add_argument("--examples", type=int, default=10_000,
                   help="random (hypothesis) inputs, beside the systematic ones")
    p.add_argument("--max-pixels", type=int, default=FUZZ_MAX_PIXELS, help="the decoders' pixel limit")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds an input may take before it counts as a hang")
    p.add_argument("--cli-every", type=int, default=10, help="also run every N-th input through the CLI")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="write the tally as JSON here")
    args = p.parse_args(argv)
    from tfgc.utils import run_command

    return run_command("tfgc.fuzz", lambda: _main(args))


def _main(args) -> int:
    _hypothesis()
    result = run(args.examples, args.max_pixels, args.timeout, args.cli_every, args.seed,
                 progress=lambda line: print(line, flush=True))
    text = json.dumps(result, indent=2)
    if args.out:
        Path(args.out).write_text(text + "\n")
    print(f"{result['inputs']} inputs ({result['cli_inputs']} also through the CLI) in {result['seconds']:.0f} s: "
          f"{result['failures']} failures; slowest {result['slowest_seconds']} s; "
          f"peak RSS {result['peak_rss_mib']} MiB")
    for failure in result["failure_examples"]:
        print(f"  FAILED [{failure['category']}, {failure['family']}, {failure['path']}]: {failure['reason']}")
    return 1 if result["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
