import math

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_compression as tfc

from tfgc.codec import entropy
from tfgc.errors import FormatError
from tfgc.nn.entropy import CategoricalPrior

from tfc_reference import tfc_decode, tfc_encode


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


def _quantized_table(pmf):
    cdf = tfc.pmf_to_quantized_cdf(tf.constant(pmf, tf.float32), precision=16).numpy()
    return np.concatenate([np.full((len(pmf), 1), 16, np.int32), cdf.astype(np.int32)], axis=1)


def test_the_python_range_coder_writes_and_reads_tensorflow_compressions_bytes(rng):
    """The port against tfc's kernels: the same bytes from the same symbols, and tfc's bytes decode to the symbols.
    Skewed priors drive the coder through its carry state (an interval straddling 2**32), long runs through many
    renormalizations; the uniform table and the 256-level one are the extremes files use."""
    cases = 0
    for trial in range(120):
        channels, levels = int(rng.integers(1, 9)), int(rng.choice([2, 3, 5, 7, 16, 256]))
        concentration = float(rng.choice([0.02, 0.3, 1.0, 20.0]))
        pmf = rng.dirichlet([concentration] * levels, size=channels) + 1e-4
        pmf /= pmf.sum(axis=1, keepdims=True)
        table = entropy.uniform_table(channels, levels) if trial % 4 == 0 else _quantized_table(pmf)
        count = int(rng.choice([0, 1, 7, 300, 3000]))
        symbols = np.stack([rng.choice(levels, size=count, p=pmf[c]) for c in range(channels)], -1).astype(np.int32)
        expected = tfc_encode(symbols, table)
        assert entropy.range_encode(symbols, table) == expected, (trial, channels, levels, count)
        np.testing.assert_array_equal(entropy.range_decode(expected, table, symbols.shape), symbols)
        np.testing.assert_array_equal(tfc_decode(expected, table, symbols.shape), symbols)
        cases += count > 0
    assert cases > 80


def test_the_python_range_decoder_refuses_what_tfc_would_misread(rng):
    table = entropy.uniform_table(4, 5)
    symbols = rng.integers(0, 5, size=(40, 4)).astype(np.int32)
    payload = entropy.range_encode(symbols, table)
    with pytest.raises(FormatError, match="does not decode"):
        entropy.range_decode(payload + b"\x01", table, symbols.shape)  # a byte the decoder never reads
    with pytest.raises(ValueError, match="channels"):
        entropy.range_encode(symbols[:, :3], table)
    broken = table.copy()
    broken[1, 3] = 0  # not monotonic
    with pytest.raises(FormatError, match="not a CDF"):
        entropy.range_decode(payload, broken, symbols.shape)
