"""Generative compression (GC) of Agustsson et al. 2019, "Generative Adversarial Networks for Extreme Learned Image
Compression".

E: c7s1-w, d2w, d4w, d8w, d16w, c3s1-C  -> latent H/16 x W/16 x C  (w = 60 in the paper)
q: L-level scalar quantizer (L = 5), hard forward pass, soft-to-hard gradient
G: c3s1-16w, residual blocks of 16w, u8w, u4w, u2w, uw, c7s1-3 (tanh)
D: multi-scale PatchGAN (pix2pixHD), least-squares GAN loss, feature matching
Loss: LSGAN + lambda * MSE (+ feature matching, + VGG19, + beta * bits/pixel from the entropy model).

Images enter as 0..255 (any float or uint8) and are scaled to [-1, 1] inside; the MSE term is on that scale.
"""

from __future__ import annotations

import hashlib
import json
from typing import Dict, List

import numpy as np
import tensorflow as tf

from tfgc.config import Config, checked_alpha
from tfgc.models.fidelity import deployed_synthesis
from tfgc.models.gan import GANModel, feature_matching_loss, lsgan_generator_loss
from tfgc.models.geometry import Geometry
from tfgc.nn.discriminators import MultiScaleDiscriminator
from tfgc.nn.entropy import CategoricalPrior
from tfgc.nn.images import keras_images, pad_to_multiple, to_uint8, to_unit_range, unit_interval, unit_range_psnr
from tfgc.nn.interpolation import call_with_weights, interpolate
from tfgc.nn.layers import ConvNormAct, EagerSequential, ResidualBlock
from tfgc.nn.perceptual import VGGFeatureLoss
from tfgc.nn.quantizer import Quantizer
from tfgc.nn.ssim import ms_ssim

# Decoding must not depend on anything but the file and the model: at inference the optional noise channels are one
# fixed tile, drawn from this seed and stored with the weights, repeated over the latent (a stored tile, unlike a
# random op, converts to TFLite and ONNX).
NOISE_SEED = (20190, 2958)
NOISE_TILE = 64
# Under a target rate, log(beta) moves by at most this much per step (at 2x the target rate or more): beta can change
# tenfold in a few hundred steps, slowly enough for the encoder's rate to follow it.
RATE_WEIGHT_STEP = 0.01


class Encoder(EagerSequential):
    """c7s1-w, then a stride-2 conv for each further multiple of w (d2w, d4w, d8w, d16w by default), c3s1-C."""

    def __init__(self, width: int, latent_channels: int, multiples=(1, 2, 4, 8, 16), norm="instance", name="encoder"):
        super().__init__(
            [ConvNormAct(multiples[0] * width, 7, norm=norm)]
            + [ConvNormAct(f * width, 3, strides=2, norm=norm) for f in multiples[1:]]
            # The latent goes to the quantizer unnormalized and unrectified: its sign carries information.
            + [tf.keras.layers.Conv2D(latent_channels, 3, padding="same")],
            name=name)


class Generator(EagerSequential):
    def __init__(self, width: int, residual_blocks: int, norm="instance"):
        super().__init__(
            [ConvNormAct(16 * width, 3, norm=norm)]
            + [ResidualBlock(16 * width, norm=norm) for _ in range(residual_blocks)]
            + [ConvNormAct(f * width, 3, strides=2, transpose=True, norm=norm) for f in (8, 4, 2, 1)]
            + [tf.keras.layers.Conv2D(3, 7, padding="same"),
               tf.keras.layers.Activation("tanh", dtype="float32")],
            name="generator")


@tf.keras.saving.register_keras_serializable(package="tfgc")
class GCModel(GANModel):
    """Keras' model(images): images [B, H, W, 3], uint8 0..255 or floats in [0, 1], of any size -> the
    reconstructions float32 [B, H, W, 3] in [0, 1]: the decoder on the quantized latents, without entropy coding (a
    fidelity-controlled model's GAN decoder). compress/decompress (tfgc.codec.api) make and read the files."""

    family = "gc"

    def __init__(self, config: Config, for_training: bool = True, **kwargs):
        super().__init__(name=kwargs.pop("name", "gc"), **kwargs)
        self.config = config
        self.for_training = for_training
        m = config.model
        self.encoder = Encoder(m.width, m.latent_channels, norm=m.normalization)
        self.quantizer = Quantizer(m.levels, m.quantizer_sigma)
        self.prior = CategoricalPrior(m.latent_channels, m.levels, name="prior")
        # Under a target rate, beta is state of the run (kept in its backups, left out of exported models).
        self.adaptive_rate_weight = None
        if m.target_bpp > 0:
            self.adaptive_rate_weight = tf.Variable(
                m.rate_weight, dtype=tf.float32, trainable=False, name="rate_weight",
                aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
        self.generator = Generator(m.width, m.residual_blocks, m.normalization)
        # Fidelity control (Iwai et al.): the stage-1 decoder, kept frozen beside the one stage 2 trains.
        self.mse_generator = None
        if m.fidelity_control:
            self.mse_generator = Generator(m.width, m.residual_blocks, m.normalization)
            self.mse_generator.trainable = False
        self.discriminator = None
        self.perceptual = None
        self.noise_tile = None
        if m.noise_channels > 0:
            tile = tf.random.stateless_normal([NOISE_TILE, NOISE_TILE, m.noise_channels], seed=NOISE_SEED)
            self.noise_tile = self.add_weight(name="noise_tile", shape=tile.shape, trainable=False,
                                              initializer=tf.keras.initializers.Constant(tile.numpy()))
        if for_training and m.adversarial_weight > 0:
            self.discriminator = MultiScaleDiscriminator(m.discriminator_width, m.discriminator_layers,
                                                         m.discriminator_scales, name="discriminator")
        if for_training and m.perceptual_weight > 0:
            self.perceptual = VGGFeatureLoss(m.perceptual_weights, name="perceptual")
        self._create_conditioning()
        self._build_networks()
        self.built = True  # every weight exists: summary() and save() need no call first
        # What model.save() traces call() with when the model was never called (trained through train_step)
        self._set_save_spec(self.call_spec())
        self._create_functions()

    # The encoder's receptive field: c7s1, four stride-2 3x3 convs and the 3x3 latent conv, about 34 pixels (3 cells).
    ANALYSIS_HALO = 4

    @classmethod
    def geometry_for(cls, config: Config) -> Geometry:
        m = config.model
        whole_image = ("instance normalization" if m.normalization == "instance" else
                       "noise channels" if m.noise_channels else None)  # a tile does not know where the noise starts
        # The generator: c3s1, two 3x3 convs per residual block, four upsampling layers, c7s1: at most
        # 2 * blocks + 3 cells; one spare.
        synthesis_halo = 2 * m.residual_blocks + 4 + cls.conditioning_halo()
        # float32 activations alive at once at full resolution: about 3.5 layers of the base width beside the
        # conditioning's input. Measured peaks of whole-image transforms (instance norm), bytes per pixel above the
        # process's start: gc-small 200, sc-small 280 (compress; 220 decode), gc-paper-c8 571; this gives 236, 380,
        # 852 (scripts/large_image.py and direct decodes of 4 and 16 megapixels).
        bytes_per_pixel = 4 * (int(3.5 * m.width) + cls.conditioning_channels(config) + m.noise_channels + 3)
        return Geometry(m.downsampling, cls.ANALYSIS_HALO, synthesis_halo, whole_image,
                        bytes_per_pixel if whole_image else 0)

    @classmethod
    def conditioning_halo(cls) -> int:
        """Cells the generator's conditioning adds to its receptive field (SC: the label map's encoder)."""
        return 0

    @classmethod
    def conditioning_channels(cls, config: Config) -> int:
        """Channels of the conditioning at full resolution (SC: the one-hot label map and its features)."""
        return 0

    @property
    def geometry(self) -> Geometry:
        return self.geometry_for(self.config)

    def manifest_fields(self) -> dict:
        """What a model folder's manifest says of this model beyond its family and fingerprint (listed by `tfgc
        models` without loading it)."""
        m = self.config.model
        return dict(latent_channels=m.latent_channels, levels=m.levels, bound_bpp=m.bound_bpp)

    def _create_conditioning(self):
        """Networks a conditional family adds (SC: the semantic feature extractor)."""

    def _create_functions(self):
        latent = self.config.model.latent_channels
        self.analysis = tf.function(self._analysis, input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8)])
        self._synthesis_function = tf.function(self._synthesis, input_signature=[
            tf.TensorSpec([None, None, None, latent], tf.int32), tf.TensorSpec([], tf.int32),
            tf.TensorSpec([], tf.int32), tf.TensorSpec([], tf.float32)])

    # Channels beyond the image that the encoder and the discriminator see, and beyond the latent (and noise) that the
    # generator sees: none in GC.
    condition_channels = 0
    generator_condition_channels = 0

    def _build_networks(self):
        m = self.config.model
        image = tf.zeros([1, 32, 32, 3 + self.condition_channels])
        self.encoder(image)
        generator_input = tf.zeros([1, 2, 2, m.latent_channels + self.generator_condition_channels + m.noise_channels])
        self.generator(generator_input)
        if self.mse_generator is not None:
            self.mse_generator(generator_input)
        if self.discriminator is not None:
            self.discriminator(image)

    # ---- forward pass ---------------------------------------------------------------------------------------------
    def _with_noise(self, quantized, training: bool):
        channels = self.config.model.noise_channels
        if channels == 0:
            return quantized
        shape = tf.shape(quantized)
        if training:
            noise = tf.random.normal(tf.concat([shape[:3], [channels]], 0))
        else:
            repeats = tf.stack([(shape[1] + NOISE_TILE - 1) // NOISE_TILE,
                                (shape[2] + NOISE_TILE - 1) // NOISE_TILE, 1])
            noise = tf.expand_dims(tf.tile(self.noise_tile, repeats)[:shape[1], :shape[2], :], 0)
            noise = tf.broadcast_to(noise, tf.concat([shape[:3], [channels]], 0))
        return tf.concat([quantized, tf.cast(noise, quantized.dtype)], axis=-1)

    def call_spec(self):
        return tf.TensorSpec([None, None, None, 3], tf.uint8, name="images")

    def call(self, images, training=False):
        x = keras_images(images)
        shape = tf.shape(x)
        x_hat = self.generate(pad_to_multiple(x, self.config.model.downsampling), training=training)["x_hat"]
        return unit_interval(x_hat[:, :shape[1], :shape[2]])

    def generate(self, batch, training: bool):
        x = to_unit_range(batch)
        y = self.encoder(x, training=training)
        quantized, symbols, onehot = self.quantizer(y)
        x_hat = self.generator(self._with_noise(quantized, training), training=training)
        return {"x": x, "x_hat": x_hat, "onehot": onehot}

    # ---- losses ---------------------------------------------------------------------------------------------------
    @property
    def decoder_only(self) -> bool:
        """Stage 2: the decoder trains alone; encoder, quantizer and entropy model stay as stage 1 left them."""
        return self.config.train.stage == 2

    @property
    def generator_variables(self):
        if self.decoder_only:
            return self.generator.trainable_variables
        return super().generator_variables

    def loss_term_names(self) -> List[str]:
        m = self.config.model
        names = ["distortion"]
        if m.ms_ssim_weight > 0:
            names.append("ms_ssim")
        if not self.decoder_only:
            names.append("entropy_model")
            if m.rate_weight > 0:
                names.append("rate")
        if self.adversarial:
            names.append("adversarial")
            if m.feature_matching_weight > 0:
                names.append("feature_matching")
        if self.perceptual is not None:
            names.append("perceptual")
        return names

    def metric_names(self) -> List[str]:
        return ["psnr", "bpp"] + (["beta"] if self.adaptive_rate_weight is not None else [])

    @property
    def rate_weight(self):
        """beta: the config's, or under a target rate its current value."""
        if self.adaptive_rate_weight is not None:
            return self.adaptive_rate_weight
        return self.config.model.rate_weight

    def step_statistics(self, batch, outputs):
        if self.adaptive_rate_weight is None or self.decoder_only:
            return {}
        x = outputs["x"]
        pixels = tf.cast(tf.shape(x)[1] * tf.shape(x)[2], tf.float32)
        return {"bpp": tf.reduce_mean(self.prior.bits(tf.stop_gradient(self.coded_onehot(outputs))) / pixels)}

    def adapt_loss_weights(self, statistics, finite) -> None:
        if "bpp" not in statistics:
            return
        bpp = statistics["bpp"]
        # Multiplicative, so beta stays positive and its steps do not depend on its scale; clipped, so one odd batch
        # moves it at most 1%.
        excess = tf.clip_by_value(bpp / self.config.model.target_bpp - 1.0, -1.0, 1.0)
        updated = self.adaptive_rate_weight * tf.exp(RATE_WEIGHT_STEP * excess)
        self.adaptive_rate_weight.assign(tf.where(finite, updated, self.adaptive_rate_weight))

    def discriminator_inputs(self, batch, outputs):
        return outputs["x"], outputs["x_hat"]

    def generator_loss_terms(self, batch, outputs, disc_real, disc_fake) -> Dict[str, tf.Tensor]:
        m = self.config.model
        x, x_hat = outputs["x"], outputs["x_hat"]
        pixels = tf.cast(tf.shape(x)[1] * tf.shape(x)[2], tf.float32)
        terms = {"distortion": m.distortion_weight * self.squared_error(outputs)}
        if m.ms_ssim_weight > 0:
            # On the whole image, in float32 whatever the policy (its products of powers underflow in float16).
            similarity = ms_ssim((tf.cast(x, tf.float32) + 1) / 2, (tf.cast(x_hat, tf.float32) + 1) / 2, 1.0)
            terms["ms_ssim"] = m.ms_ssim_weight * (1.0 - similarity)
        if not self.decoder_only:
            # The prior always learns the symbol statistics (so files are entropy coded well), whatever beta: this
            # term reaches only its logits.
            coded = self.coded_onehot(outputs)
            terms["entropy_model"] = self.prior.bits(tf.stop_gradient(coded)) / pixels
            if m.rate_weight > 0:
                terms["rate"] = self.rate_weight * self.prior.bits(coded, stop_prior_gradient=True) / pixels
        if self.adversarial:
            terms["adversarial"] = m.adversarial_weight * lsgan_generator_loss(disc_fake, m.adversarial_reduction)
            if m.feature_matching_weight > 0:
                terms["feature_matching"] = m.feature_matching_weight * feature_matching_loss(disc_real, disc_fake)
        if self.perceptual is not None:
            terms["perceptual"] = m.perceptual_weight * self.perceptual(x, x_hat)
        return terms

    def squared_error(self, outputs):
        """The per-example mean squared error the distortion term weights (on images scaled to [-1, 1])."""
        return tf.reduce_mean(tf.square(outputs["x"] - outputs["x_hat"]), axis=[1, 2, 3])

    def coded_onehot(self, outputs):
        """The one-hot symbols a file stores (all of them in GC), [B, h, w, C, L]."""
        return outputs["onehot"]

    def batch_metrics(self, batch, outputs):
        x, x_hat = outputs["x"], outputs["x_hat"]
        pixels = tf.cast(tf.shape(x)[1] * tf.shape(x)[2], tf.float32)
        metrics = {"psnr": unit_range_psnr(x, x_hat), "bpp": self.prior.bits(self.coded_onehot(outputs)) / pixels}
        if self.adaptive_rate_weight is not None:
            metrics["beta"] = self.adaptive_rate_weight * tf.ones_like(metrics["bpp"])
        return metrics

    def images_of(self, batch):
        """The photographs of a training or validation batch (SC batches also hold label maps)."""
        return batch

    # ---- the codec's transforms -----------------------------------------------------------------------------------
    def _analysis(self, image):
        """uint8 images [B, H, W, 3] -> symbols 0..L-1, int32 [B, ceil(H/16), ceil(W/16), C]."""
        geometry = self.geometry
        x = to_unit_range(pad_to_multiple(image, geometry.downsampling * geometry.shape_step))
        return self._cropped_to_cells(self.quantizer.symbols(self.encoder(x, training=False)), tf.shape(image))

    def _cropped_to_cells(self, symbols, image_shape):
        """The symbols of an image's own cells, where the encoder saw it padded to whole shape steps."""
        down = self.config.model.downsampling
        return symbols[:, :(image_shape[1] + down - 1) // down, :(image_shape[2] + down - 1) // down]

    def _synthesis(self, symbols, height, width, alpha):
        """Symbols -> uint8 images [B, height, width, 3]; alpha is read only by fidelity-controlled models."""
        symbols = pad_to_multiple(symbols, self.geometry.shape_step)
        z = self._with_noise(self.quantizer.dequantize(symbols), training=False)
        return to_uint8(self._decode(z, alpha)[:, :height, :width, :])

    def fidelity_pairs(self):
        """(stage-1 network, stage-2 network) pairs of a fidelity-controlled model."""
        return [(self.mse_generator, self.generator)]

    def _decode(self, z, alpha):
        """The generator on its input; a fidelity-controlled model's with the decoders' weights interpolated."""
        if self.mse_generator is None:
            return self.generator(z, training=False)
        weights = interpolate(self.mse_generator.weights, self.generator.weights, alpha)
        return call_with_weights(self.generator, z, weights)

    def synthesis(self, symbols, height, width, alpha=None):
        """Symbols -> uint8 images; `alpha` in [0, 1] picks the decoder of a fidelity-controlled model (default:
        the config's default_alpha) and must be None for other models."""
        return self._synthesis_function(symbols, height, width, self.checked_alpha(alpha))

    def checked_alpha(self, alpha) -> float:
        return checked_alpha(self.config, alpha)

    def reconstruct(self, image, alpha=None):
        """The model's own reconstruction of uint8 images [B, H, W, 3], without the bitstream."""
        image = tf.convert_to_tensor(image, tf.uint8)
        shape = tf.shape(image)
        return self.synthesis(self.analysis(image), shape[1], shape[2], alpha)

    def coding_table(self) -> np.ndarray:
        return self.prior.coding_table.numpy()

    def update_coding_tables(self) -> None:
        self.prior.update_coding_table()

    def deployed_functions(self) -> Dict[str, tf.types.experimental.GenericFunction]:
        """The transforms a deployment runs, in TensorFlow's standard ops: name -> function of named tensors that
        returns a dict of named tensors. tfgc.export turns them into TF Serving signatures, TFLite and ONNX graphs.

        analysis:  image uint8 [B, H, W, 3] -> symbols int32 [B, ceil(H/16), ceil(W/16), C], image_size int32 [2]
        synthesis: symbols int32 [B, h, w, C], image_size int32 [2] (H, W) -> image uint8 [B, H, W, 3]
                   (fidelity-controlled models take alpha float32 [] in [0, 1] too)
        """
        latent = self.config.model.latent_channels

        def analysis(image):
            return {"symbols": self._analysis(image), "image_size": tf.shape(image)[1:3]}

        return {
            "analysis": tf.function(analysis, input_signature=[
                tf.TensorSpec([None, None, None, 3], tf.uint8, name="image")]),
            "synthesis": deployed_synthesis([tf.TensorSpec([None, None, None, latent], tf.int32, name="symbols")],
                                            self._synthesis, self.mse_generator is not None),
        }

    # ---- identity of the bitstream --------------------------------------------------------------------------------
    def export_parts(self):
        """The networks an exported model keeps (the discriminator and VGG are for training only)."""
        parts = {"encoder": self.encoder, "prior": self.prior, "generator": self.generator}
        if self.mse_generator is not None:
            parts["mse_generator"] = self.mse_generator
        if self.noise_tile is not None:
            parts["noise_tile"] = self.noise_tile
        return parts

    def _fingerprint_settings(self) -> dict:
        m = self.config.model
        return {"family": self.family, "width": m.width, "latent_channels": m.latent_channels, "levels": m.levels}

    def fingerprint(self) -> bytes:
        """8 bytes naming what a file's symbols mean: the encoder, the quantizer and the coding table.

        The generator is left out on purpose, so a fine-tuned or interpolated decoder still reads the same files.
        """
        digest = hashlib.sha256()
        digest.update(json.dumps(self._fingerprint_settings(), sort_keys=True).encode())
        for variable in self.encoder.weights + [self.prior.coding_table]:
            # Variable names depend on how many layers the process built before; shapes and order do not.
            digest.update(str(tuple(variable.shape)).encode())
            digest.update(np.ascontiguousarray(variable.numpy()).tobytes())
        return digest.digest()[:8]
