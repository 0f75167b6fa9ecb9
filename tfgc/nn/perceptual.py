"""VGG19 feature loss (pix2pixHD's weighting), with weights from a local file or Keras' ImageNet download."""

from __future__ import annotations

import os

import tensorflow as tf

from tfgc.errors import ConfigError

LAYERS = ("block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1")
LAYER_WEIGHTS = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)


def vgg19(weights):
    """Keras' VGG19 without its classifier, frozen: `weights` "imagenet", a weights file, or "random" / None."""
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
    return vgg


def _vgg_input(x):
    """Images in [-1, 1] as VGG19's (Caffe) input."""
    return tf.keras.applications.vgg19.preprocess_input((tf.cast(x, tf.float32) + 1.0) * 127.5)


class VGGFeatureLoss(tf.keras.layers.Layer):
    """Weighted L1 distance between VGG19 activations of two images in [-1, 1]; returns one value per example.

    `weights`: "imagenet" (Keras downloads them once, needs the network), a path to a VGG19 weights file (.h5, with or
    without the classifier top), or "random" / None for random weights (tests only: random features are no
    perceptual measure).
    """

    def __init__(self, weights=None, name=None):
        super().__init__(name=name, dtype="float32", trainable=False)
        vgg = vgg19(weights)
        self.features = tf.keras.Model(vgg.input, [vgg.get_layer(n).output for n in LAYERS])

    def call(self, real, fake):
        real_features = self.features(_vgg_input(real))
        fake_features = self.features(_vgg_input(fake))
        loss = 0.0
        for w, a, b in zip(LAYER_WEIGHTS, real_features, fake_features):
            loss += w * tf.reduce_mean(tf.abs(tf.stop_gradient(a) - b), axis=[1, 2, 3])
        return loss


class VGGContentLoss(tf.keras.layers.Layer):
    """SRGAN's VGG loss: mean squared difference of VGG19's phi_5,4 activations (block5_conv4, after its ReLU) of two
    images in [-1, 1], one value per example. Ledig et al. rescale it by 1/12.75; Savioli's weight 6e-3 ~ 1/12.75^2
    is applied by the model, not here."""

    def __init__(self, weights=None, layer: str = "block5_conv4", name=None):
        super().__init__(name=name, dtype="float32", trainable=False)
        vgg = vgg19(weights)
        self.features = tf.keras.Model(vgg.input, vgg.get_layer(layer).output)

    def call(self, real, fake):
        difference = tf.stop_gradient(self.features(_vgg_input(real))) - self.features(_vgg_input(fake))
        return tf.reduce_mean(tf.square(difference), axis=[1, 2, 3])
