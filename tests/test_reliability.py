"""Reliability: damaged and forged files, hostile images, large images in tiles, determinism across processes, and
training that survives NaNs and SIGKILL."""

import io
import json
import os
import signal
import struct
import subprocess
import sys
import time
import zlib

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tfgc import fuzz
from tfgc.__main__ import main
from tfgc.codec import api, entropy, tiling
from tfgc.config import preset
from tfgc.errors import FormatError, ImageError
from tfgc.models import geometry
from tfgc.models.registry import build_model
from tfgc.models.store import load_model


@pytest.fixture(scope="module")
def fuzz_models(tmp_path_factory):
    directory = tmp_path_factory.mktemp("fuzz")
    models = fuzz.seed_models(directory / "models")
    return models, {family: directory / "models" / family for family in models}, directory


@pytest.mark.slow
def test_fuzzed_files_end_in_format_errors_or_valid_images(fuzz_models):
    """The quick run of python -m tfgc.fuzz: every systematic mutation of the gc and sr seeds, and random ones of every
    family, through the API (and every 10th through the CLI)."""
    models, directories, work = fuzz_models
    seeds = fuzz.seed_files(models)
    fuzzer = fuzz.Fuzzer(models, directories, work)
    fuzzer.run_systematic({family: seeds[family] for family in ("gc", "sr")})
    fuzzer.run_large_pictures(seeds)
    fuzzer.run_random(seeds, examples=300)
    summary = fuzzer.summary()
    assert summary["failures"] == 0, summary["failure_examples"]
    assert summary["inputs"] > 1000 and summary["cli_inputs"] > 100
    outcomes = {k for counts in summary["categories"].values() for k in counts}
    assert {"api refused", "api decoded", "cli refused"} <= outcomes
    # Bit flips behind a fixed checksum reach the payload decoders, and some still decode.
    assert summary["categories"]["header bit flip, checksum fixed"].get("api decoded", 0) > 0
    # Sizes up to tfgc's real pixel cap, forged on files of a few dozen bytes, are decoded under that cap: refused
    assert summary["categories"]["image size up to the pixel cap"].get("api refused", 0) > 10
    # Valid files of a few dozen bytes (sc) or kilobytes (sr) decode to megapixels; files forged to claim more than
    # their bytes can hold are refused (before anything is decoded: tests/test_edges.py)
    assert summary["categories"]["small files for large pictures"]["api decoded"] == 2
    assert summary["categories"]["small files for large pictures, forged"]["api refused"] == 4


def test_the_fuzzer_catches_a_decoder_that_crashes(fuzz_models, monkeypatch):
    models, directories, work = fuzz_models
    seeds = fuzz.seed_files(models)
    fuzzer = fuzz.Fuzzer(models, directories, work)

    def broken(*args, **kwargs):
        raise IndexError("boom")

    monkeypatch.setattr(entropy, "range_decode", broken)
    with pytest.raises(fuzz.FuzzFailure, match="IndexError: boom"):
        fuzzer.check("test", "gc", seeds["gc"])
    assert fuzzer.summary()["failures"] == 1


def test_a_huge_declared_image_is_refused_before_anything_is_allocated(trained, photos):
    model, _ = trained
    data = api.compress(photos["chelsea"][:32, :32], model)
    forged = fuzz.with_crc(data[:15] + struct.pack(">II", 60_000, 60_000) + data[23:])
    with pytest.raises(FormatError, match="exceeds the limit"):
        api.decode(forged, model)
    # Under a raised limit the latent payload is far too short for 3,750 x 3,750 cells x C symbols.
    with pytest.raises(FormatError, match="cannot hold"):
        api.decode(forged, model, max_pixels=10**10)
    with pytest.raises(FormatError, match="exceeds the limit of 100"):
        api.decode(data, model, max_pixels=100)


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="reads the resident set size from /proc")
@pytest.mark.slow
def test_loading_gdn_models_again_and_again_keeps_memory_flat(tmp_path):
    """tensorflow-compression's GDN inside Keras' symbolic Sequential graph kept every built model alive (21 MiB per
    gc-tiny with GDN): tfgc's Sequentials run their layers eagerly instead."""
    from tfgc.models.store import save_model
    from tfgc.utils import resident_mib

    save_model(build_model(preset("gc-tiny").replace(normalization="gdn"), for_training=False), tmp_path / "gdn")
    for _ in range(3):  # allocator and tracing warm-up
        load_model(tmp_path / "gdn")
    before = resident_mib()
    for _ in range(20):
        load_model(tmp_path / "gdn")
    assert resident_mib() - before < 40, resident_mib() - before  # was about 420 MiB


def test_the_range_coder_never_writes_fewer_bits_than_the_minimum(rng):
    from tfgc.nn.entropy import _quantized_table

    pmf = np.array([[0.97, 0.01, 0.01, 0.005, 0.005], [0.2, 0.2, 0.2, 0.2, 0.2]])
    table = _quantized_table(pmf)
    for symbols in (np.zeros((30, 30, 2), np.int32), rng.integers(0, 5, (30, 30, 2)).astype(np.int32)):
        data = entropy.range_encode(symbols, table)
        assert 8 * len(data) >= entropy.minimum_bits(table, 900) - 8
        np.testing.assert_array_equal(entropy.range_decode(data, table, symbols.shape), symbols)
    shortest = int(entropy.minimum_bits(table, 900) // 8)
    with pytest.raises(FormatError, match="cannot hold"):
        entropy.range_decode(data[:shortest - entropy.SHORTFALL_BITS // 8 - 1], table, symbols.shape)


def _compress_cli(source, out, directory, *extra):
    return main(["compress", str(source), str(out), "--model", str(directory), "--quiet", *extra])


def _hostile_images(tmp_path, photos):
    """name -> (path, expected (height, width) or None for a refusal)."""
    rgb = photos["chelsea"][:37, :53]
    cases = {}

    def save(name, image, expected, **kwargs):
        path = tmp_path / name
        image.save(path, **kwargs)
        cases[name] = (path, expected)

    (tmp_path / "empty.png").write_bytes(b"")
    cases["empty.png"] = (tmp_path / "empty.png", None)
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    (tmp_path / "truncated.png").write_bytes(buffer.getvalue()[:len(buffer.getvalue()) // 2])
    cases["truncated.png"] = (tmp_path / "truncated.png", None)
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG")
    (tmp_path / "truncated.jpg").write_bytes(buffer.getvalue()[:len(buffer.getvalue()) // 2])
    cases["truncated.jpg"] = (tmp_path / "truncated.jpg", None)
    (tmp_path / "text.png").write_text("this is not an image\n")
    cases["text.png"] = (tmp_path / "text.png", None)
    (tmp_path / "model.png").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(100))
    cases["model.png"] = (tmp_path / "model.png", None)
    save("grey.png", Image.fromarray(rgb).convert("L"), (37, 53))
    save("grey-alpha.png", Image.fromarray(rgb).convert("LA"), (37, 53))
    save("rgba.png", Image.fromarray(rgb).convert("RGBA"), (37, 53))
    save("palette.png", Image.fromarray(rgb).convert("P"), (37, 53))
    save("palette-transparent.gif", Image.fromarray(rgb).convert("P"), (37, 53), transparency=0)
    save("sixteen-bit.png", Image.fromarray(rgb[..., 0].astype(np.uint16) * 257), (37, 53))
    save("cmyk.jpg", Image.fromarray(rgb).convert("CMYK"), (37, 53))
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees on display
    save("rotated.jpg", Image.fromarray(rgb), (53, 37), exif=exif)
    save("one-pixel.png", Image.fromarray(rgb[:1, :1]), (1, 1))
    save("odd.png", Image.fromarray(rgb[:17, :33]), (17, 33))
    save("float.tiff", Image.fromarray(rgb[..., 0].astype(np.float32) / 255), (37, 53))
    # A small PNG whose header claims 60000 x 60000 pixels: refused from the header, before any pixel is decoded.
    (tmp_path / "bomb.png").write_bytes(_png_claiming(rgb, 60_000, 60_000))
    cases["bomb.png"] = (tmp_path / "bomb.png", None)
    return cases


def _png_claiming(rgb, width, height):
    """A PNG of `rgb` whose IHDR claims another size (its CRC fixed)."""
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    png = bytearray(buffer.getvalue())
    struct.pack_into(">II", png, 16, width, height)  # IHDR's width and height, after the signature and chunk head
    struct.pack_into(">I", png, 29, zlib.crc32(bytes(png[12:29])))
    return bytes(png)


@pytest.mark.slow
def test_hostile_and_unusual_images_at_compress(trained, photos, tmp_path, capsys):
    model, directory = trained
    for name, (path, expected) in _hostile_images(tmp_path, photos).items():
        out = tmp_path / f"{name}.tfgc"
        capsys.readouterr()
        code = _compress_cli(path, out, directory)
        err = capsys.readouterr().err
        if expected is None:
            assert code == 1 and not out.exists(), name
            assert len(err.strip().splitlines()) == 1 and err.startswith("tfgc: error: "), (name, err)
        else:
            assert code == 0, (name, err)
            assert api.decode(out.read_bytes(), model).shape == expected + (3,), name
    # Pillow refuses 3.6 gigapixels itself; below its limit, tfgc's --max-pixels does, from the header too.
    (tmp_path / "large.png").write_bytes(_png_claiming(photos["chelsea"][:8, :8], 3000, 3000))
    assert _compress_cli(tmp_path / "large.png", tmp_path / "large.tfgc", directory, "--max-pixels", "1000000") == 1
    assert "3000x3000 pixels exceed the limit of 1000000" in capsys.readouterr().err


def test_max_pixels_at_the_command_line(trained, photos, tmp_path, capsys):
    model, directory = trained
    source = tmp_path / "in.png"
    Image.fromarray(photos["coffee"][:40, :40]).save(source)
    assert _compress_cli(source, tmp_path / "a.tfgc", directory, "--max-pixels", "1000") == 1
    assert "exceed the limit of 1000" in capsys.readouterr().err and not (tmp_path / "a.tfgc").exists()
    assert _compress_cli(source, tmp_path / "a.tfgc", directory) == 0
    assert main(["decompress", str(tmp_path / "a.tfgc"), str(tmp_path / "a.png"), "--model", str(directory),
                 "--max-pixels", "1000"]) == 1
    assert "exceeds the limit of 1000" in capsys.readouterr().err and not (tmp_path / "a.png").exists()


# ---- large images in tiles ----------------------------------------------------------------------------------------

def _gdn_model(family):
    tf.keras.utils.set_random_seed(3)
    name = {"gc": "gc-tiny", "sc": "sc-tiny", "sr": "rlsrgan-tiny"}[family]
    config = preset(name)
    return build_model(config.replace(normalization="gdn") if family != "sr" else config, for_training=False)


def _whole_and_tiled(family, model, image, monkeypatch, tile_pixels: int, spied: str):
    """(whole file, its image, tiled file, its image, [what tiling.`spied` returned per call]): `image` coded and
    decoded in one piece, then with tiles of `tile_pixels` (an sc file with a label map of two regions)."""
    kwargs = {}
    if family == "sc":
        labels = np.full(image.shape[:2], 7, np.uint8)
        labels[image.shape[0] * 2 // 5:, image.shape[1] // 3:] = 26
        kwargs = {"semantics": labels, "preserve": "all"}
    whole = api.encode(image, model, **kwargs)
    whole_image = api.decode(whole.data, model)
    monkeypatch.setattr(tiling, "TILE_PIXELS", tile_pixels)
    results = []
    original = getattr(tiling, spied)
    monkeypatch.setattr(tiling, spied, lambda *a, **k: results.append(original(*a, **k)) or results[-1])
    tiled = api.encode(image, model, **kwargs)
    return whole, whole_image, tiled, api.decode(tiled.data, model), results


@pytest.mark.parametrize("family", ["gc", "sc", "sr"])
def test_tiles_give_the_whole_image_transform(family, photos, monkeypatch):
    monkeypatch.setattr(geometry, "SHAPE_STEP_PIXELS", 1)  # windows of any size (below: in steps)
    model = _gdn_model(family)
    # 3 latent cells; 12 pixels of the stored image for sr
    whole, whole_image, tiled, tiled_image, runs = _whole_and_tiled(family, model, photos["astronaut"][:150, :133],
                                                                    monkeypatch, 48, "run")
    assert runs  # the tiled path ran
    if family != "sr":
        assert tiled.data == whole.data
    assert tiled_image.shape == whole_image.shape
    assert np.abs(tiled_image.astype(int) - whole_image.astype(int)).max() <= 1


@pytest.mark.parametrize("family", ["gc", "sc", "sr"])
def test_tiles_with_shape_steps_give_the_whole_image_transform(family, photos, monkeypatch):
    """With the default shape step, a large image in tiles (every window alike: tests/test_memory.py) codes to the
    bytes of the whole image in one piece, and decodes to its pixels within one level."""
    model = _gdn_model(family)
    assert model.geometry.shape_step == geometry.SHAPE_STEP_PIXELS // model.geometry.downsampling
    image = np.tile(photos["astronaut"], (2, 2, 1))[:700, :590]
    whole, whole_image, tiled, tiled_image, windows = _whole_and_tiled(family, model, image, monkeypatch,
                                                                       geometry.SHAPE_STEP_PIXELS, "spans")
    assert len(windows) == (2 if family == "sr" else 4) and all(len(spans) > 1 for spans in windows)
    assert tiled.data == whole.data
    assert np.abs(tiled_image.astype(int) - whole_image.astype(int)).max() <= 1


def test_instance_norm_models_take_whole_images_up_to_a_limit(trained, photos, monkeypatch):
    model, _ = trained
    assert model.geometry.whole_image == "instance normalization"
    monkeypatch.setattr(tiling, "TILE_PIXELS", 32)
    data = api.compress(photos["chelsea"][:64, :64], model)  # whole, as the image is under the limit
    monkeypatch.setattr(tiling, "WHOLE_IMAGE_PIXELS", 1000)
    with pytest.raises(ImageError, match="instance normalization"):
        api.compress(photos["chelsea"][:64, :64], model)
    with pytest.raises(ImageError, match="instance normalization"):
        api.decode(data, model)


# ---- determinism --------------------------------------------------------------------------------------------------

def _run(*args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, "-m", "tfgc", *args], capture_output=True, text=True, timeout=300, env=env)


@pytest.mark.slow
def test_identical_bytes_and_pixels_across_processes(trained, photos, tmp_path):
    model, directory = trained
    source = tmp_path / "in.png"
    Image.fromarray(photos["rocket"][:70, :90]).save(source)
    for name in ("a.tfgc", "b.tfgc"):
        result = _run("compress", str(source), str(tmp_path / name), "--model", str(directory), "--quiet")
        assert result.returncode == 0, result.stderr
    data = (tmp_path / "a.tfgc").read_bytes()
    assert (tmp_path / "b.tfgc").read_bytes() == data == api.compress(source, load_model(directory))
    result = _run("decompress", str(tmp_path / "a.tfgc"), str(tmp_path / "a.png"), "--model", str(directory))
    assert result.returncode == 0, result.stderr
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "a.png")), api.decode(data, model))


# ---- training faults ----------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_non_finite_steps_are_skipped_and_reported(photos):
    from tfgc.train import compile_model

    config = preset("gc-tiny").replace(adversarial_weight=0.0, feature_matching_weight=0.0)
    tf.keras.utils.set_random_seed(0)
    model = build_model(config)
    compile_model(model, config)
    good = tf.constant(photos["chelsea"][None, :32, :32].astype(np.float32))
    bad = tf.fill(tf.shape(good), float("nan"))
    data = tf.data.Dataset.from_tensor_slices(tf.stack([good, bad, good]))
    before = [w.numpy().copy() for w in model.trainable_weights]
    history = model.fit(data, steps_per_epoch=1, epochs=3, verbose=0).history
    assert history["nonfinite"] == [0.0, 1.0, 0.0]
    assert np.isfinite(history["loss"]).all()
    assert int(model.optimizer.iterations) == 3  # the skipped step counts, as an uninterrupted run's would
    assert all(np.isfinite(w.numpy()).all() for w in model.weights if w.dtype.is_floating)
    assert any(not np.array_equal(a, w.numpy()) for a, w in zip(before, model.trainable_weights))


@pytest.mark.slow
def test_training_stops_clearly_when_every_step_is_non_finite(tmp_path, capsys):
    from tfgc.train import MAX_NONFINITE_STEPS, main as train_main

    out = tmp_path / "run"
    # A learning rate this large throws the weights out of range after the first step; from then on every loss is
    # infinite or NaN.
    code = train_main(["--preset", "gc-tiny", "--steps", "40", "--steps-per-epoch", "20", "--checkpoint-every", "1",
                       "--learning-rate", "1e30", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("the update was skipped") >= MAX_NONFINITE_STEPS
    assert f"{MAX_NONFINITE_STEPS} steps in a row had a non-finite loss" in err.strip().splitlines()[-1]
    assert not (out / "model").exists()
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(out / "backup" / "chief")))
    for key, dtype in reader.get_variable_to_dtype_map().items():
        if dtype.is_floating:
            assert np.isfinite(reader.get_tensor(key)).all(), key


def _backup_step(run):
    path = tf.train.latest_checkpoint(str(run / "backup" / "chief")) if (run / "backup" / "chief").is_dir() else None
    if path is None:
        return None
    try:
        reader = tf.train.load_checkpoint(path)
    except tf.errors.NotFoundError:  # read while the training process replaced that backup with the next one
        return None
    return int(reader.get_tensor("model/optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE"))


@pytest.mark.slow
def test_sigkill_and_resume_continues_from_the_last_backup(tmp_path):
    run = tmp_path / "run"
    command = [sys.executable, "-m", "tfgc.train", "--preset", "gc-tiny", "--steps", "12", "--steps-per-epoch", "4",
               "--checkpoint-every", "1", "--out", str(run)]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        deadline = time.monotonic() + 240
        while (_backup_step(run) or 0) < 3 and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait()
    saved = _backup_step(run)
    assert saved is not None and 3 <= saved < 12
    resumed = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resumed from step {saved}" in resumed.stdout
    manifest = json.loads((run / "model" / "manifest.json").read_text())
    assert manifest["steps"] == 12 and manifest["resumed_from_step"] == saved
    load_model(run / "model")


def test_a_model_directory_is_checked_before_anything_is_built(trained, tmp_path):
    from tfgc.errors import ModelError
    from tfgc.models.store import save_model

    model, _ = trained
    directory = save_model(model, tmp_path / "model")
    config = json.loads((directory / "config.json").read_text())
    config["model"]["width"] = 10**6  # would take terabytes
    (directory / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelError, match="width must be in 1..1024"):
        load_model(directory)
    config["model"]["width"] = model.config.model.width
    config["format"] = 99
    (directory / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelError, match="newer"):
        load_model(directory)
