"""Discriminators."""

from __future__ import annotations

import tensorflow as tf

from tfgc.nn.layers import instance_norm


class PatchDiscriminator(tf.keras.layers.Layer):
    """pix2pixHD's PatchGAN: 4x4 convs, stride 2 for `layers` steps, then one stride-1 conv and a 1-channel output.

    Returns every intermediate activation (for feature matching) with the patch scores last, all in float32.
    """

    def __init__(self, width: int = 64, layers: int = 3, name=None):
        super().__init__(name=name)
        blocks = [tf.keras.Sequential([tf.keras.layers.Conv2D(width, 4, 2, padding="same"),
                                       tf.keras.layers.LeakyReLU(0.2)])]
        filters = width
        for i in range(1, layers + 1):
            filters = min(filters * 2, 512)
            stride = 2 if i < layers else 1
            conv = tf.keras.layers.Conv2D(filters, 4, stride, padding="same", use_bias=False)
            blocks.append(tf.keras.Sequential([conv, instance_norm(), tf.keras.layers.LeakyReLU(0.2)]))
        blocks.append(tf.keras.layers.Conv2D(1, 4, 1, padding="same"))
        self.blocks = blocks

    def call(self, x):
        features = []
        for block in self.blocks:
            x = block(x)
            features.append(tf.cast(x, tf.float32))
        return features


class MultiScaleDiscriminator(tf.keras.layers.Layer):
    """`scales` PatchGANs, each seeing the image downsampled once more (3x3 average pooling, stride 2)."""

    def __init__(self, width: int = 64, layers: int = 3, scales: int = 3, name=None):
        super().__init__(name=name)
        self.discriminators = [PatchDiscriminator(width, layers, name=f"scale{i}") for i in range(scales)]
        self.downsample = tf.keras.layers.AveragePooling2D(3, strides=2, padding="same")

    def call(self, x):
        outputs = []
        for i, discriminator in enumerate(self.discriminators):
            if i > 0:
                x = self.downsample(x)
            outputs.append(discriminator(x))
        return outputs


class VGGStyleDiscriminator(tf.keras.layers.Layer):
    """SRGAN's discriminator: 3x3 convs with LeakyReLU(0.2) and batch norm on all but the first; each width twice,
    at stride 1 and then 2 (strided convolutions instead of max-pooling), the width doubling from `width` for `blocks`
    widths; then a dense head (1024, LeakyReLU, 1 logit).

    The head pools globally before its dense layers (SRGAN flattens a fixed 96x96 crop's map), so any image size
    works. Returns [[logits]] (float32), the shape the GAN core's losses take: one scale, scores last.
    """

    def __init__(self, width: int = 64, blocks: int = 4, name=None):
        super().__init__(name=name)
        layers = [tf.keras.layers.Conv2D(width, 3, padding="same"), tf.keras.layers.LeakyReLU(0.2)]
        for i in range(blocks):
            filters = width * 2**i
            for strides in ((2,) if i == 0 else (1, 2)):
                layers += [tf.keras.layers.Conv2D(filters, 3, strides, padding="same", use_bias=False),
                           tf.keras.layers.BatchNormalization(), tf.keras.layers.LeakyReLU(0.2)]
        layers += [tf.keras.layers.GlobalAveragePooling2D(), tf.keras.layers.Dense(1024),
                   tf.keras.layers.LeakyReLU(0.2), tf.keras.layers.Dense(1, dtype="float32")]
        self.body = tf.keras.Sequential(layers)

    def call(self, x, training=None):
        return [[tf.cast(self.body(x, training=training), tf.float32)]]
