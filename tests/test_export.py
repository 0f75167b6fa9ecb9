"""Exports of tiny models to every format, each run as a user would run it (fresh processes where it matters).

The main fixture is the type of the shipped gc models (GDN, two decoders and alpha); every other model type (instance
norm and one decoder; sc; sr) exports to every target in test_every_model_type_exports_to_every_target."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from tfgc import export
from tfgc.codec import api, gc
from tfgc.codec.io import load_image
from tfgc.errors import ModelError, OutputExistsError, TfgcError

from serving_stub import ServingStub

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def fidelity_gdn(tmp_path_factory):
    """(model, directory) of a gc model of the shipped models' type: GDN, both decoders (alpha), a learned coding
    table; random weights, 8 latent channels as gc-small-c8."""
    from tfgc.config import preset
    from tfgc.models.registry import build_model
    from tfgc.models.store import save_model

    tf.keras.utils.set_random_seed(5)
    config = preset("gc-tiny").replace(normalization="gdn", fidelity_control=True, latent_channels=8)
    model = build_model(config, for_training=False)
    model.prior.set_logits(np.random.default_rng(5).normal(size=(8, 5)).astype(np.float32))
    model.prior.update_coding_table()
    return model, save_model(model, tmp_path_factory.mktemp("models") / "fidelity-gdn")


@pytest.fixture(scope="session")
def exports(fidelity_gdn, tmp_path_factory):
    _, directory = fidelity_gdn
    out = tmp_path_factory.mktemp("exports") / "all"
    folders = export.export(directory, out, export.FORMATS, name="tiny")
    return folders


@pytest.fixture(scope="session")
def photo_file(photos, tmp_path_factory):
    from PIL import Image

    path = tmp_path_factory.mktemp("images") / "coffee.png"
    Image.fromarray(photos["coffee"][:120, :200]).save(path)
    return path


def _manifest(folder):
    return json.loads((folder / export.EXPORT_MANIFEST).read_text())


def _python(code: str, *args, check=True):
    result = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"), timeout=600)
    if check:
        assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.mark.slow
def test_layout_and_manifests(exports, fidelity_gdn):
    model, _ = fidelity_gdn
    assert exports["serving"].parts[-3:] == ("serving", "tiny", "1")
    for export_format, folder in exports.items():
        manifest = _manifest(folder)
        assert manifest["format"] == export_format and manifest["name"] == "tiny"
        assert manifest["fingerprint"] == model.fingerprint().hex()
        np.testing.assert_array_equal(manifest["coding_table"], model.coding_table())
        assert manifest["usage"] and manifest["parity"]["image_size"] == [512, 768]
    analysis = _manifest(exports["serving"])["signatures"]["analysis"]
    assert analysis["inputs"] == {"image": {"dtype": "uint8", "shape": [None, None, None, 3]}}
    assert analysis["outputs"]["symbols"] == {"dtype": "int32", "shape": [None, None, None, 8]}
    synthesis = _manifest(exports["serving"])["signatures"]["synthesis"]
    assert list(synthesis["inputs"]) == ["symbols", "image_size", "alpha"]
    assert list(_manifest(exports["codec"])["signatures"]["decompress"]["inputs"]) == ["bitstream", "alpha"]
    for folder in exports.values():  # how to call it names alpha
        assert "alpha" in _manifest(folder)["usage"]
    assert set(_manifest(exports["tflite"])["files"]) == {"analysis.float32", "analysis.float16",
                                                          "synthesis.float32", "synthesis.float16"}
    for folder in (exports["codec"], exports["serving"]):
        assert (folder / "saved_model.pb").is_file()
    umask = os.umask(0)
    os.umask(umask)
    for folder in exports.values():  # readable by others (a TF Serving container's user, say), as mkdir makes them
        assert folder.stat().st_mode & 0o777 == 0o777 & ~umask
        for path in folder.rglob("*"):
            if path.is_file():
                assert path.stat().st_mode & 0o777 == 0o666 & ~umask, path


@pytest.mark.slow
def test_codec_savedmodel_round_trips_in_a_fresh_process_exactly_as_the_package(exports, fidelity_gdn, photo_file,
                                                                                 tmp_path):
    model, _ = fidelity_gdn
    code = """
import sys
import numpy as np
import tensorflow as tf
import tensorflow_compression  # registers the range coding ops the SavedModel holds
m = tf.saved_model.load(sys.argv[1])
data = m.compress(tf.io.read_file(sys.argv[2]))["bitstream"].numpy()
open(sys.argv[3], "wb").write(data)
np.save(sys.argv[4], m.decompress(tf.constant(open(sys.argv[5], "rb").read()), tf.constant(0.25))["image"].numpy())
"""
    reference = api.compress(photo_file, model)
    (tmp_path / "package.tfgc").write_bytes(reference)
    _python(code, exports["codec"], photo_file, tmp_path / "savedmodel.tfgc", tmp_path / "decoded.npy",
            tmp_path / "package.tfgc")
    assert (tmp_path / "savedmodel.tfgc").read_bytes() == reference
    np.testing.assert_array_equal(np.load(tmp_path / "decoded.npy"), api.decode(reference, model, alpha=0.25))
    assert _manifest(exports["codec"])["parity"]["bitstream_identical"] is True


@pytest.mark.slow
def test_codec_savedmodel_refuses_bad_files(exports, fidelity_gdn, photos):
    model, _ = fidelity_gdn
    loaded = tf.saved_model.load(str(exports["codec"]))
    data = api.compress(photos["chelsea"][:40, :50], model)
    corrupt = bytearray(data)
    corrupt[len(data) // 2] ^= 0x10
    for bad, message in ((data[:-1], "truncated"), (bytes(corrupt), "checksum"), (b"GIF89a", "not a tfgc file"),
                         (data + b"\0", "stray bytes")):
        with pytest.raises(tf.errors.InvalidArgumentError, match=message):
            loaded.decompress(tf.constant(bad), tf.constant(1.0))
    other = gc.graph_functions(_other_model())["compress_pixels"](tf.constant(photos["chelsea"][:40, :50]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="another model"):
        loaded.decompress(other["bitstream"], tf.constant(1.0))
    for alpha in (-0.1, 2.0):  # refused, as the command line refuses it, not clipped
        with pytest.raises(tf.errors.InvalidArgumentError, match=r"alpha must be in \[0, 1\]"):
            loaded.decompress(tf.constant(data), tf.constant(alpha))


def _other_model():
    from tfgc.config import preset
    from tfgc.models.registry import build_model

    tf.keras.utils.set_random_seed(7)
    return build_model(preset("gc-tiny"), for_training=False)


@pytest.mark.slow
def test_serving_savedmodel_runs_without_tensorflow_compression(exports, fidelity_gdn, photos, tmp_path):
    model, _ = fidelity_gdn
    image = photos["astronaut"][:70, :90]
    np.save(tmp_path / "image.npy", image)
    code = """
import sys
import numpy as np
import tensorflow as tf
m = tf.saved_model.load(sys.argv[1])
image = np.load(sys.argv[2])[None]
analysed = m.signatures["analysis"](image=tf.constant(image))
out = m.signatures["serving_default"](symbols=analysed["symbols"], image_size=analysed["image_size"],
                                     alpha=tf.constant(0.5))
np.save(sys.argv[3], analysed["symbols"].numpy())
np.save(sys.argv[4], out["image"].numpy())
assert "tensorflow_compression" not in sys.modules and "tfgc" not in sys.modules, "imported the codec"
"""
    _python(code, exports["serving"], tmp_path / "image.npy", tmp_path / "symbols.npy", tmp_path / "image_out.npy")
    symbols = model.analysis(image[None]).numpy()
    np.testing.assert_array_equal(np.load(tmp_path / "symbols.npy"), symbols)
    np.testing.assert_array_equal(np.load(tmp_path / "image_out.npy"), model.synthesis(symbols, 70, 90, 0.5).numpy())


@pytest.mark.slow
def test_saved_model_cli_lists_the_serving_signatures(exports):
    cli = Path(sys.executable).with_name("saved_model_cli")
    command = [str(cli)] if cli.exists() else [sys.executable, "-m", "tensorflow.python.tools.saved_model_cli"]
    result = subprocess.run(command + ["show", "--all", "--dir", str(exports["serving"])], capture_output=True,
                            text=True, timeout=300, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert result.returncode == 0, result.stderr[-2000:]
    for name in ("analysis", "synthesis", "serving_default"):
        assert f"signature_def['{name}']" in result.stdout
    assert "inputs['image_size'] tensor_info" in result.stdout


def test_serving_export_is_a_tfgc_model_directory_too(exports, fidelity_gdn, photos):
    from tfgc.models.store import load_model

    model, _ = fidelity_gdn
    loaded = load_model(exports["serving"])
    image = photos["coffee"][:33, :47]
    assert api.compress(image, loaded) == api.compress(image, model)
    # One copy of the weights: the SavedModel's variables, which tfgc reads by part name.
    assert not list(exports["serving"].glob("weights*"))
    assert json.loads((exports["serving"] / "manifest.json").read_text())["weights"] == "saved_model"


def test_a_serving_export_with_damaged_variables_is_refused(exports, tmp_path):
    import shutil

    from tfgc.models.store import load_model

    damaged = tmp_path / "damaged"
    shutil.copytree(exports["serving"], damaged)
    data = next((damaged / "variables").glob("variables.data-*"))
    data.write_bytes(bytes(data.stat().st_size))
    with pytest.raises(ModelError, match="cannot read the weights|do not match the manifest's fingerprint"):
        load_model(damaged)


def _load_client():
    spec = importlib.util.spec_from_file_location("serving_client", ROOT / "scripts" / "serving_client.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_serving_client_against_the_savedmodel_behind_tf_servings_rest_api(exports, fidelity_gdn, photo_file,
                                                                          tmp_path):
    model, _ = fidelity_gdn
    client = _load_client()
    manifest = exports["serving"] / export.EXPORT_MANIFEST
    with ServingStub("tiny", exports["serving"]) as server:
        assert client.main(["compress", str(photo_file), str(tmp_path / "a.tfgc"), "--manifest", str(manifest),
                            "--url", server.url]) == 0
        assert (tmp_path / "a.tfgc").read_bytes() == api.compress(photo_file, model)
        assert client.main(["decompress", str(tmp_path / "a.tfgc"), str(tmp_path / "a.png"), "--manifest",
                            str(manifest), "--url", server.url + "/versions/1", "--alpha", "0.3"]) == 0
        analysis, synthesis = server.requests
        assert analysis["signature_name"] == "analysis" and set(analysis["inputs"]) == {"image"}
        assert synthesis["signature_name"] == "synthesis"
        assert set(synthesis["inputs"]) == {"symbols", "image_size", "alpha"}
        assert synthesis["inputs"]["alpha"] == pytest.approx(0.3)
        # The server's errors end in one line and a non-zero exit.
        assert client.main(["compress", str(photo_file), str(tmp_path / "b.tfgc"), "--manifest", str(manifest),
                            "--url", server.url.replace("tiny", "nope")]) == 1
    np.testing.assert_array_equal(load_image(tmp_path / "a.png"),
                                  api.decode(api.compress(photo_file, model), model, alpha=0.3))
    assert not (tmp_path / "b.tfgc").exists()


def test_serving_client_response_parsing():
    client = _load_client()
    signature = {"outputs": {"image": {"dtype": "uint8", "shape": [None, None, None, 3]}}}
    parsed = client.parse_response({"outputs": [[[[1, 2, 3]]]]}, signature)
    assert parsed["image"].dtype == np.uint8 and parsed["image"].shape == (1, 1, 1, 3)
    with pytest.raises(TfgcError, match="server: bad"):
        client.parse_response({"error": "bad"}, signature)
    with pytest.raises(TfgcError, match="lacks"):
        client.parse_response({"outputs": {"other": 1, "more": 2}}, signature)


def test_serve_script_runs_the_official_image_with_the_model_mounted(exports, tmp_path):
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "docker").write_text('#!/bin/sh\necho "$@"\n')
    (fake / "docker").chmod(0o755)
    env = dict(os.environ, PATH=f"{fake}:{os.environ['PATH']}")
    model_root = exports["serving"].parent
    result = subprocess.run(["bash", str(ROOT / "scripts" / "serve.sh"), str(model_root)], capture_output=True,
                            text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert "-p 8501:8501 -p 8500:8500" in result.stdout and "tensorflow/serving:2.14.1" in result.stdout
    assert f"source={model_root},target=/models/tiny" in result.stdout and "MODEL_NAME=tiny" in result.stdout
    wrong = subprocess.run(["bash", str(ROOT / "scripts" / "serve.sh"), str(exports["serving"])],
                           capture_output=True, text=True, env=env)
    assert wrong.returncode == 2 and "numbered version" in wrong.stderr


def test_tflite_resizes_to_any_image_and_matches_tensorflow(exports, fidelity_gdn, photos):
    model, _ = fidelity_gdn
    folder = exports["tflite"]
    interpreter = tf.lite.Interpreter(model_path=str(folder / "analysis.tflite"))
    (detail,) = interpreter.get_input_details()
    assert list(detail["shape_signature"]) == [-1, -1, -1, 3]
    for h, w in ((48, 64), (37, 53)):
        image = photos["rocket"][:h, :w][None]
        interpreter.resize_tensor_input(detail["index"], [1, h, w, 3], strict=True)
        interpreter.allocate_tensors()
        runner = interpreter.get_signature_runner("analysis")
        symbols = runner(image=image)["symbols"]
        del runner  # it holds the interpreter's buffers, which resizing must not
        assert symbols.shape == (1, -(-h // 16), -(-w // 16), 8)
        assert np.mean(symbols == model.analysis(image).numpy()) > 0.99
    for backend in ("tflite", "tflite-fp16"):
        runtime = export.load_backend(folder.parent, backend)
        image = photos["chelsea"][:64, :80]
        decoded = api.decode(api.compress(image, model), runtime)
        parity = export.image_parity(api.decode(api.compress(image, model), model), decoded)
        assert parity["max_abs_diff"] <= 3 and (parity["psnr_db"] is None or parity["psnr_db"] > 45)
    figures = _manifest(folder)["parity"]
    assert figures["float32"]["psnr_db"] is None or figures["float32"]["psnr_db"] > 45


def test_onnx_has_dynamic_sizes_and_the_cli_decodes_a_real_file_with_it(exports, fidelity_gdn, photo_file,
                                                                        tmp_path):
    import onnx

    from tfgc.__main__ import main

    model, _ = fidelity_gdn
    graph = onnx.load(str(exports["onnx"] / "analysis.onnx")).graph
    dims = graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims][-1] == 3 and all(d.dim_param for d in dims[:3])
    assert [i.name for i in graph.input] == ["image"]  # GDN's parameter bounds are constants, not inputs
    assert [o.name for o in graph.output] == ["image_size", "symbols"]
    file = tmp_path / "a.tfgc"
    assert main(["compress", str(photo_file), str(file), "--backend", "onnx", "--model", str(exports["onnx"])]) == 0
    assert file.read_bytes() == api.compress(photo_file, model)
    assert main(["decompress", str(file), str(tmp_path / "onnx.png"), "--backend", "onnx",
                 "--model", str(exports["onnx"].parent), "--alpha", "0.7"]) == 0
    parity = export.image_parity(api.decode(file.read_bytes(), model, alpha=0.7), load_image(tmp_path / "onnx.png"))
    assert parity["max_abs_diff"] <= 2


def test_an_export_without_geometry_still_tiles_as_its_model(exports, fidelity_gdn, monkeypatch):
    """export.json records the model's geometry, so a runtime tiles large images without TensorFlow; an export made
    before it had the field takes it from the model's class, and where TensorFlow is missing says so in one line."""
    model, _ = fidelity_gdn
    directory, manifest = export.read_export_manifest(exports["onnx"], "onnx")
    assert manifest["geometry"] == model.geometry.to_dict()
    older = {key: value for key, value in manifest.items() if key != "geometry"}
    assert export.OnnxTransforms(directory, older).geometry == model.geometry
    monkeypatch.setitem(sys.modules, "tfgc.models.registry", None)  # as where TensorFlow is not installed
    with pytest.raises(ModelError, match="export the model again, or install TensorFlow"):
        export.OnnxTransforms(directory, older)


def test_export_refusals(exports, trained, tmp_path, capsys, monkeypatch):
    from tfgc.__main__ import main

    _, directory = trained
    with monkeypatch.context() as patch:
        patch.setitem(sys.modules, "tf2onnx", None)  # as if not installed
        with pytest.raises(TfgcError, match=r"pip install 'tfgc\[onnx\]'"):
            export.export(directory, tmp_path / "x", ["codec", "onnx"])
    with pytest.raises(OutputExistsError):
        export.export(directory, exports["onnx"], ["onnx"], check=False)
    with pytest.raises(TfgcError, match="unknown export format"):
        export.export(directory, tmp_path / "x", ["pdf"])
    with pytest.raises(ModelError, match="not an export of format tflite"):
        export.load_backend(directory, "tflite")
    assert main(["decompress", "x.tfgc", str(tmp_path / "x.png"), "--backend", "onnx"]) == 1
    assert "needs --model" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


@pytest.mark.slow
def test_serving_versions_count_up_and_the_cli_reports_parity(trained, tmp_path, capsys):
    from tfgc.__main__ import main

    _, directory = trained
    for version in (1, 2):
        assert main(["export", "--model", str(directory), "--format", "serving", "--out", str(tmp_path),
                     "--name", "m", "--check-image", str(ROOT / "tfgc/assets/images/chelsea.png")]) == 0
        assert (tmp_path / "m" / str(version) / "saved_model.pb").is_file()
    assert "serving: max |diff| 0, identical" in capsys.readouterr().out


@pytest.mark.slow
def test_a_model_with_noise_channels_exports_and_reloads(photos, tmp_path):
    from tfgc.config import preset
    from tfgc.models.registry import build_model
    from tfgc.models.store import load_model, save_model

    tf.keras.utils.set_random_seed(3)
    model = build_model(preset("gc-tiny").replace(noise_channels=2), for_training=False)
    image = photos["coffee"][:40, :56]
    reloaded = load_model(save_model(model, tmp_path / "noisy"))
    np.testing.assert_array_equal(reloaded.reconstruct(image[None]), model.reconstruct(image[None]))
    folders = export.export(reloaded, tmp_path / "out", ["tflite", "onnx"], check_image=None)
    for folder in folders.values():
        for entry in _manifest(folder)["parity"].values():
            if isinstance(entry, dict):
                assert entry["max_abs_diff"] <= 3 and entry["analysis_symbols_equal"] > 0.99


# Every preset's model type, beside the main fixture's (gc, GDN, two decoders): (preset, overrides).
MODEL_TYPES = {
    "gc-instance-one-decoder": ("gc-tiny", {}),
    "sc-instance-two-decoders": ("sc-tiny", {"fidelity_control": True}),
    "sr-edsr-two-decoders": ("sr-tiny", {"fidelity_control": True}),
    "rlsrgan-one-decoder": ("rlsrgan-tiny", {}),
}

DECODE_WITHOUT_TENSORFLOW = """
import json, sys, time
import numpy as np
from tfgc.codec import api
from tfgc.export import load_backend
folder, data, alpha = sys.argv[1], open(sys.argv[2], "rb").read(), json.loads(sys.argv[3])
decoded = {backend: api.decode(data, load_backend(folder, backend), alpha)
           for backend in ("onnx", "tflite", "tflite-fp16")}
heavy = sorted({name.split(".")[0] for name in sys.modules} & {"tensorflow", "tensorflow_compression", "keras"})
assert not heavy, heavy
np.savez(sys.argv[4], **decoded)
"""


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(MODEL_TYPES))
def test_every_model_type_exports_to_every_target(kind, photos, photo_file, tmp_path):
    """Each export is checked when it is made (its parity is in export.json), and a file of the model decodes with
    ONNX and TFLite in a process that never imports TensorFlow: the range decoder is tfgc's Python port of
    tensorflow-compression's, and sr bases are Pillow's."""
    from tfgc.config import preset
    from tfgc.models.registry import build_model
    from tfgc.models.store import save_model

    name, overrides = MODEL_TYPES[kind]
    tf.keras.utils.set_random_seed(11)
    model = build_model(preset(name).replace(**overrides), for_training=False)
    directory = save_model(model, tmp_path / "model")
    if model.family != "gc":
        with pytest.raises(TfgcError, match="no codec SavedModel"):
            export.export(directory, tmp_path / "codec", ["codec"])
    folders = export.export(directory, tmp_path / "out", export.FORMATS, check_image=photo_file)
    expected = {"codec", "serving", "tflite", "onnx"} if model.family == "gc" else {"serving", "tflite", "onnx"}
    assert set(folders) == expected
    for export_format, folder in folders.items():
        parity = _manifest(folder)["parity"]
        for entry in (v for v in parity.values() if isinstance(v, dict)):
            assert entry["max_abs_diff"] <= 2 and entry.get("analysis_symbols_equal", 1.0) > 0.99, (export_format,
                                                                                                     parity)
    image = photos["coffee"][:72, :100]
    semantics = None
    if model.family == "sc":
        semantics = np.zeros(image.shape[:2], np.uint8)
        semantics[:, 50:] = 1
    data = api.encode(image, model, semantics=semantics).data
    (tmp_path / "a.tfgc").write_bytes(data)
    alpha = 0.5 if model.config.model.fidelity_control else None
    _python(DECODE_WITHOUT_TENSORFLOW, tmp_path / "out", tmp_path / "a.tfgc", json.dumps(alpha), tmp_path / "d.npz")
    reference = api.decode(data, model, alpha)
    for backend, decoded in np.load(tmp_path / "d.npz").items():
        assert export.image_parity(reference, decoded)["max_abs_diff"] <= 3, backend


def test_alpha_outside_zero_to_one_is_refused_by_every_backend(exports, fidelity_gdn, photos):
    model, _ = fidelity_gdn
    data = api.compress(photos["chelsea"][:32, :48], model)
    for backend in ("tensorflow", "tflite", "tflite-fp16", "onnx"):
        runtime = model if backend == "tensorflow" else export.load_backend(exports["onnx"].parent, backend)
        for alpha in (-0.5, 1.5):
            with pytest.raises(TfgcError, match=r"^alpha must be in \[0, 1\], not"):
                api.decode(data, runtime, alpha)
    served = tf.saved_model.load(str(exports["serving"])).signatures["synthesis"]
    symbols = model.analysis(photos["chelsea"][None, :32, :48])
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"alpha must be in \[0, 1\], not"):
        served(symbols=symbols, image_size=tf.constant([32, 48]), alpha=tf.constant(1.5))


@pytest.mark.slow
def test_a_serving_export_is_named_after_its_model(fidelity_gdn, tmp_path):
    import shutil

    _, directory = fidelity_gdn
    shipped = tmp_path / "saved_models" / "gc-fidelity" / "3"
    shutil.copytree(directory, shipped)
    folders = export.export(shipped, tmp_path / "serving", ["serving"], check=False)
    assert folders["serving"] == tmp_path / "serving" / "gc-fidelity" / "1"
    assert _manifest(folders["serving"])["name"] == "gc-fidelity"


@pytest.mark.slow
def test_an_export_that_fails_its_check_leaves_nothing_and_says_so_in_one_line(trained, photo_file, tmp_path, capsys,
                                                                              monkeypatch):
    from tfgc.__main__ import main

    _, directory = trained

    def refuse(self, key, **inputs):
        raise ValueError("Required inputs (['gdn/1202:0']) are missing from input feed (['image'])\nmore detail")

    monkeypatch.setattr(export.OnnxTransforms, "run", refuse)
    out = tmp_path / "exports"
    with pytest.raises(ModelError, match="onnx export fails its check"):
        export.export(directory, out, ["serving", "onnx"], check_image=photo_file)
    assert not out.exists()  # the serving export written before went too
    assert main(["export", "--model", str(directory), "--out", str(out), "--format", "onnx", "--quiet",
                 "--check-image", str(photo_file)]) == 1
    err = capsys.readouterr().err.strip()
    assert "onnx export fails its check" in err and "Required inputs" in err and "\n" not in err
    assert not out.exists()


def _stub_model(tmp_path, name, function):
    module = tf.Module()
    module.f = function
    tf.saved_model.save(module, str(tmp_path / name), signatures={"serving_default": function.get_concrete_function()})
    return tmp_path / name


def _post(url, body):
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_the_serving_stub_answers_the_examples_of_tf_servings_rest_documentation(tmp_path):
    """Requests and responses recorded from https://www.tensorflow.org/tfx/serving/api_rest: the half_plus_three
    example (row format, one unnamed output, and the 404 of a wrong model name), and the tag/signal/sensor request in
    both formats (three named inputs; two named outputs come back as objects)."""
    half_plus_three = tf.function(lambda x: {"y": 0.5 * x + 3.0},
                                  input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
    with ServingStub("half_plus_three", _stub_model(tmp_path, "hp3", half_plus_three)) as server:
        assert _post(server.url + ":predict", {"instances": [1.0, 2.0, 5.0]}) == (
            200, {"predictions": [3.5, 4.0, 5.5]})
        assert _post(server.url + ":predict", {"inputs": [1.0, 2.0, 5.0]}) == (200, {"outputs": [3.5, 4.0, 5.5]})
        assert _post(server.url.replace("half_plus_three", "half") + ":predict", {"instances": [1.0, 5.0]}) == (
            404, {"error": "Servable not found for request: Latest(half)"})

    def sensors(tag, signal, sensor):
        return {"loudest": tf.reduce_max(signal, axis=1), "reading": tf.reduce_sum(sensor, axis=[1, 2]),
                "tag": tag}

    signature = [tf.TensorSpec([None], tf.string, name="tag"), tf.TensorSpec([None, 5], tf.float32, name="signal"),
                 tf.TensorSpec([None, 2, 2], tf.float32, name="sensor")]
    with ServingStub("sensors", _stub_model(tmp_path, "sensors", tf.function(sensors, input_signature=signature))) \
            as server:
        rows = {"instances": [{"tag": "foo", "signal": [1, 2, 3, 4, 5], "sensor": [[1, 2], [3, 4]]},
                              {"tag": "bar", "signal": [3, 4, 1, 2, 5], "sensor": [[4, 5], [6, 8]]}]}
        columns = {"inputs": {"tag": ["foo", "bar"], "signal": [[1, 2, 3, 4, 5], [3, 4, 1, 2, 5]],
                              "sensor": [[[1, 2], [3, 4]], [[4, 5], [6, 8]]]}}
        status, answer = _post(server.url + ":predict", rows)
        assert status == 200 and answer["predictions"] == [{"loudest": 5.0, "reading": 10.0, "tag": "foo"},
                                                            {"loudest": 5.0, "reading": 23.0, "tag": "bar"}]
        status, answer = _post(server.url + ":predict", columns)
        assert status == 200 and answer["outputs"] == {"loudest": [5.0, 5.0], "reading": [10.0, 23.0],
                                                        "tag": ["foo", "bar"]}
        status, answer = _post(server.url + ":predict", {"inputs": {"tag": ["foo"]}})
        assert status == 400 and "error" in answer


def test_the_tflite_interpreter_comes_from_a_runtime_without_tensorflow_where_one_is_installed(monkeypatch):
    import types

    litert = types.ModuleType("ai_edge_litert.interpreter")
    litert.Interpreter = object()
    monkeypatch.setitem(sys.modules, "tflite_runtime.interpreter", None)  # as if not installed
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", litert)
    assert export.tflite_interpreter() is litert.Interpreter
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)
    assert export.tflite_interpreter() is tf.lite.Interpreter


def _readme_deploy_section() -> str:
    return (ROOT / "docs" / "guide" / "deploy.md").read_text()


@pytest.mark.slow
def test_the_readme_deploy_snippets_run_as_written(fidelity_gdn, exports, photos, tmp_path):
    """Every Python snippet of the deployment guide (docs/guide/deploy.md), every `python -m tfgc` and serving-client
    line of its shell
    snippets, and its curl request, in a folder laid out as the README's (exports/, photo.png), with a model of the
    shipped gc models' type (GDN, alpha, 8 channels). The serving client and curl reach the stand-in server on
    localhost:8501, TF Serving's REST port."""
    import re
    import socket

    from PIL import Image

    _, directory = fidelity_gdn
    work = tmp_path / "work"
    (work / "exports").mkdir(parents=True)
    for export_format in ("codec", "tflite", "onnx"):
        (work / "exports" / export_format).symlink_to(exports[export_format], target_is_directory=True)
    export.export(directory, work / "exports" / "serving", ["serving"], name="gc-small-c8", check=False)
    Image.fromarray(photos["coffee"][:96, :128]).save(work / "photo.png")
    section = _readme_deploy_section()
    blocks = re.findall(r"```(python|sh)\n(.*?)```", section, re.S)  # in the order a reader runs them
    python_blocks = [code for kind, code in blocks if kind == "python"]
    assert len(python_blocks) >= 3 and all("alpha" in code for code in python_blocks)
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", 8501)) == 0:
            pytest.skip("port 8501 is in use on this machine")
    served = work / "exports" / "serving" / "gc-small-c8" / "1"
    ran = []
    with ServingStub("gc-small-c8", served, port=8501):
        for kind, code in blocks:
            if kind == "python":
                result = subprocess.run([sys.executable, "-c", code], cwd=work, capture_output=True, text=True,
                                        timeout=600, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
                assert result.returncode == 0, (code, result.stderr[-3000:])
                ran.append("python")
                continue
            for line in code.splitlines():
                ran.append(_run_readme_line(line.split("#")[0].strip(), work))
    assert ran.count("client") == 2 and ran.count("curl") == 1 and ran.count("tfgc") >= 2
    assert (work / "photo-onnx.png").is_file() and (work / "photo.tfgc").is_file()


def _run_readme_line(command: str, work: Path):
    """Runs one line of a README shell snippet the way a reader would; returns what it was (None: not run here)."""
    import re
    import shlex

    if command.startswith(("python -m tfgc ", "python scripts/serving_client.py ")):
        argv = shlex.split(command)
        if argv[3] == "export":
            return None  # the README exports a shipped model; this folder holds the test model's exports
        argv[0] = sys.executable
        if argv[1].startswith("scripts/"):
            argv[1] = str(ROOT / argv[1])
        result = subprocess.run(argv, cwd=work, capture_output=True, text=True, timeout=600,
                                env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
        assert result.returncode == 0, (command, result.stderr[-3000:])
        return "tfgc" if argv[1] == "-m" else "client"
    if command.startswith("curl "):
        body, url = re.fullmatch(r"curl -d '(.*)' -X POST (\S+)", command).groups()
        status, answer = _post(url, json.loads(body))
        assert status == 200, answer
        assert np.asarray(answer["outputs"]).shape == (1, 16, 16, 3)
        return "curl"
    return None
