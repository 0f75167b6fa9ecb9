"""A learned categorical prior over exactly the L quantizer levels, one distribution per latent channel.

Training sees differentiable bit counts; coding sees an integer CDF table that is computed once (when a model is
exported) and stored with the weights, because TensorFlow's float CDF quantization may differ across platforms and
the range coder needs the encoder's and decoder's tables to match bit for bit.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
import tensorflow_compression as tfc

from tfgc.config import CODING_PRECISION as PRECISION

# The logits are this multiple of the trained variable, so Adam moves them about this many times the learning rate per
# step: the prior then follows the symbol statistics within a few hundred steps, which short CPU runs need.
LOGIT_SCALE = 10.0
# Every symbol keeps at least this probability, so its quantized CDF step is never zero (it would be uncodable).
PMF_FLOOR = 2.0**-12


class CategoricalPrior(tf.keras.layers.Layer):
    def __init__(self, channels: int, levels: int, name=None):
        super().__init__(name=name, dtype="float32")
        self.channels = channels
        self.levels = levels
        self.scaled_logits = self.add_weight(name="logits", shape=(channels, levels), initializer="zeros",
                                             trainable=True)
        self.coding_table = self.add_weight(
            name="coding_table", shape=(channels, levels + 2), dtype=tf.int32, trainable=False,
            initializer=tf.keras.initializers.Constant(_quantized_table(np.full((channels, levels), 1.0 / levels))))
        self.built = True

    @property
    def logits(self):
        return LOGIT_SCALE * self.scaled_logits

    def set_logits(self, logits) -> None:
        self.scaled_logits.assign(tf.convert_to_tensor(logits, tf.float32) / LOGIT_SCALE)

    def pmf(self):
        p = tf.nn.softmax(self.logits, axis=-1)
        return (1.0 - self.levels * PMF_FLOOR) * p + PMF_FLOOR

    def bits(self, onehot, stop_prior_gradient: bool = False):
        """Bits of each example's symbols under the prior: onehot is [B, h, w, C, L]; returns [B]."""
        log2_pmf = tf.math.log(self.pmf()) / tf.math.log(2.0)
        if stop_prior_gradient:
            log2_pmf = tf.stop_gradient(log2_pmf)
        return -tf.reduce_sum(onehot * log2_pmf, axis=[1, 2, 3, 4])

    def update_coding_table(self) -> None:
        self.coding_table.assign(_quantized_table(self.pmf().numpy()))


def _quantized_table(pmf: np.ndarray) -> np.ndarray:
    """Rows of [precision, cdf_0=0, ..., cdf_L=2**precision], the layout tfc's range coder reads."""
    cdf = tfc.pmf_to_quantized_cdf(tf.constant(pmf, tf.float32), precision=PRECISION).numpy()
    table = np.concatenate([np.full((pmf.shape[0], 1), PRECISION, np.int32), cdf.astype(np.int32)], axis=1)
    return table
