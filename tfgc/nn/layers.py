"""Convolutional building blocks in the notation of pix2pixHD and Agustsson et al. 2019.

`c7s1-k`: 7x7 conv, stride 1, k filters; `dk`: 3x3 conv, stride 2; `uk`: 3x3 transposed conv, stride 2; each followed by
instance normalization and ReLU.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import tensorflow as tf

from tfgc.config import NORMALIZATIONS


class InstanceNormalization(tf.keras.layers.GroupNormalization):
    """Keras' `GroupNormalization(groups=-1)` (one group per channel), with its weights, computed with plain moments.

    Keras weights its moments by an all-ones mask, which costs time and, with dynamic image sizes, converts to TFLite
    broadcasts that fail at run time. Moments are taken in float32 under any mixed-precision policy.
    """

    def __init__(self, epsilon: float = 1e-5, name=None):
        super().__init__(groups=-1, epsilon=epsilon, name=name)

    def call(self, inputs):
        return self.normalize(inputs, self.gamma, self.beta)

    def normalize(self, inputs, gamma, beta):
        """The layer's function with the given scale and offset (decoder interpolation runs it with others)."""
        x = tf.cast(inputs, tf.float32)
        mean, variance = tf.nn.moments(x, axes=[1, 2], keepdims=True)
        y = tf.nn.batch_normalization(x, mean, variance, tf.cast(beta, tf.float32), tf.cast(gamma, tf.float32),
                                      self.epsilon)
        return tf.cast(y, self.compute_dtype)


@functools.lru_cache(maxsize=None)
def _gdn_class():
    """tensorflow-compression's GDN with its constant exponents read as Python numbers.

    tfc's `call` chooses its computation with `if self.alpha == 1` on a tensor, which fails where Keras traces layer
    calls without AutoGraph, as `model.save()` does for a SavedModel. Here a constant alpha or epsilon (tfgc builds
    alpha = epsilon = 1) is a Python float, so the same branch is taken in eager, traced and saved code; the
    variables, and so the checkpoints, are tfc's.

    Keras' own format (.keras) saves a layer's variables made by add_weight only; GDN's live in its parameter
    modules, so they are saved and loaded here, all of them in order."""
    import tensorflow_compression as tfc

    class GDN(tfc.GDN):
        def save_own_variables(self, store):
            for index, variable in enumerate(self.weights):
                store[str(index)] = variable.numpy()

        def load_own_variables(self, store):
            if len(store.keys()) != len(self.weights):
                raise ValueError(f"GDN layer {self.name} has {len(self.weights)} variables; the save holds "
                                 f"{len(store.keys())}")
            for index, variable in enumerate(self.weights):
                variable.assign(store[str(index)])

        @property
        def alpha(self):
            return _constant(self.alpha_parameter) if _is_constant(self.alpha_parameter) else super().alpha

        @property
        def epsilon(self):
            return _constant(self.epsilon_parameter) if _is_constant(self.epsilon_parameter) else super().epsilon

        @property
        def beta(self):
            return gdn_parameter(self.beta_parameter, self.compute_dtype) \
                if isinstance(self.beta_parameter, tfc.GDNParameter) else super().beta

        @property
        def gamma(self):
            return gdn_parameter(self.gamma_parameter, self.compute_dtype) \
                if isinstance(self.gamma_parameter, tfc.GDNParameter) else super().gamma

    return GDN


def gdn_parameter(parameter, dtype, variable=None) -> tf.Tensor:
    """A tfc.GDNParameter's value, a lower-bounded square, from its variable (or `variable` in its place)."""
    variable = tf.cast(parameter.variable if variable is None else variable, dtype)
    pedestal = tf.constant(parameter.offset**2, dtype=variable.dtype)
    bound = tf.constant((parameter.minimum + parameter.offset**2)**.5, dtype=variable.dtype)
    return tf.math.square(lower_bound(variable, bound)) - pedestal


def lower_bound(values, bound) -> tf.Tensor:
    """tensorflow-compression's lower_bound where a gradient may be taken; elsewhere its value, tf.maximum.

    tfc's is a `tf.custom_gradient`, which in a traced function registers its gradient in TensorFlow's global registry
    for the life of the process, and with it the traced graph: every model loaded to decode grew the process by about
    45 MiB (gc-small-c8), freed never. The codec's functions take no gradient, and no tape records while they are
    traced, so they compute the same values through tf.maximum and register nothing. The choice is made when a function
    is traced: one traced without a tape and differentiated later would get tf.maximum's gradient (tfgc's training
    traces its steps with their tapes open).
    """
    import tensorflow_compression as tfc
    from tensorflow.python.eager import record

    if tf.executing_eagerly() or record.could_possibly_record():
        return tfc.lower_bound(values, bound)
    return tf.math.maximum(values, bound)


def _is_constant(parameter) -> bool:
    return parameter is not None and not callable(parameter) and hasattr(parameter, "numpy")


def _constant(parameter) -> float:
    return float(parameter.numpy())


def instance_norm(name=None) -> tf.keras.layers.Layer:
    return InstanceNormalization(name=name)


class EagerSequential(tf.keras.Sequential):
    """A Sequential that never builds Keras' symbolic graph of its layers: it runs them in order, as Keras 2 did
    before inferring input shapes.

    Inside that graph, tensorflow-compression's GDN bounds its parameters through `tf.custom_gradient`, whose gradient
    registrations keep the graph alive: every model built with GDN stayed in memory (about 1 MiB per GDN layer, 21 MiB
    per gc-tiny), so a process that loads models again and again grew without bound. Checkpoints are the same either
    way (tested).
    """

    def __init__(self, layers=None, name=None):
        super().__init__(layers, name=name)
        self._use_legacy_deferred_behavior = True

    def get_config(self):
        # A network is rebuilt by its model's from_config, never alone: with no config of its own, Keras' SavedModel
        # loader takes it from the model it rebuilt instead of calling Sequential.__init__(layers) on it.
        raise NotImplementedError("tfgc networks are rebuilt from their model's config")


class ConvNormAct(EagerSequential):
    """Conv (or transposed conv) - normalization - activation.

    norm "instance": instance norm, then the activation (pix2pixHD, Agustsson et al.); "gdn": GDN after a conv, its
    inverse after a transposed conv, and no further activation (Balle et al.: GDN is the nonlinearity); "none": the
    activation alone.
    """

    def __init__(self, filters, kernel_size, strides=1, transpose=False, norm="instance", activation="relu",
                 name=None):
        if norm not in NORMALIZATIONS:
            raise ValueError(f"norm must be one of {', '.join(NORMALIZATIONS)}, not {norm!r}")
        conv = tf.keras.layers.Conv2DTranspose if transpose else tf.keras.layers.Conv2D
        layers = [conv(filters, kernel_size, strides=strides, padding="same", use_bias=norm != "instance")]
        if norm == "instance":
            layers.append(instance_norm())
        elif norm == "gdn":
            layers.append(_gdn_class()(inverse=transpose))
            activation = None
        if activation == "lrelu":
            layers.append(tf.keras.layers.LeakyReLU(0.2))
        elif activation is not None:
            layers.append(tf.keras.layers.Activation(activation))
        super().__init__(layers, name=name)


class ResidualBlock(tf.keras.layers.Layer):
    """Two 3x3 conv-norm layers (ReLU between them) and an identity skip; with norm "gdn" (or "none") the convs have
    no normalization (GDN belongs to the resampling layers)."""

    def __init__(self, filters, norm="instance", name=None):
        super().__init__(name=name)
        norm = "instance" if norm == "instance" else "none"
        self.body = tf.keras.Sequential([
            ConvNormAct(filters, 3, norm=norm),
            ConvNormAct(filters, 3, norm=norm, activation=None),
        ])

    def call(self, x):
        return x + self.body(x)


class Skip(tf.keras.layers.Layer):
    """x + body(x) around any body (a long skip, as EDSR's over its residual trunk)."""

    def __init__(self, body, name=None):
        super().__init__(name=name)
        self.body = body

    def call(self, x):
        return x + self.body(x)


# ---- super-resolution blocks (SRGAN, Ledig et al. 2017; EDSR, Lim et al. 2017) ------------------------------------

def prelu() -> tf.keras.layers.Layer:
    """PReLU with one slope per channel (shared over the image), as SRGAN's."""
    return tf.keras.layers.PReLU(shared_axes=[1, 2])


class SRResidualBlock(tf.keras.layers.Layer):
    """3x3 conv - batch norm - PReLU - 3x3 conv - batch norm, and an identity skip."""

    def __init__(self, filters, name=None):
        super().__init__(name=name)
        self.body = tf.keras.Sequential([
            tf.keras.layers.Conv2D(filters, 3, padding="same"), tf.keras.layers.BatchNormalization(), prelu(),
            tf.keras.layers.Conv2D(filters, 3, padding="same"), tf.keras.layers.BatchNormalization(),
        ])

    def call(self, x, training=None):
        return x + self.body(x, training=training)


class PixelShuffle(tf.keras.layers.Layer):
    """Sub-pixel rearrangement (Shi et al. 2016): [B, H, W, r*r*C] -> [B, r*H, r*W, C]."""

    def __init__(self, factor: int = 2, name=None):
        super().__init__(name=name)
        self.factor = factor

    def call(self, x):
        return tf.nn.depth_to_space(x, self.factor)


def lanczos_phase_filters(scale: int, support: float = 3.0) -> np.ndarray:
    """[scale, 7] taps: output pixel s*i + p of a Lanczos-3 upscaling by `scale` is sum_d taps[p, d] * x[i + d - 3].

    Pillow's arithmetic (ImagingResample): the output centre (p + 0.5) / scale, the taps from
    floor(centre - support + 0.5) on, each weighted lanczos(input centre - output centre), normalized to sum 1."""
    taps = np.arange(7) - 3
    filters = np.zeros((scale, 7))
    for phase in range(scale):
        centre = (phase + 0.5) / scale
        first, end = math.floor(centre - support + 0.5), math.floor(centre + support + 0.5)
        x = taps - centre + 0.5
        weights = np.where((taps >= first) & (taps < end) & (np.abs(x) < support),
                           np.sinc(x) * np.sinc(x / support), 0.0)
        filters[phase] = weights / weights.sum()
    return filters


class LanczosUpsample(tf.keras.layers.Layer):
    """Upscaling by an integer factor with Pillow's Lanczos-3 filter, as one fixed convolution (each colour to its
    scale**2 phases) and a pixel shuffle: standard ops that TFLite and ONNX run. Borders replicate the edge pixel
    (Pillow renormalizes its taps there instead: the two differ within 3 pixels of the border). No weights."""

    def __init__(self, scale: int, name=None):
        super().__init__(name=name, trainable=False)
        self.scale = scale
        phases = lanczos_phase_filters(scale)
        kernel = np.zeros((7, 7, 3, 3 * scale * scale), np.float32)
        for dy in range(scale):
            for dx in range(scale):
                for channel in range(3):
                    kernel[:, :, channel, (dy * scale + dx) * 3 + channel] = np.outer(phases[dy], phases[dx])
        self.kernel = kernel

    def call(self, x):
        if self.scale == 1:
            return x
        shape = tf.shape(x)
        rows = tf.clip_by_value(tf.range(-3, shape[1] + 3), 0, shape[1] - 1)
        columns = tf.clip_by_value(tf.range(-3, shape[2] + 3), 0, shape[2] - 1)
        padded = tf.gather(tf.gather(x, rows, axis=1), columns, axis=2)
        phases = tf.nn.conv2d(padded, tf.constant(self.kernel, x.dtype), 1, "VALID")
        return tf.nn.depth_to_space(phases, self.scale)


class SubPixelUpsample(tf.keras.Sequential):
    """x2: 3x3 conv to 4 * filters, pixel shuffle, PReLU."""

    def __init__(self, filters, name=None):
        super().__init__([tf.keras.layers.Conv2D(4 * filters, 3, padding="same"), PixelShuffle(2), prelu()], name=name)
