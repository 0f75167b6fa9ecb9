"""Selective generative compression (SC) of Agustsson et al. 2019: GC conditioned on a semantic label map s.

E sees the image and s (one-hot); a feature extractor F maps s to the latent grid; the latent w^ is multiplied by a
preservation mask m at that grid, so only the preserved latents are stored; G gets [m * w^, m, F(s)] and synthesizes
the unpreserved regions from F(s) alone; the multi-scale discriminator sees the image with s (pix2pixHD's
conditional discriminator).

The mask is also a generator input (our addition): a preserved latent may be 0, and G should know which zeros are
stored and which are missing. Training draws each example's mask from `train.mask_mix`: nothing preserved (full
synthesis), everything, a random box of latent cells, or random classes (each present class preserved with
`train.preserved_class_probability`, Agustsson et al.'s "random instance" with classes; a class's pixels preserve the
latent cells they touch). The rate terms count the preserved latents only, which is what a file stores.
"""

from __future__ import annotations

from typing import List

import tensorflow as tf

from tfgc.models.fidelity import deployed_synthesis
from tfgc.models.gc import Encoder, GCModel
from tfgc.nn.images import keras_images, pad_to_multiple, to_uint8, to_unit_range, unit_interval


class SemanticFeatures(Encoder):
    """F: one-hot label map [B, H, W, K] -> features at the latent grid [B, H/16, W/16, channels]; the encoder's
    shape, its widest layer halved (a label map holds less than a photograph)."""

    def __init__(self, width: int, channels: int, norm: str = "instance"):
        super().__init__(width, channels, multiples=(1, 2, 4, 8, 8), norm=norm, name="semantic_features")


def sample_masks(classes, class_count: int, mix, class_probability: float, downsampling: int):
    """Training masks [B, H/16, W/16] (float32, 0 or 1) for label maps `classes` [B, H, W] (H, W multiples of 16).

    Per example, by `mix` = probabilities of (nothing, everything, a random box, random classes).
    """
    shape = tf.shape(classes)
    batch, h, w = shape[0], shape[1] // downsampling, shape[2] // downsampling
    mode = tf.random.categorical(tf.math.log(tf.constant([mix], tf.float32)), batch, dtype=tf.int32)[0]

    chosen = tf.random.uniform([batch, class_count]) < class_probability
    pixels = tf.cast(tf.gather(chosen, tf.cast(classes, tf.int32), batch_dims=1), tf.float32)
    by_class = tf.nn.max_pool2d(pixels[..., None], downsampling, downsampling, "VALID")[..., 0]

    def uniform_int(low, high):  # [B] integers in [low, high] (high a [B] tensor or a scalar)
        return low + tf.cast(tf.floor(tf.random.uniform([batch]) * tf.cast(high - low + 1, tf.float32)), tf.int32)

    box_h, box_w = uniform_int(1, h), uniform_int(1, w)
    top, left = uniform_int(0, h - box_h), uniform_int(0, w - box_w)
    rows, cols = tf.range(h)[None, :], tf.range(w)[None, :]
    in_rows = (rows >= top[:, None]) & (rows < (top + box_h)[:, None])
    in_cols = (cols >= left[:, None]) & (cols < (left + box_w)[:, None])
    box = tf.cast(in_rows[:, :, None] & in_cols[:, None, :], tf.float32)

    mode = mode[:, None, None]
    ones = tf.ones_like(box)
    return tf.where(mode == 0, 0.0, tf.where(mode == 1, ones, tf.where(mode == 2, box, by_class)))


def expand_mask(mask, downsampling: int):
    """Latent mask [B, h, w] -> pixel mask [B, h*16, w*16, 1]."""
    return tf.repeat(tf.repeat(mask, downsampling, axis=1), downsampling, axis=2)[..., None]


@tf.keras.saving.register_keras_serializable(package="tfgc")
class SCModel(GCModel):
    """Keras' model((images, classes)) or model((images, classes, masks)): images as GC's, classes uint8 [B, H, W]
    (ids of the model's label set), masks [B, ceil(H/16), ceil(W/16)] of 0/1 (default: everything preserved) ->
    reconstructions float32 [B, H, W, 3] in [0, 1]."""

    family = "sc"

    @property
    def condition_channels(self) -> int:
        return self.config.model.classes

    @property
    def generator_condition_channels(self) -> int:
        return 1 + self.config.model.semantic_channels

    @classmethod
    def conditioning_halo(cls) -> int:
        return cls.ANALYSIS_HALO  # the semantic features come from an encoder like the image's

    @classmethod
    def conditioning_channels(cls, config) -> int:
        return config.model.classes + config.model.semantic_channels

    def _create_conditioning(self):
        m = self.config.model
        self.semantic_features = SemanticFeatures(m.width, m.semantic_channels, m.normalization)

    def _build_networks(self):
        self.semantic_features(tf.zeros([1, 32, 32, self.condition_channels]))
        super()._build_networks()

    def _create_functions(self):
        latent = self.config.model.latent_channels
        self.analysis = tf.function(self._analysis, input_signature=[
            tf.TensorSpec([None, None, None, 3], tf.uint8), tf.TensorSpec([None, None, None], tf.uint8)])
        self._synthesis_function = tf.function(self._synthesis, input_signature=[
            tf.TensorSpec([None, None, None, latent], tf.int32), tf.TensorSpec([None, None, None], tf.uint8),
            tf.TensorSpec([None, None, None], tf.uint8), tf.TensorSpec([], tf.int32), tf.TensorSpec([], tf.int32),
            tf.TensorSpec([], tf.float32)])

    # ---- forward pass ---------------------------------------------------------------------------------------------
    def _onehot(self, classes):
        return tf.one_hot(tf.cast(classes, tf.int32), self.condition_channels, dtype=self.compute_dtype)

    def _generator_input(self, quantized, mask, onehot, training: bool):
        mask = tf.cast(tf.expand_dims(mask, -1), quantized.dtype)  # TFLite has no strided slice with new axes
        features = tf.cast(self.semantic_features(onehot, training=training), quantized.dtype)
        return self._with_noise(tf.concat([quantized * mask, mask, features], axis=-1), training)

    def generate(self, batch, training: bool):
        """`batch` = (images [B, H, W, 3], classes [B, H, W]) or with masks [B, H/16, W/16] as a third element; without
        masks, training draws them (`sample_masks`) and evaluation preserves everything."""
        images, classes = batch[0], batch[1]
        m, t = self.config.model, self.config.train
        x = to_unit_range(images)
        onehot = self._onehot(classes)
        if len(batch) > 2:
            mask = tf.cast(batch[2], tf.float32)
        elif training:
            mask = sample_masks(classes, self.condition_channels, t.mask_mix, t.preserved_class_probability,
                                m.downsampling)
        else:
            shape = tf.shape(classes)
            mask = tf.ones([shape[0], shape[1] // m.downsampling, shape[2] // m.downsampling])
        y = self.encoder(tf.concat([tf.cast(x, self.compute_dtype), onehot], axis=-1), training=training)
        quantized, _, symbols_onehot = self.quantizer(y)
        x_hat = self.generator(self._generator_input(quantized, mask, onehot, training), training=training)
        return {"x": x, "x_hat": x_hat, "onehot": symbols_onehot, "mask": mask, "classes_onehot": onehot}

    def call_spec(self):
        return (tf.TensorSpec([None, None, None, 3], tf.uint8, name="images"),
                tf.TensorSpec([None, None, None], tf.uint8, name="classes"))

    def call(self, batch, training=False):
        x = keras_images(batch[0])
        shape = tf.shape(x)
        down = self.config.model.downsampling
        classes = pad_to_multiple(tf.expand_dims(tf.convert_to_tensor(batch[1]), -1), down)[..., 0]
        padded = (pad_to_multiple(x, down), classes, *batch[2:])
        return unit_interval(self.generate(padded, training=training)["x_hat"][:, :shape[1], :shape[2]])

    def images_of(self, batch):
        return batch[0]

    # ---- losses ---------------------------------------------------------------------------------------------------
    def discriminator_inputs(self, batch, outputs):
        condition = tf.cast(outputs["classes_onehot"], outputs["x"].dtype)
        fake = tf.cast(outputs["x_hat"], outputs["x"].dtype)
        return tf.concat([outputs["x"], condition], -1), tf.concat([fake, condition], -1)

    def squared_error(self, outputs):
        """MSE with the synthesized region weighted by `synthesized_distortion_weight` (1: the whole image as GC)."""
        preserved = expand_mask(outputs["mask"], self.config.model.downsampling)
        weight = preserved + self.config.model.synthesized_distortion_weight * (1.0 - preserved)
        error = tf.square(outputs["x"] - tf.cast(outputs["x_hat"], tf.float32))
        return tf.reduce_mean(error * weight, axis=[1, 2, 3])

    def coded_onehot(self, outputs):
        return outputs["onehot"] * outputs["mask"][..., None, None]

    def metric_names(self) -> List[str]:
        return super().metric_names() + ["preserved"]

    def batch_metrics(self, batch, outputs):
        return dict(super().batch_metrics(batch, outputs), preserved=tf.reduce_mean(outputs["mask"], axis=[1, 2]))

    # ---- the codec's transforms -----------------------------------------------------------------------------------
    def _padded_map(self, values, multiple: int):
        """A label map or mask [B, H, W] edge-replicated to sizes divisible by `multiple`."""
        # expand_dims/squeeze rather than [..., None] and [..., 0]: TFLite has no strided slice with new axes.
        return tf.squeeze(pad_to_multiple(tf.expand_dims(values, -1), multiple), -1)

    def _analysis(self, image, classes):
        """uint8 images [B, H, W, 3] and classes [B, H, W] -> symbols [B, ceil(H/16), ceil(W/16), C] (all of them;
        the codec stores those the mask preserves)."""
        geometry = self.geometry
        multiple = geometry.downsampling * geometry.shape_step
        x = to_unit_range(pad_to_multiple(image, multiple))
        onehot = self._onehot(self._padded_map(classes, multiple))
        symbols = self.quantizer.symbols(self.encoder(tf.concat([tf.cast(x, self.compute_dtype), onehot], -1),
                                                      training=False))
        return self._cropped_to_cells(symbols, tf.shape(image))

    def _synthesis(self, symbols, classes, mask, height, width, alpha):
        """Symbols (any value where the mask is 0), classes [B, H, W] and the mask [B, h, w] -> uint8 images."""
        geometry = self.geometry
        quantized = self.quantizer.dequantize(pad_to_multiple(symbols, geometry.shape_step))
        mask = self._padded_map(mask, geometry.shape_step)
        onehot = self._onehot(self._padded_map(classes, geometry.downsampling * geometry.shape_step))
        z = self._generator_input(quantized, tf.cast(mask, tf.float32), onehot, training=False)
        return to_uint8(self._decode(z, alpha)[:, :height, :width, :])

    def synthesis(self, symbols, classes, mask, height, width, alpha=None):
        return self._synthesis_function(symbols, classes, mask, height, width, self.checked_alpha(alpha))

    def deployed_functions(self):
        """analysis:  image uint8 [B, H, W, 3], classes uint8 [B, H, W] -> symbols int32 [B, h, w, C] (every cell;
                   the file keeps those the mask preserves), image_size int32 [2]
        synthesis: symbols int32 [B, h, w, C], classes uint8 [B, H', W'] (the label map, edge-padded to whole
                   cells or not), mask uint8 [B, h, w], image_size int32 [2][, alpha float32 [] in [0, 1]]
                   -> image uint8 [B, H, W, 3]
        The label map and the mask are coded by the host (tfgc.codec.api)."""
        latent = self.config.model.latent_channels

        def analysis(image, classes):
            return {"symbols": self._analysis(image, classes), "image_size": tf.shape(image)[1:3]}

        leading = [tf.TensorSpec([None, None, None, latent], tf.int32, name="symbols"),
                   tf.TensorSpec([None, None, None], tf.uint8, name="classes"),
                   tf.TensorSpec([None, None, None], tf.uint8, name="mask")]
        return {
            "analysis": tf.function(analysis, input_signature=[
                tf.TensorSpec([None, None, None, 3], tf.uint8, name="image"),
                tf.TensorSpec([None, None, None], tf.uint8, name="classes")]),
            "synthesis": deployed_synthesis(leading, self._synthesis, self.mse_generator is not None),
        }

    def reconstruct(self, image, classes, mask, alpha=None):
        image = tf.convert_to_tensor(image, tf.uint8)
        classes = tf.convert_to_tensor(classes, tf.uint8)
        shape = tf.shape(image)
        return self.synthesis(self.analysis(image, classes), classes, tf.convert_to_tensor(mask, tf.uint8),
                              shape[1], shape[2], alpha)

    # ---- identity of the bitstream --------------------------------------------------------------------------------
    def export_parts(self):
        return dict(super().export_parts(), semantic_features=self.semantic_features)

    def _fingerprint_settings(self) -> dict:
        m = self.config.model
        return dict(super()._fingerprint_settings(), label_set=m.label_set, classes=m.classes)
