"""tensorflow-compression's own range coding kernels, called the way tfgc's Python port codes (one encoder, row
i % C of the table for the i-th symbol): the reference the port is held to."""

import numpy as np
import tensorflow as tf
import tensorflow_compression as tfc


def tfc_encode(symbols: np.ndarray, table: np.ndarray) -> bytes:
    symbols = np.asarray(symbols, np.int32)
    index = np.broadcast_to(np.arange(table.shape[0], dtype=np.int32), symbols.shape)
    handle = tfc.entropy_encode_index(tfc.create_range_encoder([], table), index, symbols)
    return tfc.entropy_encode_finalize(handle).numpy()


def tfc_decode(payload: bytes, table: np.ndarray, shape) -> np.ndarray:
    index = np.broadcast_to(np.arange(table.shape[0], dtype=np.int32), tuple(shape))
    handle, symbols = tfc.entropy_decode_index(tfc.create_range_decoder(payload, table), index, shape, tf.int32)
    assert bool(tfc.entropy_decode_finalize(handle)), "tfc's range decoder's end-state check failed"
    return symbols.numpy()
