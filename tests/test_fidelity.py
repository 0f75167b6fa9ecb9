"""Fidelity control (Iwai et al. 2020): two-stage training and decoder interpolation chosen at decode time."""

import json
import shutil

import numpy as np
import pytest
import tensorflow as tf

from tfgc import export
from tfgc.reports import bench
from tfgc.codec import api
from tfgc.config import preset, with_gan
from tfgc.errors import ConfigError, ModelError, TfgcError
from tfgc.models.registry import build_model
from tfgc.models.store import initialize_from, load_model, save_model
from tfgc.nn.interpolation import call_with_weights, interpolate


def _two_decoder_model(seed=0, normalization="instance"):
    tf.keras.utils.set_random_seed(seed)
    model = build_model(preset("gc-tiny").replace(fidelity_control=True, normalization=normalization),
                        for_training=False)
    for variable in model.generator.weights:  # two decoders that differ everywhere
        variable.assign(variable + tf.random.normal(variable.shape, stddev=0.2))
    return model


def _latent(model, rng):
    m = model.config.model
    return tf.constant(rng.integers(0, m.levels, (2, 3, 5, m.latent_channels)) - (m.levels - 1) / 2, tf.float32)


def test_interpolated_weights_are_exactly_linear(rng):
    model = _two_decoder_model()
    first, second = model.mse_generator.weights, model.generator.weights
    for alpha in (0.0, 0.25, 0.6, 1.0):
        for mixed, a, b in zip(interpolate(first, second, alpha), first, second):
            weight = np.float32(alpha)
            expected = (np.float32(1) - weight) * a.numpy() + weight * b.numpy()
            np.testing.assert_array_equal(mixed.numpy(), expected)


@pytest.mark.parametrize("normalization", ["instance", "gdn", "none"])
def test_alpha_endpoints_are_the_two_decoders_bit_for_bit(rng, normalization):
    model = _two_decoder_model(normalization=normalization)
    z = _latent(model, rng)
    first, second = model.mse_generator.weights, model.generator.weights
    np.testing.assert_array_equal(call_with_weights(model.generator, z, interpolate(first, second, 0.0)),
                                  model.mse_generator(z))
    np.testing.assert_array_equal(call_with_weights(model.generator, z, interpolate(first, second, 1.0)),
                                  model.generator(z))
    # Halfway is neither.
    halfway = call_with_weights(model.generator, z, interpolate(first, second, 0.5)).numpy()
    assert not np.array_equal(halfway, model.generator(z).numpy())
    assert not np.array_equal(halfway, model.mse_generator(z).numpy())
    # The same inside a traced graph (how exports and the decoder's tf.function run it), alpha a tensor.
    traced = tf.function(lambda latent, alpha: call_with_weights(model.generator, latent,
                                                                 interpolate(first, second, alpha)))
    np.testing.assert_allclose(traced(z, tf.constant(0.5)), halfway, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("normalization", ["instance", "gdn", "none"])
def test_call_with_own_weights_equals_the_keras_call(rng, normalization):
    model = build_model(preset("gc-tiny").replace(residual_blocks=2, normalization=normalization), for_training=False)
    z = _latent(model, rng)
    np.testing.assert_array_equal(call_with_weights(model.generator, z, model.generator.weights),
                                  model.generator(z))
    dense = tf.keras.Sequential([tf.keras.layers.Dense(2)])
    dense.build([1, 2])
    with pytest.raises(TypeError, match="does not know"):
        call_with_weights(dense, tf.zeros([1, 2]), dense.weights)


@pytest.fixture(scope="module")
def two_stages(trained, tmp_path_factory, photos):
    """The tiny stage-1 model, and a stage-2 model trained from it for a few steps (GAN, decoder only)."""
    from tfgc.data import bundled_images, training_dataset
    from tfgc.train import compile_model

    stage1, directory = trained
    config = with_gan(stage1.config).replace(stage=2, init_from=str(directory), fidelity_control=True,
                                             learning_rate=1e-3, crop_size=32, batch_size=2)
    tf.keras.utils.set_random_seed(5)
    model = build_model(config)
    initialize_from(model, directory)
    before = {name: [w.numpy() for w in part.weights] for name, part in
              (("encoder", model.encoder), ("prior", model.prior), ("mse_generator", model.mse_generator),
               ("generator", model.generator))}
    compile_model(model, config)
    history = model.fit(training_dataset(bundled_images(), 32, 2, seed=5), steps_per_epoch=4, epochs=1, verbose=0)
    stage2_dir = save_model(model, tmp_path_factory.mktemp("fidelity") / "stage2")
    return stage1, directory, model, stage2_dir, before, history


@pytest.mark.slow
def test_stage_2_trains_the_decoder_alone(two_stages):
    stage1, _, model, _, before, history = two_stages
    assert set(history.history) >= {"adversarial", "distortion", "d_loss"}
    assert "entropy_model" not in history.history
    for name, part in (("encoder", model.encoder), ("prior", model.prior), ("mse_generator", model.mse_generator)):
        for old, new in zip(before[name], part.weights):
            np.testing.assert_array_equal(old, new.numpy())
    changed = [not np.array_equal(old, new.numpy()) for old, new in zip(before["generator"], model.generator.weights)]
    assert all(changed)
    for a, b in zip(before["mse_generator"], stage1.generator.weights):  # the MSE decoder is stage 1's
        np.testing.assert_array_equal(a, b.numpy())


def test_a_file_from_stage_1_decodes_with_stage_2_at_every_alpha(two_stages, photos):
    stage1, _, _, stage2_dir, _, _ = two_stages
    stage2 = load_model(stage2_dir)
    assert stage2.fingerprint() == stage1.fingerprint() and stage2.config.model.fidelity_control
    image = photos["coffee"][:48, :64]
    data = api.compress(image, stage1)
    assert api.compress(image, stage2) == data  # the bitstream does not depend on alpha or the decoder
    decoded = {alpha: api.decode(data, stage2, alpha) for alpha in (0.0, 0.5, 1.0)}
    np.testing.assert_array_equal(decoded[0.0], api.decode(data, stage1))
    assert not np.array_equal(decoded[0.0], decoded[1.0])
    np.testing.assert_array_equal(api.decode(data, stage2), decoded[1.0])  # default_alpha = 1
    with pytest.raises(TfgcError, match=r"alpha must be in \[0, 1\]"):
        api.decode(data, stage2, 1.5)
    with pytest.raises(ModelError, match="one decoder"):
        api.decode(data, stage1, 0.5)


@pytest.mark.slow
def test_cli_alpha(two_stages, photos, tmp_path, capsys):
    from PIL import Image

    from tfgc.__main__ import main

    stage1, stage1_dir, _, stage2_dir, _, _ = two_stages
    Image.fromarray(photos["chelsea"][:40, :40]).save(tmp_path / "a.png")
    assert main(["compress", str(tmp_path / "a.png"), str(tmp_path / "a.tfgc"), "--model", str(stage1_dir)]) == 0
    for alpha in ("0", "0.6"):
        assert main(["decompress", str(tmp_path / "a.tfgc"), str(tmp_path / f"{alpha}.png"), "--model",
                     str(stage2_dir), "--alpha", alpha]) == 0
    capsys.readouterr()
    for bad, message in ((["--alpha", "1.2"], "--alpha must be in [0, 1], not 1.2"),
                         (["--alpha", "-0.1"], "--alpha must be in [0, 1]"),
                         (["--alpha", "0.5", "--force"], "one decoder")):
        model = stage1_dir if "--force" in bad else stage2_dir
        assert main(["decompress", str(tmp_path / "a.tfgc"), str(tmp_path / "bad.png"), "--model", str(model)]
                    + bad) == 1
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "bad.png").exists()


def test_train_cli_stage_checks(trained, tmp_path):
    from tfgc.train import build_parser, resolve_config

    _, directory = trained

    def resolve(*argv):
        args = build_parser().parse_args(list(argv))
        args.argv = list(argv)
        return resolve_config(args)

    import shutil

    stage1_dir = tmp_path / "stage1"
    shutil.copytree(directory, stage1_dir)
    stage1_config = json.loads((stage1_dir / "config.json").read_text())
    stage1_config["train"]["stage"] = 1  # as `--stage 1` writes it
    (stage1_dir / "config.json").write_text(json.dumps(stage1_config))
    for init in (directory, stage1_dir):
        config = resolve("--stage", "2", "--init-from", str(init))
        assert config.train.stage == 2 and config.model.fidelity_control and config.model.adversarial_weight > 0
        assert config.model.width == 4  # the stage-1 model's architecture
    assert resolve("--preset", "gc-small-gan", "--stage", "1").model.adversarial_weight == 0
    with pytest.raises(ConfigError, match="needs --init-from"):
        resolve("--stage", "2")
    with pytest.raises(ConfigError, match="another decoder architecture"):
        resolve("--preset", "gc-small-gan", "--stage", "2", "--init-from", str(directory))
    with pytest.raises(ConfigError, match="for --stage 2"):
        resolve("--init-from", str(directory))


@pytest.mark.slow
def test_exports_take_alpha_at_run_time(two_stages, tmp_path, photos):
    stage1, _, _, stage2_dir, _, _ = two_stages
    from PIL import Image

    check = tmp_path / "check.png"
    Image.fromarray(photos["coffee"][:48, :64]).save(check)
    folders = export.export(stage2_dir, tmp_path / "out", ["serving", "onnx"], name="fid", check_image=check)
    manifest = json.loads((folders["serving"] / export.EXPORT_MANIFEST).read_text())
    assert manifest["signatures"]["synthesis"]["inputs"]["alpha"] == {"dtype": "float32", "shape": []}
    assert manifest["parity"]["alpha"] == 0.5
    stage2 = load_model(stage2_dir)
    onnx = export.load_backend(folders["onnx"], "onnx")
    image = photos["rocket"][:32, :48]
    data = api.compress(image, stage1)
    for alpha in (0.0, 0.3, 1.0):
        parity = export.image_parity(api.decode(data, stage2, alpha), api.decode(data, onnx, alpha))
        assert parity["max_abs_diff"] <= 2
    assert not np.array_equal(api.decode(data, onnx, 0.0), api.decode(data, onnx, 1.0))


@pytest.mark.slow
def test_train_cli_runs_stage_2_into_a_fidelity_controlled_model(trained, tmp_path, photos):
    from tfgc.train import main

    stage1, directory = trained
    out = tmp_path / "stage2"
    assert main(["--stage", "2", "--init-from", str(directory), "--steps", "2", "--steps-per-epoch", "1",
                 "--crop-size", "32", "--batch-size", "2", "--out", str(out)]) == 0
    model = load_model(out / "model")
    assert model.config.train.stage == 2 and model.fingerprint() == stage1.fingerprint()
    data = api.compress(photos["astronaut"][:32, :32], stage1)
    np.testing.assert_array_equal(api.decode(data, model, 0.0), api.decode(data, stage1))


@pytest.fixture
def folder(photo_folder):
    """Two small photographs in a folder, for the report commands."""
    return photo_folder("images")


def test_fidelity_report(two_stages, folder, tmp_path):
    from PIL import Image

    from tfgc.__main__ import main

    _, _, _, stage2_dir, _, _ = two_stages
    assert main(["fidelity", "--model", str(stage2_dir), "--data", str(folder), "--out", str(tmp_path / "docs"),
                 "--alphas", "0", "0.5", "1", "--crop-size", "48"]) == 0
    report = (tmp_path / "docs" / "fidelity.md").read_text()
    assert "| alpha | bpp |" in report and "python -m tfgc fidelity" in report
    result = json.loads((tmp_path / "docs" / "fidelity" / "results.json").read_text())
    (entry,) = result["models"]
    assert set(entry["mean"]) == {"0", "0.5", "1"}
    assert len({round(m["bpp"], 9) for m in entry["mean"].values()}) == 1  # one file per image, every alpha
    assert entry["mean"]["0"]["psnr"] != entry["mean"]["1"]["psnr"]
    # The counts are those of the per-image rows.
    psnrs = {}
    for row in result["images"]:
        psnrs.setdefault(row["image"], {})[float(row["setting"].split("=")[1])] = row["psnr"]

    def never_rises(values):
        return all(later <= earlier for earlier, later in zip(values, values[1:]))

    falling = sum(never_rises([by_alpha[a] for a in sorted(by_alpha)]) for by_alpha in psnrs.values())
    assert entry["monotonic"]["psnr_never_rises"] == falling and entry["monotonic"]["images"] == len(psnrs)
    assert f"PSNR never rises on {falling} of {len(psnrs)} images" in report
    for figure in ("crops.png", "alpha.png"):
        assert Image.open(tmp_path / "docs" / "fidelity" / figure).size[0] > 300
    assert main(["fidelity", "--model", str(stage2_dir), "--data", str(folder), "--out",
                 str(tmp_path / "docs")]) == 1  # exists
    # Several models: one section and one crops figure each, the same files' figures under each name.
    copy = tmp_path / "copy" / "other"
    shutil.copytree(stage2_dir, copy)
    assert main(["fidelity", "--model", str(stage2_dir), str(copy), "--data", str(folder), "--out",
                 str(tmp_path / "two"), "--alphas", "0", "1", "--crop-size", "48"]) == 0
    result = json.loads((tmp_path / "two" / "fidelity" / "results.json").read_text())
    first, second = result["models"]
    assert first["label"] != second["label"]
    assert first["mean"]["1"]["psnr"] == pytest.approx(second["mean"]["1"]["psnr"], abs=1e-6)
    for entry in result["models"]:
        assert f"## {entry['label']}" in (tmp_path / "two" / "fidelity.md").read_text()
        assert (tmp_path / "two" / "fidelity" / f"crops-{entry['label']}.png").exists()


@pytest.mark.slow
def test_bench_places_a_fidelity_model_at_each_alpha_beside_reported_figures(two_stages, folder, tmp_path):
    from PIL import Image

    from tfgc.__main__ import main

    _, _, _, stage2_dir, _, _ = two_stages
    references = tmp_path / "references.json"
    references.write_text(json.dumps([{"label": "VTM", "bpp": 0.048, "psnr": 26.1, "ms_ssim": 0.861,
                                       "source": "a paper"}]))
    notes = tmp_path / "notes.md"
    notes.write_text("## What we find\n\nwritten by hand\n")
    out = tmp_path / "docs"
    command = ["bench", "--model", str(stage2_dir), "--data", str(folder), "--codecs", "jpeg", "--alphas", "0", "1",
               "--references", str(references), "--notes", str(notes), "--out", str(out), "--name", "results",
               "--crop-size", "48"]
    assert main(command) == 0
    report = (out / "results.md").read_text()
    result = json.loads((out / "results" / "results.json").read_text())
    label = "stage2"
    assert set(result["codecs"]) == {"jpeg", f"{label} alpha=0", f"{label} alpha=1"}
    at = {alpha: result["codecs"][f"{label} alpha={alpha}"][0] for alpha in (0, 1)}
    assert at[0]["bpp"] == at[1]["bpp"] and at[0]["psnr"] != at[1]["psnr"]  # the same files, two decoders
    # The matched-rate table reads JPEG's curve at the model's own rate (or says it cannot).
    jpeg = [(p["bpp"], p["psnr"]) for p in result["codecs"]["jpeg"]]
    value = bench.interpolate(jpeg, at[0]["bpp"])
    block = report.split(f"| at {at[0]['bpp']:.4f} bpp |")[1]
    assert ("not reachable" if value is None else f"{value:.2f}") in block.split("| JPEG (libjpeg, 4:2:0) |")[1]
    assert "| VTM | 0.048 | 26.10 | 0.861 | a paper |" in report and result["references"][0]["label"] == "VTM"
    assert report.rstrip().endswith("written by hand") and "encode s/image" in report
    assert Image.open(out / "results" / "rd_detail.png").size[0] > 300
    assert main(command) == 1  # exists
    for bad in ("[{\"label\": \"VTM\", \"bpp\": 0.05}]", "{}", "not json"):
        references.write_text(bad)
        assert main(command[:-2] + ["--force"]) == 1


def test_bench_refuses_an_alpha_out_of_range(two_stages, tmp_path, photos):
    from PIL import Image

    from tfgc.__main__ import main

    _, _, _, stage2_dir, _, _ = two_stages
    Image.fromarray(photos["coffee"][:64, :96]).save(tmp_path / "a.png")
    assert main(["bench", "--model", str(stage2_dir), "--data", str(tmp_path), "--codecs", "jpeg", "--alphas", "2",
                 "--out", str(tmp_path / "out")]) == 1
    assert not (tmp_path / "out").exists()
