"""A model family's host-side codec, and the registry that finds it by the family's name.

Each family (gc, sc, sr) has one module under tfgc.codec that defines a FamilyCodec: how it encodes an image with a
model, checks that a file and a model belong together, decodes, and reports a file's rate. tfgc.codec.api, the
command line, export and the rate search ask `codec_for(family)` instead of comparing names, so a new family is its
networks (tfgc.models), its codec module and one line in CODECS.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Tuple, Union

import numpy as np

from tfgc.codec import bitstream
from tfgc.errors import ModelError

# family -> the module whose CODEC serves it
CODECS = {
    "gc": "tfgc.codec.gc",
    "sc": "tfgc.codec.sc",
    "sr": "tfgc.codec.sr",
}


def codec_for(family: str) -> "FamilyCodec":
    try:
        module = CODECS[family]
    except KeyError:
        raise ModelError(f"unknown model family {family!r}; known: {', '.join(CODECS)}") from None
    return importlib.import_module(module).CODEC


def all_codecs():
    return [codec_for(family) for family in CODECS]


@dataclass(frozen=True)
class EncodeResult:
    data: bytes
    height: int
    width: int
    uniform_table: bool  # coded with the uniform table (the learned prior would have cost more)
    symbols: int  # how many latent symbols the file holds
    bound_bits: float  # symbols * log2(L): the paper's rate bound
    estimated_bits: float  # what the model's entropy model predicts for these symbols
    # sc files: bytes of the label map, the mask, the latents, and the rest (header, section headers, checksum);
    # sr files: bytes of the base image and the rest
    parts: Optional[dict] = None
    preserved: Optional[float] = None  # sc files: fraction of latent cells stored
    sr: Optional[dict] = None  # sr files: base codec, scale and quality
    family: str = "gc"

    @property
    def pixels(self) -> int:
        return self.height * self.width

    @property
    def payload_bits(self) -> int:
        return 8 * (len(self.data) - bitstream.OVERHEAD)

    @property
    def file_bits(self) -> int:
        return 8 * len(self.data)

    @property
    def bpp(self) -> float:
        """Bits per pixel of the whole file, header and checksum included."""
        return self.file_bits / self.pixels

    def fits(self, target_bpp: float) -> bool:
        """Whether the whole file is at most `target_bpp` bits per pixel."""
        return self.file_bits <= target_bpp * self.pixels

    def report(self) -> dict:
        return codec_for(self.family).report(self)

    def summary(self) -> str:
        return codec_for(self.family).summary(self)


ModelLike = Union[str, Path, object]
MODEL_TYPES = "a model folder, an installed model's name, or a model from tfgc.load_model"


def model_fingerprint(model) -> bytes:
    manifest = getattr(model, "manifest", None)
    return bytes.fromhex(manifest["fingerprint"]) if manifest else model.fingerprint()


@dataclass(frozen=True)
class Described:
    """What the checks of encode and decode need of a model, read from its folder without loading it (and without
    TensorFlow), so a wrong argument fails in a fraction of a second."""
    source: ModelLike  # the folder, or the loaded model as given
    family: str
    config: object
    fingerprint: bytes

    def load(self):
        """The model itself (loaded from its folder when it was given as one)."""
        if isinstance(self.source, (str, os.PathLike)):
            from tfgc.models.store import load_model

            return load_model(self.source)
        return self.source


def describe(model: ModelLike, default) -> Described:
    """`model` (a folder, a name, a Keras save, or a loaded model; None: `default()`) described without loading it
    where it is a folder."""
    if model is None:
        model = default()
        if model is None:
            raise ModelError("no model given and none is installed (saved_models/ or $TFGC_MODEL_PATH)")
    if isinstance(model, (str, os.PathLike)):
        from tfgc.models.store import describe_model, is_keras_save, load_keras_save

        if is_keras_save(model):
            return describe(load_keras_save(model), default)

        directory, manifest, config = describe_model(model)
        return Described(directory, manifest["family"], config, bytes.fromhex(manifest["fingerprint"]))
    if not all(hasattr(model, name) for name in ("family", "config", "fingerprint", "synthesis", "geometry")):
        raise ModelError(f"the model must be {MODEL_TYPES}; not {type(model).__name__}")
    return Described(model, model.family, model.config, model_fingerprint(model))


class FamilyCodec:
    """The host side of one family's files. Subclasses set `family` and implement encode, decode, report and
    summary; the rest has defaults that fit a family without options."""

    family: str = ""
    # encode's keyword options (besides the image and the model) that this family takes
    options: Tuple[str, ...] = ()
    # classic decoders that read this family's files without a model (by name), and how a missing model's error
    # points to them
    classic_decoders: Dict[str, object] = {}
    classic_hint = ""
    # why this family has no codec SavedModel (its host-side coding has no TensorFlow graph), or None
    no_codec_savedmodel: Optional[str] = None
    # whether a file can be written at a target rate (tfgc.codec.rate)
    chooses_rate = False

    # ---- encoding ------------------------------------------------------------------------------------------------
    def check_options(self, options: dict) -> None:
        """A clear error for options this family does not take, or lacks; before the image is read."""
        given = [name for name, value in options.items() if value is not None]
        if any(name not in self.options for name in given):
            raise ModelError(f"a {self.family} model takes no label map or preservation mask; those are for sc "
                             "models")

    def encode(self, pixels: np.ndarray, described: Described, **options) -> EncodeResult:
        raise NotImplementedError

    def at_rate(self, pixels: np.ndarray, target_bpp: float, model) -> Tuple[EncodeResult, bool]:
        """(file, whether it fits target_bpp): the family's best file at that rate."""
        raise ModelError(f"--target-bpp chooses among gc and sr models, not {self.family} models")

    # ---- decoding ------------------------------------------------------------------------------------------------
    def check_file(self, header: bitstream.Header, payload: bytes, described: Described) -> None:
        """A ModelMismatchError when the file was not written for this model."""
        from tfgc.errors import ModelMismatchError

        if header.fingerprint != described.fingerprint:
            raise ModelMismatchError(f"file was written by model {header.fingerprint.hex()}, not by this model "
                                     f"({described.fingerprint.hex()})")

    def decode(self, header: bitstream.Header, payload: bytes, model, alpha: Optional[float]) -> np.ndarray:
        raise NotImplementedError

    def decode_classic(self, header: bitstream.Header, payload: bytes, decoder: str) -> np.ndarray:
        raise NotImplementedError

    # ---- describing ----------------------------------------------------------------------------------------------
    def report(self, result: EncodeResult) -> dict:
        raise NotImplementedError

    def summary(self, result: EncodeResult) -> str:
        raise NotImplementedError

    def info(self, header: bitstream.Header, payload: bytes) -> dict:
        """What `tfgc info` adds for a file of this family (its fields may replace the common ones)."""
        return {}

    def rate_label(self, manifest: dict) -> str:
        """How `tfgc models` describes an installed model's rate."""
        return (f"C={manifest.get('latent_channels')} L={manifest.get('levels')}  "
                f"bound {manifest.get('bound_bpp', 0):.4f} bpp")

    def graph_functions(self, model) -> dict:
        """The whole codec as TensorFlow functions, for the codec SavedModel (compress, compress_pixels,
        decompress); only families whose no_codec_savedmodel is None have them."""
        raise NotImplementedError

    # ---- training on what files hold ----------------------------------------------------------------------------
    def training_paths(self, config, data, val_data) -> Tuple[list, list]:
        """(training, validation) examples of the --data and --val-data folders (None: the bundled photographs),
        checked."""
        from tfgc import data as datasets

        paths = datasets.list_images(data) if data else datasets.bundled_images()
        return paths, datasets.list_images(val_data) if val_data else paths

    def training_data(self, config, paths, val_paths, base_cache=None):
        """(training dataset, validation dataset) of what the family's decoder sees in files."""
        from tfgc import data as datasets

        t = config.train
        return (datasets.training_dataset(paths, t.crop_size, t.batch_size, seed=t.seed),
                datasets.validation_dataset(val_paths, t.crop_size, batch_size=len(val_paths)))

    def rate_line(self, config) -> str:
        """How a training run names the rate its model codes at."""
        return f"bound {config.model.bound_bpp:.4f} bpp"

    def parity_inputs(self, model, image: np.ndarray):
        """(the decoder's first input, its conditions, the analysis' extra inputs or None when the family has no
        learned analysis) for an export's check on `image`."""
        raise NotImplementedError
