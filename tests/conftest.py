"""Shared fixtures: tiny models and small images, all on the CPU and without network.

The CPU is split into two logical devices before TensorFlow starts, so MirroredStrategy can be tested with two
replicas on any machine.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

_cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    _cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])

from tfgc.codec.io import load_image  # noqa: E402
from tfgc.config import preset  # noqa: E402
from tfgc.data import bundled_images  # noqa: E402
from tfgc.models.registry import build_model  # noqa: E402
from tfgc.models.store import save_model  # noqa: E402


@pytest.fixture(scope="session")
def photos():
    """The bundled photographs as RGB uint8 arrays, by file stem."""
    return {os.path.splitext(os.path.basename(p))[0]: load_image(p) for p in bundled_images()}


@pytest.fixture(scope="session")
def tiny_model():
    """An untrained gc-tiny model (random weights, uniform prior) for inference."""
    tf.keras.utils.set_random_seed(1)
    return build_model(preset("gc-tiny"), for_training=False)


def train_tiny(steps, crop=64, batch=4, seed=0, **model_overrides):
    """gc-tiny trained with MSE only (no discriminator) on crops of the bundled photographs."""
    from tfgc.data import training_dataset
    from tfgc.train import compile_model

    config = preset("gc-tiny").replace(adversarial_weight=0.0, feature_matching_weight=0.0, crop_size=crop,
                                       batch_size=batch, learning_rate=3e-3, **model_overrides)
    tf.keras.utils.set_random_seed(seed)
    model = build_model(config)
    compile_model(model, config)
    dataset = training_dataset(bundled_images(), crop, batch, seed=seed)
    history = model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0)
    return model, history


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """(model, model directory) of gc-tiny trained for a short while, so its prior fits real symbols."""
    model, _ = train_tiny(steps=60)
    directory = save_model(model, tmp_path_factory.mktemp("models") / "tiny")
    return model, directory


def _one_training_step(config, batch, strategy, initial=None):
    """One `fit` step of a model of `config` on `batch` under `strategy` (from `initial` weights when given), with SGD
    so that the update is linear in the gradient: returns (starting weights, weights after, the fit's history)."""
    with strategy.scope():
        tf.keras.utils.set_random_seed(7)
        model = build_model(config)
        model.compile(tf.keras.optimizers.SGD(0.05), tf.keras.optimizers.SGD(0.05))
    if initial is not None:
        model.set_weights(initial)
    start = [w.copy() for w in model.get_weights()]
    history = model.fit(tf.data.Dataset.from_tensors(batch), epochs=1, verbose=0)
    return start, model.get_weights(), history.history


@pytest.fixture
def one_training_step():
    """`_one_training_step`, for tests comparing a distributed step with a single-device one."""
    return _one_training_step


@pytest.fixture
def photo_folder(photos, tmp_path):
    """make(name, names, height, width): a folder tmp_path/name of PNGs, the top-left height x width of each named
    bundled photograph (for commands that read folders of images)."""
    from PIL import Image

    def make(name, names=("chelsea", "coffee"), height=64, width=96):
        folder = tmp_path / name
        folder.mkdir()
        for photo in names:
            Image.fromarray(photos[photo][:height, :width]).save(folder / f"{photo}.png")
        return folder

    return make


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
