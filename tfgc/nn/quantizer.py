"""The L-level scalar quantizer of Agustsson et al. (hard forward pass, soft-to-hard gradient)."""

from __future__ import annotations

import tensorflow as tf


class Quantizer(tf.keras.layers.Layer):
    """Maps each latent value to the nearest of L centres -(L-1)/2, ..., (L-1)/2.

    The forward value is the hard assignment; the gradient is that of the soft assignment
    softmax(-sigma * (y - c)^2) (Agustsson et al. 2017, "soft-to-hard"), or the identity when sigma is 0.
    Returns the quantized values, the symbol indices 0..L-1, and a one-hot of the symbols whose gradient is the soft
    assignment's, so an entropy model can put a rate gradient on the encoder.
    Runs in float32 whatever the mixed-precision policy: symbols must not depend on it.
    """

    def __init__(self, levels: int, sigma: float = 1.0, name=None):
        super().__init__(name=name, dtype="float32")
        self.levels = levels
        self.sigma = sigma
        self.centers = tf.range(levels, dtype=tf.float32) - (levels - 1) / 2

    def call(self, y):
        y = tf.cast(y, tf.float32)
        distance = tf.square(y[..., None] - self.centers)
        symbols = tf.argmin(distance, axis=-1, output_type=tf.int32)
        hard_onehot = tf.one_hot(symbols, self.levels, dtype=tf.float32)
        hard = tf.gather(self.centers, symbols)
        if self.sigma > 0:
            soft_onehot = tf.nn.softmax(-self.sigma * distance, axis=-1)
            soft = tf.reduce_sum(soft_onehot * self.centers, axis=-1)
        else:
            soft_onehot = hard_onehot
            soft = y
        quantized = soft + tf.stop_gradient(hard - soft)
        onehot = soft_onehot + tf.stop_gradient(hard_onehot - soft_onehot)
        return quantized, symbols, onehot

    def symbols(self, y):
        """The symbols alone, as `call` assigns them (ties go to the lower level, as argmin's do), in ops that TFLite
        and ONNX convert (`call`'s five-dimensional distance tensor is not one of them)."""
        offset = tf.cast(y, tf.float32) + (self.levels - 1) / 2
        return tf.cast(tf.clip_by_value(tf.math.ceil(offset - 0.5), 0.0, self.levels - 1.0), tf.int32)

    def dequantize(self, symbols):
        # Arithmetic, not a gather from self.centers: converters take a captured tensor for an input.
        return tf.cast(symbols, tf.float32) - (self.levels - 1) / 2
