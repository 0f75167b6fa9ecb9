"""Images as every model family's networks see them: the ranges they are converted between, padding to a network's
downsampling, and PSNR on the training scale. Models keep images in [-1, 1] inside (the generator ends in tanh);
files and the codec carry uint8; Keras' model(x) takes uint8 or floats in [0, 1] and returns floats in [0, 1]."""

from __future__ import annotations

import tensorflow as tf

from tfgc.errors import ImageError


def keras_images(images, name: str = "images"):
    """What model(x) takes: images uint8 0..255, or floats in [0, 1] (TensorFlow's convention for float images,
    tf.image.convert_image_dtype); returned as float32 0..255. Floats outside [0, 1] are refused: an ImageError when
    run eagerly, a failed assertion (InvalidArgumentError) in a graph."""
    images = tf.convert_to_tensor(images)
    if images.dtype == tf.uint8:
        return tf.cast(images, tf.float32)
    if not images.dtype.is_floating:
        raise ImageError(f"{name} must be uint8 0..255 or floats in [0, 1], not {images.dtype.name}")
    x = tf.cast(images, tf.float32)
    inside = tf.reduce_all((x >= 0.0) & (x <= 1.0))  # NaN is outside too
    message = f"float {name} must hold values in [0, 1] (uint8 for 0..255)"
    if tf.executing_eagerly():
        if not bool(inside):
            raise ImageError(f"{message}; these hold {float(tf.reduce_min(x)):g}..{float(tf.reduce_max(x)):g}")
        return x * 255.0
    with tf.control_dependencies([tf.debugging.Assert(inside, [message])]):
        return tf.identity(x) * 255.0


def unit_interval(x_hat):
    """A decoder's output in [-1, 1] as what model(x) returns: float32 images in [0, 1]."""
    return tf.clip_by_value((tf.cast(x_hat, tf.float32) + 1.0) / 2.0, 0.0, 1.0)


def to_unit_range(image):
    return tf.cast(image, tf.float32) / 127.5 - 1.0


def to_uint8(x):
    return tf.cast(tf.round(tf.clip_by_value((tf.cast(x, tf.float32) + 1.0) * 127.5, 0.0, 255.0)), tf.uint8)


def unit_range_psnr(x, x_hat):
    """Per-example PSNR (dB) of images in [-1, 1], measured as 8-bit images."""
    mse = tf.reduce_mean(tf.square((tf.cast(x, tf.float32) - tf.cast(x_hat, tf.float32)) * 127.5), axis=[1, 2, 3])
    return 10.0 * tf.math.log(255.0**2 / tf.maximum(mse, 1e-10)) / tf.math.log(10.0)


def pad_to_multiple(image, multiple: int):
    """Edge-replicate an image [B, H, W, C] to sizes divisible by `multiple` (works for a 1x1 image too)."""
    if multiple == 1:
        return image
    shape = tf.shape(image)
    height, width = shape[1], shape[2]
    padded_h = (height + multiple - 1) // multiple * multiple
    padded_w = (width + multiple - 1) // multiple * multiple
    rows = tf.minimum(tf.range(padded_h), height - 1)
    cols = tf.minimum(tf.range(padded_w), width - 1)
    return tf.gather(tf.gather(image, rows, axis=1), cols, axis=2)
