"""Export a trained model for deployment, and run the exports: `python -m tfgc export`.

Entropy coding needs tensorflow-compression's range coder, which TF Serving, TFLite and ONNX lack; so only the codec
SavedModel holds a whole codec, and the other targets hold the transforms (analysis, synthesis) while the host does
the coding (tfgc.codec.api with one of the runtimes below, or scripts/serving_client.py); the host's range coder is a
Python port of tfc's (tfgc.codec.range_coder), so running an ONNX or TFLite export needs no TensorFlow.

    codec/                       SavedModel: compress, compress_pixels, decompress[, alpha] (gc models; needs
                                 tensorflow_compression)
    serving/<name>/<version>/    SavedModel of standard ops: analysis, synthesis (= serving_default); it is also a
                                 tfgc model directory (config.json, manifest.json; the weights are the SavedModel's),
                                 so tfgc loads it too
    tflite/                      analysis.tflite, synthesis.tflite, and float16-weight variants *.fp16.tflite
    onnx/                        analysis.onnx, synthesis.onnx (dynamic batch, height and width)

sr models export serving, tflite and onnx with one signature, synthesis (the decoded base image to the image); the
host downsamples, codes and decodes the base. sc models export the same three formats with both transforms, which take
the label map (and synthesis the mask) beside the image; the host codes the label map and the mask.

A fidelity-controlled model's synthesis takes alpha (float32 [], in [0, 1]). The SavedModels refuse an alpha outside
[0, 1] (InvalidArgumentError; TF Serving answers with an error); TFLite and ONNX have no assertion op, so those graphs
clip it, and tfgc's runners of them (--backend) refuse it first.

With one --format, OUT is that format's folder (for serving, OUT/<name>/<version>/). Each folder holds export.json:
the model's name, family, config, fingerprint and coding table, every signature's inputs and outputs, how to call
them, and the parity measured against TensorFlow when the export was made.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Dict, Optional, Sequence

import numpy as np

from tfgc.codec.family import codec_for
from tfgc.errors import ModelError, TfgcError
from tfgc.utils import first_line, refuse_existing, write_directory

FORMATS = ("codec", "serving", "tflite", "onnx")
EXPORT_MANIFEST = "export.json"
EXPORT_FORMAT = 1
ONNX_OPSET = 17
# Parity is measured on an image of Kodak's size unless the user names one.
CHECK_SIZE = (512, 768)

# What families other than gc export: their coding needs the host (Pillow for sr's base; the label map and mask
# for sc), so they have no codec SavedModel.
TRANSFORM_FORMATS = ("serving", "tflite", "onnx")
# Example values of each input in the usage lines of export.json.
_EXAMPLE_VALUES = {"image": "[[[[r, g, b], ...], ...]]", "symbols": "[[[[s, ...], ...], ...]]", "image_size": "[H, W]",
                   "alpha": "0.5", "low": "[[[[r, g, b], ...], ...]]", "classes": "[[[k, ...], ...]]",
                   "mask": "[[[m, ...], ...]]"}


def usage(export_format: str, signatures: dict) -> str:
    """How to call an export, in one paragraph of export.json, from its signatures (so alpha is named exactly where
    the model takes it)."""
    def call(key, style):
        names = list(signatures[key]["inputs"])
        if style == "rest":
            inputs = ", ".join(f'"{n}": {_EXAMPLE_VALUES[n]}' for n in names)
            return f'{{"signature_name": "{key}", "inputs": {{{inputs}}}}}'
        return ", ".join(f"{n}=..." for n in names)

    alpha = any("alpha" in s["inputs"] for s in signatures.values())
    alpha_note = " alpha in [0, 1] chooses the decoder (0: MSE, 1: GAN)." if alpha else ""
    if export_format == "codec":
        decompress = "m.decompress(bitstream, alpha)" if alpha else "m.decompress(bitstream)"
        return ("m = tf.saved_model.load(DIR) after `import tensorflow_compression`; "
                "m.compress(tf.io.read_file('a.png'))['bitstream'] -> a .tfgc file's bytes; "
                "m.compress_pixels(uint8 [H, W, 3])['bitstream']; "
                f"{decompress}['image'] -> uint8 [H, W, 3].{alpha_note}")
    host = ("Entropy coding and the file format are the client's (scripts/serving_client.py)."
            if "analysis" in signatures else
            "low is an sr file's base image, decoded by the client (tfgc.codec.api.read_sr).")
    if export_format == "serving":
        requests = "; ".join(f"{call(key, 'rest')} -> {_rest_answer(signatures[key])}" for key in signatures)
        return (f"TF Serving REST, POST /v1/models/NAME:predict (columnar format): {requests}.{alpha_note} {host} "
                "In Python: tf.saved_model.load(DIR).signatures['synthesis'](...)")
    if export_format == "tflite":
        runners = "; ".join(f"{key}: get_signature_runner('{key}')({call(key, 'python')})" for key in signatures)
        return (f"tf.lite.Interpreter(model_path=FILE) (or tflite_runtime's): {runners}; inputs take each call's "
                f"shapes.{alpha_note} Files: python -m tfgc compress/decompress --backend tflite --model DIR")
    sessions = "; ".join(f"{key}.onnx: session.run(None, {{{', '.join(repr(n) + ': ...' for n in s['inputs'])}}})"
                         for key, s in signatures.items())
    return (f"onnxruntime.InferenceSession(FILE): {sessions}.{alpha_note} Files: python -m tfgc compress/decompress "
            "--backend onnx --model DIR")


def _rest_answer(signature: dict) -> str:
    names = sorted(signature["outputs"])
    if len(names) == 1:  # TF Serving leaves a lone output unnamed
        return '{"outputs": ...}'
    return '{"outputs": {' + ", ".join(f'"{n}": ...' for n in names) + "}}"


# ---- building the exports -----------------------------------------------------------------------------------------
def _tensor_spec_json(spec) -> dict:
    return {"dtype": spec.dtype.name, "shape": [None if d is None else int(d) for d in spec.shape]}


def _signature_json(function) -> dict:
    concrete = function.get_concrete_function()
    inputs = {spec.name: _tensor_spec_json(spec) for spec in function.input_signature}
    outputs = {name: _tensor_spec_json(spec) for name, spec in sorted(concrete.structured_outputs.items())}
    return {"inputs": inputs, "outputs": outputs}


def _base_manifest(model, name: str, export_format: str, functions) -> dict:
    import tfgc

    signatures = {key: _signature_json(fn) for key, fn in functions.items()}
    return {
        "export_format": EXPORT_FORMAT,
        "format": export_format,
        "name": name,
        "family": model.family,
        "fingerprint": model.fingerprint().hex(),
        "config": model.config.to_dict(),
        "coding_table": model.coding_table().tolist() if hasattr(model, "coding_table") else None,
        "geometry": model.geometry.to_dict(),
        "signatures": signatures,
        "usage": usage(export_format, signatures),
        "tfgc_version": tfgc.__version__,
    }


def _inference_module(model, functions: Dict[str, object]):
    """A tf.Module that owns the model's inference variables and the given functions, and nothing else (no Keras
    model to serialize, no optimizer, no discriminator)."""
    import tensorflow as tf

    from tfgc.models.store import SAVED_MODEL_ATTRIBUTE, saved_model_weights

    module = tf.Module()
    setattr(module, SAVED_MODEL_ATTRIBUTE, saved_model_weights(model.export_parts()))
    for key, fn in functions.items():
        setattr(module, key, fn)
    return module


def write_serving(model, directory: Path, functions) -> None:
    import tensorflow as tf

    from tfgc.models.store import write_model_files

    concrete = {key: fn.get_concrete_function() for key, fn in functions.items()}
    signatures = dict(concrete, serving_default=concrete["synthesis"])
    tf.saved_model.save(_inference_module(model, functions), str(directory), signatures=signatures)
    write_model_files(model, directory, extra=getattr(model, "manifest", None), in_saved_model=True)


def write_codec(model, directory: Path, functions) -> None:
    import tensorflow as tf

    concrete = {key: fn.get_concrete_function() for key, fn in functions.items()}
    tf.saved_model.save(_inference_module(model, functions), str(directory), signatures=concrete)


def write_tflite(model, directory: Path, functions) -> Dict[str, str]:
    """Each function to its own .tflite (float32 weights, and float16 weights), converted from a SavedModel
    signature so that inputs and outputs keep their names."""
    import tensorflow as tf

    files = {}
    with tempfile.TemporaryDirectory(dir=directory) as saved:
        concrete = {key: fn.get_concrete_function() for key, fn in functions.items()}
        tf.saved_model.save(_inference_module(model, functions), saved, signatures=concrete)
        for key in functions:
            for variant in ("float32", "float16"):
                converter = tf.lite.TFLiteConverter.from_saved_model(saved, signature_keys=[key])
                if variant == "float16":
                    converter.optimizations = [tf.lite.Optimize.DEFAULT]
                    converter.target_spec.supported_types = [tf.float16]
                name = f"{key}.tflite" if variant == "float32" else f"{key}.fp16.tflite"
                try:
                    (directory / name).write_bytes(converter.convert())
                except Exception as e:  # the converter raises ConverterError and others, with long messages
                    raise ModelError(f"TFLite conversion of {key} failed: {first_line(e)}") from None
                files[f"{key}.{variant}"] = name
    return files


def require_onnx() -> None:
    """Import what ONNX export and the onnx backend need (an import, not a look-up: onnx newer than 1.16 is there
    but fails to import beside TensorFlow 2.14)."""
    for name in ("onnx", "onnxruntime", "tf2onnx"):
        try:
            importlib.import_module(name)
        except ImportError as e:
            raise TfgcError(f"ONNX needs tf2onnx, onnx and onnxruntime ({name}: {first_line(e)}): "
                            "pip install 'tfgc[onnx]'") from None


def write_onnx(model, directory: Path, functions) -> Dict[str, str]:
    require_onnx()
    import onnx
    import tf2onnx
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    files = {}
    for key, fn in functions.items():
        # Frozen first: tf2onnx's own freezing (from_function) leaves the scalars that tensorflow-compression's GDN
        # captures for its parameter bounds as graph inputs, and a GDN model's .onnx then needs them fed.
        frozen = convert_variables_to_constants_v2(fn.get_concrete_function())
        # tf2onnx logs its optimizers' failures as warnings with tracebacks and goes on with the unoptimized graph
        # (its transpose optimizer fails on the interpolated biases of fidelity-controlled decoders), and calls
        # TensorFlow functions that log deprecation warnings: keep errors.
        loggers = [logging.getLogger("tf2onnx"), logging.getLogger("tensorflow")]
        levels = [logger.level for logger in loggers]
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        try:
            with _collected_between_onnx_optimizers():
                proto, _ = tf2onnx.convert.from_graph_def(
                    frozen.graph.as_graph_def(), input_names=[t.name for t in frozen.inputs],
                    output_names=[t.name for t in frozen.outputs], opset=ONNX_OPSET)
        except Exception as e:
            raise ModelError(f"ONNX conversion of {key} failed: {first_line(e)}") from None
        finally:
            for logger, level in zip(loggers, levels):
                logger.setLevel(level)
        # The graph's tensors are named image:0, Identity:0, ...: the ONNX inputs and outputs take the signature's
        # names.
        names = tf.nest.flatten({name: name for name in fn.get_concrete_function().structured_outputs})
        renames = dict(zip([tensor.name for tensor in frozen.outputs], names))
        renames.update({tensor.name: tensor.name.split(":")[0] for tensor in frozen.inputs})
        for node in proto.graph.node:
            node.input[:] = [renames.get(i, i) for i in node.input]
            node.output[:] = [renames.get(o, o) for o in node.output]
        for value in list(proto.graph.input) + list(proto.graph.output):
            value.name = renames[value.name]
        onnx.checker.check_model(proto)
        onnx.save(proto, str(directory / f"{key}.onnx"))
        files[key] = f"{key}.onnx"
    return files


@contextlib.contextmanager
def _collected_between_onnx_optimizers():
    """tf2onnx runs each of its ONNX optimizers on a deep copy of the graph (to roll back a failing one); the copies,
    weights included, sit in reference cycles that Python's collector reaches late, and gc-small's synthesis (42 MB of
    weights) peaked at 4.5 GB. Collecting before each optimizer keeps the export under 2 GB (tf2onnx 1.17.0's table;
    where that internal is missing, nothing changes). What exists before is frozen out of those collections, which
    would otherwise walk the whole heap, TensorFlow's included, dozens of times."""
    from tf2onnx import optimizer

    original = getattr(optimizer, "_get_optimizers", None)
    if original is None:
        yield
        return

    def collect_first(factory):
        def make():
            gc.collect()
            return factory()
        return make

    optimizer._get_optimizers = lambda: {name: collect_first(f) for name, f in original().items()}
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
        optimizer._get_optimizers = original


def _write_manifest(directory: Path, manifest: dict) -> None:
    (directory / EXPORT_MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")


def next_version(model_root: Path) -> int:
    versions = [int(p.name) for p in model_root.glob("*") if p.is_dir() and p.name.isdigit()]
    return max(versions, default=0) + 1


def export(model, out, formats: Sequence[str] = FORMATS, *, name: Optional[str] = None,
           version: Optional[int] = None, force: bool = False, check_image=None, check: bool = True,
           progress=None) -> Dict[str, Path]:
    """Export `model` (a directory or a loaded model) to `formats` under `out`; returns each format's folder.

    With one format, `out` is that format's folder (serving: out/<name>/<version>); with several, out/<format>.
    Unless `check` is off, each export is run on `check_image` (default: a bundled photograph at 768x512) and its
    parity with the TensorFlow model is written into its export.json.
    """
    from tfgc.models.store import load_model, model_label

    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise TfgcError(f"unknown export format {', '.join(unknown) or '(none)'}; choose from {', '.join(FORMATS)}")
    if "onnx" in formats:
        require_onnx()  # before anything is written
    source = None
    if not hasattr(model, "deployed_functions"):
        source = model
        model = load_model(model)
    why = codec_for(model.family).no_codec_savedmodel
    if why is not None:
        if "codec" in formats and tuple(formats) != FORMATS:
            raise TfgcError(f"an {model.family} model has no codec SavedModel ({why}): export "
                            f"{', '.join(TRANSFORM_FORMATS)} (its transforms), and code files with tfgc")
        formats = [f for f in formats if f in TRANSFORM_FORMATS]
    name = name or (model_label(source) if source is not None else model.config.preset or model.family)
    out = Path(out)
    single = len(formats) == 1

    destinations = {}
    for export_format in formats:
        folder = out if single else out / export_format
        if export_format == "serving":
            root = folder / name
            folder = root / str(version if version is not None else next_version(root))
        refuse_existing(folder, force)
        destinations[export_format] = folder

    image = _check_image(check_image) if check else None
    # Folders this call creates, so that a format failing after others were written leaves nothing behind.
    created = [p for p in [out, *out.parents] if not p.exists()]
    for folder in destinations.values():
        created += [p for p in [folder, *folder.parents] if not p.exists() and p not in created]
    try:
        for export_format, folder in destinations.items():
            if progress:
                progress(f"{export_format}: writing {folder}")
            write_directory(folder, lambda staging, f=export_format: _export_one(model, name, f, staging, image),
                            force=force)
    except BaseException:
        for path in sorted(created, key=lambda p: len(p.parts), reverse=True):
            shutil.rmtree(path, ignore_errors=True)
        raise
    return destinations


def _export_one(model, name: str, export_format: str, directory: Path, image) -> None:
    functions = (codec_for(model.family).graph_functions(model) if export_format == "codec" else
                 model.deployed_functions())
    manifest = _base_manifest(model, name, export_format, functions)
    if export_format == "codec":
        write_codec(model, directory, functions)
    elif export_format == "serving":
        write_serving(model, directory, functions)
    elif export_format == "tflite":
        manifest["files"] = write_tflite(model, directory, functions)
    elif export_format == "onnx":
        manifest["files"] = write_onnx(model, directory, functions)
        manifest["opset"] = ONNX_OPSET
    if image is not None:
        try:
            manifest["parity"] = measure_parity(model, directory, manifest, image)
        except TfgcError:
            raise
        except Exception as e:  # a runtime refusing its own export (missing inputs, unsupported ops, ...)
            raise ModelError(f"the {export_format} export fails its check, so nothing was written: "
                             f"{first_line(e)}") from None
    _write_manifest(directory, manifest)


# ---- running the exports ------------------------------------------------------------------------------------------
class ExportedTransforms:
    """A TFLite or ONNX export (or a serving SavedModel) with the interface tfgc.codec.api expects of a model."""

    def __init__(self, directory, manifest: dict):
        from tfgc.config import Config

        self.directory = Path(directory)
        self.manifest = manifest
        self.family = manifest["family"]
        self.config = Config.from_dict(manifest["config"])
        self._table = None if manifest.get("coding_table") is None else np.asarray(manifest["coding_table"], np.int32)
        if "geometry" in manifest:
            from tfgc.models.geometry import Geometry

            self.geometry = Geometry.from_dict(manifest["geometry"])
        else:  # an export older than the field: the model's class knows (this imports TensorFlow)
            try:
                from tfgc.models.registry import model_class

                self.geometry = model_class(self.family).geometry_for(self.config)
            except ImportError:
                raise ModelError(f"{self.directory} was exported by an older tfgc, whose export.json does not say "
                                 "how to tile images: export the model again, or install TensorFlow") from None

    def fingerprint(self) -> bytes:
        return bytes.fromhex(self.manifest["fingerprint"])

    def coding_table(self) -> np.ndarray:
        return self._table

    def _inputs(self, key: str, arrays) -> Dict[str, np.ndarray]:
        """Positional arrays as the named, typed inputs of the export's `key` signature, in its order."""
        specs = self.manifest["signatures"][key]["inputs"]
        return {name: np.asarray(array, spec["dtype"]) for (name, spec), array in zip(specs.items(), arrays)}

    def analysis(self, *arrays) -> np.ndarray:
        """As the model's: images uint8 [B, H, W, 3] (and an sc model's classes uint8 [B, H, W]) -> symbols int32
        [B, h, w, C]."""
        return self.run("analysis", **self._inputs("analysis", arrays))["symbols"]

    def synthesis(self, *arrays, alpha=None) -> np.ndarray:
        """As the model's: (its decoder's inputs: symbols, an sc model's classes and mask, or an sr model's decoded
        bases; height, width) -> images uint8 [B, H, W, 3]."""
        from tfgc.config import checked_alpha

        *leading, height, width = arrays
        alpha = checked_alpha(self.config, alpha)
        extra = [np.array(alpha, np.float32)] if self.config.model.fidelity_control else []
        return self.run("synthesis", **self._inputs("synthesis", [*leading, [height, width], *extra]))["image"]

    def run(self, key: str, **inputs) -> Dict[str, np.ndarray]:
        raise NotImplementedError


class TFLiteTransforms(ExportedTransforms):
    def __init__(self, directory, manifest: dict, variant: str = "float32"):
        super().__init__(directory, manifest)
        interpreter = tflite_interpreter()
        self.variant = variant
        self._runners = {}
        for key in manifest["signatures"]:
            path = self.directory / manifest["files"][f"{key}.{variant}"]
            self._runners[key] = interpreter(model_path=str(path), num_threads=os.cpu_count())

    def run(self, key, **inputs):
        # The signature runner resizes every input to the call's shape (the interpreter's resize_tensor_input) and
        # allocates before it runs, so one .tflite serves any image size.
        runner = self._runners[key].get_signature_runner(key)
        if set(runner.get_input_details()) != set(inputs):
            raise ModelError(f"{key}.tflite takes {', '.join(sorted(runner.get_input_details()))}, "
                             f"not {', '.join(sorted(inputs))}")
        return runner(**inputs)


def tflite_interpreter():
    """The TFLite interpreter class: tflite-runtime's or ai-edge-litert's (its successor) where one is installed (no
    TensorFlow in the process), else TensorFlow's."""
    for module in ("tflite_runtime.interpreter", "ai_edge_litert.interpreter"):
        try:
            return importlib.import_module(module).Interpreter
        except ImportError:
            continue
    import tensorflow as tf

    return tf.lite.Interpreter


class OnnxTransforms(ExportedTransforms):
    def __init__(self, directory, manifest: dict):
        try:  # onnxruntime alone: running an export needs neither TensorFlow nor tf2onnx
            import onnxruntime
        except ImportError as e:
            raise TfgcError(f"the onnx backend needs onnxruntime ({first_line(e)}): pip install onnxruntime") from None

        super().__init__(directory, manifest)
        self._sessions = {key: onnxruntime.InferenceSession(str(self.directory / manifest["files"][key]),
                                                            providers=["CPUExecutionProvider"])
                          for key in manifest["signatures"]}

    def run(self, key, **inputs):
        session = self._sessions[key]
        names = [o.name for o in session.get_outputs()]
        return dict(zip(names, session.run(names, inputs)))


class ServingTransforms(ExportedTransforms):
    """The serving SavedModel run in-process with TensorFlow (what TF Serving runs)."""

    def __init__(self, directory, manifest: dict):
        import tensorflow as tf

        super().__init__(directory, manifest)
        self._loaded = tf.saved_model.load(str(directory))

    def run(self, key, **inputs):
        outputs = self._loaded.signatures[key](**inputs)
        return {name: value.numpy() for name, value in outputs.items()}


BACKENDS = ("tensorflow", "tflite", "tflite-fp16", "onnx")


def read_export_manifest(directory, export_format: Optional[str] = None) -> tuple:
    """(folder, export.json) of an export; `directory` may also be the top folder of `--format all`."""
    directory = Path(directory)
    candidates = [directory]
    if export_format:
        candidates.append(directory / export_format)
    for folder in candidates:
        path = folder / EXPORT_MANIFEST
        if path.is_file():
            try:
                manifest = json.loads(path.read_text())
            except (OSError, ValueError) as e:
                raise ModelError(f"cannot read {path}: {e}") from None
            if manifest.get("export_format", 0) > EXPORT_FORMAT:
                raise ModelError(f"{folder} is an export of a newer tfgc; upgrade tfgc")
            if export_format and manifest.get("format") != export_format:
                continue
            return folder, manifest
    what = f"an export of format {export_format}" if export_format else "a tfgc export"
    hint = f" (python -m tfgc export --format {export_format})" if export_format else ""
    raise ModelError(f"{directory} is not {what}: it has no {EXPORT_MANIFEST}{hint}")


def load_backend(directory, backend: str = "tensorflow"):
    """A model-like object for tfgc.codec.api: the TensorFlow model, or a TFLite or ONNX export run by its runtime
    (`directory` is then the export's folder, or the top folder of `--format all`)."""
    if backend == "tensorflow":
        from tfgc.models.store import load_model

        return load_model(directory)
    if backend in ("tflite", "tflite-fp16"):
        return TFLiteTransforms(*read_export_manifest(directory, "tflite"),
                                variant="float16" if backend == "tflite-fp16" else "float32")
    if backend == "onnx":
        return OnnxTransforms(*read_export_manifest(directory, "onnx"))
    raise TfgcError(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")


# ---- parity -------------------------------------------------------------------------------------------------------
def _check_image(path=None) -> np.ndarray:
    from PIL import Image

    from tfgc.codec.io import load_image
    from tfgc.data import bundled_images

    if path is not None:
        return load_image(path)
    coffee = next(p for p in bundled_images() if Path(p).stem == "coffee")
    height, width = CHECK_SIZE
    return np.asarray(Image.fromarray(load_image(coffee)).resize((width, height), Image.LANCZOS))


def _check_runtimes(directory: Path, manifest: dict):
    """The runtimes an export is checked with, made one at a time: each TFLite interpreter keeps its tensor arena for
    the whole check image (1.5 GB for gc-small at 768x512), and holding all four at once had doubled the peak."""
    if manifest["format"] == "serving":
        yield ServingTransforms(directory, manifest)
    elif manifest["format"] == "onnx":
        yield OnnxTransforms(directory, manifest)
    else:
        for variant in ("float32", "float16"):
            yield TFLiteTransforms(directory, manifest, variant=variant)


def image_parity(reference: np.ndarray, other: np.ndarray) -> dict:
    from tfgc.metrics import psnr

    difference = np.abs(reference.astype(np.int64) - other.astype(np.int64))
    # PSNR is null for identical outputs (JSON has no infinity).
    return {"max_abs_diff": int(difference.max()),
            "psnr_db": None if not difference.any() else round(psnr(reference, other), 2)}


def describe_parity(parity: Optional[dict]) -> str:
    """One line of an export.json's parity figures."""
    if not parity:
        return "(not checked)"
    height, width = parity["image_size"]
    parts = [f"parity on {width}x{height}" + (f" at alpha {parity['alpha']}:" if "alpha" in parity else ":")]
    if "bitstream_identical" in parity:
        parts.append("bitstream " + ("identical;" if parity["bitstream_identical"] else "DIFFERS;"))
        parity = {"decode": parity}
    for label, entry in parity.items():
        if not isinstance(entry, dict):
            continue
        psnr = "identical" if entry["psnr_db"] is None else f"PSNR {entry['psnr_db']:.1f} dB"
        symbols = (f", symbols {100 * entry['analysis_symbols_equal']:.3f}% equal"
                   if "analysis_symbols_equal" in entry else "")
        parts.append(f"{label}: max |diff| {entry['max_abs_diff']}, {psnr}{symbols};")
    return " ".join(parts).rstrip(";")


def measure_parity(model, directory: Path, manifest: dict, image: np.ndarray) -> dict:
    """Run the export in this process on `image` and compare it with the TensorFlow model."""
    import tensorflow as tf

    from tfgc.codec import api

    height, width = image.shape[:2]
    report = {"image_size": [height, width]}
    # A fidelity-controlled model is checked halfway between its decoders, where interpolation is at work.
    alpha = 0.5 if model.config.model.fidelity_control else None
    if alpha is not None:
        report["alpha"] = alpha
    if manifest["format"] == "codec":
        loaded = tf.saved_model.load(str(directory))
        data = loaded.compress_pixels(tf.constant(image))["bitstream"].numpy()
        reference = api.compress(image, model)
        report["bitstream_identical"] = data == reference
        extra = [] if alpha is None else [tf.constant(alpha)]
        decoded = loaded.decompress(tf.constant(reference), *extra)["image"].numpy()
        report.update(image_parity(api.decode(reference, model, alpha), decoded))
        return report
    # The decoder's first input (symbols, or an sr model's decoded base), its conditions (an sc model's label map and
    # mask), and what the analysis takes besides the image (None: the family has no learned analysis).
    symbols, conditions, analysis_extra = codec_for(model.family).parity_inputs(model, image)
    reference = np.asarray(model.synthesis(symbols, *conditions, height, width, alpha=alpha))
    for runtime in _check_runtimes(directory, manifest):
        entry = {}
        if analysis_extra is not None:
            entry["analysis_symbols_equal"] = float(np.mean(runtime.analysis(image[None], *analysis_extra) == symbols))
        entry.update(image_parity(reference, runtime.synthesis(symbols, *conditions, height, width, alpha=alpha)))
        report[getattr(runtime, "variant", manifest["format"])] = entry
    return report
