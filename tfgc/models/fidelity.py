"""Fidelity control (Iwai et al. 2020) as every model family deploys it: the exported synthesis takes alpha when the
model keeps two decoders."""

from __future__ import annotations

import tensorflow as tf


def deployed_synthesis(first_input: tf.TensorSpec, synthesize, fidelity_controlled: bool):
    """The exported synthesis: (first_input, image_size int32 [2] (H, W)[, alpha float32 []]) -> {"image": uint8
    [B, H, W, 3]}, where synthesize(first, height, width, alpha) decodes; alpha is an input only of a
    fidelity-controlled model, and is clipped to [0, 1] (a deployment gets no Python check)."""
    inputs = [first_input, tf.TensorSpec([2], tf.int32, name="image_size")]
    if not fidelity_controlled:
        def synthesis(first, image_size):
            return {"image": synthesize(first, image_size[0], image_size[1], None)}
    else:
        inputs.append(tf.TensorSpec([], tf.float32, name="alpha"))

        def synthesis(first, image_size, alpha):
            return {"image": synthesize(first, image_size[0], image_size[1], tf.clip_by_value(alpha, 0.0, 1.0))}

    return tf.function(synthesis, input_signature=inputs)
