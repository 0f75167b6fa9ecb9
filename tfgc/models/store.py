"""Model directories: what `python -m tfgc.train` exports and `compress`/`decompress` load.

    DIR/config.json     the full Config the model was built and trained with
    DIR/manifest.json   format version, family, fingerprint, rate bound, training step, tfgc version
    DIR/weights.*       a TensorFlow checkpoint of the inference networks and the entropy coding table; a serving
                        export has none: its SavedModel's variables/ hold them (one copy, not two)

A directory is written beside its destination and renamed into place, and loading checks the format version, the
config and the fingerprint before the model is used.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Callable, Iterator, Optional, Tuple

from tfgc.config import Config
from tfgc.errors import ConfigError, ModelError
from tfgc.utils import first_line, write_directory

MODEL_FORMAT = 1
MANIFEST = "manifest.json"
CONFIG = "config.json"
WEIGHTS = "weights"
# A SavedModel export keeps the weights as plain variables, grouped by part name under this attribute of its module.
SAVED_MODEL_WEIGHTS = "saved_model"
SAVED_MODEL_ATTRIBUTE = "inference_variables"
MODEL_PATH_ENV = "TFGC_MODEL_PATH"


def save_model(model, directory, *, force: bool = False, extra: Optional[dict] = None) -> Path:
    """Export `model`'s inference networks to `directory` (replaced only with `force`)."""
    model.update_coding_tables()
    return write_directory(directory, lambda staging: write_model_files(model, staging, extra), force=force)


def write_model_files(model, directory: Path, extra: Optional[dict] = None, *,
                      in_saved_model: bool = False) -> None:
    """config.json, manifest.json and the weights, into an existing `directory` (the model's coding table as it is).
    With `in_saved_model` the weights are not written: the SavedModel in `directory` holds them
    (saved_model_weights)."""
    import tensorflow as tf

    import tfgc

    model.config.save(directory / CONFIG)
    if not in_saved_model:
        tf.train.Checkpoint(**model.export_parts()).write(str(directory / WEIGHTS))
    manifest = dict(extra or {})
    manifest.pop("weights", None)
    if in_saved_model:
        manifest["weights"] = SAVED_MODEL_WEIGHTS
    manifest.update({
        "format": MODEL_FORMAT,
        "family": model.family,
        "fingerprint": model.fingerprint().hex(),
        "preset": model.config.preset,
        "tfgc_version": tfgc.__version__,
    })
    manifest.update(model.manifest_fields())
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def sr_settings(manifest: dict) -> Tuple[str, int, int]:
    """(base codec, scale, default quality) of an sr model's manifest (models from before other bases name a JPEG
    quality only)."""
    return (manifest.get("base_codec", "jpeg"), manifest["scale"],
            manifest.get("base_quality", manifest.get("jpeg_quality")))


def sr_fingerprint(scale: int, base: str = "jpeg") -> bytes:
    """An sr model's fingerprint, which its files carry: the family, the base codec and the scale, not weights. The
    stored base depends on no model, so every sr decoder of that base and scale (trained or classic) reads every such
    file. (JPEG's leaves the codec out: that is how files were named before there were other bases.)"""
    settings = {"family": "sr", "scale": int(scale)}
    if base != "jpeg":
        settings["base"] = base
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).digest()[:8]


def model_label(directory) -> str:
    """A model's name (in tables, and a serving export's): its directory's, or its parent's when the directory is a
    run's `model/` or a version of a shipped model (`saved_models/NAME/1`)."""
    path = Path(directory).resolve()
    return path.parent.name if path.name == "model" or path.name.isdigit() else path.name


def resolve_model(model) -> Path:
    """The model folder that `model` names: a folder holding manifest.json; a folder of versions (NAME/1, NAME/2,
    ...), meaning its highest; or the name of an installed model (NAME or NAME/VERSION in $TFGC_MODEL_PATH's folders,
    then saved_models/). Anything else is a ModelError that lists the installed names."""
    path = Path(model)
    try:
        path.exists()
    except (OSError, ValueError) as e:  # a name the filesystem cannot hold (a NUL byte, too long)
        raise ModelError(f"no model {str(model)!r}: {first_line(e)}") from None
    if path.is_dir():
        folder = _model_folder(path)
        if folder is None:
            raise ModelError(f"{path} is not a tfgc model: it has no {MANIFEST} and no version folders "
                             f"({path}/1, {path}/2, ...) with one")
        return folder
    if path.exists():
        raise ModelError(f"{path} is a file, not a model: give a model folder or an installed name "
                         f"({_installed_names_text()})")
    if not path.is_absolute() and ".." not in path.parts:
        for root in search_paths():
            folder = _model_folder(root / path) if (root / path).is_dir() else None
            if folder is not None:
                return folder
    raise ModelError(f"no model {str(model)!r}: not a folder and not an installed name ({_installed_names_text()})")


def installed_names() -> list:
    """Names of the installed models (NAME of NAME/VERSION folders, or the folder's own name), first found first."""
    names = []
    for root in search_paths():
        for directory, _ in _models_under(root):
            relative = directory.relative_to(root)
            name = str(relative.parent if relative.name.isdigit() and relative.parent.parts else relative)
            if name not in names:
                names.append(name)
    return names


def _installed_names_text() -> str:
    names = installed_names()
    return ("installed: " + ", ".join(names) if names else
            f"none installed: put models in a folder named by ${MODEL_PATH_ENV}")


def read_manifest(directory) -> dict:
    directory = resolve_model(directory)
    try:
        manifest = json.loads((directory / MANIFEST).read_text())
    except FileNotFoundError:
        raise ModelError(f"{directory} is not a tfgc model: it has no {MANIFEST}") from None
    except (OSError, ValueError) as e:
        raise ModelError(f"cannot read {directory / MANIFEST}: {e}") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("format"), int):
        raise ModelError(f"{directory / MANIFEST} is not a tfgc manifest")
    if manifest["format"] > MODEL_FORMAT:
        raise ModelError(f"{directory} is a format-{manifest['format']} model; this tfgc reads format "
                         f"{MODEL_FORMAT} and older: upgrade tfgc")
    return manifest


def describe_model(model) -> Tuple[Path, dict, Config]:
    """(folder, manifest, config) of the model that `model` names (a folder or an installed name), checked against
    each other: everything about a model that is known without TensorFlow."""
    directory = resolve_model(model)
    manifest = read_manifest(directory)
    try:
        config = Config.load(directory / CONFIG)
    except ConfigError as e:
        raise ModelError(f"model {directory}: {e}") from None
    if config.model.family != manifest.get("family"):
        raise ModelError(f"model {directory}: config family {config.model.family!r} disagrees with the manifest")
    return directory, manifest, config


def is_keras_save(path) -> bool:
    """A model written by Keras' model.save(): a .keras file, or a SavedModel folder with Keras' metadata."""
    path = Path(path)
    try:
        return (path.is_file() and path.suffix == ".keras") or (path / "keras_metadata.pb").is_file()
    except (OSError, ValueError):
        return False


def load_keras_save(path):
    """A tfgc model that Keras' model.save() wrote, loaded by tf.keras.models.load_model (which rebuilds it from its
    config, so it is the family's own class)."""
    import tensorflow as tf

    from tfgc.models.gan import GANModel

    try:
        model = tf.keras.models.load_model(str(path), compile=False)
    except Exception as e:  # Keras raises ValueError, OSError, KeyError... on damaged or foreign saves
        raise ModelError(f"cannot load the Keras save {path}: {first_line(e)}") from None
    if not isinstance(model, GANModel):
        raise ModelError(f"{path} is a Keras save of a {type(model).__name__}, not of a tfgc model")
    model.directory = Path(path)
    model.manifest = {"family": model.family, "fingerprint": model.fingerprint().hex(), "preset": model.config.preset,
                      "keras_save": str(path)}
    return model


def load_model(directory):
    """Load a model for compression and decompression, checking it before use: a tfgc model folder, an installed
    model's name, or what Keras' model.save() wrote of a tfgc model (a .keras file or a SavedModel folder)."""
    from tfgc.models.registry import build_model

    if is_keras_save(directory):
        return load_keras_save(directory)
    directory, manifest, config = describe_model(directory)
    model = build_model(config, for_training=False)
    _read_weights(model, model.export_parts(), directory, manifest)
    model.directory = directory
    model.manifest = manifest
    return model


def saved_model_weights(parts: dict) -> dict:
    """Each part's variables as a list, by part name: how a SavedModel holds the weights without serializing the
    Keras layers (their call functions would be traced and saved too)."""
    import tensorflow as tf

    return {name: [part] if isinstance(part, tf.Variable) else list(part.variables) for name, part in parts.items()}


def initialize_from(model, directory) -> None:
    """Stage 2 of two-stage training: `model` starts from the stage-1 model in `directory`, whose decoder becomes
    both the MSE decoder kept for interpolation and the decoder stage 2 trains."""
    directory = resolve_model(directory)
    manifest = read_manifest(directory)
    parts = {name: part for name, part in model.export_parts().items() if not name.startswith("mse_")}
    _read_weights(model, parts, directory, manifest)
    for mse_network, network in model.fidelity_pairs():
        for mse_weight, weight in zip(mse_network.weights, network.weights):
            mse_weight.assign(weight)


def _read_weights(model, parts: dict, directory: Path, manifest: dict) -> None:
    """Read `parts` of `model` from the checkpoint in `directory`, then check the model's fingerprint."""
    import tensorflow as tf

    try:
        if manifest.get("weights") == SAVED_MODEL_WEIGHTS:
            reader = tf.train.Checkpoint(**{SAVED_MODEL_ATTRIBUTE: saved_model_weights(parts)})
            variables = directory / tf.saved_model.VARIABLES_DIRECTORY / tf.saved_model.VARIABLES_FILENAME
            status = reader.read(str(variables))
        else:
            status = tf.train.Checkpoint(**parts).read(str(directory / WEIGHTS))
        status.assert_existing_objects_matched()
    except Exception as e:  # the checkpoint reader raises IndexError, ValueError, OpError... on damaged files
        raise ModelError(f"cannot read the weights of {directory}: {first_line(e)}") from None
    if model.fingerprint().hex() != manifest.get("fingerprint"):
        raise ModelError(f"model {directory}: weights do not match the manifest's fingerprint (corrupted or mixed up)")


def search_paths():
    """Where models are looked up by fingerprint: $TFGC_MODEL_PATH (os.pathsep-separated), then saved_models/."""
    paths = [Path(p) for p in os.environ.get(MODEL_PATH_ENV, "").split(os.pathsep) if p]
    paths.append(Path(__file__).resolve().parents[2] / "saved_models")
    return paths


def installed_models() -> Iterator[Tuple[Path, dict]]:
    for root in search_paths():
        yield from _models_under(root)


def _models_under(root: Path) -> Iterator[Tuple[Path, dict]]:
    if not root.is_dir():
        return
    for manifest_path in sorted(root.glob(f"**/{MANIFEST}")):
        try:
            yield manifest_path.parent, read_manifest(manifest_path.parent)
        except ModelError:
            continue


DEFAULT_FILE = "DEFAULT"
CARD = "card.json"


def default_model(cannot_run: Callable[[dict], Optional[str]] = lambda manifest: None) -> Optional[Path]:
    """The model `compress` uses without --model: from the first search path with a DEFAULT file, the first model
    it names (one per line, in order of preference: NAME, or NAME/VERSION; NAME alone means its highest version) that
    runs here, that is for which cannot_run(manifest) gives no reason (tfgc.codec.api.default_model asks whether a
    base-layer model's codec plugin is installed, so a DEFAULT of "heic-x2" then "gc-small-c8" falls back to GC
    without pillow-heif). No DEFAULT file: the first installed model."""
    for root in search_paths():
        try:
            names = [line.strip() for line in (root / DEFAULT_FILE).read_text().splitlines() if line.strip()]
        except OSError:
            continue
        unusable = []
        for named in names:
            folder = _model_folder(root / named)
            if folder is None:
                raise ModelError(f"{root / DEFAULT_FILE} names {named!r}, which is not a model folder in {root}")
            reason = cannot_run(read_manifest(folder))
            if reason is None:
                return folder
            unusable.append(f"{named} ({reason})")
        if unusable:
            raise ModelError(f"none of the default models runs here: {'; '.join(unusable)}")
    for directory, _ in installed_models():
        return directory
    return None


def _model_folder(folder: Path) -> Optional[Path]:
    if (folder / MANIFEST).is_file():
        return folder
    versions = [p for p in folder.glob("*") if p.name.isdigit() and (p / MANIFEST).is_file()]
    return max(versions, key=lambda p: int(p.name)) if versions else None


def read_card(directory) -> Optional[dict]:
    """A shipped model's card.json (scripts/ship_models.py), or None."""
    try:
        card = json.loads((Path(directory) / CARD).read_text())
    except (OSError, ValueError):
        return None
    return card if isinstance(card, dict) else None


def find_model(fingerprint: bytes) -> Optional[Path]:
    for directory, manifest in installed_models():
        if manifest.get("fingerprint") == fingerprint.hex():
            return directory
    return None
