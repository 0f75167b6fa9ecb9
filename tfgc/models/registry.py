"""Named model families: a config's `model.family` picks the class."""

from __future__ import annotations

import importlib

from tfgc.config import Config
from tfgc.errors import ConfigError

FAMILIES = {
    "gc": "tfgc.models.gc:GCModel",
    "sc": "tfgc.models.sc:SCModel",
    "sr": "tfgc.models.sr:SRModel",
}


def model_class(family: str):
    try:
        module, name = FAMILIES[family].split(":")
    except KeyError:
        raise ConfigError(f"unknown model family {family!r}; known: {', '.join(FAMILIES)}") from None
    return getattr(importlib.import_module(module), name)


def build_model(config: Config, for_training: bool = True):
    """A fresh model. `for_training=False` leaves out what only training needs (discriminator, VGG)."""
    return model_class(config.model.family)(config, for_training=for_training)
