"""tensorflow-compression's own range coding kernels, called the way tfgc's Python port codes: the reference the
port is held to, defined once in scripts/check_range_coder.py (which holds it to the port on real images)."""

import importlib.util
from pathlib import Path

import numpy as np

_spec = importlib.util.spec_from_file_location(
    "check_range_coder", Path(__file__).resolve().parents[1] / "scripts" / "check_range_coder.py")
_script = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_script)

tfc_encode = _script.tfc_encode


def tfc_decode(payload: bytes, table: np.ndarray, shape) -> np.ndarray:
    symbols, finished = _script.tfc_decode(payload, table, shape)
    assert finished, "tfc's range decoder's end-state check failed"
    return symbols
