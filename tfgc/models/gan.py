"""The training core every model family shares.

`GANModel.train_step` runs one forward pass of the generator side, scores real and generated images with the
discriminator, and updates both from the same pass (pix2pixHD's simultaneous update). It owns the three things that
must not differ between model families: loss scaling for mixed float16, averaging over the global batch under
`tf.distribute`, and metric bookkeeping. A model family supplies its networks and its losses:

- `generate(batch, training)` -> dict of tensors (its forward pass);
- `discriminator_inputs(batch, outputs)` -> (real, fake) images for the discriminator;
- `generator_loss_terms(batch, outputs, disc_real, disc_fake)` -> {name: per-example weighted loss};
- `batch_metrics(batch, outputs)` -> {name: per-example value} for logs;
- `loss_term_names()`, `metric_names()` (fixed, so metric trackers exist before tracing);
- optionally `generator_variables` (default: every trainable variable outside the discriminator),
  `discriminator_loss` (default: least squares), and `step_statistics(batch, outputs)` -> {name: scalar} with
  `adapt_loss_weights(statistics, finite)`: after each step, the statistics averaged over replicas and whether the
  step was applied on every replica, for loss weights that follow training (default: none).
"""

from __future__ import annotations

from typing import Dict, List

import tensorflow as tf


def lsgan_discriminator_loss(disc_real, disc_fake, reduction: str = "mean"):
    """Least-squares GAN loss of the discriminator, per example, over scales by `reduction` ("mean" or "sum")."""
    losses = []
    for real, fake in zip(disc_real, disc_fake):
        losses.append(0.5 * (_spatial_mean(tf.square(real[-1] - 1.0)) + _spatial_mean(tf.square(fake[-1]))))
    return _over_scales(losses, reduction)


def lsgan_generator_loss(disc_fake, reduction: str = "mean"):
    return _over_scales([_spatial_mean(tf.square(fake[-1] - 1.0)) for fake in disc_fake], reduction)


def _over_scales(losses, reduction: str):
    total = tf.add_n(losses)
    return total if reduction == "sum" else total / len(losses)


def nonsaturating_discriminator_loss(disc_real, disc_fake):
    """The original GAN loss of the discriminator on logits (SRGAN's), per example, averaged over scales."""
    losses = []
    for real, fake in zip(disc_real, disc_fake):
        losses.append(_spatial_mean(tf.nn.softplus(-real[-1])) + _spatial_mean(tf.nn.softplus(fake[-1])))
    return tf.add_n(losses) / len(losses)


def nonsaturating_generator_loss(disc_fake):
    """-log D(G(x)) on logits, per example (SRGAN's adversarial loss)."""
    return tf.add_n([_spatial_mean(tf.nn.softplus(-fake[-1])) for fake in disc_fake]) / len(disc_fake)


def feature_matching_loss(disc_real, disc_fake):
    """pix2pixHD's feature matching: L1 between discriminator activations (all but the scores), each of the n layers
    weighted 4/n, averaged over scales."""
    total = 0.0
    for real, fake in zip(disc_real, disc_fake):
        layer_weight = 4.0 / (len(real) - 1)
        for r, f in zip(real[:-1], fake[:-1]):
            total += layer_weight * _spatial_mean(tf.abs(tf.stop_gradient(r) - f))
    return total / len(disc_real)


def _spatial_mean(x):
    return tf.reduce_mean(x, axis=list(range(1, len(x.shape))))


def _is_loss_scaled(optimizer) -> bool:
    return isinstance(optimizer, tf.keras.mixed_precision.LossScaleOptimizer)


class GANModel(tf.keras.Model):
    # Subclasses set `self.discriminator` (a layer, or None) in __init__. Not a class attribute: Keras would then not
    # track the layer, and checkpoints (BackupAndRestore's too) would silently leave the discriminator out.
    # Each family is built from (config, for_training) alone, which is also its Keras config: model.save() and
    # tf.keras.models.load_model() rebuild the family's class from it and restore the weights into it.

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The run's training time over all its sessions: a model variable, so BackupAndRestore keeps it with the step
        # it belongs to (tfgc.train's time budget and schedule read it; the host sets it after each step). Created
        # with the model, so that a model saved after compile() has the variables of one rebuilt from its config.
        self.training_seconds = tf.Variable(0.0, dtype=tf.float64, trainable=False, name="training_seconds",
                                            aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)

    def get_config(self):
        return {"config": self.config.to_dict(), "for_training": self.for_training}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        from tfgc.config import Config

        return cls(Config.from_dict(config["config"]), for_training=config.get("for_training", False))

    # ---- what a model family provides -------------------------------------------------------------------------
    def generate(self, batch, training: bool) -> Dict[str, tf.Tensor]:
        raise NotImplementedError

    def discriminator_inputs(self, batch, outputs):
        raise NotImplementedError

    def generator_loss_terms(self, batch, outputs, disc_real, disc_fake) -> Dict[str, tf.Tensor]:
        raise NotImplementedError

    def batch_metrics(self, batch, outputs) -> Dict[str, tf.Tensor]:
        return {}

    def loss_term_names(self) -> List[str]:
        raise NotImplementedError

    def discriminator_loss(self, disc_real, disc_fake):
        """Per-example loss of the discriminator on its outputs for real and generated images."""
        return lsgan_discriminator_loss(disc_real, disc_fake, self.config.model.adversarial_reduction)

    def metric_names(self) -> List[str]:
        return []

    def step_statistics(self, batch, outputs) -> Dict[str, tf.Tensor]:
        """Scalars of this replica's batch that `adapt_loss_weights` gets averaged over the global batch."""
        return {}

    def adapt_loss_weights(self, statistics, finite) -> None:
        """Loss weights that follow training (GC's rate weight under a target rate) update here."""

    @property
    def adversarial(self) -> bool:
        return getattr(self, "discriminator", None) is not None

    @property
    def generator_variables(self):
        excluded = {id(v) for v in self.discriminator.trainable_variables} if self.adversarial else set()
        return [v for v in self.trainable_variables if id(v) not in excluded]

    # ---- the shared core ----------------------------------------------------------------------------------------
    def compile(self, optimizer, discriminator_optimizer=None, **kwargs):
        """`optimizer` updates the generator side, `discriminator_optimizer` the discriminator.

        Both are wrapped in a LossScaleOptimizer, which skips any step whose gradients are not finite (on every
        replica alike), so a NaN or Inf never reaches the weights or a checkpoint. Under the mixed_float16 policy it
        also scales the losses dynamically, so float16 gradients neither underflow nor overflow; under the other
        policies the scale starts at 1 and never grows (a skipped step halves it, exactly, in float32).
        `train_step` reports each skipped step as `nonfinite` = 1.
        """
        if self.adversarial and discriminator_optimizer is None:
            raise ValueError("an adversarial model needs a discriminator_optimizer")
        float16 = tf.keras.mixed_precision.global_policy().compute_dtype == "float16"
        optimizer = _loss_scaled(optimizer, float16)
        if discriminator_optimizer is not None:
            discriminator_optimizer = _loss_scaled(discriminator_optimizer, float16)
        super().compile(optimizer=optimizer, **kwargs)
        self.discriminator_optimizer = discriminator_optimizer
        names = ["loss"] + (["d_loss"] if self.adversarial else []) + self.loss_term_names() + self.metric_names()
        self._trackers = {name: tf.keras.metrics.Mean(name=name) for name in names}

    @property
    def metrics(self):
        return list(getattr(self, "_trackers", {}).values())

    def train_step(self, data):
        generator_variables = self.generator_variables
        discriminator_variables = self.discriminator.trainable_variables if self.adversarial else []
        with tf.GradientTape(watch_accessed_variables=False) as g_tape, \
                tf.GradientTape(watch_accessed_variables=False) as d_tape:
            g_tape.watch(generator_variables)
            d_tape.watch(discriminator_variables)
            outputs = self.generate(data, training=True)
            disc_real = disc_fake = None
            if self.adversarial:
                real, fake = self.discriminator_inputs(data, outputs)
                disc_real = self.discriminator(real, training=True)
                disc_fake = self.discriminator(tf.cast(fake, real.dtype), training=True)
                d_per_example = self.discriminator_loss(disc_real, disc_fake)
                d_loss = tf.nn.compute_average_loss(d_per_example)
                d_objective = self._scaled(self.discriminator_optimizer, d_loss)
            terms = self.generator_loss_terms(data, outputs, disc_real, disc_fake)
            g_per_example = tf.add_n(list(terms.values()))
            g_loss = tf.nn.compute_average_loss(g_per_example)
            g_objective = self._scaled(self.optimizer, g_loss)

        finite = self._apply(self.optimizer, g_tape, g_objective, generator_variables)
        updates = dict(terms, loss=g_per_example, **self.batch_metrics(data, outputs))
        if self.adversarial:
            finite = tf.logical_and(finite, self._apply(self.discriminator_optimizer, d_tape, d_objective,
                                                        discriminator_variables))
            updates["d_loss"] = d_per_example
        statistics = self.step_statistics(data, outputs)
        replicas = tf.distribute.get_replica_context()
        if replicas is not None and replicas.num_replicas_in_sync > 1:  # the optimizers skip on every replica alike
            # The family's step statistics ride in the skip flag's all-reduce: one sync per step, and the averaging
            # over replicas stays here rather than in each model family.
            names = list(statistics)
            summed = replicas.all_reduce(tf.distribute.ReduceOp.SUM, tf.stack(
                [1.0 - tf.cast(finite, tf.float32)] + [tf.cast(statistics[n], tf.float32) for n in names]))
            finite = summed[0] == 0
            statistics = {n: summed[i + 1] / replicas.num_replicas_in_sync for i, n in enumerate(names)}
        self.adapt_loss_weights(statistics, finite)
        # A skipped step leaves the epoch's means alone (one NaN would otherwise show in every later log line).
        logs = self._update_trackers(updates, weight=tf.cast(finite, tf.float32))
        logs["nonfinite"] = 1.0 - tf.cast(finite, tf.float32)
        return logs

    def test_step(self, data):
        outputs = self.generate(data, training=False)
        return self._update_trackers(self.batch_metrics(data, outputs))

    def _update_trackers(self, values, weight=None):
        for name, value in values.items():
            if weight is None:
                self._trackers[name].update_state(value)
            else:
                value = tf.cast(value, tf.float32)
                self._trackers[name].update_state(tf.where(weight > 0, value, tf.zeros_like(value)),
                                                  sample_weight=weight * tf.ones_like(value))
        return {name: self._trackers[name].result() for name in values}

    @staticmethod
    def _scaled(optimizer, loss):
        return optimizer.get_scaled_loss(loss) if _is_loss_scaled(optimizer) else loss

    @staticmethod
    def _apply(optimizer, tape, objective, variables):
        """Apply the gradients of `objective` (the optimizer skips them if any is not finite on any replica); returns
        whether this replica's objective, and outside float16 its gradients, were finite. (Under float16 an overflowing
        gradient is the dynamic loss scale's business: it skips the step and lowers the scale, as designed.)"""
        gradients = tape.gradient(objective, variables)
        if _is_loss_scaled(optimizer):
            gradients = optimizer.get_unscaled_gradients(gradients)
        pairs = [(g, v) for g, v in zip(gradients, variables) if g is not None]
        optimizer.apply_gradients(pairs)
        checks = [tf.reduce_all(tf.math.is_finite(objective))]
        if not _is_loss_scaled(optimizer) or optimizer.dynamic_growth_steps >= _NEVER:
            checks += [tf.reduce_all(tf.math.is_finite(g)) for g, _ in pairs]
        return tf.reduce_all(checks)


# A scale that never grows: 2**30 steps between doublings.
_NEVER = 2**30


def _loss_scaled(optimizer, float16: bool):
    if _is_loss_scaled(optimizer):
        return optimizer
    if float16:
        return tf.keras.mixed_precision.LossScaleOptimizer(optimizer)
    return tf.keras.mixed_precision.LossScaleOptimizer(optimizer, initial_scale=1.0, dynamic_growth_steps=_NEVER)
