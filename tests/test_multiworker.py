"""Multi-worker training for real: two `python -m tfgc.train` processes on the loopback address, each told its place
by TF_CONFIG, train gc-tiny together; one is killed mid-run and the job, started again, resumes from the last backup."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

# tfgc.train's command line, with the weights a worker is about to export saved beside (training's clock aside: each
# worker keeps its own).
WORKER = """
import os, sys
import numpy as np
import tfgc.train as train
export = train._export
def _export(model, *args, **kwargs):
    np.savez(os.environ["WEIGHTS_OUT"], *[w.numpy() for w in model.weights if "training_seconds" not in w.name])
    return export(model, *args, **kwargs)
train._export = _export
sys.exit(train.main(sys.argv[1:]))
"""
STEPS = 8


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_workers(out: Path, tag: str):
    cluster = {"worker": [f"127.0.0.1:{_free_port()}" for _ in range(2)]}
    workers = []
    for index in range(2):
        env = dict(os.environ, TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}),
                   WEIGHTS_OUT=str(out.parent / f"{tag}-{index}.npz"))
        log = open(out.parent / f"{tag}-{index}.log", "w")
        workers.append(subprocess.Popen(
            [sys.executable, "-c", WORKER, "--preset", "gc-tiny", "--strategy", "multiworker", "--steps", str(STEPS),
             "--steps-per-epoch", "4", "--out", str(out)], env=env, stdout=log, stderr=subprocess.STDOUT,
            cwd=out.parent))
    return workers


def _backup_step(out: Path) -> int:
    backup = tf.train.latest_checkpoint(str(out / "backup" / "chief"))
    if not backup:
        return 0
    return int(tf.train.load_checkpoint(backup).get_tensor("model/optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE"))


def _stop(workers):
    for worker in workers:
        if worker.poll() is None:
            worker.kill()
            worker.wait()


@pytest.mark.slow
def test_two_workers_train_alike_write_once_and_resume_after_losing_one(tmp_path):
    out = tmp_path / "run"
    workers = _start_workers(out, "first")
    chief_pids = {str(workers[0].pid)}
    try:
        deadline = time.monotonic() + 600
        while _backup_step(out) < 3:
            assert all(w.poll() is None for w in workers), (tmp_path / "first-0.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "no backup of step 3 within 10 minutes"
            time.sleep(0.5)
        workers[1].send_signal(signal.SIGKILL)
        chief_code = workers[0].wait(timeout=300)  # TensorFlow's health check notices a lost peer within a minute
    finally:
        _stop(workers)
    chief_log = (tmp_path / "first-0.log").read_text()
    assert chief_code == 1
    # TensorFlow says it in several ways (a heartbeat timeout, a closed socket), the line always the same way
    last = chief_log.rstrip().splitlines()[-1]
    assert last.startswith("tfgc.train: error: training stopped: another worker stopped answering (")
    assert last.endswith(f"run the same command on every worker to resume from the last backup in {out / 'backup'}")
    assert "Detected at node" not in last and "Traceback" not in chief_log
    saved = _backup_step(out)
    assert 3 <= saved < STEPS

    workers = _start_workers(out, "again")
    chief_pids.add(str(workers[0].pid))
    try:
        codes = [w.wait(timeout=900) for w in workers]
    finally:
        _stop(workers)
    logs = [(tmp_path / f"again-{i}.log").read_text() for i in range(2)]
    assert codes == [0, 0], logs[0][-3000:] + logs[1][-3000:]
    for log in logs:  # nothing lost: both resume from the backup the chief wrote last before the loss
        assert f"tfgc.train: resumed from step {saved} after" in log
    assert f"Worker 1 trained gc-tiny to step {STEPS}; the chief exported the model" in logs[1]
    assert json.loads((out / "model" / "manifest.json").read_text())["steps"] == STEPS

    chief, other = (np.load(tmp_path / f"again-{i}.npz") for i in range(2))
    assert len(chief.files) > 50 and chief.files == other.files
    for key in chief.files:
        np.testing.assert_array_equal(chief[key], other[key], err_msg=key)

    # The chief alone wrote the run's files: no worker's scratch folder is left, and every TensorBoard event file
    # carries a chief's process id (events.out.tfevents.TIME.HOST.PID.N.v2).
    assert not [p for p in out.rglob("*") if p.name.startswith(".worker-")]
    events = list((out / "logs").rglob("events.out.tfevents.*"))
    assert events and {e.name.split(".")[-3] for e in events} <= chief_pids
    assert sorted(p.name for p in (out / "checkpoints").iterdir() if p.name.startswith("ckpt-"))[-1].startswith(
        f"ckpt-{STEPS}.")


@pytest.mark.parametrize("tf_config, chief", [
    (None, True),
    ({"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 0}}, True),
    ({"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 1}}, False),
    ({"cluster": {"chief": ["c:1"], "worker": ["a:1"]}, "task": {"type": "worker", "index": 0}}, False),
    ({"cluster": {"chief": ["c:1"], "worker": ["a:1"]}, "task": {"type": "chief", "index": 0}}, True),
])
def test_chief_is_the_one_tensorflow_names(monkeypatch, tf_config, chief):
    from tfgc.training.workers import chief_in_environment

    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", json.dumps(tf_config))
    assert chief_in_environment() is chief


def test_malformed_tf_config_is_one_line_before_training(monkeypatch, tmp_path, capsys):
    from tfgc import train

    monkeypatch.setenv("TF_CONFIG", '{"cluster": ')
    assert train.main(["--preset", "gc-tiny", "--strategy", "multiworker", "--out", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [err[0]] and err[0].startswith("tfgc.train: error: TF_CONFIG is not a cluster description")
    assert not (tmp_path / "run").exists()
