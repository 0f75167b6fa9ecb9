"""python -m tfgc.train: flags -> config -> data -> strategy -> model.fit -> exported model.

With no arguments it trains the `gc-small` preset on the photographs bundled with tfgc for a few minutes and exports
the result. A run directory holds everything of one run and resumes where it stopped when the same command is run
again (Keras' BackupAndRestore):

    OUT/config.json    the run's config
    OUT/backup/        BackupAndRestore's state (model, optimizers, epoch and step)
    OUT/checkpoints/   weights and optimizer state at the end of each epoch (the last 3)
    OUT/logs/          TensorBoard: losses, bpp, PSNR, validation reconstructions
    OUT/model/         the exported model (for `python -m tfgc compress --model OUT/model`)
    OUT/snapshots/     with --snapshot-minutes: the model exported every so many minutes of training (step-N/)

In multi-worker training (--strategy multiworker, the machines named in TF_CONFIG) OUT must be a folder every worker
sees (a shared filesystem): the chief writes all of it, and every worker resumes from OUT/backup/chief.
"""

from __future__ import annotations

import argparse
import math
import shlex
import sys
import time
from pathlib import Path
from typing import List, Optional, Tuple

from tfgc.config import NORMALIZATIONS, PRESETS, Config, preset
from tfgc.errors import ConfigError, DataError, TfgcError
from tfgc.training.workers import chief_in_environment, discard_scratch, write_folder, writes_files
from tfgc.utils import HelpFormatter, program_name, run_command, version_text

DEFAULT_PRESET = "gc-small"
# `python -m tfgc.train` without arguments is a demonstration that must end soon on any machine.
DEFAULT_TIME_LIMIT_MINUTES = 6.0
# Skipped (non-finite) steps in a row after which training stops: one bad batch is noise, this many is divergence.
MAX_NONFINITE_STEPS = 10

# Flags that override the config field of the same name.
_OVERRIDES = (
    "width", "normalization", "latent_channels", "levels", "residual_blocks", "noise_channels", "rate_weight",
    "target_bpp", "distortion_weight", "ms_ssim_weight",
    "adversarial_weight", "feature_matching_weight", "adversarial_reduction", "perceptual_weight", "perceptual_weights",
    "steps", "steps_per_epoch", "batch_size", "crop_size", "learning_rate", "discriminator_learning_rate",
    "learning_rate_schedule", "learning_rate_floor",
    "mixed_precision", "strategy", "seed", "checkpoint_every", "time_limit_minutes", "budget_minutes",
    "snapshot_minutes", "label_set", "semantic_classes", "synthesized_distortion_weight", "downscale", "mask_mix",
    "scale", "base_codec", "base_quality", "base_qualities", "generator", "upsampling_skip", "discriminator",
    "rl_every", "rl_discount", "value_weight",
)
# Settings a resumed run may change; any other difference means a different run.
_RESUMABLE_CHANGES = {"steps", "time_limit_minutes", "budget_minutes", "checkpoint_every", "snapshot_minutes"}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=program_name("tfgc.train"),
        description="Train a tfgc model. Without arguments: the gc-small preset on the bundled photographs for 240 "
                    f"steps (at most {DEFAULT_TIME_LIMIT_MINUTES:g} minutes), exported to runs/gc-small/model. Run the "
                    "same command again to resume.",
        formatter_class=HelpFormatter)
    p.add_argument("--version", action="version", version=version_text())
    g = p.add_argument_group("run")
    g.add_argument("--preset", default=None, choices=sorted(PRESETS),
                   help=f"named model and training settings (default: {DEFAULT_PRESET}, or the run's own config "
                        "when --out holds one)")
    g.add_argument("--config", default=None,
                   help="a config JSON file (as written to OUT/config.json) instead of a preset")
    g.add_argument("--data", nargs="+", default=None, metavar="FOLDER",
                   help="training folders of PNG/JPEG photographs, searched recursively (default: the bundled images)")
    g.add_argument("--val-data", nargs="+", default=None, metavar="FOLDER",
                   help="validation folders (default: the first training images, centre-cropped)")
    g.add_argument("--out", default=None, help="run directory (default: runs/PRESET)")
    g.add_argument("--stage", type=int, choices=[0, 1, 2],
                   help="two-stage training (Iwai et al. 2020): 1 = every module on rate + distortion without GAN; "
                        "2 = only the decoder with the GAN, from --init-from, into a fidelity-controlled model; "
                        "0 (default) = everything at once (Agustsson et al.)")
    g.add_argument("--init-from", metavar="MODEL",
                   help="stage 2: the stage-1 model (its folder, e.g. runs/stage1/model, or an installed name)")
    g.add_argument("--force", action="store_true",
                   help="start over in --out even if it holds a run with a different config (deletes its backup)")
    g.add_argument("--skip-bad-images", action="store_true",
                   help="train without the images that do not decode or are too large (each is named, and listed in "
                        "the model's manifest) rather than refusing to start")
    g = p.add_argument_group("model (override the preset)")
    g.add_argument("--width", type=int, help="base width w: encoder w..16w, generator 16w..w (paper: 60)")
    g.add_argument("--normalization", choices=NORMALIZATIONS,
                   help="normalization of encoder and generator: instance norm (the paper), GDN / inverse GDN (Balle "
                        "et al.), or none")
    g.add_argument("--latent-channels", "-C", dest="latent_channels", type=int, metavar="C",
                   help="latent channels C (paper: 2, 4, 8)")
    g.add_argument("--levels", "-L", dest="levels", type=int, metavar="L", help="quantizer levels L (paper: 5)")
    g.add_argument("--residual-blocks", type=int, help="generator residual blocks (paper: 9)")
    g.add_argument("--noise-channels", type=int, help="Gaussian noise channels concatenated to the latent")
    g.add_argument("--beta", dest="rate_weight", type=float, metavar="BETA",
                   help="rate weight beta: 0 trains at the bounded rate dim*log2(L) (the paper), > 0 adds bits/pixel")
    g.add_argument("--target-bpp", type=float,
                   help="> 0: beta starts at --beta and adapts during training until the entropy model's bits/pixel "
                        "on the training crops settle at this rate")
    g.add_argument("--distortion-weight", type=float, help="lambda on MSE (paper: 10)")
    g.add_argument("--ms-ssim-weight", type=float,
                   help="weight on 1 - MS-SSIM beside the MSE (gc-small: 3; other presets: 0)")
    g.add_argument("--adversarial-weight", type=float, help="LSGAN weight; 0 trains without a discriminator")
    g.add_argument("--feature-matching-weight", type=float, help="pix2pixHD feature matching weight")
    g.add_argument("--adversarial-reduction", choices=["mean", "sum"],
                   help="how the LSGAN loss combines the discriminator's scales: sum (pix2pixHD, the paper presets) "
                        "or mean (the small presets)")
    g.add_argument("--perceptual-weight", type=float, help="VGG19 feature loss weight (needs --vgg-weights)")
    g.add_argument("--vgg-weights", dest="perceptual_weights", metavar="WEIGHTS.h5",
                   help="'imagenet' (Keras downloads them; needs the network) or a VGG19 .h5 weights file")
    g = p.add_argument_group("selective compression (sc presets)")
    g.add_argument("--label-set", choices=["cityscapes", "identity"],
                   help="how label-map ids become classes: Cityscapes labelIds -> 19 train classes + void, or the ids "
                        "themselves (with --semantic-classes)")
    g.add_argument("--semantic-classes", type=int, help="number of classes of the identity label set")
    g.add_argument("--synthesized-distortion-weight", type=float,
                   help="MSE weight on the synthesized (unpreserved) region relative to the preserved one")
    g.add_argument("--mask-mix", type=float, nargs=4, metavar=("NONE", "ALL", "BOX", "CLASSES"),
                   help="probabilities of each training mask: nothing preserved, everything, a random box, "
                        "random classes")
    g.add_argument("--downscale", type=int, help="shrink photographs and label maps by this factor before cropping "
                                                 "(Cityscapes 2048x1024 -> 1024x512 with 2)")
    g = p.add_argument_group("super-resolution codec (sr and rlsrgan presets)")
    g.add_argument("--rl", choices=["paper", "on", "off"],
                   help="paper (or on): RL-SRGAN as Savioli has it (the actor-critic head and its loss every "
                        "--rl-every steps; its reward does not depend on the policy's action, so the policy "
                        "term's expected gradient is zero); off: the plain SRGAN baseline (same networks, data and "
                        "SRGAN loss)")
    g.add_argument("--scale", type=int, choices=[1, 2, 4, 8],
                   help="downsampling factor r of the stored base image (1: full size, a restoration filter)")
    g.add_argument("--base-codec", choices=["jpeg", "webp", "avif", "heic"], help="the classic codec of the base image")
    g.add_argument("--base-quality", "--jpeg-quality", dest="base_quality", type=int, metavar="QUALITY",
                   help="the base codec's quality files are written with by default (0..100; JPEG 1..100)")
    g.add_argument("--base-qualities", type=int, nargs="+",
                   help="the qualities training images are coded at (each image once per quality, the decoded bases "
                        "cached); default: the preset's")
    g.add_argument("--base-cache", help="folder of the cached decoded bases (default: $TFGC_BASE_CACHE, else "
                                        "~/.cache/tfgc/bases)")
    g.add_argument("--generator", choices=["srgan", "edsr"], help="the decoder network: SRGAN's or EDSR's trunk")
    g.add_argument("--discriminator", choices=["vgg", "patch"],
                   help="the GAN's critic: SRGAN's VGG-style one, or GC's multi-scale PatchGAN with feature matching")
    g.add_argument("--upsampling-skip", choices=["none", "bilinear", "lanczos"],
                   help="the fixed upscaler the decoder's output is added to (none: the paper's tanh output)")
    g.add_argument("--rl-every", type=int, help="k: steps between actor-critic updates (the reward window)")
    g.add_argument("--rl-discount", type=float, help="gamma: discount of rewards within the window")
    g.add_argument("--value-weight", type=float, help="weight of the critic's squared error (paper: 5e-3)")
    g = p.add_argument_group("training (override the preset)")
    g.add_argument("--steps", type=int, help="total training steps (rounded up to whole epochs)")
    g.add_argument("--steps-per-epoch", type=int, help="steps between validation, checkpoints and image logs")
    g.add_argument("--batch-size", type=int, help="global batch size, split over replicas")
    g.add_argument("--crop-size", type=int, help="training crop side in pixels (multiple of 16)")
    g.add_argument("--learning-rate", type=float, help="generator-side Adam learning rate")
    g.add_argument("--discriminator-learning-rate", type=float, help="discriminator Adam learning rate")
    g.add_argument("--learning-rate-schedule", choices=["constant", "cosine"],
                   help="cosine: the learning rates fall along a half cosine to --learning-rate-floor times their "
                        "start, over --steps or over this session's --time-limit, whichever ends the run first")
    g.add_argument("--learning-rate-floor", type=float, help="the cosine schedule's last learning rate, as a fraction")
    g.add_argument("--mixed-precision", choices=["off", "float16", "bfloat16"],
                   help="precision policy: float16 adds loss scaling (GPUs); bfloat16 (TPUs, recent GPUs); off on CPUs")
    g.add_argument("--strategy", choices=["default", "mirrored", "multiworker"],
                   help="tf.distribute strategy: mirrored = all local GPUs; multiworker = machines named in TF_CONFIG")
    g.add_argument("--jit-compile", action="store_true", default=None, help="compile the train step with XLA")
    g.add_argument("--seed", type=int, help="random seed of weights and data order")
    g.add_argument("--checkpoint-every", type=int, help="steps between BackupAndRestore saves")
    g.add_argument("--time-limit", dest="time_limit_minutes", type=float, metavar="MINUTES",
                   help="stop after this many minutes of this session (0: no limit), then export; rerun to continue")
    g.add_argument("--budget-minutes", type=float,
                   help="the run's training time in total, over every session that resumes it (0: none): stop and "
                        "export when it is spent; a cosine schedule spans it")
    g.add_argument("--snapshot-minutes", type=float,
                   help="also export the model to OUT/snapshots/step-N every this many minutes of the run's training "
                        "time (the exports' own time is not counted against --time-limit or the budget)")
    return p


def resolve_config(args) -> Config:
    out = Path(args.out) if args.out else None
    existing = Config.load(out / "config.json") if out and (out / "config.json").is_file() else None
    if args.config:
        config = Config.load(args.config)
    elif args.preset:
        config = preset(args.preset)
    elif existing is not None:
        config = existing
    else:
        config = preset(DEFAULT_PRESET)
        if not args.argv:
            config = config.replace(time_limit_minutes=DEFAULT_TIME_LIMIT_MINUTES)
    overrides = {name: getattr(args, name) for name in _OVERRIDES if getattr(args, name, None) is not None}
    if args.jit_compile:
        overrides["jit_compile"] = True
    if getattr(args, "rl", None) is not None:
        overrides["actor_critic"] = args.rl in ("paper", "on")
    if args.stage == 1:
        overrides = dict({"adversarial_weight": 0.0, "feature_matching_weight": 0.0, "perceptual_weight": 0.0},
                         **overrides, stage=1)
    elif args.stage == 2:
        if not args.init_from:
            raise ConfigError("--stage 2 needs --init-from: the model directory of a stage-1 run")
        from tfgc.models.store import resolve_model

        args.init_from = str(resolve_model(args.init_from))
        init = stage1_config(args.init_from)
        if not (args.config or args.preset):
            from tfgc.config import with_gan

            # stage 1's own setting would forbid the GAN; the GAN's weights follow the discriminator asked for
            config = with_gan(init.replace(stage=0, discriminator=getattr(args, "discriminator", None)))
        mismatch = _architecture_mismatch(init, config)
        if mismatch:
            raise ConfigError(f"--init-from {args.init_from} has another decoder architecture ({mismatch})")
        overrides.update(stage=2, init_from=str(Path(args.init_from).resolve()), fidelity_control=True)
    elif args.init_from:
        raise ConfigError("--init-from is for --stage 2")
    return config.replace(**overrides)


_ARCHITECTURE = ("family", "width", "normalization", "latent_channels", "levels", "residual_blocks", "noise_channels",
                 "label_set", "semantic_classes", "semantic_channels", "scale", "base_codec", "generator",
                 "upsampling_skip")


def stage1_config(directory) -> Config:
    from tfgc.models.store import CONFIG, resolve_model

    directory = resolve_model(directory)
    config = Config.load(directory / CONFIG)
    if config.model.fidelity_control:
        raise ConfigError(f"{directory} already holds two decoders; stage 2 starts from a stage-1 model")
    return config


def _stage1_summary(directory) -> dict:
    """How the stage-1 model a stage-2 run started from was trained, for the stage-2 model's manifest."""
    from tfgc.models.store import read_manifest

    manifest = read_manifest(directory)
    keys = ("command", "steps", "train_seconds", "train_seconds_this_session", "data", "fingerprint", "machine")
    return dict({key: manifest[key] for key in keys if key in manifest}, directory=str(directory))


def _architecture_mismatch(init: Config, config: Config) -> Optional[str]:
    for name in _ARCHITECTURE:
        if getattr(init.model, name) != getattr(config.model, name):
            return f"{name} {getattr(init.model, name)!r} there, {getattr(config.model, name)!r} here"
    return None


def check_resumable(existing: Config, config: Config) -> Optional[str]:
    """Why `config` cannot continue the run `existing` describes, or None if it can."""
    old, new = existing.to_dict(), config.to_dict()
    for section in ("model", "train"):
        for key, value in new[section].items():
            if key not in _RESUMABLE_CHANGES and old[section].get(key) != value:
                return f"{section}.{key} was {old[section].get(key)!r}, now {value!r}"
    return None


def _backup_training_seconds(backup: Optional[str]) -> float:
    """The training time a BackupAndRestore checkpoint holds (0 without one, or from before tfgc kept it)."""
    import tensorflow as tf

    if not backup:
        return 0.0
    key = "model/training_seconds/.ATTRIBUTES/VARIABLE_VALUE"
    reader = tf.train.load_checkpoint(backup)
    return float(reader.get_tensor(key)) if reader.has_tensor(key) else 0.0


def make_strategy(name: str):
    import tensorflow as tf

    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


def set_precision(mode: str) -> None:
    import tensorflow as tf

    policy = {"off": "float32", "float16": "mixed_float16", "bfloat16": "mixed_bfloat16"}[mode]
    tf.keras.mixed_precision.set_global_policy(policy)


def compile_model(model, config: Config) -> None:
    import tensorflow as tf

    t = config.train
    optimizer = tf.keras.optimizers.Adam(t.learning_rate, beta_1=t.beta_1, beta_2=t.beta_2)
    d_optimizer = None
    if model.adversarial:
        d_optimizer = tf.keras.optimizers.Adam(t.discriminator_learning_rate, beta_1=t.beta_1, beta_2=t.beta_2)
    model.compile(optimizer, d_optimizer, jit_compile=t.jit_compile)


class TrainingClock:
    """Seconds of training, without the time spent exporting snapshots: in this session, and in total (`earlier`
    holds what the sessions before this one trained, restored with the model's backup)."""

    def __init__(self):
        self.started = time.monotonic()
        self.paused = 0.0
        self.earlier = 0.0

    def seconds(self) -> float:
        return time.monotonic() - self.started - self.paused

    def total(self) -> float:
        return self.earlier + self.seconds()

    def pause(self):
        clock = self

        class Paused:
            def __enter__(self):
                self.entered = time.monotonic()

            def __exit__(self, *exc):
                clock.paused += time.monotonic() - self.entered

        return Paused()


def _callbacks(model, config: Config, out: Path, validation_batch, clock: TrainingClock) -> list:
    """The run's callbacks, in their order (tfgc.training.callbacks): the guard first, so that the step that stops
    training is not followed by a save of its state; the training time before the backup that keeps it."""
    import tensorflow as tf

    from tfgc.training import callbacks as c

    t = config.train
    return [
        c.NonFiniteSteps(MAX_NONFINITE_STEPS),
        c.TrainingTime(clock),
        tf.keras.callbacks.BackupAndRestore(str(out / "backup"), save_freq=t.checkpoint_every, delete_checkpoint=False),
        c.SessionStart(clock, out / "backup"),
        tf.keras.callbacks.TensorBoard(str(out / "logs"), update_freq=max(1, min(50, t.steps_per_epoch // 4))),
        c.EpochCheckpoint(model, out / "checkpoints"),
        c.ReconstructionImages(validation_batch, out / "logs" / "images", t.validation_images),
        c.TimeLimit(clock, t.time_limit_minutes, t.budget_minutes),
        c.CosineLearningRate(t, clock),
        c.Snapshots(clock, t.snapshot_minutes, out / "snapshots"),
    ]


def _run_folder(args, config: Config) -> Path:
    """The run's folder: a new one, or one whose run this config resumes (--force starts over there)."""
    out = Path(args.out or Path("runs") / config.preset)
    existing = out / "config.json"
    if existing.is_file():
        reason = check_resumable(Config.load(existing), config)
        if reason is not None:
            if not args.force:
                raise ConfigError(f"{out} holds a run with another config ({reason}); use another --out, or --force "
                                  "to start over there")
            if config.train.strategy == "multiworker" and not chief_in_environment():
                return out  # the chief clears the folder for every worker
            import shutil

            for sub in ("backup", "checkpoints"):
                shutil.rmtree(out / sub, ignore_errors=True)
    return out


def _usable(paths: list, val_paths: list, skip_bad: bool):
    """(training examples, validation examples, [{"path", "reason"}] of the images left out): each example's image
    (a path, or the first of a tuple such as sc's image and label map) decoded once before training
    (tfgc.data.check)."""
    from tfgc.data.check import check_images

    def image(example):
        return example if isinstance(example, str) else example[0]

    images = list(dict.fromkeys(image(e) for e in paths + val_paths))
    good, skipped = check_images(images, skip_bad)
    good = set(good)
    kept = [e for e in paths if image(e) in good]
    kept_val = [e for e in val_paths if image(e) in good]
    if not kept_val:
        raise DataError("none of the validation images can be used")
    return kept, kept_val, skipped


def _start(config: Config):
    """The run's strategy, under its seed and precision: before any TensorFlow op, which MultiWorkerMirroredStrategy
    requires."""
    import tensorflow as tf

    t = config.train
    tf.keras.utils.set_random_seed(t.seed)
    set_precision(t.mixed_precision)
    return make_strategy(t.strategy)


def _build(config: Config, out: Path, strategy):
    """The model built and compiled under the run's strategy and precision."""
    from tfgc.models.registry import build_model

    t = config.train
    if writes_files(strategy):
        out.mkdir(parents=True, exist_ok=True)
        config.save(out / "config.json")
    with strategy.scope():
        model = build_model(config)
        if t.init_from:
            from tfgc.models.store import initialize_from

            initialize_from(model, t.init_from)
        compile_model(model, config)
    return model


def _datasets(family, config: Config, paths, val_paths, args):
    """(training, validation) datasets of what the family's decoder sees in files, sharded by data across workers."""
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    cache = Path(args.base_cache) if getattr(args, "base_cache", None) else None
    train_ds, val_ds = family.training_data(config, paths, val_paths, cache)
    return train_ds.with_options(options), val_ds.with_options(options)


def _lost_peer(error) -> str:
    """Which worker TensorFlow's error of a lost peer names, and why ("Task /job:worker/replica:0/task:1 heartbeat
    timeout"), out of a message of many lines."""
    import re

    found = re.search(r"Task /job:\S+ [^.\n]*", str(error))
    if found:
        return found.group(0)
    # Without it: the message's own lines, past TensorFlow's "Detected at node ... defined at" and its stack frames.
    lines = [line.strip() for line in str(error).splitlines()
             if line.strip() and not line.startswith((" ", "\t", "Graph execution error", "Detected at node"))]
    return lines[0].rstrip(".") if lines else type(error).__name__


def _fit(model, config: Config, out: Path, train_ds, val_ds, validation_batch,
         clock: "TrainingClock") -> Tuple[Optional[int], float]:
    """Train to the config's steps (resuming from the run's backup): (the step this session resumed from, its seconds
    of training). A run whose budget is spent loads its last backup instead. Refuses to go on after non-finite steps
    or weights."""
    import tensorflow as tf

    from tfgc.training.callbacks import NonFiniteSteps, SessionStart, current_step

    t = config.train
    callbacks = _callbacks(model, config, out, validation_batch, clock)
    session_start = next(c for c in callbacks if isinstance(c, SessionStart))
    backup = tf.train.latest_checkpoint(str(out / "backup" / "chief")) if t.budget_minutes else None
    trained = _backup_training_seconds(backup)
    if backup and trained >= 60 * t.budget_minutes:
        # Keras would train at least one more step; a run whose budget is spent exports its last backup again instead.
        print(f"tfgc.train: the run's budget of {t.budget_minutes:g} minutes is spent ({trained / 60:.1f} trained); "
              "exporting its last backup again (raise --budget-minutes to train on)", flush=True)
        tf.train.Checkpoint(model=model).read(backup).expect_partial()
        clock.earlier, clock.started = trained, time.monotonic()
        session_start.resumed_from = current_step(model)
    else:
        try:
            model.fit(train_ds, epochs=math.ceil(t.steps / t.steps_per_epoch), steps_per_epoch=t.steps_per_epoch,
                      validation_data=val_ds, callbacks=callbacks, verbose=1 if sys.stdout.isatty() else 2)
        except tf.errors.UnavailableError as e:  # only multi-worker training has peers to lose
            raise TfgcError(f"training stopped: another worker stopped answering ({_lost_peer(e)}); run the same "
                            f"command on every worker to resume from the last backup in {out / 'backup'}") from None
    elapsed = clock.seconds()
    steps = current_step(model)
    guard = next(c for c in callbacks if isinstance(c, NonFiniteSteps))
    if guard.stopped_at is not None:
        raise TfgcError(f"training stopped at step {steps}: {MAX_NONFINITE_STEPS} steps in a row had a non-finite loss "
                        f"or gradient (all skipped, so the weights and {out / 'backup'} hold the last finite state); "
                        "lower the learning rate or check the data; no model exported")
    if not all(bool(tf.reduce_all(tf.math.is_finite(w))) for w in model.weights if w.dtype.is_floating):
        raise TfgcError(f"training diverged (non-finite weights at step {steps}); the last good state is in "
                        f"{out / 'checkpoints'}; no model exported")
    return session_start.resumed_from, elapsed


def _export(model, config: Config, out: Path, args, clock: "TrainingClock", resumed_from, elapsed: float,
            training_images: int, skipped: list):
    """The trained model as OUT/model, its manifest saying how it was made."""
    from tfgc.models.store import save_model
    from tfgc.reports.writer import environment
    from tfgc.training.callbacks import current_step

    t = config.train
    return save_model(model, write_folder(out, model.distribute_strategy) / "model", force=True, extra={
        "steps": current_step(model), "resumed_from_step": resumed_from, "train_seconds": round(clock.total(), 1),
        "train_seconds_this_session": round(elapsed, 1),
        "command": "python -m tfgc.train " + " ".join(shlex.quote(a) for a in (args.argv or [])),
        **{key: value for key, value in environment().items() if key in ("commit", "machine", "python")},
        "data": [str(p) for p in (args.data or ["(bundled images)"])], "training_images": training_images,
        **({"skipped_images": skipped} if skipped else {}),
        **({"stage1": _stage1_summary(t.init_from)} if t.init_from else {}),
    })


def run(args) -> int:
    from tfgc.codec.family import codec_for

    config = resolve_config(args)
    if config.train.strategy == "multiworker":
        chief_in_environment()  # a malformed TF_CONFIG: one line now, rather than TensorFlow's traceback later
    out = _run_folder(args, config)
    family = codec_for(config.model.family)
    paths, val_paths = family.training_paths(config, args.data, args.val_data)
    strategy = _start(config)
    paths, val_paths, skipped = _usable(paths, val_paths, args.skip_bad_images)
    model = _build(config, out, strategy)
    train_ds, val_ds = _datasets(family, config, paths, val_paths[:config.train.validation_images], args)
    validation_batch = next(iter(val_ds))  # the images TensorBoard shows; a broken validation set fails here
    t = config.train
    print(f"tfgc.train: {config.preset}, {len(paths)} training images, "
          f"{math.ceil(t.steps / t.steps_per_epoch) * t.steps_per_epoch} steps of batch {t.batch_size} at "
          f"{t.crop_size}x{t.crop_size}, {family.rate_line(config)}, {strategy.num_replicas_in_sync} replica(s), "
          f"precision {t.mixed_precision}; run directory {out}")
    clock = TrainingClock()
    resumed_from, elapsed = _fit(model, config, out, train_ds, val_ds, validation_batch, clock)
    model_dir = _export(model, config, out, args, clock, resumed_from, elapsed, len(paths), skipped)
    from tfgc.training.callbacks import current_step  # TensorFlow: only once the arguments are known to be good

    steps = current_step(model)
    if not writes_files(strategy):
        discard_scratch(out, strategy)
        print(f"\nWorker {strategy.cluster_resolver.task_id} trained {config.preset} to step {steps}; the chief "
              f"exported the model to {out / 'model'}")
        return 0
    print(f"\nTrained {config.preset} to step {steps} ({elapsed / 60:.1f} min this session, "
          f"{clock.total() / 60:.1f} in total). Exported {model_dir}")
    print("Next:")
    print(f"  tensorboard --logdir {out / 'logs'}")
    print(f"  python -m tfgc compress IMAGE.png image.tfgc --model {model_dir}")
    print(f"  python -m tfgc decompress image.tfgc image.png --model {model_dir}")
    print(f"  python -m tfgc.train --out {out} --steps {steps * 2}    # continue training from step {steps}")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    args.argv = argv
    return run_command("tfgc.train", lambda: run(args),
                       interrupted="interrupted; run the same command again to resume from the last backup")


if __name__ == "__main__":
    sys.exit(main())
