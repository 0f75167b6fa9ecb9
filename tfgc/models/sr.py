"""The super-resolution codec family: a file stores the image downsampled by r as a classic codec's file (the base
layer: JPEG, WebP, AVIF or HEIC; r = 1 keeps the full size); the decoder is a learned upscaler of the decoded base.

RL-SRGAN (Savioli 2019, "A Hybrid Approach Between Adversarial Generative Networks and Actor-Critic Policy Gradient
for Low Rate High-Resolution Image Compression") is this family with a JPEG base: the decoder is a super-resolution GAN
(SRGAN, Ledig et al. 2017) whose training adds an actor-critic loss toward higher PSNR.

Generator: the "encoder" E works at the JPEG's resolution: 9x9 conv w + PReLU, residual blocks (3x3 conv w, batch
norm, PReLU, 3x3 conv w, batch norm, skip), 3x3 conv w + batch norm, plus the long skip from the first conv. The
"decoder" upsamples with log2(r) sub-pixel stages (3x3 conv 4w, pixel shuffle x2, PReLU) and a 9x9 conv to RGB (tanh).
The paper's "eight subpixel layers" cannot be eight x2 pixel shuffles at x4; we read the sub-pixel part as SRGAN's,
one x2 stage per factor of 2 of r (2 at x4, 3 at x8). Our option `upsampling_skip="bilinear"` (the small presets) adds
the bilinearly upscaled input to a linear output, so the generator learns only what the upscaler misses.

Generator "edsr" (for the modern bases): EDSR's trunk (Lim et al. 2017: 3x3 conv w, residual blocks of two 3x3
convs with ReLU between and no normalization, 3x3 conv, the long skip), then one 3x3 conv to 3 r^2 channels and a pixel
shuffle, added to the base upscaled by a fixed Lanczos-3 filter (Pillow's). Every learned layer runs at the base's
resolution, and the last conv starts at zero, so an untrained decoder is the Lanczos upscaler and training learns only
what Lanczos misses.

Two-stage training with fidelity control (Iwai et al. 2020), as GC's: stage 1 trains the decoder on distortion alone;
stage 2 fine-tunes a copy with the GAN and keeps the stage-1 decoder, and decoding interpolates their weights with
alpha (edsr generators: their layers are the ones tfgc.nn.interpolation knows).

Discriminator: `discriminator` "patch" is GC's multi-scale PatchGAN with least-squares GAN loss and feature matching
(pix2pixHD's; a texture critic that needs no VGG weights), "vgg" SRGAN's VGG-style one (tfgc.nn.discriminators.
VGGStyleDiscriminator) with the original GAN loss on logits. SRGAN loss (the paper's eq. 4): MSE (images
in [-1, 1]) + 1e-3 * (-log D(G(x))) + 6e-3 * VGG19 phi_5,4 feature MSE.

Actor-critic head (eqs. 5-12), on the generator's low-resolution features E(x) (global average pooling, a 256-unit
dense layer, then three outputs): a Gaussian policy pi over the PSNR (mean, log-std) and a value V. At training step
i the reward is r_i = 1 if the batch's PSNR_i > PSNR_{i-1}, else 0; the last k rewards are kept, and every k-th step
(steps k-1, 2k-1, ... counted from 0) the return R = sum_j gamma^j r_{i-j} (j = 0..k-1) enters the loss

    L_RL = value_weight * (R - V)^2 - log pi(a) * (R - V),   a ~ pi (the predicted PSNR; sampled, no gradient),

added to the SRGAN loss; other steps train on the SRGAN loss alone. (R - V) is held fixed in the policy term. The RL
loss reaches the generator only through E's features under the head: that is the "indirect" push the paper describes.
Without `actor_critic` the same model is the SRGAN baseline: the networks, data and SRGAN loss are the same, only the
head and its loss are absent. The head is for training only; exported models never hold it.

What the paper's term can do: the reward does not depend on the action the policy samples, so the policy term's
expected gradient E[grad log pi(a) * (R - V)] is zero (the score function has mean zero); it feeds E's features
zero-mean noise, and only the value term has a direction (toward R, for V). tests/test_paper_claims.py checks this by
Monte Carlo. We keep it as the paper has it (`--rl paper`).

Why the return runs backward from the newest step: A3C's k-step return credits a state with the k rewards after it,
but here V and pi see only the newest step's features (the graphs of earlier steps are gone), and the newest reward
is the one those features earned. So the window is discounted backward from it: r_i counts fully, r_{i-k+1} by
gamma^(k-1).
"""

from __future__ import annotations

import math
from typing import Dict, List

import tensorflow as tf

from tfgc.config import Config, checked_alpha
from tfgc.models.gan import (GANModel, feature_matching_loss, lsgan_discriminator_loss, lsgan_generator_loss,
                             nonsaturating_discriminator_loss, nonsaturating_generator_loss)
from tfgc.models.fidelity import deployed_synthesis
from tfgc.models.geometry import Geometry
from tfgc.models.store import sr_fingerprint
from tfgc.nn.discriminators import MultiScaleDiscriminator, VGGStyleDiscriminator
from tfgc.nn.images import keras_images, pad_to_multiple, to_uint8, to_unit_range, unit_interval, unit_range_psnr
from tfgc.nn.interpolation import call_with_weights, interpolate
from tfgc.nn.layers import (EagerSequential, LanczosUpsample, PixelShuffle, ResidualBlock, Skip, SRResidualBlock,
                            SubPixelUpsample, prelu)
from tfgc.nn.perceptual import VGGContentLoss

# The policy's mean is this plus the head's output, so an untrained head starts near the PSNRs it sees.
PSNR_OFFSET = 25.0
LOG_STD_RANGE = (-5.0, 3.0)


class SREncoder(tf.keras.layers.Layer):
    """E: the generator up to its upsampling, at the input's resolution."""

    def __init__(self, width: int, residual_blocks: int, name="encoder"):
        super().__init__(name=name)
        self.head = EagerSequential([tf.keras.layers.Conv2D(width, 9, padding="same"), prelu()])
        self.trunk = EagerSequential(
            [SRResidualBlock(width) for _ in range(residual_blocks)]
            + [tf.keras.layers.Conv2D(width, 3, padding="same"), tf.keras.layers.BatchNormalization()])

    def call(self, x, training=None):
        first = self.head(x)
        return first + self.trunk(first, training=training)


class SRDecoder(EagerSequential):
    """The generator's upsampling: one sub-pixel x2 stage per factor of 2 of `scale`, then 9x9 conv to RGB: tanh, or
    with a skip linear (the difference to the upscaled input)."""

    def __init__(self, width: int, scale: int, skip: bool = False, name="decoder"):
        stages = int(round(math.log2(scale)))
        super().__init__(
            [SubPixelUpsample(width) for _ in range(stages)]
            + [tf.keras.layers.Conv2D(3, 9, padding="same"),
               tf.keras.layers.Activation("linear" if skip else "tanh", dtype="float32")],
            name=name)


class EDSREncoder(EagerSequential):
    """E of the "edsr" generator: 3x3 conv w, then around a long skip the residual blocks (no normalization) and a
    3x3 conv, all at the base image's resolution."""

    def __init__(self, width: int, residual_blocks: int, name="encoder"):
        super().__init__(
            [tf.keras.layers.Conv2D(width, 3, padding="same"),
             Skip(EagerSequential([ResidualBlock(width, norm="none") for _ in range(residual_blocks)]
                                  + [tf.keras.layers.Conv2D(width, 3, padding="same")]))],
            name=name)


class EDSRDecoder(EagerSequential):
    """3x3 conv to 3 * scale^2 channels, pixel shuffle to the output's resolution (none at scale 1): the difference to
    the upscaled base. The conv starts at zero: an untrained decoder adds nothing to the upscaler."""

    def __init__(self, scale: int, name="decoder"):
        layers = [tf.keras.layers.Conv2D(3 * scale * scale, 3, padding="same", kernel_initializer="zeros")]
        if scale > 1:
            layers.append(PixelShuffle(scale))
        super().__init__(layers + [tf.keras.layers.Activation("linear", dtype="float32")], name=name)


class ActorCriticHead(tf.keras.layers.Layer):
    """Features [B, h, w, C] -> policy mean, log-std (of the PSNR in dB) and value, each [B], float32."""

    def __init__(self, hidden: int = 256, name="actor_critic"):
        super().__init__(name=name, dtype="float32")
        self.pool = tf.keras.layers.GlobalAveragePooling2D(dtype="float32")
        self.hidden = tf.keras.layers.Dense(hidden, activation="relu", dtype="float32")
        self.policy_and_value = tf.keras.layers.Dense(3, dtype="float32")

    def call(self, features):
        out = self.policy_and_value(self.hidden(self.pool(tf.cast(features, tf.float32))))
        return PSNR_OFFSET + out[:, 0], tf.clip_by_value(out[:, 1], *LOG_STD_RANGE), out[:, 2]


# ---- the actor-critic arithmetic (pure functions, tested on hand-made sequences) --------------------------------

def psnr_rewards(psnrs, previous=float("nan")):
    """r_i = 1 where psnrs[i] > psnrs[i-1] (psnrs[-1] = `previous`; NaN: no previous step, reward 0), else 0."""
    psnrs = tf.convert_to_tensor(psnrs, tf.float32)
    before = tf.concat([[tf.cast(previous, tf.float32)], psnrs[:-1]], axis=0)
    return tf.cast(psnrs > before, tf.float32)


def discounted_return(rewards, discount):
    """R = sum_j discount^j * rewards[-1 - j]: rewards oldest first, the newest (the trained state's) undiscounted."""
    rewards = tf.convert_to_tensor(rewards, tf.float32)
    powers = tf.pow(tf.cast(discount, tf.float32), tf.range(tf.size(rewards), dtype=tf.float32))
    return tf.reduce_sum(powers * tf.reverse(rewards, [0]))


def gaussian_log_prob(x, mean, log_std):
    return -0.5 * tf.square((x - mean) / tf.exp(log_std)) - log_std - 0.5 * math.log(2.0 * math.pi)


def actor_critic_loss(mean, log_std, value, returns, value_weight, noise):
    """Per-example value_weight * (R - V)^2 - log pi(a) * (R - V), with a = mean + exp(log_std) * noise sampled
    without gradient and (R - V) held fixed in the policy term."""
    action = tf.stop_gradient(mean + tf.exp(log_std) * noise)
    advantage = returns - value
    return value_weight * tf.square(advantage) - gaussian_log_prob(action, mean, log_std) * tf.stop_gradient(advantage)


def rl_applies(step, every: int):
    """Whether the actor-critic loss joins the loss at training step `step` (counted from 0): every k-th step."""
    return tf.equal((step + 1) % every, 0)


def _global_mean(values):
    """The mean of per-example values over the global batch (every replica gets the same number)."""
    context = tf.distribute.get_replica_context()
    total = tf.reduce_sum(values)
    count = tf.cast(tf.size(values), tf.float32)
    if context is not None:
        total, count = context.all_reduce(tf.distribute.ReduceOp.SUM, [total, count])
    return total / count


@tf.keras.saving.register_keras_serializable(package="tfgc")
class SRModel(GANModel):
    """Keras' model(low): decoded base images [B, h, w, 3], uint8 0..255 or floats in [0, 1] -> the upscaled images
    float32 [B, h*scale, w*scale, 3] in [0, 1] (a fidelity-controlled model's GAN decoder)."""

    family = "sr"

    def __init__(self, config: Config, for_training: bool = True, **kwargs):
        super().__init__(name=kwargs.pop("name", "sr"), **kwargs)
        self.config = config
        self.for_training = for_training
        m = config.model
        self.encoder, self.decoder = self._generator()
        # Fidelity control (Iwai et al.): the stage-1 decoder, kept frozen beside the one stage 2 trains.
        self.mse_encoder = self.mse_decoder = None
        if m.fidelity_control:
            self.mse_encoder, self.mse_decoder = self._generator(prefix="mse_")
            self.mse_encoder.trainable = self.mse_decoder.trainable = False
        self.upsampler = LanczosUpsample(m.scale) if m.upsampling_skip == "lanczos" else None
        self.discriminator = None
        self.perceptual = None
        self.actor_critic = None
        if for_training and m.adversarial_weight > 0:
            if m.discriminator == "patch":
                self.discriminator = MultiScaleDiscriminator(m.discriminator_width, m.discriminator_layers,
                                                             m.discriminator_scales, name="discriminator")
            else:
                self.discriminator = VGGStyleDiscriminator(m.discriminator_width, m.discriminator_layers,
                                                           name="discriminator")
        if for_training and m.perceptual_weight > 0:
            self.perceptual = VGGContentLoss(m.perceptual_weights, name="perceptual")
        if for_training and m.actor_critic:
            self.actor_critic = ActorCriticHead()
            # The reward history lives in the model, so BackupAndRestore resumes it with the weights. Every replica
            # computes the same values (from the global batch's PSNR); the first one's are kept.
            state = dict(trainable=False, aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
            self.rl_step = tf.Variable(0, dtype=tf.int64, name="rl_step", **state)
            self.previous_psnr = tf.Variable(0.0, dtype=tf.float32, name="previous_psnr", **state)
            self.rewards = tf.Variable(tf.zeros([m.rl_every]), name="rewards", **state)
        self._build_networks()
        self.built = True  # every weight exists: summary() and save() need no call first
        # What model.save() traces call() with when the model was never called (trained through train_step)
        self._set_save_spec(tf.TensorSpec([None, None, None, 3], tf.uint8, name="low"))
        self.synthesis_function = tf.function(self._synthesis, input_signature=[
            tf.TensorSpec([None, None, None, 3], tf.uint8), tf.TensorSpec([], tf.int32),
            tf.TensorSpec([], tf.int32), tf.TensorSpec([], tf.float32)])

    @classmethod
    def geometry_for(cls, config: Config) -> Geometry:
        m = config.model
        # No learned encoder (the base codec encodes). The decoder: a 9x9 head, two 3x3 convs per residual block and
        # one more, the upsampling stages, the 9x9 output conv, in pixels of the base image.
        return Geometry(m.scale, 0, 2 * m.residual_blocks + 8)

    @property
    def geometry(self) -> Geometry:
        return self.geometry_for(self.config)

    def manifest_fields(self) -> dict:
        m = self.config.model
        return dict(scale=m.scale, base_codec=m.base_codec, base_quality=m.base_quality, generator=m.generator,
                    actor_critic=m.actor_critic)

    def _generator(self, prefix: str = ""):
        m = self.config.model
        if m.generator == "edsr":
            return (EDSREncoder(m.width, m.residual_blocks, name=prefix + "encoder"),
                    EDSRDecoder(m.scale, name=prefix + "decoder"))
        return (SREncoder(m.width, m.residual_blocks, name=prefix + "encoder"),
                SRDecoder(m.width, m.scale, skip=m.upsampling_skip != "none", name=prefix + "decoder"))

    def fidelity_pairs(self):
        """(stage-1 network, stage-2 network) pairs of a fidelity-controlled model."""
        return [(self.mse_encoder, self.encoder), (self.mse_decoder, self.decoder)]

    def _build_networks(self):
        low = tf.zeros([1, 8, 8, 3])
        features = self.encoder(low)
        high = self.decoder(features)
        if self.mse_encoder is not None:
            self.mse_decoder(self.mse_encoder(low))
        if self.discriminator is not None:
            self.discriminator(high)
        if self.actor_critic is not None:
            self.actor_critic(features)

    # ---- forward pass and losses --------------------------------------------------------------------------------
    def call(self, low, training=False):
        return unit_interval(self.upscale(to_unit_range(keras_images(low, "low-resolution images")),
                                          training=training)[0])

    def upscale(self, low, training: bool = False, alpha=None):
        """Low-resolution images in [-1, 1] -> (the generator's output, E's features). A fidelity-controlled model
        decodes with its two generators' weights interpolated by `alpha` (inference only)."""
        if self.mse_encoder is None or alpha is None:
            features = self.encoder(low, training=training)
            x_hat = self.decoder(features, training=training)
        else:
            (mse_encoder, encoder), (mse_decoder, decoder) = self.fidelity_pairs()
            features = call_with_weights(encoder, low, interpolate(mse_encoder.weights, encoder.weights, alpha))
            x_hat = call_with_weights(decoder, features, interpolate(mse_decoder.weights, decoder.weights, alpha))
        skip = self.config.model.upsampling_skip
        if skip == "bilinear":
            size = tf.shape(low)[1:3] * self.config.model.scale
            x_hat = x_hat + tf.image.resize(tf.cast(low, tf.float32), size, method="bilinear")
        elif skip == "lanczos":
            x_hat = x_hat + tf.cast(self.upsampler(low), tf.float32)
        return x_hat, features

    def generate(self, batch, training: bool):
        x_hat, features = self.upscale(to_unit_range(batch["low"]), training=training)
        return {"x": to_unit_range(batch["high"]), "x_hat": x_hat, "features": features}

    def images_of(self, batch):
        return batch["high"]

    def discriminator_inputs(self, batch, outputs):
        return outputs["x"], outputs["x_hat"]

    @property
    def patch_gan(self) -> bool:
        return self.config.model.discriminator == "patch"

    def discriminator_loss(self, disc_real, disc_fake):
        if self.patch_gan:
            return lsgan_discriminator_loss(disc_real, disc_fake, self.config.model.adversarial_reduction)
        return nonsaturating_discriminator_loss(disc_real, disc_fake)

    def loss_term_names(self) -> List[str]:
        names = ["distortion"]
        if self.adversarial:
            names.append("adversarial")
            if self.patch_gan and self.config.model.feature_matching_weight > 0:
                names.append("feature_matching")
        if self.perceptual is not None:
            names.append("perceptual")
        if self.actor_critic is not None:
            names.append("actor_critic")
        return names

    def metric_names(self) -> List[str]:
        names = ["psnr"]
        if self.actor_critic is not None:
            names += ["rl_applied", "rl_return", "value", "predicted_psnr"]
        return names

    def generator_loss_terms(self, batch, outputs, disc_real, disc_fake) -> Dict[str, tf.Tensor]:
        m = self.config.model
        x, x_hat = outputs["x"], outputs["x_hat"]
        terms = {"distortion": m.distortion_weight * tf.reduce_mean(tf.square(x - x_hat), axis=[1, 2, 3])}
        if self.adversarial and self.patch_gan:
            terms["adversarial"] = m.adversarial_weight * lsgan_generator_loss(disc_fake, m.adversarial_reduction)
            if m.feature_matching_weight > 0:
                terms["feature_matching"] = m.feature_matching_weight * feature_matching_loss(disc_real, disc_fake)
        elif self.adversarial:
            terms["adversarial"] = m.adversarial_weight * nonsaturating_generator_loss(disc_fake)
        if self.perceptual is not None:
            terms["perceptual"] = m.perceptual_weight * self.perceptual(x, x_hat)
        if self.actor_critic is not None:
            terms["actor_critic"] = self._actor_critic_loss(outputs)
        return terms

    def _actor_critic_loss(self, outputs):
        """This step's reward goes into the history; on every k-th step the loss, else zeros (and no gradient)."""
        m = self.config.model
        batch_psnr = _global_mean(tf.stop_gradient(unit_range_psnr(outputs["x"], outputs["x_hat"])))
        previous = tf.where(self.rl_step > 0, self.previous_psnr, float("nan"))  # the first step has none
        reward = psnr_rewards(batch_psnr[None], previous)
        rewards = tf.concat([self.rewards[1:], reward], axis=0)
        applies = rl_applies(self.rl_step, m.rl_every)
        self.rewards.assign(rewards)
        self.previous_psnr.assign(batch_psnr)
        self.rl_step.assign_add(1)

        mean, log_std, value = self.actor_critic(outputs["features"])
        returns = discounted_return(rewards, m.rl_discount)
        loss = actor_critic_loss(mean, log_std, value, returns, m.value_weight, tf.random.normal(tf.shape(mean)))
        outputs.update(rl_applied=tf.fill(tf.shape(value), tf.cast(applies, tf.float32)),
                       rl_return=tf.fill(tf.shape(value), returns), value=value, predicted_psnr=mean)
        return tf.where(applies, loss, tf.zeros_like(loss))

    def batch_metrics(self, batch, outputs):
        metrics = {"psnr": unit_range_psnr(outputs["x"], outputs["x_hat"])}
        for name in ("rl_applied", "rl_return", "value", "predicted_psnr"):
            if name in outputs:
                metrics[name] = outputs[name]
        return metrics

    # ---- the codec's learned decoder ----------------------------------------------------------------------------
    def _synthesis(self, low, height, width, alpha):
        """Decoded bases uint8 [B, h, w, 3] -> uint8 images [B, height, width, 3] (r*h >= height, r*w >= width);
        alpha is read only by fidelity-controlled models."""
        low = pad_to_multiple(low, self.geometry.shape_step)
        x_hat, _ = self.upscale(to_unit_range(low), alpha=alpha if self.mse_encoder is not None else None)
        return to_uint8(x_hat[:, :height, :width, :])

    def synthesis(self, low, height, width, alpha=None):
        return self.synthesis_function(low, height, width, self.checked_alpha(alpha))

    def checked_alpha(self, alpha) -> float:
        return checked_alpha(self.config, alpha)

    def update_coding_tables(self) -> None:
        """A classic base codec needs no table of ours."""

    def deployed_functions(self):
        """synthesis: low uint8 [B, h, w, 3] (the decoded base), image_size int32 [2] -> image uint8 [B, H, W, 3]
        (fidelity-controlled models take alpha float32 [] in [0, 1] too)."""
        return {"synthesis": deployed_synthesis([tf.TensorSpec([None, None, None, 3], tf.uint8, name="low")],
                                                self._synthesis, self.mse_encoder is not None)}

    def export_parts(self):
        parts = {"encoder": self.encoder, "decoder": self.decoder}
        if self.mse_encoder is not None:
            parts.update(mse_encoder=self.mse_encoder, mse_decoder=self.mse_decoder)
        return parts

    def fingerprint(self) -> bytes:
        return sr_fingerprint(self.config.model.scale, self.config.model.base_codec)
