"""MS-SSIM as a training loss: tf.image.ssim_multiscale's values (Wang et al. 2003; 11-tap Gaussian, sigma 1.5,
k1 0.01, k2 0.03, 2x2 average pooling between scales), computed several times faster on the CPU.

TensorFlow filters with an 11x11 depthwise convolution, whose gradient doubled a gc-small training step. The
Gaussian is separable, and a 1-D valid filter along an axis of fixed length n is a product with an (n - 10) x n band
matrix, which runs on the matrix-multiply kernels forward and backward.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tfgc.metrics import MS_SSIM_FILTER, ms_ssim_weights

FILTER_SIGMA = 1.5
K1, K2 = 0.01, 0.03
TINY = 1e-6


def _gaussian() -> np.ndarray:
    offsets = np.arange(MS_SSIM_FILTER, dtype=np.float64) - (MS_SSIM_FILTER - 1) / 2
    taps = np.exp(-0.5 * offsets**2 / FILTER_SIGMA**2)
    return taps / taps.sum()


def _band(length: int) -> tf.Tensor:
    taps = _gaussian()
    band = np.zeros((length - MS_SSIM_FILTER + 1, length), np.float32)
    for row in range(band.shape[0]):
        band[row, row:row + MS_SSIM_FILTER] = taps
    return tf.constant(band)


def _blur(planes):
    """Valid Gaussian filtering of [N, H, W] planes."""
    planes = tf.einsum("ij,njk->nik", _band(planes.shape[1]), planes)
    return tf.einsum("njk,lk->njl", planes, _band(planes.shape[2]))


def _ssim_and_cs(x, y, max_val: float):
    """Mean SSIM and contrast-structure term of each [N, H, W] plane."""
    c1, c2 = (K1 * max_val) ** 2, (K2 * max_val) ** 2
    n = tf.shape(x)[0]
    statistics = _blur(tf.concat([x, y, x * y, x * x + y * y], 0))
    mean_x, mean_y = statistics[:n], statistics[n:2 * n]
    mean_xy, mean_squares = statistics[2 * n:3 * n], statistics[3 * n:]
    products = 2 * mean_x * mean_y
    squares = mean_x * mean_x + mean_y * mean_y
    luminance = (products + c1) / (squares + c1)
    contrast_structure = (2 * mean_xy - products + c2) / (mean_squares - squares + c2)
    return (tf.reduce_mean(luminance * contrast_structure, [1, 2]), tf.reduce_mean(contrast_structure, [1, 2]))


def ms_ssim(original, reconstruction, max_val: float):
    """MS-SSIM of each image of two float batches [B, H, W, C] of a size known when traced: as many of the 5 scales
    as the size holds, their standard weights renormalized (tfgc.metrics.ms_ssim_weights), channels averaged."""
    batch, height, width, channels = original.shape
    if height is None or width is None or channels is None:
        raise ValueError("ms_ssim needs images whose height, width and channels are known when traced")
    weights = ms_ssim_weights(height, width)

    def planes(images):
        return tf.reshape(tf.transpose(tf.cast(images, tf.float32), [0, 3, 1, 2]), [-1, height, width])

    x, y = planes(original), planes(reconstruction)
    factors = []
    for scale in range(len(weights)):
        if scale > 0:
            rows, columns = x.shape[1] % 2, x.shape[2] % 2
            if rows or columns:  # as TensorFlow: odd sizes are padded symmetrically before pooling
                x = tf.pad(x, [[0, 0], [0, rows], [0, columns]], "SYMMETRIC")
                y = tf.pad(y, [[0, 0], [0, rows], [0, columns]], "SYMMETRIC")
            x = tf.nn.avg_pool2d(x[..., None], 2, 2, "VALID")[..., 0]
            y = tf.nn.avg_pool2d(y[..., None], 2, 2, "VALID")[..., 0]
        ssim, contrast_structure = _ssim_and_cs(x, y, max_val)
        # The finest scales contribute contrast-structure, the coarsest full SSIM.
        factors.append(ssim if scale == len(weights) - 1 else contrast_structure)
    factors = tf.stack(factors, -1)
    # As TensorFlow, a factor <= 0 makes the product 0; unlike it, without a NaN gradient (d/dv v^w is infinite at 0,
    # and 0 * inf poisons the whole step), so the power only sees values it can differentiate.
    positive = factors > TINY
    powers = tf.pow(tf.maximum(factors, TINY), tf.constant(weights, tf.float32))
    per_plane = tf.reduce_prod(tf.where(positive, powers, tf.zeros_like(powers)), -1)
    return tf.reduce_mean(tf.reshape(per_plane, [-1, channels]), -1)
