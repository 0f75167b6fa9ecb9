"""The label-map context coder: bit-exact round trips, smaller than the image coders on label maps, and every
damaged or forged stream refused with a FormatError (or decoded to a map of the declared size)."""

import io

import numpy as np
import pytest
from PIL import Image

from tfgc.codec import context_coder
from tfgc.data.scenes import procedural_scene
from tfgc.errors import FormatError


def _scene_labels(height=96, width=160, seed=0):
    return procedural_scene(height, width, np.random.default_rng(seed))[1]


@pytest.mark.parametrize("shape", [(1, 1), (1, 37), (23, 1), (5, 7), (40, 33)])
@pytest.mark.parametrize("alphabet", [1, 2, 7, 256])
def test_random_maps_round_trip_bit_exact(shape, alphabet):
    classes = np.random.default_rng(sum(shape) + alphabet).integers(0, alphabet, shape).astype(np.uint8)
    data = context_coder.encode(classes)
    decoded = context_coder.decode(data, *shape)
    assert decoded.dtype == np.uint8 and decoded.shape == shape
    np.testing.assert_array_equal(decoded, classes)


def test_a_label_map_codes_smaller_than_png_and_webp_and_round_trips():
    labels = _scene_labels()
    assert labels.dtype == np.uint8 and len(np.unique(labels)) > 3
    data = context_coder.encode(labels)
    np.testing.assert_array_equal(context_coder.decode(data, *labels.shape), labels)
    for image_format, options in (("PNG", {"optimize": True}), ("WEBP", {"lossless": True, "method": 6})):
        buffer = io.BytesIO()
        Image.fromarray(labels, "L").save(buffer, format=image_format, **options)
        assert len(data) < len(buffer.getvalue()), image_format


def test_the_model_adapts_one_region_costs_almost_nothing():
    flat = np.full((256, 256), 3, np.uint8)
    assert len(context_coder.encode(flat)) < 200  # 65,536 pixels; a few hundredths of a bit each


def test_damaged_streams_are_refused_or_decode_to_the_declared_size():
    labels = _scene_labels(48, 64)
    data = context_coder.encode(labels)
    for cut in (0, 1, 5, len(data) // 2, len(data) - 1):
        with pytest.raises(FormatError):
            context_coder.decode(data[:cut], 48, 64)
    with pytest.raises(FormatError, match="does not end where"):
        context_coder.decode(data + b"\0", 48, 64)
    for position in range(len(data)):
        for flip in (0x01, 0x80):
            damaged = bytearray(data)
            damaged[position] ^= flip
            try:
                decoded = context_coder.decode(bytes(damaged), 48, 64, classes=int(labels.max()) + 1)
            except FormatError:
                continue
            assert decoded.shape == (48, 64) and decoded.max() <= labels.max()


def test_an_alphabet_beyond_the_models_classes_or_a_map_beyond_the_limit_is_refused():
    data = context_coder.encode(np.array([[0, 5]], np.uint8))
    with pytest.raises(FormatError, match="6 classes; the model has 5"):
        context_coder.decode(data, 1, 2, classes=5)
    with pytest.raises(FormatError, match="at most"):  # refused from the declared size, before any decoding
        context_coder.decode(data, 4097, 2048)
    with pytest.raises(ValueError):
        context_coder.encode(np.zeros((4097, 2048), np.uint8))
