"""The callbacks of a training run, each a Keras callback built from what it needs.

`clock` is the run's TrainingClock (tfgc.train): seconds of this session (`seconds()`) and of the whole run over its
sessions (`total()`, which includes `earlier`), without the time spent exporting snapshots (`pause()`).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Optional

import tensorflow as tf

from tfgc.nn.images import to_uint8
from tfgc.training.workers import discard_scratch, write_folder, writes_files


def current_step(model) -> int:
    # optimizer.iterations is a MirroredVariable under a distribution strategy: read it through Keras.
    return int(tf.keras.backend.get_value(model.optimizer.iterations))


def cosine_factor(progress: float, floor: float) -> float:
    """The cosine schedule's learning rate at `progress` (0..1) of the run, as a fraction of the initial one."""
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def _optimizers(model) -> dict:
    optimizers = {"optimizer": model.optimizer}
    if model.discriminator_optimizer is not None:
        optimizers["discriminator_optimizer"] = model.discriminator_optimizer
    return optimizers


class EpochCheckpoint(tf.keras.callbacks.Callback):
    """The model and its optimizers into `folder` at the end of every epoch, the last three kept (by the chief of
    multi-worker training; tfgc.training.workers)."""

    def __init__(self, model, folder: Path):
        super().__init__()
        self.folder, self.strategy = folder, model.distribute_strategy
        self.manager = tf.train.CheckpointManager(tf.train.Checkpoint(model=model, **_optimizers(model)),
                                                  str(write_folder(folder, self.strategy)), max_to_keep=3)

    def on_epoch_end(self, epoch, logs=None):
        self.manager.save(checkpoint_number=current_step(self.model))
        discard_scratch(self.folder, self.strategy)


class ReconstructionImages(tf.keras.callbacks.Callback):
    """The validation batch beside its reconstruction, for TensorBoard, at the end of every epoch (by the chief of
    multi-worker training alone: nothing here is synchronized across workers)."""

    def __init__(self, validation_batch, folder: Path, max_outputs: int):
        super().__init__()
        self.batch, self.folder, self.max_outputs = validation_batch, folder, max_outputs
        self.writer = None

    def on_epoch_end(self, epoch, logs=None):
        model = self.model
        if not writes_files(model.distribute_strategy):
            return
        if self.writer is None:
            self.writer = tf.summary.create_file_writer(str(self.folder))
        reconstruction = model.generate(self.batch, training=False)["x_hat"]  # the training batch's form
        pair = tf.concat([tf.cast(model.images_of(self.batch), tf.uint8), to_uint8(reconstruction)], axis=2)
        with self.writer.as_default():
            tf.summary.image("original | reconstruction", pair, step=current_step(model), max_outputs=self.max_outputs)


class TrainingTime(tf.keras.callbacks.Callback):
    """The run's training time into the model's variable after every step; before BackupAndRestore in the list, so
    that each backup holds the training time of its step."""

    def __init__(self, clock):
        super().__init__()
        self.clock = clock

    def on_train_batch_end(self, batch, logs=None):
        self.model.training_seconds.assign(self.clock.total())


class TimeLimit(tf.keras.callbacks.Callback):
    """Stops training when this session has run `session_minutes`, or the run `budget_minutes` (0: no limit)."""

    def __init__(self, clock, session_minutes: float, budget_minutes: float):
        super().__init__()
        self.clock, self.session_minutes, self.budget_minutes = clock, session_minutes, budget_minutes

    def on_train_batch_end(self, batch, logs=None):
        if self.session_minutes and self.clock.seconds() > 60 * self.session_minutes:
            self.model.stop_training = True
        if self.budget_minutes and self.clock.total() > 60 * self.budget_minutes:
            self.model.stop_training = True


class SessionStart(tf.keras.callbacks.Callback):
    """The step this session starts from: 0, or where BackupAndRestore (before it in the list) resumed; the clock
    learns the training time of the sessions before."""

    def __init__(self, clock, backup: Path):
        super().__init__()
        self.clock, self.backup = clock, backup
        self.resumed_from = 0

    def on_train_begin(self, logs=None):
        self.resumed_from = current_step(self.model)
        self.clock.earlier = float(tf.keras.backend.get_value(self.model.training_seconds))
        if self.resumed_from:
            print(f"tfgc.train: resumed from step {self.resumed_from} after {self.clock.earlier / 60:.1f} minutes of "
                  f"training ({self.backup})", flush=True)


class NonFiniteSteps(tf.keras.callbacks.Callback):
    """Says so for every skipped (non-finite) step and stops training after `limit` of them in a row; first in the
    list, so that the step that stops training is not followed by a save of its state."""

    def __init__(self, limit: int):
        super().__init__()
        self.limit = limit
        self.in_a_row = 0
        self.stopped_at: Optional[int] = None

    def on_train_batch_end(self, batch, logs=None):
        if not (logs or {}).get("nonfinite"):
            self.in_a_row = 0
            return
        self.in_a_row += 1
        step = current_step(self.model)
        print(f"tfgc.train: step {step}: the loss or its gradients are not finite (NaN or Inf); the update was "
              "skipped", file=sys.stderr, flush=True)
        if self.in_a_row >= self.limit:
            self.stopped_at = step
            self.model.stop_training = True


class CosineLearningRate(tf.keras.callbacks.Callback):
    """The cosine schedule over the run: its progress is the larger of the steps done and the time spent of the
    budget (else of the session's time limit), so a run stopped by time still ends at the floor."""

    def __init__(self, train_config, clock):
        super().__init__()
        self.train, self.clock = train_config, clock

    def on_train_batch_begin(self, batch, logs=None):
        t = self.train
        if t.learning_rate_schedule != "cosine":
            return
        progress = current_step(self.model) / t.steps
        if t.budget_minutes:
            progress = max(progress, self.clock.total() / (60 * t.budget_minutes))
        elif t.time_limit_minutes:
            progress = max(progress, self.clock.seconds() / (60 * t.time_limit_minutes))
        factor = cosine_factor(min(progress, 1.0), t.learning_rate_floor)
        starts = {"optimizer": t.learning_rate, "discriminator_optimizer": t.discriminator_learning_rate}
        for name, optimizer in _optimizers(self.model).items():
            tf.keras.backend.set_value(optimizer.learning_rate, starts[name] * factor)


class Snapshots(tf.keras.callbacks.Callback):
    """The model exported to `folder`/step-N every `minutes` of the run's total training time, so a resumed run
    keeps the spacing (the exports' own time is not counted); by the chief of multi-worker training."""

    def __init__(self, clock, minutes: float, folder: Path):
        super().__init__()
        self.clock, self.minutes, self.folder = clock, minutes, folder
        self.taken = 0

    def on_train_begin(self, logs=None):
        if self.minutes:
            self.taken = int(self.clock.total() // (60 * self.minutes))

    def on_train_batch_end(self, batch, logs=None):
        if not self.minutes or self.clock.total() < 60 * self.minutes * (self.taken + 1):
            return
        self.taken = int(self.clock.total() // (60 * self.minutes))  # one snapshot for marks passed at once
        with self.clock.pause():
            from tfgc.models.store import save_model

            step, strategy = current_step(self.model), self.model.distribute_strategy
            save_model(self.model, write_folder(self.folder, strategy) / f"step-{step:07d}", force=True, extra={
                "steps": step, "train_seconds": round(self.clock.total(), 1),
                "train_seconds_this_session": round(self.clock.seconds(), 1)})
            discard_scratch(self.folder, strategy)
