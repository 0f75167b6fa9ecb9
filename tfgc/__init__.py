"""tfgc: GAN-based extreme learned image compression for TensorFlow/Keras.

The package is layered: building blocks in `tfgc.nn`, one file per model family in `tfgc.models`, the file format
and host-side entropy coding in `tfgc.codec`, then `tfgc.train` and the `python -m tfgc` command line on top.
"""

__version__ = "0.1.0"

from tfgc.errors import TfgcError  # noqa: E402


def __getattr__(name):
    # TensorFlow takes seconds to import: load the heavy parts only when they are used.
    if name in ("compress", "decompress", "encode", "decode"):
        from tfgc.codec import api

        return getattr(api, name)
    if name in ("load_model", "save_model"):
        from tfgc.models import store

        return getattr(store, name)
    if name == "build_model":
        from tfgc.models.registry import build_model

        return build_model
    raise AttributeError(f"module 'tfgc' has no attribute {name!r}")


__all__ = ["TfgcError", "compress", "decompress", "encode", "decode", "load_model", "save_model", "build_model"]
