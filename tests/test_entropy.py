import math

import numpy as np
import pytest

from tfgc.codec import entropy
from tfgc.errors import FormatError
from tfgc.nn.entropy import CategoricalPrior


@pytest.mark.parametrize("levels", [2, 3, 5, 7, 16, 256])
@pytest.mark.parametrize("count", [1, 2, 11, 1000, 4097])
def test_fixed_length_round_trip_and_size(levels, count, rng):
    symbols = rng.integers(0, levels, size=count).astype(np.int32)
    payload = entropy.fixed_encode(symbols, levels)
    assert len(payload) == math.ceil(count * math.log2(levels) / 8 - 1e-12)
    np.testing.assert_array_equal(entropy.fixed_decode(payload, levels, (count,)), symbols)


def test_fixed_length_extremes():
    for symbols in (np.zeros(500, np.int32), np.full(500, 4, np.int32)):
        np.testing.assert_array_equal(entropy.fixed_decode(entropy.fixed_encode(symbols, 5), 5, (500,)), symbols)
    with pytest.raises(FormatError, match="out of range"):
        entropy.fixed_decode(b"\xff", 5, (3,))  # 255 >= 5**3
    with pytest.raises(FormatError, match="expected"):
        entropy.fixed_decode(b"\x00\x00", 5, (3,))


def test_range_coding_round_trip_matches_the_model_estimate(rng):
    channels, levels = 4, 5
    prior = CategoricalPrior(channels, levels)
    prior.set_logits(rng.normal(size=(channels, levels)).astype(np.float32) * 2)
    prior.update_coding_table()
    pmf = prior.pmf().numpy()
    symbols = np.stack([rng.choice(levels, size=(64, 64), p=pmf[c] / pmf[c].sum()) for c in range(channels)],
                       axis=-1).astype(np.int32)
    payload = entropy.range_encode(symbols, prior.coding_table.numpy())
    np.testing.assert_array_equal(entropy.range_decode(payload, prior.coding_table.numpy(), symbols.shape), symbols)
    onehot = np.eye(levels, dtype=np.float32)[symbols][None]
    estimate = float(prior.bits(onehot)[0])
    assert abs(8 * len(payload) - estimate) <= 0.01 * estimate


def test_range_decoding_garbage_never_crashes(rng):
    prior = CategoricalPrior(2, 5)
    table = prior.coding_table.numpy()
    for _ in range(50):
        garbage = rng.integers(0, 256, size=int(rng.integers(0, 40))).astype(np.uint8).tobytes()
        try:
            symbols = entropy.range_decode(garbage, table, (3, 3, 2))
        except FormatError:
            continue
        assert symbols.shape == (3, 3, 2) and symbols.min() >= 0 and symbols.max() < 5
