"""Network interpolation (Iwai et al. 2020): run a network with parameters (1 - alpha) * theta_1 + alpha * theta_2,
alpha a tensor, so one graph (and one exported model) serves every alpha.

Keras layers compute with their own variables, so `call_with_weights` runs a network's layers with given tensors in
their place, through the same TensorFlow ops the layers use (the tests check both agree bit for bit). It knows the
layers tfgc's decoders are made of, and refuses others.
"""

from __future__ import annotations

from typing import Callable, Sequence

import tensorflow as tf
import tensorflow_compression as tfc

from tfgc.nn.layers import InstanceNormalization, LanczosUpsample, PixelShuffle, ResidualBlock, Skip, gdn_parameter


def interpolate(first: Sequence[tf.Variable], second: Sequence[tf.Variable], alpha) -> list:
    """(1 - alpha) * a + alpha * b for each pair: exactly a at alpha = 0 and exactly b at alpha = 1."""
    alpha = tf.cast(alpha, tf.float32)
    return [(1.0 - alpha) * a + alpha * b for a, b in zip(first, second)]


def call_with_weights(network: tf.keras.layers.Layer, x, weights: Sequence[tf.Tensor]):
    """network(x) with `weights` in place of network.weights (same order)."""
    if len(weights) != len(network.weights):
        raise ValueError(f"{network.name} has {len(network.weights)} weights, got {len(weights)}")
    table = {id(variable): value for variable, value in zip(network.weights, weights)}
    return _apply(network, x, lambda variable: table[id(variable)])


def _apply(layer, x, weight: Callable[[tf.Variable], tf.Tensor]):
    if isinstance(layer, tf.keras.Sequential):
        for sublayer in layer.layers:
            x = _apply(sublayer, x, weight)
        return x
    if isinstance(layer, (ResidualBlock, Skip)):
        return x + _apply(layer.body, x, weight)
    if isinstance(layer, tf.keras.layers.Conv2DTranspose):  # before Conv2D: it is a subclass
        _require_plain(layer)
        shape = tf.shape(x)
        stride_h, stride_w = layer.strides
        output_shape = tf.stack([shape[0], shape[1] * stride_h, shape[2] * stride_w, layer.filters])
        y = tf.keras.backend.conv2d_transpose(x, weight(layer.kernel), output_shape, strides=layer.strides,
                                              padding=layer.padding, data_format=layer.data_format,
                                              dilation_rate=layer.dilation_rate)
        return _bias_and_activation(layer, y, weight)
    if isinstance(layer, tf.keras.layers.Conv2D):
        _require_plain(layer)
        return _bias_and_activation(layer, layer.convolution_op(x, weight(layer.kernel)), weight)
    if isinstance(layer, InstanceNormalization):
        return layer.normalize(x, weight(layer.gamma), weight(layer.beta))
    if isinstance(layer, tfc.GDN):
        return _gdn(layer, x, weight)
    if isinstance(layer, (tf.keras.layers.Activation, tf.keras.layers.LeakyReLU, PixelShuffle, LanczosUpsample)):
        return layer(x)  # no weights
    raise TypeError(f"decoder interpolation does not know layer {layer.name} ({type(layer).__name__})")


def _gdn(layer, x, weight):
    """tfc.GDN's computation (the configuration tfgc builds: alpha = epsilon = 1, not rectified) with the given
    values of its reparameterized beta and gamma variables."""
    _require_plain_gdn(layer)
    beta = gdn_parameter(layer.beta_parameter, layer.compute_dtype, weight(layer.beta_parameter.variable))
    gamma = gdn_parameter(layer.gamma_parameter, layer.compute_dtype, weight(layer.gamma_parameter.variable))
    rank = x.shape.rank
    norm_pool = tf.nn.convolution(abs(x), tf.reshape(gamma, (rank - 2) * [1] + gamma.shape), padding="VALID")
    norm_pool = tf.nn.bias_add(norm_pool, beta)
    return x * norm_pool if layer.inverse else x / norm_pool


@tf.autograph.experimental.do_not_convert
def _require_plain_gdn(layer) -> None:
    # A check of the layer's constant settings, made in Python while a graph is traced: converted by AutoGraph,
    # float() of the captured alpha became a tensor and the refusal a branch of a tf.cond, traced and raised.
    if layer.rectify or callable(layer.alpha_parameter) or callable(layer.epsilon_parameter) \
            or float(layer.alpha_parameter) != 1 or float(layer.epsilon_parameter) != 1 \
            or layer.data_format != "channels_last":
        raise TypeError(f"decoder interpolation supports tfc.GDN with alpha = epsilon = 1 only, not {layer.name}")


def _require_plain(layer) -> None:
    if layer.padding != "same" or layer.data_format != "channels_last" or getattr(layer, "groups", 1) != 1 \
            or getattr(layer, "output_padding", None) is not None:
        raise TypeError(f"decoder interpolation supports 'same'-padded channels-last convolutions, not {layer.name}")


def _bias_and_activation(layer, y, weight):
    if layer.use_bias:
        y = tf.nn.bias_add(y, weight(layer.bias), data_format="NHWC")
    return layer.activation(y) if layer.activation is not None else y

