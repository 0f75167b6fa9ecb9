"""Fidelity control (Iwai et al. 2020) as every model family deploys it: the exported synthesis takes alpha when the
model keeps two decoders."""

from __future__ import annotations

from typing import Sequence

import tensorflow as tf

from tfgc.config import ALPHA_RANGE


def deployed_synthesis(leading_inputs: Sequence[tf.TensorSpec], synthesize, fidelity_controlled: bool):
    """The exported synthesis: (*leading_inputs, image_size int32 [2] (H, W)[, alpha float32 []]) -> {"image": uint8
    [B, H, W, 3]}, where synthesize(*leading, height, width, alpha) decodes; alpha is an input only of a
    fidelity-controlled model.

    alpha outside [0, 1] fails the graph's assertion where TensorFlow runs it (the codec and serving SavedModels, TF
    Serving); TFLite and ONNX have no assertion op, so their converters drop it and the clip behind it is what
    remains there (tfgc's own runners of those files refuse such an alpha before they run them)."""
    inputs = list(leading_inputs) + [tf.TensorSpec([2], tf.int32, name="image_size")]
    if not fidelity_controlled:
        def synthesis(*args):
            *leading, image_size = args
            return {"image": synthesize(*leading, image_size[0], image_size[1], None)}
    else:
        inputs.append(tf.TensorSpec([], tf.float32, name="alpha"))

        def synthesis(*args):
            *leading, image_size, alpha = args
            return {"image": synthesize(*leading, image_size[0], image_size[1], asserted_alpha(alpha))}

    return tf.function(synthesis, input_signature=inputs)


def asserted_alpha(alpha):
    """alpha, asserted to be in [0, 1] (and clipped, for runtimes that drop the assertion)."""
    valid = tf.logical_and(alpha >= 0.0, alpha <= 1.0)
    with tf.control_dependencies([tf.debugging.Assert(valid, [ALPHA_RANGE + ", not", alpha])]):
        return tf.clip_by_value(alpha, 0.0, 1.0)
