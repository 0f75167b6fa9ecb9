"""Shipping models: scripts/ship_models.py (export, model card, default model) on a tiny model; and the models
shipped in saved_models/ load, round-trip and are the default."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tfgc import metrics
from tfgc.__main__ import main
from tfgc.codec import api
from tfgc.reports.measure import evaluate_model, load_images, summarize
from tfgc.codec.api import default_model
from tfgc.models.store import load_model, read_card

from tfc_reference import tfc_decode, tfc_encode

ROOT = Path(__file__).resolve().parents[1]


def _ship_models():
    spec = importlib.util.spec_from_file_location("ship_models", ROOT / "scripts" / "ship_models.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def images(photo_folder):
    return photo_folder("kodak", height=48, width=64)


@pytest.mark.slow
def test_ship_exports_a_serving_model_with_its_card_and_makes_it_the_default(trained, images, tmp_path, monkeypatch,
                                                                           capsys):
    _, directory = trained
    out = tmp_path / "saved_models"
    ship = _ship_models()
    assert ship.main(["--model", f"tiny-c4={directory}", "--kodak", str(images), "--out", str(out),
                      "--default", "tiny-c4"]) == 0
    shipped = out / "tiny-c4" / "1"
    for name in ("saved_model.pb", "manifest.json", "config.json", "export.json", "card.json", "MODEL_CARD.md"):
        assert (shipped / name).is_file()
    card = read_card(shipped)
    model = load_model(shipped)
    assert card["manifest"]["fingerprint"] == model.fingerprint().hex()
    # The card's figures are those of the real files.
    expected = summarize(evaluate_model(model, load_images([str(images)]), "tiny-c4"))
    assert card["kodak"]["figures"]["default"]["bpp"] == pytest.approx(expected["bpp"])
    assert card["kodak"]["figures"]["default"]["psnr"] == pytest.approx(expected["psnr"])
    text = (shipped / "MODEL_CARD.md").read_text()
    assert f"{expected['bpp']:.4f}" in text and "python -m tfgc compress" in text
    assert "## Kodak (2 images, real files)" in text and "- training:" in text
    assert "BSDS500" not in text  # the tiny model trained on the bundled photographs
    assert (out / "DEFAULT").read_text().strip() == "tiny-c4"

    monkeypatch.setenv("TFGC_MODEL_PATH", str(out))
    assert default_model() == shipped
    capsys.readouterr()
    assert main(["models"]) == 0
    listing = capsys.readouterr().out
    assert "tiny-c4  (default)" in listing and f"    in {shipped}\n" in listing
    assert f"Kodak: {expected['bpp']:.4f} bpp" in listing
    # compress and decompress find the default model without --model.
    image = images / "coffee.png"
    assert main(["compress", str(image), str(tmp_path / "a.tfgc"), "-q"]) == 0
    assert main(["decompress", str(tmp_path / "a.tfgc"), str(tmp_path / "a.png"), "-q"]) == 0
    data = (tmp_path / "a.tfgc").read_bytes()
    assert data == api.compress(np.asarray(Image.open(image)), model)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "a.png")), api.decode(data, model))

    # A second shipment goes to the next version; the default follows the highest version.
    assert ship.main(["--model", f"tiny-c4={directory}", "--kodak", str(images), "--out", str(out)]) == 0
    assert default_model() == out / "tiny-c4" / "2"


def test_an_sr_model_ships_with_a_card_of_its_own(images, tmp_path):
    import tensorflow as tf

    from tfgc.config import preset
    from tfgc.models.registry import build_model
    from tfgc.models.store import save_model

    tf.keras.utils.set_random_seed(0)
    directory = save_model(build_model(preset("rlsrgan-tiny"), for_training=False), tmp_path / "sr")
    out = tmp_path / "saved_models"
    assert _ship_models().main(["--model", f"sr-x4={directory}", "--kodak", str(images), "--out", str(out)]) == 0
    shipped = out / "sr-x4" / "1"
    text = (shipped / "MODEL_CARD.md").read_text()
    assert "downsampled x4 (bicubic) and stored as a JPEG at quality 75" in text
    assert "signature `synthesis`: the decoded base image (a JPEG)" in text and "analysis" not in text
    assert "Data: not recorded" in text and "--alpha" not in text
    assert "a GAN decoder invents plausible texture." in text  # rlsrgan-tiny trains with SRGAN's adversarial term
    assert list(read_card(shipped)["kodak"]["figures"]) == ["default"]
    model = load_model(shipped)
    image = np.asarray(Image.open(images / "coffee.png"))
    assert api.decode(api.compress(image, model), model).shape == image.shape


def test_a_shipped_stage_two_model_names_its_stage_one_model_relative_to_the_working_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    stage1 = tmp_path / "runs" / "s1" / "model"
    folder = tmp_path / "shipped"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model": {}, "train": {"init_from": str(stage1)}}))
    (folder / "manifest.json").write_text(json.dumps({"stage1": {"directory": str(stage1), "steps": 5}}))
    _ship_models().portable_paths(folder)
    assert json.loads((folder / "config.json").read_text())["train"]["init_from"] == "runs/s1/model"
    assert json.loads((folder / "manifest.json").read_text())["stage1"] == {"directory": "runs/s1/model", "steps": 5}


def test_ship_refuses_bad_arguments_and_oversized_models(trained, images, tmp_path, monkeypatch):
    _, directory = trained
    ship = _ship_models()
    out = tmp_path / "saved_models"
    for bad in (["--model", str(directory)], ["--model", f"a/b={directory}"],
                ["--model", f"x={directory}", "--default", "y"], ["--model", f"x={tmp_path / 'none'}"]):
        with pytest.raises(SystemExit, match="ship_models"):
            ship.main(bad + ["--kodak", str(images), "--out", str(out)])
    monkeypatch.setattr(ship, "MAX_MEGABYTES", 0.001)
    with pytest.raises(SystemExit, match="over the 0.001 MB"):
        ship.main(["--model", f"x={directory}", "--kodak", str(images), "--out", str(out)])
    assert not (out / "x" / "1").exists()


def test_a_default_file_naming_no_model_is_a_clear_error(tmp_path, monkeypatch):
    from tfgc.errors import ModelError

    (tmp_path / "DEFAULT").write_text("missing\n")
    monkeypatch.setenv("TFGC_MODEL_PATH", str(tmp_path))
    with pytest.raises(ModelError, match="not a model folder"):
        default_model()

def test_the_default_list_skips_a_base_layer_model_whose_codec_is_not_installed(tmp_path, monkeypatch):
    import dataclasses

    from tfgc.codec import classic
    from tfgc.errors import ModelError

    for name in ("heic-x2", "gc-small-c8"):
        (tmp_path / name).symlink_to(SHIPPED_ROOT / name, target_is_directory=True)
    (tmp_path / "DEFAULT").write_text("heic-x2\ngc-small-c8\n")
    monkeypatch.setenv("TFGC_MODEL_PATH", str(tmp_path))
    assert default_model().parent == tmp_path / "heic-x2"
    monkeypatch.setitem(classic.CODECS, "heic", dataclasses.replace(classic.CODECS["heic"], available=lambda: False))
    assert default_model().parent == tmp_path / "gc-small-c8"
    (tmp_path / "DEFAULT").write_text("heic-x2\n")
    with pytest.raises(ModelError, match="none of the default models runs here: heic-x2 .*pillow-heif"):
        default_model()


# ---- the models shipped in saved_models/ --------------------------------------------------------------------------
SHIPPED_ROOT = ROOT / "saved_models"
SHIPPED = sorted(p.parent for p in SHIPPED_ROOT.glob("*/*/manifest.json"))
# every model the README and docs/results.md quote
EXPECTED = {"gc-small-c4", "gc-small-c8", "rlsrgan-small-x4", "heic-x2", "heic-x4"}


def test_the_shipped_models_are_there_with_their_cards():
    assert EXPECTED <= {p.parent.name for p in SHIPPED}
    assert set((SHIPPED_ROOT / "DEFAULT").read_text().split()) <= EXPECTED
    for directory in SHIPPED:
        manifest = json.loads((directory / "manifest.json").read_text())
        card = read_card(directory)
        assert card is not None and card["manifest"]["fingerprint"] == manifest["fingerprint"]
        assert card["kodak"]["images"] == 24 and (directory / "saved_model.pb").is_file()
        megabytes = sum(p.stat().st_size for p in directory.rglob("*") if p.is_file()) / 1e6
        assert megabytes <= 50


@pytest.mark.parametrize("directory", SHIPPED, ids=[f"{p.parent.name}/{p.name}" for p in SHIPPED])
def test_a_shipped_model_round_trips_a_photograph(directory, photos):
    model = load_model(directory)
    base_layer = model.family == "sr" and model.config.model.generator == "edsr"
    # 192x256; a base-layer decoder's gain over Lanczos needs the whole image to rise above its border pixels
    image = photos["astronaut"] if base_layer else photos["astronaut"][64:256, 128:384]
    data = api.compress(image, model)
    assert api.compress(image, model) == data
    height, width = image.shape[:2]
    if base_layer:
        # An untrained edsr decoder is the Lanczos upscaler: a trained one must add to it (heic-x2: 0.27 dB here).
        floor = metrics.psnr(image, api.decode(data, decoder="lanczos")) + 0.1
    elif model.family == "sr":
        # The decoder adds to a bilinear upscale, so random weights already give 21.6 dB here: the mark is the
        # bicubic upscale of the same file (the shipped x4 model: 0.48 dB under it; random weights: 2.8 dB under).
        floor = metrics.psnr(image, api.decode(data, decoder="bicubic")) - 1.0
    else:
        assert 8 * len(data) / (height * width) <= model.manifest["bound_bpp"] + 8 * 64 / (height * width)
        floor = 17.0  # the C=4 GAN decoder, the lowest shipped, gives 19.8 dB here; random weights under 12
    alphas = (0.0, 1.0) if model.config.model.fidelity_control else (None,)
    decoded = {}
    for alpha in alphas:
        decoded[alpha] = api.decode(data, model, alpha)
        np.testing.assert_array_equal(decoded[alpha], api.decode(data, model, alpha))
        assert decoded[alpha].shape == image.shape
    assert metrics.psnr(image, decoded[alphas[0]]) > floor
    if base_layer and len(alphas) == 2:
        # The GAN decoder trades PSNR for detail: at most 1 dB under the MSE decoder, with more detail than it
        # (heic-x2 here: 0.43 dB under, detail 0.77 against 0.66; Lanczos 0.53).
        assert metrics.psnr(image, decoded[1.0]) > metrics.psnr(image, decoded[0.0]) - 1.0
        assert metrics.detail_ratio(image, decoded[1.0]) > metrics.detail_ratio(image, decoded[0.0])
    elif len(alphas) == 2:
        assert metrics.psnr(image, decoded[1.0]) > floor


@pytest.mark.parametrize("directory", [p for p in SHIPPED if p.parent.name.startswith("gc-")],
                         ids=lambda p: f"{p.parent.name}/{p.name}")
def test_a_shipped_models_files_are_tensorflow_compressions_bytes(directory, photos):
    """The host's range coder is a Python port: on every bundled photograph, each shipped gc model's symbols code to
    the bytes tfc's kernels write (with the learned table and the uniform one), and tfc's bytes decode to them.
    (scripts/check_range_coder.py does the same on Kodak.)"""
    from tfgc.codec import entropy

    model = load_model(directory)
    table = model.coding_table()
    for image in photos.values():
        symbols = np.asarray(model.analysis(image[None]))[0]
        for coding in (table, entropy.uniform_table(table.shape[0], model.config.model.levels)):
            payload = tfc_encode(symbols, coding)
            assert entropy.range_encode(symbols, coding) == payload
            np.testing.assert_array_equal(entropy.range_decode(payload, coding, symbols.shape), symbols)
            np.testing.assert_array_equal(tfc_decode(payload, coding, symbols.shape), symbols)


def test_the_default_shipped_model_compresses_without_model(photos, tmp_path, monkeypatch):
    monkeypatch.delenv("TFGC_MODEL_PATH", raising=False)
    default = default_model()
    assert default is not None and SHIPPED_ROOT in default.parents
    Image.fromarray(photos["coffee"][:128, :192]).save(tmp_path / "photo.png")
    assert main(["compress", str(tmp_path / "photo.png"), str(tmp_path / "photo.tfgc"), "-q"]) == 0
    assert main(["decompress", str(tmp_path / "photo.tfgc"), str(tmp_path / "back.png"), "-q"]) == 0
    data = (tmp_path / "photo.tfgc").read_bytes()
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "back.png")), api.decode(data, load_model(default)))


def test_a_base_layer_model_card_has_its_quality_sweep_beside_lanczos(images, tmp_path):
    import tensorflow as tf

    from tfgc.config import preset
    from tfgc.models.registry import build_model
    from tfgc.models.store import save_model

    tf.keras.utils.set_random_seed(0)
    directory = save_model(build_model(preset("sr-tiny"), for_training=False), tmp_path / "sr")
    out = tmp_path / "saved_models"
    assert _ship_models().main(["--model", f"jpeg-x2={directory}", "--kodak", str(images), "--out", str(out)]) == 0
    card = read_card(out / "jpeg-x2" / "1")
    assert list(card["kodak"]["sweep"]) == ["q30", "q70"]
    for row in card["kodak"]["sweep"].values():
        assert set(row) == {"decoder", "lanczos"} and row["decoder"]["bpp"] == row["lanczos"]["bpp"]
    text = (out / "jpeg-x2" / "1" / "MODEL_CARD.md").read_text()
    assert "a classic base layer and a learned decoder" in text and "| q30 |" in text and "gain over Lanczos" in text
