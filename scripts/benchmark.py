"""Speed figures of tfgc on this machine: training steps/s per preset, and codec seconds for one image.

    python scripts/benchmark.py                                   # gc-small and gc-paper, a bundled photo at 768x512
    python scripts/benchmark.py --image kodak/kodim01.png --presets gc-small
    python scripts/benchmark.py --presets --export EXPORTS   # each runtime of a `python -m tfgc export --format all`
    python scripts/benchmark.py --presets --ms-ssim           # the MS-SSIM loss: tfgc.nn.ssim vs tf.image

Training is timed after warm-up steps (tracing excluded), on random crops of the bundled photographs, with each
preset's own batch size and GAN setting at the crop size given. Encode and decode are timed through the public API
(`tfgc.codec.api`), so they include entropy coding and the file format; the first call (tracing) is excluded and the
median of the repeats is printed. Weights are random: speed does not depend on training.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from tfgc.codec import api  # noqa: E402
from tfgc.codec.io import load_image  # noqa: E402
from tfgc.config import preset  # noqa: E402
from tfgc.data import bundled_images, training_dataset  # noqa: E402
from tfgc.reports.writer import environment  # noqa: E402
from tfgc.models.registry import build_model  # noqa: E402
from tfgc.train import compile_model  # noqa: E402


def machine() -> str:
    env = environment()
    return (f"{env['machine']['cpu']}, {env['machine']['cores']} cores, Python {env['python']}, "
            f"TensorFlow {env['versions']['tensorflow']}, commit {env['commit']}")


def bench_training(name: str, crop: int, warmup: int, steps: int) -> None:
    config = preset(name).replace(crop_size=crop)
    model = build_model(config)
    compile_model(model, config)
    # The dataset itself, not an iterator of it: Keras turns a Python iterator into a generator of unknown shapes,
    # which the MS-SSIM loss refuses to trace.
    dataset = training_dataset(bundled_images(), crop, config.train.batch_size)
    model.fit(dataset, steps_per_epoch=warmup, epochs=1, verbose=0)
    started = time.perf_counter()
    model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0)
    seconds = (time.perf_counter() - started) / steps
    params = sum(int(np.prod(v.shape)) for v in model.trainable_variables)
    print(f"train  {name:12s} {crop}x{crop} batch {config.train.batch_size:2d} "
          f"{'GAN' if model.adversarial else 'MSE':3s} {params / 1e6:6.1f} M params: "
          f"{1 / seconds:7.3f} steps/s ({seconds:7.2f} s/step, {config.train.batch_size / seconds:6.2f} images/s)",
          flush=True)


def bench_codec(name: str, image: np.ndarray, repeats: int) -> None:
    time_codec(name, build_model(preset(name), for_training=False), image, repeats)


def bench_backends(export_dir: str, image: np.ndarray, repeats: int) -> None:
    """Encode and decode through tfgc.codec.api with the transforms run by TensorFlow, TFLite and onnxruntime."""
    from pathlib import Path

    from tfgc.export import load_backend

    serving = sorted(Path(export_dir).glob("serving/*/*/manifest.json"))
    if not serving:
        raise SystemExit(f"{export_dir} is not the folder of `python -m tfgc export --format all`")
    for backend in ("tensorflow", "tflite", "tflite-fp16", "onnx"):
        model = load_backend(serving[-1].parent if backend == "tensorflow" else export_dir, backend)
        time_codec(f"{backend}", model, image, repeats)


def bench_ms_ssim(batch: int, crop: int, steps: int) -> None:
    """Forward and backward pass of 1 - MS-SSIM, TensorFlow's and tfgc's, on a training batch's shape."""
    import tensorflow as tf

    from tfgc.metrics import MS_SSIM_FILTER, ms_ssim_weights
    from tfgc.nn.ssim import ms_ssim

    weights = ms_ssim_weights(crop, crop)
    original = tf.random.uniform([batch, crop, crop, 3])
    reconstruction = tf.Variable(tf.clip_by_value(original + tf.random.normal(original.shape, stddev=0.1), 0, 1))
    implementations = {
        "tf.image.ssim_multiscale": lambda x, y: tf.image.ssim_multiscale(x, y, 1.0, power_factors=weights,
                                                                          filter_size=MS_SSIM_FILTER),
        "tfgc.nn.ssim.ms_ssim": lambda x, y: ms_ssim(x, y, 1.0),
    }
    for label, function in implementations.items():
        @tf.function
        def step(function=function):
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(1.0 - function(original, reconstruction))
            return tape.gradient(loss, reconstruction)

        step()
        started = time.perf_counter()
        for _ in range(steps):
            step()
        seconds = (time.perf_counter() - started) / steps
        print(f"loss   MS-SSIM {label:26s} batch {batch} of {crop}x{crop}: {1000 * seconds:7.1f} ms forward + backward",
              flush=True)


def time_codec(label: str, model, image: np.ndarray, repeats: int) -> None:
    result = api.encode(image, model)
    api.decode(result.data, model)
    encode, decode = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        result = api.encode(image, model)
        encode.append(time.perf_counter() - started)
        started = time.perf_counter()
        api.decode(result.data, model)
        decode.append(time.perf_counter() - started)
    h, w = image.shape[:2]
    print(f"codec  {label:12s} {w}x{h}: encode {statistics.median(encode):6.3f} s, "
          f"decode {statistics.median(decode):6.3f} s (median of {repeats})", flush=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--presets", nargs="*", default=["gc-small", "gc-paper"])
    p.add_argument("--export", help="a `python -m tfgc export --format all` folder: time the codec with each runtime")
    p.add_argument("--crop", type=int, default=256)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--image", help="image for encode/decode timing (default: a bundled photo resized to 768x512)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--ms-ssim", action="store_true",
                   help="time the MS-SSIM loss (gc-small's batch of 8 at 128x128) with TensorFlow's and tfgc's code")
    args = p.parse_args(argv)
    print(f"machine: {machine()}")
    print(f"command: python {' '.join(sys.argv)}")
    if args.image:
        image = load_image(args.image)
    else:
        image = np.asarray(Image.open(bundled_images()[0]).convert("RGB").resize((768, 512), Image.BICUBIC))
    for name in args.presets:
        bench_training(name, args.crop, args.warmup, args.steps)
    for name in args.presets:
        bench_codec(name, image, args.repeats)
    if args.export:
        bench_backends(args.export, image, args.repeats)
    if args.ms_ssim:
        bench_ms_ssim(8, 128, args.repeats * 5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
