"""How much quality a CPU hour buys: stage-1 (MSE, no GAN) training of gc-small variants at a fixed wall-clock
budget, evaluated on real files, written up as docs/cpu-training.md.

    python scripts/cpu_training.py --data BSDS500/train BSDS500/test \
        --kodak kodak --runs runs/cpu-training --minutes 8 --snapshot-minutes 2 \
        --final gc-small --final-minutes 60 --out docs

Each variant is one `python -m tfgc.train --preset gc-small --stage 1 ...` run with the variant's flags and
`--budget-minutes` of training, exporting a snapshot every `--snapshot-minutes` minutes of training (exports are not
counted). The runs are made one after the other, with the machine to themselves: run nothing else meanwhile, or the
minutes buy less. With `--session-minutes S` each call stops after S minutes (`--time-limit`) and the script after it;
run the same command again to go on from the run's last backup (a 3-hour run in 60-minute sessions).
Then every snapshot is evaluated on the Kodak images: each image compressed to a real .tfgc file and decoded (PSNR and
bpp of the file; MS-SSIM for each run's last model). The script resumes: finished runs and evaluations are kept in
--runs and not repeated. `--speed` first measures the steps/s of settings that change speed but not the model (XLA,
thread counts, precision).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

# name -> (what it changes, flags of python -m tfgc.train on top of --preset gc-small --stage 1)
VARIANTS = {
    "gc-small": ("the preset as it ships: GDN, MSE + 3 x (1 - MS-SSIM), batch 4, Adam 3e-4 on a cosine schedule", []),
    "before": ("gc-small before this study: instance norm, MSE alone, batch 8, constant 1e-3",
               ["--normalization", "instance", "--ms-ssim-weight", "0", "--batch-size", "8",
                "--learning-rate", "1e-3", "--learning-rate-schedule", "constant"]),
    "mse-batch-8": ("the preset of the first 60-minute run: MSE alone, batch 8",
                    ["--ms-ssim-weight", "0", "--batch-size", "8"]),
    "mse": ("MSE alone", ["--ms-ssim-weight", "0"]),
    "ms-ssim-1": ("MS-SSIM weight 1", ["--ms-ssim-weight", "1"]),
    "ms-ssim-10": ("MS-SSIM weight 10", ["--ms-ssim-weight", "10"]),
    "batch-8": ("batch 8", ["--batch-size", "8"]),
    "instance": ("instance norm (the paper's)", ["--normalization", "instance"]),
    "none": ("no normalization", ["--normalization", "none"]),
    "lr-1e-3": ("Adam 1e-3 on the cosine schedule", ["--learning-rate", "1e-3"]),
    "constant-3e-4": ("a constant 3e-4", ["--learning-rate-schedule", "constant"]),
    "residual-blocks-2": ("2 residual blocks instead of 4", ["--residual-blocks", "2"]),
    "crop-192": ("192x192 crops", ["--crop-size", "192"]),
    "lr-1e-3-blocks-2": ("Adam 1e-3 on the cosine schedule and 2 residual blocks",
                         ["--learning-rate", "1e-3", "--residual-blocks", "2"]),
    "width-24": ("base width 24 instead of 16 (1.5x the channels of every layer)", ["--width", "24"]),
    "c16-target-0.068": ("C=16 (bound 0.145 bpp) with a rate term whose beta starts at 5 and adapts until the "
                         "training crops' rate is 0.068 bpp",
                         ["--latent-channels", "16", "--beta", "5", "--target-bpp", "0.068"]),
}

# Settings that change the speed of a step, not what it computes (measured with --speed).
SPEED_SETTINGS = {
    "default": ([], {}),
    "xla": (["--jit-compile"], {}),
    "threads 2/1": ([], {"TF_NUM_INTRAOP_THREADS": "2", "TF_NUM_INTEROP_THREADS": "1"}),
    "threads 1/2": ([], {"TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "2"}),
    "bfloat16": (["--mixed-precision", "bfloat16"], {}),
    "float16": (["--mixed-precision", "float16"], {}),
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data", nargs="+", required=True, help="training folders (BSDS500 train + test)")
    p.add_argument("--kodak", required=True, help="folder of the evaluation images")
    p.add_argument("--runs", default="runs/cpu-training", help="folder of the training runs and cached evaluations")
    p.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=sorted(VARIANTS),
                   help="variants trained for --minutes each (default: all; the flag alone: none)")
    p.add_argument("--minutes", type=float, default=8.0, help="training budget of each variant")
    p.add_argument("--snapshot-minutes", type=float, default=2.0, help="minutes between evaluated snapshots")
    p.add_argument("--final", choices=sorted(VARIANTS), help="a variant also trained for --final-minutes")
    p.add_argument("--final-minutes", type=float, default=60.0)
    p.add_argument("--final-snapshot-minutes", type=float, default=10.0)
    p.add_argument("--session-minutes", type=float, default=0.0,
                   help="stop each training session after this many minutes; rerun to go on (0: no limit)")
    p.add_argument("--compare", nargs="*", default=[], metavar="LABEL=RUN",
                   help="earlier final runs (run directories of this script) shown beside the final one")
    p.add_argument("--speed", action="store_true", help="first measure steps/s of the SPEED_SETTINGS")
    p.add_argument("--speed-steps", type=int, default=60)
    p.add_argument("--target-psnr", type=float, default=24.0)
    p.add_argument("--target-ms-ssim", type=float, default=0.85)
    p.add_argument("--target-bpp", type=float, default=0.0726)
    p.add_argument("--out", default="docs", help="folder of cpu-training.md and its assets cpu-training/")
    p.add_argument("--train-only", action="store_true", help="train, do not evaluate or report")
    p.add_argument("--notes", help="a Markdown file appended to the report (what the figures mean)")
    return p.parse_args(argv)


# The runs import tfgc from the checkout holding this script (python -m puts the working directory first on the path),
# so a frozen clone trains its own code whatever the shell's directory.
REPOSITORY = Path(__file__).resolve().parents[1]


def run_training(command_flags, log_path: Path, env=None) -> int:
    command = [sys.executable, "-m", "tfgc.train", *command_flags]
    with open(log_path, "a") as log:
        return subprocess.call(command, stdout=log, stderr=subprocess.STDOUT, cwd=REPOSITORY,
                               env=dict(os.environ, **(env or {})))


def manifest_minutes(manifest: dict) -> float:
    """A model's minutes of training; models from before tfgc kept a run's total time have their last session's."""
    return manifest.get("train_seconds", manifest.get("train_seconds_this_session", 0.0)) / 60


def trained_minutes(run: Path):
    """Minutes of training of the run's exported model (None without one)."""
    manifest = run / "model" / "manifest.json"
    return manifest_minutes(json.loads(manifest.read_text())) if manifest.is_file() else None


def train(name, flags, minutes, snapshot_minutes, args, label=None) -> Path:
    """Train (or go on training) a run to `minutes` of training; the run directory, or None if this session's
    --session-minutes ended first."""
    label = label or name
    run = Path(args.runs) / label
    done = trained_minutes(run)
    if done is not None and done >= minutes:
        print(f"[{label}] trained already: {run}", flush=True)
        return run
    # A run cut short (by --session-minutes or a kill) goes on from its last backup; anything else starts over.
    resume = (run / "backup").is_dir() and (run / "config.json").is_file()
    command = ["--preset", "gc-small", "--stage", "1", "--data", *absolute(args.data),
               "--steps", "1000000", "--steps-per-epoch", "200", "--budget-minutes", f"{minutes:g}",
               "--snapshot-minutes", f"{snapshot_minutes:g}", "--out", str(run.resolve()),
               *(["--time-limit", f"{args.session_minutes:g}"] if args.session_minutes else []),
               *([] if resume else ["--force"]), *flags]
    run.mkdir(parents=True, exist_ok=True)
    print(f"[{label}] python -m tfgc.train {shlex.join(command)} (in {REPOSITORY})", flush=True)
    with open(run / "train.log", "a") as log:
        log.write(f"\n== {time.strftime('%Y-%m-%d %H:%M:%S')} python -m tfgc.train {shlex.join(command)}\n")
    code = run_training(command, run / "train.log")
    if code != 0:
        raise SystemExit(f"[{label}] training failed (exit {code}); see {run / 'train.log'}")
    done = trained_minutes(run) or 0.0
    if done < minutes:
        print(f"[{label}] {done:.1f} of {minutes:g} minutes trained when the session ended; run the same command "
              "again to go on", flush=True)
        return None
    return run


def last_epoch_ms_per_step(log: str, steps_per_epoch: int):
    """The last epoch's time per step in Keras' one-line-per-epoch log: "123ms/step", or from "53s/epoch" when the
    step took a second or more (Keras then prints a whole number of seconds per step)."""
    epochs = re.findall(r"^\s*\d+/\d+ - .* - (\d+)s/epoch - (\d+)(ms|s)/step", log, re.MULTILINE)
    if not epochs:
        return None
    epoch_seconds, per_step, unit = epochs[-1]
    return int(per_step) if unit == "ms" else round(1000 * int(epoch_seconds) / steps_per_epoch)


def absolute(paths):
    return [str(Path(p).resolve()) for p in paths]


def measure_speed(args) -> dict:
    """steps/s of gc-small's stage-1 step (GDN, the shipped preset) under each speed setting."""
    results = {}
    for label, (flags, env) in SPEED_SETTINGS.items():
        run = Path(args.runs) / "speed" / label.replace(" ", "-").replace("/", "-")
        cached = run / "speed.json"
        if cached.is_file():
            results[label] = json.loads(cached.read_text())
            continue
        # Three epochs: the first traces (and with XLA compiles) the step; the last one's ms/step is the figure.
        per_epoch = max(1, args.speed_steps // 3)
        command = ["--preset", "gc-small", "--stage", "1", "--data", *absolute(args.data),
                   "--steps", str(3 * per_epoch), "--steps-per-epoch", str(per_epoch), "--out", str(run.resolve()),
                   "--force", *flags]
        print(f"[speed {label}] python -m tfgc.train {shlex.join(command)} (in {REPOSITORY})", flush=True)
        run.mkdir(parents=True, exist_ok=True)
        code = run_training(command, run / "train.log", env)
        if code != 0:
            raise SystemExit(f"[speed {label}] failed (exit {code}); see {run / 'train.log'}")
        ms_per_step = last_epoch_ms_per_step((run / "train.log").read_text(), per_epoch)
        if ms_per_step is None:
            raise SystemExit(f"[speed {label}] no epoch timing in {run / 'train.log'}")
        results[label] = {"ms_per_step": ms_per_step, "steps_per_second": 1000 / ms_per_step, "env": env,
                          "flags": flags}
        cached.write_text(json.dumps(results[label], indent=2))
    return results


def snapshots(run: Path):
    """(minutes, steps, directory) of each snapshot and of the final model, in training order (a run stopped before
    its budget, without a final model, ends at its last snapshot)."""
    final_path = run / "model" / "manifest.json"
    final = json.loads(final_path.read_text()) if final_path.is_file() else None
    final_minutes = manifest_minutes(final) if final else None
    found = []
    for directory in (run / "snapshots").glob("step-*"):
        manifest = json.loads((directory / "manifest.json").read_text())
        if final is None or manifest["steps"] < final["steps"]:
            found.append((manifest_minutes(manifest), manifest["steps"], directory))
        elif manifest["steps"] == final["steps"]:
            # A snapshot taken at the time limit is the final model, timed at its last step (the final export's
            # clock also holds the epoch's end: validation and checkpoints).
            final_minutes = min(final_minutes, manifest_minutes(manifest))
    if final is not None:
        found.append((final_minutes, final["steps"], run / "model"))
    if not found:
        raise SystemExit(f"{run}: neither an exported model nor a snapshot to evaluate")
    return sorted(found)


def evaluate(run: Path, images, full: bool) -> list:
    """Kodak figures of each snapshot of `run` (cached in run/eval.json); MS-SSIM of the last one when `full`."""
    import numpy as np

    from tfgc import metrics
    from tfgc.codec import api
    from tfgc.models.store import load_model

    cache_path = run / "eval.json"
    cache = json.loads(cache_path.read_text()) if cache_path.is_file() else {}
    points = []
    found = snapshots(run)
    for index, (minutes, steps, directory) in enumerate(found):
        last = index == len(found) - 1
        key = directory.name
        if key not in cache or (last and full and "ms_ssim" not in cache[key]):
            model = load_model(directory)
            psnr, ms_ssim, bpp = [], [], []
            for _, image in images:
                data = api.encode(image, model).data
                decoded = api.decode(data, model)
                psnr.append(metrics.psnr(image, decoded))
                bpp.append(8 * len(data) / (image.shape[0] * image.shape[1]))
                if last and full:
                    ms_ssim.append(metrics.ms_ssim(image, decoded))
            cache[key] = {"minutes": minutes, "steps": steps, "psnr": float(np.mean(psnr)),
                          "bpp": float(np.mean(bpp))}
            if ms_ssim:
                cache[key]["ms_ssim"] = float(np.mean(ms_ssim))
            cache_path.write_text(json.dumps(cache, indent=2))
            print(f"[{run.name}] {key}: {minutes:.1f} min, step {steps}: {cache[key]['psnr']:.2f} dB at "
                  f"{cache[key]['bpp']:.4f} bpp" + (f", MS-SSIM {cache[key]['ms_ssim']:.4f}" if ms_ssim else ""),
                  flush=True)
        points.append(dict(cache[key], minutes=minutes, steps=steps))  # the time as snapshots() reads it now
    return points


def plot(curves: dict, path: Path, target: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7.5, 4.8))
    for label, points in curves.items():
        axes.plot([0] + [p["minutes"] for p in points], [None] + [p["psnr"] for p in points], marker="o",
                  markersize=3, label=label)
    axes.axhline(target, color="grey", linestyle="--", linewidth=1)
    axes.text(0.01, target, f"target {target:g} dB", color="grey", fontsize=8, va="bottom",
              transform=axes.get_yaxis_transform())
    axes.set_xlabel("training minutes (2 CPU cores; snapshot exports not counted)")
    axes.set_ylabel("PSNR on Kodak (dB), real files")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def report(args, variants: dict, final, speed: dict, command: str, compared: dict) -> str:
    from tfgc.reports.writer import environment

    env = environment()
    machine = env["machine"]
    lines = ["# Stage-1 training of gc-small on 2 CPU cores", "",
             "Generated by:", "", f"    {command}", "",
             f"Machine: {machine['cpu']}, {machine['cores']} cores, {machine['memory_gib']:.0f} GiB; "
             f"{machine['platform']}. Python {env['python']}, TensorFlow {env['versions']['tensorflow']}. "
             f"Commit {env['commit']}.", "",
             "Every run: `python -m tfgc.train --preset gc-small --stage 1 --data " + " ".join(args.data)
             + " --steps 1000000 --steps-per-epoch 200 --budget-minutes MINUTES --snapshot-minutes M --out RUN`"
             + " plus the "
             "variant's flags (C=8, L=5: the rate bound is 0.0726 bpp). Every figure is of the "
             f"{args.kodak_count} Kodak images compressed to real .tfgc files and decoded (`tfgc.codec.api`); bpp "
             "counts whole files. The minutes count training only (snapshot exports are left out); the first minute "
             "includes tracing the step and filling the data cache.", ""]
    if args.notes:
        lines += [Path(args.notes).read_text().strip(), ""]
    if speed:
        lines += speed_lines(args, speed)
    if variants:
        lines += variant_lines(args, variants)
    if final is not None:
        lines += final_lines(args, final)
    for label, points in compared.items():
        lines += final_lines(args, (label, points), plotted=False)
    return "\n".join(lines) + "\n"


def speed_lines(args, speed: dict) -> list:
    lines = ["## Speed of a step", "",
             "gc-small's stage-1 step (the preset's batch and crop): the last of three epochs of "
             f"{max(1, args.speed_steps // 3)} steps (the first traces and compiles the step):", "",
             "| setting | flags / environment | steps/s |", "|---|---|---:|"]
    for label, s in speed.items():
        how = " ".join(s["flags"] + [f"{k}={v}" for k, v in s["env"].items()]) or "(none)"
        lines.append(f"| {label} | `{how}` | {s['steps_per_second']:.2f} |")
    return lines + [""]


def variant_lines(args, variants: dict) -> list:
    lines = ["## Variants at a fixed budget", "",
             f"Each trained {args.minutes:g} minutes; Kodak PSNR after each {args.snapshot_minutes:g} minutes:", "",
             "![PSNR against training minutes](cpu-training/variants.png)", "",
             "| variant | flags | steps | steps/s | PSNR (dB) | MS-SSIM | bpp |", "|---|---|---:|---:|---:|---:|---:|"]
    for name, points in variants.items():
        last = points[-1]
        lines.append(f"| {name} | `{' '.join(VARIANTS[name][1]) or '(preset)'}` | {last['steps']} | "
                     f"{last['steps'] / (60 * last['minutes']):.2f} | {last['psnr']:.2f} | "
                     f"{last.get('ms_ssim', float('nan')):.4f} | {last['bpp']:.4f} |")
    return lines + ["", "What each variant changes: "
                    + "; ".join(f"**{name}**: {VARIANTS[name][0]}" for name in variants) + ".", ""]


def final_lines(args, final, plotted=True) -> list:
    name, points = final
    last = points[-1]
    met = (last["psnr"] >= args.target_psnr and last.get("ms_ssim", 0) >= args.target_ms_ssim
           and last["bpp"] <= args.target_bpp)
    lines = [f"## {name}" + (f": {args.final_minutes:g} minutes" if plotted else " (another run, for comparison)"),
             ""]
    if plotted:
        lines += ["![PSNR against training minutes](cpu-training/final.png)", ""]
    lines += ["| minutes | steps | PSNR (dB) | bpp |", "|---:|---:|---:|---:|"]
    lines += [f"| {p['minutes']:.1f} | {p['steps']} | {p['psnr']:.2f} | {p['bpp']:.4f} |" for p in points]
    figures = (f"**{last['psnr']:.2f} dB PSNR, {last.get('ms_ssim', float('nan')):.4f} MS-SSIM at {last['bpp']:.4f} "
               "bpp** on Kodak")
    if last["minutes"] < args.final_minutes - 1:
        return lines + ["", f"Stopped after {last['minutes']:.1f} minutes ({last['steps']} steps), before its budget: "
                            f"{figures}.", ""]
    return lines + ["", f"After {last['minutes']:.1f} minutes ({last['steps']} steps): {figures}. "
                        f"Target ({args.target_psnr:g} dB, {args.target_ms_ssim:g} MS-SSIM, <= {args.target_bpp:g} "
                        "bpp): " + ("met." if met else "not met."), ""]


def main(argv=None) -> int:
    args = parse_args(argv)
    command = "python scripts/cpu_training.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    speed = measure_speed(args) if args.speed else {}
    final_run = None
    if args.final:
        label = f"{args.final}-{args.final_minutes:g}min"
        final_run = (label, train(args.final, VARIANTS[args.final][1], args.final_minutes,
                                  args.final_snapshot_minutes, args, label=label))
    runs = {name: train(name, VARIANTS[name][1], args.minutes, args.snapshot_minutes, args)
            for name in args.variants}
    if (final_run and final_run[1] is None) or None in runs.values():
        return 0  # a session ended; what it trained is kept, the report waits for the whole budget
    if args.train_only:
        return 0
    from tfgc.reports.measure import load_images

    images = load_images([args.kodak])
    args.kodak_count = len(images)
    variants = {name: evaluate(run, images, full=True) for name, run in runs.items()}
    final = (final_run[0], evaluate(final_run[1], images, full=True)) if final_run else None
    compared = {}
    for item in args.compare:
        label, _, run = item.partition("=")
        compared[label] = evaluate(Path(run), images, full=True)
    out = Path(args.out)
    assets = out / "cpu-training"
    assets.mkdir(parents=True, exist_ok=True)
    if variants:
        plot(variants, assets / "variants.png", args.target_psnr)
    if final:
        plot({final[0]: final[1], **compared}, assets / "final.png", args.target_psnr)
    results = {"command": command, "speed": speed, "variants": variants, "final": final, "compared": compared}
    (assets / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "cpu-training.md").write_text(report(args, variants, final, speed, command, compared))
    print(f"wrote {out / 'cpu-training.md'}")
    return 0


if __name__ == "__main__":
    started = time.monotonic()
    code = main()
    print(f"({(time.monotonic() - started) / 60:.1f} min)")
    sys.exit(code)
