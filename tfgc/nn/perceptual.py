"""VGG19 feature loss (pix2pixHD's weighting), with weights from a local file or Keras' ImageNet download."""

from __future__ import annotations

import os

import tensorflow as tf

from tfgc.errors import ConfigError

LAYERS = ("block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1")
LAYER_WEIGHTS = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)


class VGGFeatureLoss(tf.keras.layers.Layer):
    """Weighted L1 distance between VGG19 activations of two images in [-1, 1]; returns one value per example.

    `weights`: "imagenet" (Keras downloads them once, needs the network), a path to a VGG19 weights file (.h5, with or
    without the classifier top), or "random" / None for random weights (tests only: random features are no
    perceptual measure).
    """

    def __init__(self, weights=None, name=None):
        super().__init__(name=name, dtype="float32", trainable=False)
        weights = None if weights == "random" else weights
        if weights not in (None, "imagenet") and not os.path.isfile(weights):
            raise ConfigError(f"VGG19 weights file {weights} does not exist")
        try:
            vgg = tf.keras.applications.VGG19(include_top=False, weights="imagenet" if weights == "imagenet" else None)
            if weights not in (None, "imagenet"):
                vgg.load_weights(weights, by_name=True)
        except (OSError, ValueError) as e:
            raise ConfigError(f"cannot load VGG19 weights {weights}: {e}") from None
        vgg.trainable = False
        self.features = tf.keras.Model(vgg.input, [vgg.get_layer(n).output for n in LAYERS])

    def call(self, real, fake):
        def preprocess(x):
            return tf.keras.applications.vgg19.preprocess_input((tf.cast(x, tf.float32) + 1.0) * 127.5)

        real_features = self.features(preprocess(real))
        fake_features = self.features(preprocess(fake))
        loss = 0.0
        for w, a, b in zip(LAYER_WEIGHTS, real_features, fake_features):
            loss += w * tf.reduce_mean(tf.abs(tf.stop_gradient(a) - b), axis=[1, 2, 3])
        return loss
