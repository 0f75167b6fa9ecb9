import math

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_compression as tfc

from tfgc.codec import entropy
from tfgc.errors import FormatError
from tfgc.nn.entropy import CategoricalPrior


@pytest.mark.parametrize("levels", [2, 3, 5, 7, 16, 256])
def test_uniform_table_is_what_tfc_makes_of_a_uniform_pmf(levels):
    table = entropy.uniform_table(3, levels)
    reference = tfc.pmf_to_quantized_cdf(tf.fill([3, levels], 1.0 / levels), precision=16).numpy()
    np.testing.assert_array_equal(table[:, 1:], reference)
    assert (table[:, 0] == 16).all()


@pytest.mark.parametrize("levels", [2, 5, 7, 256])
@pytest.mark.parametrize("count", [1, 2, 11, 1000, 30000])
def test_uniform_coding_stays_within_two_bytes_of_the_bound(levels, count, rng):
    table = entropy.uniform_table(4, levels)
    # Random symbols, and the two extremes (the last level has the smallest probability in the uniform table).
    for symbols in (rng.integers(0, levels, size=(count, 1, 4)), np.full((count, 1, 4), levels - 1),
                    np.zeros((count, 1, 4))):
        symbols = symbols.astype(np.int32)
        payload = entropy.range_encode(symbols, table)
        np.testing.assert_array_equal(entropy.range_decode(payload, table, symbols.shape), symbols)
        bound_bits = symbols.size * math.log2(levels)
        assert entropy.ideal_bits(symbols, table) <= bound_bits + symbols.size * 2e-4
        assert len(payload) <= math.ceil(entropy.ideal_bits(symbols, table) / 8) + 2


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
    assert entropy.ideal_bits(symbols, prior.coding_table.numpy()) == pytest.approx(estimate, rel=1e-3)


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
