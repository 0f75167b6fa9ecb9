"""Crash-safety of training: SIGKILL `python -m tfgc.train` at random moments, resume it, and check every file.

    python scripts/kill_resume.py --trials 10 --out kill-resume.json

Each trial trains a tiny model (gc-tiny, or --preset) for --steps steps with a backup after every step, killing the
process (SIGKILL: no handler runs) after a random delay, again and again, each time running the same command to resume,
until a session finishes by itself. After every kill it checks that the run directory holds no damaged file (the
config parses, the newest backup and epoch checkpoint read completely) and notes the step of the newest backup; the
next session must report resuming from exactly that step ("tfgc.train: resumed from step N"). The finished run must
end at --steps, like an uninterrupted one, and its exported model must load.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def newest_backup_step(run: Path):
    """The training step stored in the newest BackupAndRestore checkpoint (None if there is none), after reading
    every tensor of it and of the newest epoch checkpoint (a damaged file raises)."""
    import tensorflow as tf

    step = None
    for folder in (run / "backup" / "chief", run / "checkpoints"):
        path = tf.train.latest_checkpoint(str(folder)) if folder.is_dir() else None
        if path is None:
            continue
        reader = tf.train.load_checkpoint(path)
        for key in reader.get_variable_to_shape_map():
            reader.get_tensor(key)
        if folder.name == "chief":
            step = int(reader.get_tensor("model/optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE"))
    return step


def check_files(run: Path) -> None:
    from tfgc.config import Config
    from tfgc.models.store import load_model

    if (run / "config.json").exists():
        Config.load(run / "config.json")
    if (run / "model").exists():
        load_model(run / "model")
    leftovers = [p.name for p in run.iterdir() if p.name.startswith(".")]
    if leftovers:
        raise AssertionError(f"staging leftovers in {run}: {leftovers}")


def trial(command, run: Path, delay_range, max_kills: int, rng: random.Random, log) -> dict:
    """Sessions of `command`, each killed after a random delay, until one finishes (the last after max_kills kills
    runs to its end)."""
    sessions, kills = [], []
    expected_resume = None
    while True:
        with open(run.parent / "session.log", "w") as out:
            process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
            delay = rng.uniform(*delay_range) if len(kills) < max_kills else None
            try:
                code = process.wait(timeout=delay)
            except subprocess.TimeoutExpired:
                process.send_signal(signal.SIGKILL)
                process.wait()
                code = None
        text = (run.parent / "session.log").read_text()
        found = re.search(r"resumed from step (\d+)", text)
        resumed = int(found.group(1)) if found else (0 if "Epoch 1/" in text else None)
        session = {"killed_after_seconds": None if code is not None else round(delay, 1), "exit": code,
                   "resumed_from": resumed, "expected_resume": expected_resume}
        if resumed is not None and expected_resume is not None and resumed != expected_resume:
            session["error"] = f"resumed from step {resumed}, the newest backup held step {expected_resume}"
        sessions.append(session)
        if code is not None:
            if code != 0:
                session["error"] = f"session exited {code}: {text.strip().splitlines()[-1:]}"
            break
        check_files(run)
        expected_resume = newest_backup_step(run) or 0
        kills.append(expected_resume)
        log(f"  killed after {delay:.1f} s; newest backup at step {expected_resume}")
    manifest = json.loads((run / "model" / "manifest.json").read_text()) if code == 0 else {}
    check_files(run)
    return {"sessions": sessions, "kills": len(kills), "final_steps": manifest.get("steps"),
            "errors": [s["error"] for s in sessions if "error" in s]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--trials", type=int, default=10)
    p.add_argument("--preset", default="gc-tiny")
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--delay", type=float, nargs=2, default=(4.0, 30.0), metavar=("MIN", "MAX"),
                   help="seconds after a session's start at which it is killed (uniform)")
    p.add_argument("--max-kills", type=int, default=6, help="after this many kills a trial's session runs to the end")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="write the results as JSON here")
    args = p.parse_args(argv)
    rng = random.Random(args.seed)
    results = []
    started = time.monotonic()
    for index in range(args.trials):
        folder = Path(tempfile.mkdtemp(prefix="tfgc-kill-"))
        run = folder / "run"
        command = [sys.executable, "-m", "tfgc.train", "--preset", args.preset, "--steps", str(args.steps),
                   "--steps-per-epoch", "5", "--checkpoint-every", "1", "--out", str(run)]
        print(f"trial {index + 1}/{args.trials}: {' '.join(command)}", flush=True)
        result = trial(command, run, args.delay, args.max_kills, rng, lambda line: print(line, flush=True))
        result["trial"] = index + 1
        results.append(result)
        print(f"  {result['kills']} kills; finished at step {result['final_steps']} (expected {args.steps}); "
              f"{len(result['errors'])} errors", flush=True)
        shutil.rmtree(folder, ignore_errors=True)
    failures = [r for r in results if r["errors"] or r["final_steps"] != args.steps]
    summary = {"command": "python scripts/kill_resume.py " + " ".join(sys.argv[1:] if argv is None else argv),
               "trials": len(results), "kills": sum(r["kills"] for r in results), "failed_trials": len(failures),
               "steps": args.steps, "minutes": round((time.monotonic() - started) / 60, 1), "results": results}
    if args.out:
        Path(args.out).write_text(json.dumps(summary, indent=2) + "\n")
    print(f"{summary['trials']} trials, {summary['kills']} kills, {summary['failed_trials']} failed trials "
          f"({summary['minutes']} min)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
