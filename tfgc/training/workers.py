"""Roles in multi-worker training (`--strategy multiworker`, machines named in TF_CONFIG): the chief writes the run's
files; every other worker writes the same saves into a scratch folder that is deleted at once. Other workers must
still save, because saving reads variables synchronized across workers (a collective every worker joins); only the
chief's copy is kept. Without multi-worker training every process is its own chief.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from tfgc.errors import ConfigError


def chief_in_environment() -> bool:
    """Whether this process is the chief of the cluster TF_CONFIG describes (TensorFlow's rule: the task of type
    "chief", else worker 0 of a cluster without one), read before TensorFlow starts; True without TF_CONFIG."""
    text = os.environ.get("TF_CONFIG", "").strip()
    if not text:
        return True
    try:
        tf_config = json.loads(text)
        cluster, task = tf_config.get("cluster") or {}, tf_config.get("task") or {}
        kind, index = task.get("type"), int(task.get("index", 0))
    except (ValueError, TypeError, AttributeError) as e:
        example = '{"cluster": {"worker": ["host:port", ...]}, "task": {"type": "worker", "index": N}}'
        raise ConfigError(f"TF_CONFIG is not a cluster description ({e}): {example}") from None
    if not kind:
        return True
    if kind == "chief":
        return True
    return kind == "worker" and index == 0 and "chief" not in cluster


def writes_files(strategy) -> bool:
    """Whether this worker's saves are the run's (the chief's, or the only process's)."""
    return bool(strategy.extended.should_checkpoint)


def write_folder(folder: Path, strategy) -> Path:
    """Where this worker writes what belongs in `folder`: `folder` itself on the chief, else a scratch folder in it."""
    if writes_files(strategy):
        return Path(folder)
    return Path(folder) / f".worker-{strategy.cluster_resolver.task_id}"


def discard_scratch(folder: Path, strategy) -> None:
    """Delete what write_folder(folder) gave a worker other than the chief (nothing on the chief)."""
    if not writes_files(strategy):
        shutil.rmtree(write_folder(folder, strategy), ignore_errors=True)
