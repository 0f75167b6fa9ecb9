"""tfgc models are Keras models all the way: model.save() and tf.keras.models.load_model() round-trip every family
in both of Keras' formats (the family's own class comes back, with the same weights), get_config/from_config rebuild
the architecture, summary() works without a call, and model(x) takes images in one documented convention and refuses
floats outside it."""

import numpy as np
import pytest
import tensorflow as tf

import tfgc
from tfgc.config import preset
from tfgc.errors import ImageError
from tfgc.models.registry import build_model

FAMILIES = {
    "gc GDN two decoders": preset("gc-tiny").replace(normalization="gdn", fidelity_control=True),
    "sc": preset("sc-tiny"),
    "sr edsr": preset("sr-tiny"),
    "rlsrgan": preset("rlsrgan-tiny"),
}


def _inputs(model, rng):
    if model.family == "sc":
        return (rng.integers(0, 256, (1, 40, 48, 3), dtype=np.uint8),
                rng.integers(0, model.config.model.classes, (1, 40, 48), dtype=np.uint8))
    if model.family == "sr":
        return rng.integers(0, 256, (1, 12, 10, 3), dtype=np.uint8)
    return rng.integers(0, 256, (1, 40, 48, 3), dtype=np.uint8)


def _round_trip(config, path):
    tf.keras.utils.set_random_seed(3)
    model = build_model(config, for_training=False)
    rng = np.random.default_rng(1)
    for weight in model.weights:  # away from the initializers' values, which a model that lost its weights has too
        weight.assign(weight.numpy() + rng.uniform(0, 0.01, weight.shape).astype(weight.dtype.as_numpy_dtype))
    inputs = _inputs(model, np.random.default_rng(0))
    model.save(str(path))  # never called: Keras traces call() with the model's own input spec
    expected = model(inputs).numpy()
    loaded = tf.keras.models.load_model(str(path))
    assert type(loaded) is type(model)
    assert loaded.config == model.config and loaded.fingerprint() == model.fingerprint()
    assert len(loaded.weights) == len(model.weights)
    for original, restored in zip(model.weights, loaded.weights):
        np.testing.assert_array_equal(original.numpy(), restored.numpy(), err_msg=original.name)
    np.testing.assert_array_equal(loaded(inputs).numpy(), expected)
    lines = []
    loaded.summary(print_fn=lines.append)
    assert any("Total params" in line for line in lines)
    return model, loaded


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_keras_format_round_trips_every_family(family, tmp_path):
    _round_trip(FAMILIES[family], tmp_path / "model.keras")


@pytest.mark.slow  # Keras traces every layer's call for a SavedModel: 5-30 s a family
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_savedmodel_format_round_trips_every_family(family, tmp_path):
    _round_trip(FAMILIES[family], tmp_path / "model")


def test_a_keras_save_compresses_like_its_model(trained, photos, tmp_path):
    model, _ = trained
    model.save(str(tmp_path / "tiny.keras"))
    image = photos["coffee"][:48, :64]
    data = tfgc.compress(image, model)
    assert tfgc.compress(image, tmp_path / "tiny.keras") == data
    loaded = tfgc.load_model(tmp_path / "tiny.keras")
    np.testing.assert_array_equal(tfgc.decompress(data, loaded), tfgc.decompress(data, model))


def test_config_rebuilds_the_architecture_and_summary_needs_no_call():
    model = build_model(FAMILIES["gc GDN two decoders"], for_training=False)
    rebuilt = type(model).from_config(model.get_config())
    assert rebuilt.config == model.config and rebuilt.for_training is False
    assert [w.shape for w in rebuilt.weights] == [w.shape for w in model.weights]
    lines = []
    rebuilt.summary(print_fn=lines.append)
    assert any("encoder" in line for line in lines) and any("generator" in line for line in lines)


def test_call_convention(trained, photos):
    """uint8 0..255 or floats in [0, 1] in, floats in [0, 1] out, at the input's size; the two inputs agree; floats
    outside [0, 1] are refused, eagerly with tfgc's error and in a graph with a failed assertion."""
    model, _ = trained
    image = photos["coffee"][None, :45, :61]
    out = model(image).numpy()
    assert out.shape == (1, 45, 61, 3) and out.dtype == np.float32 and 0.0 <= out.min() and out.max() <= 1.0
    np.testing.assert_allclose(model(image.astype(np.float32) / 255.0).numpy(), out, atol=1e-5)
    # the reconstruction is the codec's, up to 8-bit rounding
    reference = model.reconstruct(image).numpy()[0].astype(np.float32)
    assert np.abs(out[0] * 255.0 - reference).max() <= 1.0
    for wrong in (image.astype(np.float32), image.astype(np.float32) / 255.0 - 0.5, np.full_like(out, np.nan)):
        with pytest.raises(ImageError, match=r"\[0, 1\]"):
            model(wrong)
    with pytest.raises(ImageError, match="uint8 0..255 or floats"):
        model(image.astype(np.int32))
    graph_call = tf.function(lambda x: model(x))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"\[0, 1\]"):
        graph_call(tf.constant(image, tf.float32))
