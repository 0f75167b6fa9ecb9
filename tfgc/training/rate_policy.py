"""Train the sr family's learned rate control (tfgc.codec.rate_policy): an actor-critic that picks the base codec's
quality from features of the image and the target rate.

    python -m tfgc.training.rate_policy --model heic-x2 --data BSDS500/train --out runs/rate-policy

First every training image is coded at each quality of the grid (real files) and decoded by the model's learned
decoder at its default alpha; the files' bpp and the decodings' PSNR are kept in OUT/table.npz, which a rerun reuses
(they are the expensive part: about 10 minutes for 120 photographs at 26 qualities on 2 cores; the table names the
model's weights, its alpha, the photographs and the qualities, and is measured again when any of them differs). Then
the actor-critic learns from them as a contextual bandit: an episode is one image and one target rate (log-uniform
over --targets), the action a quality drawn from the actor's Gaussian, the reward that quality's measured file's
PSNR less 0.2 dB per percent above the target (--objective cap, the search's aim) or PSNR - w * bpp / target
(--objective mean, w fitted first so that the best choices from the table average the target), and the critic
V(image, target) is the baseline the action's advantage is measured against. Unlike RL-SRGAN's reward, this one
depends on the action, so the policy gradient has a direction. OUT/rate_policy.json is the policy; copy it into an
sr model's folder to make it that model's rate control.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np

from tfgc.errors import TfgcError

HIDDEN = 64


def measure_table(model, paths: Sequence[str], qualities: Sequence[int], alpha: Optional[float] = None) -> dict:
    """bpp and PSNR [images, qualities] of real files decoded by `model`, and each image's features."""
    from tfgc import metrics
    from tfgc.codec import api, sr
    from tfgc.codec.io import load_image
    from tfgc.codec.rate_policy import image_features
    from tfgc.utils import progress_bar

    m = model.config.model
    bpp = np.zeros((len(paths), len(qualities)))
    psnr = np.zeros_like(bpp)
    features = []
    progress = progress_bar(len(paths) * len(qualities), "file")
    for i, path in enumerate(paths):
        pixels = load_image(path)
        low = sr.downsample(pixels, m.scale)
        features.append(image_features(low))
        for j, quality in enumerate(qualities):
            result = sr.encode_downsampled(low, *pixels.shape[:2], m.scale, quality, m.base_codec)
            bpp[i, j] = result.bpp
            psnr[i, j] = metrics.psnr(pixels, api.decode(result.data, model, alpha))
            progress.add(1)
    return {"paths": np.array([str(p) for p in paths]), "qualities": np.array(qualities), "bpp": bpp, "psnr": psnr,
            "features": np.array(features), "model": np.array(_decoder_identity(model, alpha))}


def _decoder_identity(model, alpha) -> str:
    """What the measured PSNRs depend on besides the files: the generator's weights and the alpha it decoded at."""
    import hashlib

    digest = hashlib.sha256()
    for _, part in sorted(model.export_parts().items()):
        for variable in part.weights:
            digest.update(np.ascontiguousarray(variable.numpy()).tobytes())
    return f"{digest.hexdigest()[:16]} alpha={model.checked_alpha(alpha):g}"


OBJECTIVES = ("cap", "mean")
# "cap": the reward loses this many dB per unit of rate above the target (0.2 dB per 1 % over).
OVERSHOOT_PENALTY = 20.0


def rewards(psnr, bpp, targets, objective: str, rate_weight: float):
    """The reward of files (PSNR, bpp) at target rates: "cap" (as --target-bpp's search: PSNR, less a steep penalty
    for each file above its target) or "mean" (PSNR - rate_weight * bpp / target: bits go where they buy the most
    PSNR, and the target is met on average)."""
    if objective == "cap":
        return psnr - rate_weight * np.maximum(0.0, bpp / targets - 1.0)
    return psnr - rate_weight * bpp / targets


def best_choices(table: dict, targets: np.ndarray, objective: str, rate_weight: float) -> np.ndarray:
    """For each image i and target t [images, targets]: the quality index of the highest reward."""
    return np.argmax(rewards(table["psnr"][:, None, :], table["bpp"][:, None, :], targets[None, :, None], objective,
                             rate_weight), axis=-1)


def fit_rate_weight(table: dict, targets: np.ndarray) -> float:
    """The "mean" objective's rate weight whose best choices give, on average over images and targets,
    bpp / target = 1 (bisection on its logarithm: a larger weight chooses smaller files)."""
    low, high = -4.0, 6.0
    images = np.arange(len(table["bpp"]))[:, None]
    for _ in range(60):
        middle = 0.5 * (low + high)
        choice = best_choices(table, targets, "mean", 10.0 ** middle)
        ratio = np.mean(table["bpp"][images, choice] / targets[None, :])
        low, high = (middle, high) if ratio > 1 else (low, middle)
    return float(10.0 ** (0.5 * (low + high)))


def train_policy(table: dict, target_range, objective: str = "cap", steps: int = 6000, batch: int = 64,
                 learning_rate: float = 3e-3, entropy_weight: float = 0.01, seed: int = 0, log=print):
    """The actor-critic on the table's measurements; returns (RatePolicy's parts, history of mean rewards).

    The actor's Gaussian over quality indices is sampled, the sample rounded to the grid (the environment), and the
    reward of that quality's measured file weighs the sample's log-probability by its advantage over the critic."""
    import tensorflow as tf

    from tfgc.codec.rate_policy import FEATURES, LOG_STD_RANGE, mean_index, with_target
    from tfgc.models.sr import gaussian_log_prob

    rng = np.random.default_rng(seed)
    tf.keras.utils.set_random_seed(seed)
    low, high = np.log(target_range[0]), np.log(target_range[1])
    calibration_targets = np.exp(np.linspace(low, high, 16))
    rate_weight = fit_rate_weight(table, calibration_targets) if objective == "mean" else OVERSHOOT_PENALTY
    all_inputs = with_target(np.repeat(table["features"][:, None], 16, axis=1), calibration_targets[None, :])
    mean = all_inputs.reshape(-1, len(FEATURES)).mean(axis=0)
    std = all_inputs.reshape(-1, len(FEATURES)).std(axis=0) + 1e-6
    count = len(table["qualities"])

    def mlp(outputs, name):
        return tf.keras.Sequential([tf.keras.layers.Dense(HIDDEN, activation="tanh"),
                                    tf.keras.layers.Dense(HIDDEN, activation="tanh"),
                                    tf.keras.layers.Dense(outputs)], name=name)

    actor, critic = mlp(2, "actor"), mlp(1, "critic")
    optimizer = tf.keras.optimizers.Adam(learning_rate)
    psnr = tf.constant(table["psnr"], tf.float32)
    bpp = tf.constant(table["bpp"], tf.float32)

    @tf.function
    def step(images, targets, inputs):
        with tf.GradientTape() as tape:
            out = actor(inputs)
            centre = mean_index(out[:, 0], count, tf.tanh)
            log_std = tf.clip_by_value(out[:, 1] + 1.0, *LOG_STD_RANGE)  # starts near 2.7 grid steps: exploration
            action = tf.stop_gradient(centre + tf.exp(log_std) * tf.random.normal(tf.shape(centre)))
            index = tf.cast(tf.clip_by_value(tf.round(action), 0, count - 1), tf.int32)
            pairs = tf.stack([images, index], axis=1)
            file_psnr, file_bpp = tf.gather_nd(psnr, pairs), tf.gather_nd(bpp, pairs)
            if objective == "cap":
                reward = file_psnr - rate_weight * tf.nn.relu(file_bpp / targets - 1.0)
            else:
                reward = file_psnr - rate_weight * file_bpp / targets
            value = critic(inputs)[:, 0]
            advantage = reward - value
            log_prob = gaussian_log_prob(action, centre, log_std)
            loss = tf.reduce_mean(-log_prob * tf.stop_gradient(advantage) + tf.square(advantage)
                                  - entropy_weight * log_std)
        variables = actor.trainable_variables + critic.trainable_variables
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return tf.reduce_mean(reward)

    history = []
    for i in range(steps):
        images = rng.integers(0, len(table["bpp"]), batch)
        targets = np.exp(rng.uniform(low, high, batch))
        inputs = (with_target(table["features"][images], targets) - mean) / std
        history.append(float(step(tf.constant(images, tf.int32), tf.constant(targets, tf.float32),
                                  tf.constant(inputs, tf.float32))))
        if log and (i + 1) % 1000 == 0:
            log(f"step {i + 1}: mean reward {np.mean(history[-1000:]):.3f}")
    layers = [(layer.kernel.numpy().astype(np.float64), layer.bias.numpy().astype(np.float64))
              for layer in actor.layers]
    return {"mean": mean, "std": std, "layers": layers, "rate_weight": rate_weight, "objective": objective}, history


def choice_quality(table: dict, policy, targets: np.ndarray) -> dict:
    """Of the table's images at each target: the policy's choices and the best ones (from the measurements) under the
    policy's objective, as mean bpp / target and mean PSNR."""
    from tfgc.codec.rate_policy import with_target

    images = np.arange(len(table["bpp"]))[:, None]
    chosen = policy.index(with_target(np.repeat(table["features"][:, None], len(targets), axis=1), targets[None, :]))
    best = best_choices(table, targets, policy.objective, policy.rate_weight)
    return {name: {"rate_ratio": float(np.mean(table["bpp"][images, c] / targets[None, :])),
                   "psnr": float(np.mean(table["psnr"][images, c]))} for name, c in (("policy", chosen),
                                                                                    ("best", best))}


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tfgc.training.rate_policy",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="an sr model (folder or installed name)")
    p.add_argument("--data", nargs="+", required=True, metavar="FOLDER", help="training photographs")
    p.add_argument("--val-data", nargs="+", metavar="FOLDER", help="photographs to check the policy on")
    p.add_argument("--out", required=True, help="folder for table.npz and rate_policy.json")
    p.add_argument("--limit", type=int, help="use only the first N training photographs")
    p.add_argument("--qualities", type=int, nargs=3, default=[0, 50, 2], metavar=("FIRST", "LAST", "STEP"),
                   help="the qualities the policy chooses among (default: 0 50 2)")
    p.add_argument("--targets", type=float, nargs=2, default=[0.02, 0.2], metavar=("LOW", "HIGH"),
                   help="the range of target rates it learns, bits per pixel (default: 0.02 0.2)")
    p.add_argument("--alpha", type=float, help="the decoder's alpha for the measurements (default: the model's)")
    p.add_argument("--objective", choices=OBJECTIVES, default="cap",
                   help="cap: each file at most the target, as large as it can be (the search's aim; default); mean: "
                        "the target on average, bits where they buy the most PSNR")
    p.add_argument("--steps", type=int, default=6000, help="actor-critic steps of 64 episodes (default: 6000)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the episodes and the networks")
    args = p.parse_args(argv)
    try:
        return _run(args)
    except TfgcError as e:
        print(f"tfgc.training.rate_policy: {e}", file=sys.stderr)
        return 1


def _table(model, paths, qualities, alpha, path: Path) -> dict:
    if path.is_file():
        with np.load(path) as stored:
            table = {k: stored[k] for k in stored.files}
        if (list(table["paths"]) == [str(p) for p in paths] and list(table["qualities"]) == list(qualities)
                and "model" in table and str(table["model"]) == _decoder_identity(model, alpha)):
            print(f"measurements: {path} (reused)")
            return table
    started = time.perf_counter()
    table = measure_table(model, paths, qualities, alpha)
    np.savez(path, **table)
    print(f"measurements: {len(paths)} images x {len(qualities)} qualities in {time.perf_counter() - started:.0f} s")
    return table


def _run(args) -> int:
    from tfgc.codec import rate_policy
    from tfgc.codec.sr import check_quality
    from tfgc.data import list_images
    from tfgc.models.store import load_model, resolve_model

    directory = resolve_model(args.model)
    model = load_model(directory)
    m = model.config.model
    if m.family != "sr":
        raise TfgcError(f"{args.model} is a {m.family} model: a rate policy picks an sr model's base quality")
    first, last, step = args.qualities
    qualities = list(range(first, last + 1, step))
    if not qualities or step < 1:
        raise TfgcError("--qualities FIRST LAST STEP: no quality in that range")
    for q in qualities:
        check_quality(q, m.base_codec)
    if not 0 < args.targets[0] < args.targets[1]:
        raise TfgcError("--targets LOW HIGH: 0 < LOW < HIGH")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table = _table(model, list_images(args.data)[:args.limit], qualities, args.alpha, out / "table.npz")
    parts, history = train_policy(table, args.targets, args.objective, steps=args.steps, seed=args.seed)
    policy = rate_policy.RatePolicy(m.base_codec, m.scale, qualities, parts["mean"], parts["std"], parts["layers"],
                                    parts["rate_weight"], args.objective,
                                    {"model": str(args.model), "data": list(args.data), "images": len(table["bpp"]),
                                     "targets": args.targets, "steps": args.steps, "alpha": args.alpha})
    targets = np.exp(np.linspace(np.log(args.targets[0]), np.log(args.targets[1]), 7))
    checks = {"training": choice_quality(table, policy, targets)}
    if args.val_data:
        checks["validation"] = choice_quality(_table(model, list_images(args.val_data), qualities, args.alpha,
                                                     out / "val_table.npz"), policy, targets)
    policy.metadata["checks"] = checks
    rate_policy.save(policy, out / rate_policy.POLICY_FILE)
    print(f"rate weight {policy.rate_weight:.3f}; last 1000 steps' mean reward {np.mean(history[-1000:]):.3f}")
    for name, check in checks.items():
        print(f"{name}: policy bpp/target {check['policy']['rate_ratio']:.3f}, PSNR {check['policy']['psnr']:.2f} dB;"
              f" best from the measurements {check['best']['rate_ratio']:.3f}, {check['best']['psnr']:.2f} dB")
    print(f"wrote {out / rate_policy.POLICY_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
