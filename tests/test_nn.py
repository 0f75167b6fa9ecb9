import numpy as np
import tensorflow as tf

from tfgc.nn.layers import InstanceNormalization
from tfgc.nn.quantizer import Quantizer


def test_quantizer_symbols_alone_equal_the_training_path(rng):
    for levels in (2, 5, 7):
        quantizer = Quantizer(levels)
        centers = np.arange(levels) - (levels - 1) / 2
        # Random values, the centres, and the midpoints between them (ties go to the lower level, as argmin's do).
        y = np.concatenate([rng.normal(scale=levels, size=1000), centers, centers[:-1] + 0.5]).astype(np.float32)
        quantized, symbols, _ = quantizer(y)
        np.testing.assert_array_equal(quantizer.symbols(y).numpy(), symbols.numpy())
        np.testing.assert_array_equal(quantizer.dequantize(symbols).numpy(), quantized.numpy())
        assert set(np.unique(symbols.numpy())) <= set(range(levels))


def test_quantizer_gradient_is_the_soft_assignments():
    quantizer = Quantizer(5, sigma=1.0)
    y = tf.constant([0.3, -1.2, 2.7])
    with tf.GradientTape() as tape:
        tape.watch(y)
        quantized, _, _ = quantizer(y)
    gradient = tape.gradient(quantized, y).numpy()
    np.testing.assert_array_equal(quantized.numpy(), [0.0, -1.0, 2.0])
    assert (gradient > 0).all() and not np.allclose(gradient, 1.0)


def test_instance_norm_computes_keras_group_norm_per_channel(rng):
    x = tf.constant(rng.normal(loc=2.0, scale=3.0, size=(2, 9, 7, 5)).astype(np.float32))
    ours = InstanceNormalization()
    keras = tf.keras.layers.GroupNormalization(groups=-1, epsilon=1e-5)
    ours.build(x.shape)
    keras.build(x.shape)
    weights = [rng.normal(size=5).astype(np.float32), rng.normal(size=5).astype(np.float32)]
    ours.set_weights(weights)
    keras.set_weights(weights)
    np.testing.assert_allclose(ours(x).numpy(), keras(x).numpy(), atol=1e-5)


def test_training_ms_ssim_equals_tensorflows(rng):
    """tfgc.nn.ssim (separable, by band matrices) against tf.image.ssim_multiscale with the scales that fit: 2 at
    32x32, 4 at 128x128, 5 at an odd 199x170 (TensorFlow's symmetric padding before pooling); and a finite gradient."""
    from tfgc.metrics import MS_SSIM_FILTER, ms_ssim_weights
    from tfgc.nn.ssim import ms_ssim

    for height, width in [(32, 32), (128, 128), (199, 170)]:
        x = rng.uniform(0, 1, (2, height, width, 3)).astype(np.float32)
        noisy = np.clip(x + rng.normal(0, 0.1, x.shape), 0, 1).astype(np.float32)
        weights = ms_ssim_weights(height, width)
        reference = tf.image.ssim_multiscale(x, noisy, 1.0, power_factors=weights, filter_size=MS_SSIM_FILTER)
        np.testing.assert_allclose(ms_ssim(tf.constant(x), tf.constant(noisy), 1.0), reference, atol=1e-4)
    assert len(weights) == 5
    y = tf.Variable(noisy)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(1 - ms_ssim(tf.constant(x), y, 1.0))
    gradient = tape.gradient(loss, y)
    assert np.isfinite(gradient.numpy()).all() and float(tf.reduce_max(tf.abs(gradient))) > 0
    # Anticorrelated images: negative contrast-structure, MS-SSIM 0 as in TensorFlow, and a finite gradient.
    opposite = tf.Variable(1 - x)
    with tf.GradientTape() as tape:
        value = ms_ssim(tf.constant(x), opposite, 1.0)
    assert float(tf.reduce_max(value)) == 0.0
    assert np.isfinite(tape.gradient(value, opposite).numpy()).all()
