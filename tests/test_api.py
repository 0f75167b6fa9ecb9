"""The Python API takes what its documentation lists (paths, bytes, Pillow images, NumPy arrays and tf.Tensors) and
refuses everything else with one of tfgc's own errors: hypothesis feeds it wrong types, shapes, dtypes, ranges and
files, and any other exception fails the test."""

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

import tfgc
from tfgc.errors import TfgcError

SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])

DTYPES = [np.uint8, np.uint16, np.int8, np.int32, np.int64, np.float16, np.float32, np.float64, np.bool_,
          np.complex64]
arrays = st.sampled_from(DTYPES).flatmap(
    lambda dtype: hnp.arrays(dtype, hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=20)))
# arrays that are images in the documented sense, to make sure valid values are reached and round trip
images = st.one_of(
    hnp.arrays(np.uint8, st.tuples(st.integers(1, 20), st.integers(1, 20), st.sampled_from([1, 3, 4]))),
    hnp.arrays(np.float32, st.tuples(st.integers(1, 20), st.integers(1, 20), st.just(3)),
               elements=st.floats(0, 1, width=32)),
    hnp.arrays(np.int64, st.tuples(st.integers(1, 20), st.integers(1, 20)), elements=st.integers(0, 255)))
others = st.one_of(st.none(), st.integers(), st.floats(), st.text(max_size=30), st.binary(max_size=200),
                   st.lists(st.integers(0, 255), max_size=5), st.dictionaries(st.text(max_size=3), st.integers()))


def _as_given(value, as_tensor: bool):
    if as_tensor and isinstance(value, np.ndarray) and value.dtype != np.float16:
        return tf.constant(value)
    return value


def _compresses_or_refuses(image, model):
    try:
        data = tfgc.compress(image, model)
    except TfgcError as e:
        assert str(e) and "\n" not in str(e)
        return None
    assert data[:4] == b"TFGC"
    return data


@SETTINGS
@given(value=st.one_of(arrays, images, others), as_tensor=st.booleans())
@pytest.mark.slow
def test_compress_takes_images_and_refuses_everything_else(tiny_model, value, as_tensor):
    image = _as_given(value, as_tensor)
    data = _compresses_or_refuses(image, tiny_model)
    if data is not None:
        shape = np.shape(value)
        assert tfgc.decompress(data, tiny_model).shape == (shape[0], shape[1], 3)


def test_every_documented_image_type_compresses_to_the_same_file(tiny_model, photos, tmp_path):
    pixels = photos["coffee"][:40, :56]
    path = tmp_path / "p.png"
    Image.fromarray(pixels).save(path)
    expected = tfgc.compress(pixels, tiny_model)
    for image in (str(path), path, path.read_bytes(), open(path, "rb"), Image.open(path), tf.constant(pixels),
                  pixels.astype(np.int64), pixels.astype(np.float32) / 255.0, tf.image.convert_image_dtype(pixels,
                                                                                                      tf.float32)):
        assert tfgc.compress(image, tiny_model) == expected, type(image)


def test_decompress_takes_bytes_tensors_and_paths(tiny_model, photos, tmp_path):
    data = tfgc.compress(photos["coffee"][:40, :56], tiny_model)
    path = tmp_path / "p.tfgc"
    path.write_bytes(data)
    expected = tfgc.decompress(data, tiny_model)
    for given_data in (bytearray(data), memoryview(data), tf.constant(data), str(path), path):
        np.testing.assert_array_equal(tfgc.decompress(given_data, tiny_model), expected)


@pytest.mark.parametrize("path", ["\0", "photo\0.png"])
def test_a_path_holding_a_null_byte_is_one_line(tiny_model, path):
    for call in (lambda: tfgc.decompress(path, tiny_model), lambda: tfgc.compress(path, tiny_model)):
        with pytest.raises(TfgcError, match="null byte") as refused:
            call()
        assert "\n" not in str(refused.value)


@SETTINGS
@given(data=st.one_of(st.binary(max_size=300), others, arrays), alpha=st.one_of(
    st.none(), st.floats(), st.text(max_size=3), st.integers()), flip=st.integers(0, 10_000))
def test_decompress_decodes_or_refuses(tiny_model, valid_file, data, alpha, flip):
    if isinstance(data, bytes) and data == b"":  # a valid file with one bit flipped instead
        damaged = bytearray(valid_file)
        damaged[flip % len(damaged)] ^= 1 << (flip % 8)
        data = bytes(damaged)
    try:
        image = tfgc.decompress(data, tiny_model, alpha=alpha)
    except TfgcError as e:
        assert str(e) and "\n" not in str(e)
        return
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3


@SETTINGS
@given(model=st.one_of(st.integers(), st.text(max_size=40), st.dictionaries(st.text(max_size=3), st.integers()),
                       st.lists(st.integers(), max_size=3), st.binary(max_size=10).map(lambda b: b or b"x")))
def test_a_wrong_model_is_refused(model, photos):
    with pytest.raises(TfgcError):
        tfgc.compress(photos["coffee"][:16, :16], model)


@pytest.fixture(scope="module")
def valid_file(tiny_model, photos):
    return tfgc.compress(photos["coffee"][:24, :40], tiny_model)
