"""The super-resolution family with other base codecs than JPEG and other scales: the file, the fixed Lanczos skip, the
edsr generator, the cached training bases and two-stage training with fidelity control."""

import json
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tfgc.codec import api, bitstream, sr
from tfgc.codec.classic import CODECS
from tfgc.config import Config, preset
from tfgc.errors import ConfigError, DataError, ModelMismatchError
from tfgc.models.registry import build_model
from tfgc.models.store import load_model, save_model
from tfgc.nn.layers import LanczosUpsample

BASES = [base for base in bitstream.BASE_CODECS if CODECS[base].available()]


def _config(**overrides):
    return preset("sr-tiny").replace(**overrides)


def _psnr(a, b):
    return 10 * np.log10(255.0**2 / np.mean((a.astype(float) - b.astype(float)) ** 2))


@pytest.mark.parametrize("base", BASES)
@pytest.mark.parametrize("scale", [1, 2, 4])
def test_each_base_codec_and_scale_round_trips_its_bytes(photos, base, scale):
    image = photos["chelsea"][:45, :61]
    result = api.encode_sr(image, scale, 30, base)
    header, payload = bitstream.unpack(result.data)
    stored = bitstream.unpack_sr(payload, header.version)
    assert (header.version, stored.base, stored.scale, stored.quality) == (3, base, scale, 30)
    codec_file = sr.encode_base(sr.downsample(image, scale), 30, base)
    assert header.packed_base == (base in bitstream.BASE_TEMPLATES)
    if header.packed_base:  # the container's head deflated against a template; the codec's bytes come back exactly
        assert bitstream.unpack_base_container(stored.data, base) == codec_file
        assert len(stored.data) < len(codec_file) - 200
    else:
        assert stored.data == codec_file
    assert header.fingerprint == sr.fingerprint(scale, base)
    assert result.report()["base_bytes"] == len(stored.data) and result.report()["base"] == base
    low = api.read_sr(result.data).low
    assert low.shape == (-(-45 // scale), -(-61 // scale), 3)
    decoded = api.decode(result.data, decoder="lanczos")
    np.testing.assert_array_equal(decoded, sr.upscale(low, scale, "lanczos", 45, 61))
    if scale == 1:
        np.testing.assert_array_equal(decoded, low)  # at full size the base is the image


@pytest.mark.parametrize("base", [b for b in BASES if b in bitstream.BASE_TEMPLATES])
def test_a_damaged_packed_container_is_a_clear_error(photos, base):
    from tfgc.errors import FormatError

    data = api.encode_sr(photos["coffee"][:40, :48], 2, 20, base).data
    header, payload = bitstream.unpack(data)
    stored = bitstream.unpack_sr(payload, 3)
    length = int.from_bytes(stored.data[:2], "big")

    def with_base(packed, flags=header.flags):
        return bitstream.pack(bitstream.Header("sr", flags, header.fingerprint, 40, 48), payload[:3] + packed)

    for damaged, message in [
        (stored.data[:1], "truncated"), (b"\xff\xff" + stored.data[2:], "announces 65535 bytes"),
        (stored.data[:2] + bytes(length) + stored.data[2 + length:], "inflated|damaged"),
        (stored.data[:2 + length - 1] + stored.data[2 + length:], "inflated|damaged|cannot be decoded"),
    ]:
        with pytest.raises(FormatError, match=message):
            api.decode(with_base(damaged), decoder="lanczos")
    with pytest.raises(FormatError, match="cannot be decoded|not a"):  # unpacked, the bytes are no HEIC/AVIF
        api.decode(with_base(stored.data, flags=0), decoder="lanczos")
    with pytest.raises(FormatError, match="not defined for gc"):
        bitstream.unpack(bitstream.pack(bitstream.Header("gc", bitstream.FLAG_PACKED_BASE, bytes(8), 1, 1), b""))


def test_fingerprints_name_base_and_scale_and_jpeg_keeps_its_old_one():
    prints = {(base, scale): sr.fingerprint(scale, base) for base in bitstream.BASE_CODECS for scale in (1, 2, 4, 8)}
    assert len(set(prints.values())) == len(prints)
    shipped = json.loads(open("saved_models/rlsrgan-small-x4/1/manifest.json").read())
    assert prints[("jpeg", 4)].hex() == shipped["fingerprint"]


def test_a_version_2_file_decodes_as_the_version_3_file_of_the_same_jpeg(photos):
    image = photos["coffee"][:64, :80]
    current = api.encode_sr(image, 4, 60)
    header, payload = bitstream.unpack(current.data)
    stored = bitstream.unpack_sr(payload, 3)
    # what tfgc wrote before other bases: version 2, no codec byte
    legacy = bitstream.pack(bitstream.Header("sr", 0, header.fingerprint, 64, 80, version=2),
                            bytes([4, 60]) + stored.data)
    assert legacy[4] == 2 and len(legacy) == len(current.data) - 1
    model = load_model("saved_models/rlsrgan-small-x4/1")
    np.testing.assert_array_equal(api.decode(legacy, model), api.decode(current.data, model))
    np.testing.assert_array_equal(api.decode(legacy, decoder="lanczos"), api.decode(current.data, decoder="lanczos"))


@pytest.mark.parametrize("scale", [2, 4])
def test_the_fixed_lanczos_upscaler_is_pillows_inside_the_border(photos, scale):
    low = photos["astronaut"][100:164, 200:280]
    ours = np.clip(np.round(LanczosUpsample(scale)(tf.constant(low[None], tf.float32))[0].numpy()), 0, 255)
    pillow = np.asarray(Image.fromarray(low).resize((80 * scale, 64 * scale), Image.LANCZOS)).astype(float)
    inner = slice(4 * scale, -4 * scale)
    # Pillow computes in fixed point and rounds and clips to 8 bits between its horizontal and vertical passes (which
    # matters only where the filter overshoots at hard edges): all but a few pixels within one level.
    difference = np.abs(ours[inner, inner] - pillow[inner, inner])
    assert (difference > 1).mean() < 0.005 and difference.mean() < 0.4
    assert LanczosUpsample(scale)(tf.zeros([1, 1, 1, 3])).shape == (1, scale, scale, 3)  # a 1x1 base too


def test_an_untrained_edsr_decoder_is_the_lanczos_upscaler(photos):
    tf.keras.utils.set_random_seed(5)
    model = build_model(_config(base_codec="webp" if "webp" in BASES else "jpeg"), for_training=False)
    data = api.compress(photos["coffee"][:60, :84], model)
    decoded = api.decode(data, model)
    low = api.read_sr(data).low
    lanczos = api.decode(data, decoder="lanczos")
    expected = LanczosUpsample(2)(tf.constant(low[None], tf.float32) / 127.5 - 1.0)[0].numpy()
    np.testing.assert_array_equal(decoded, np.clip(np.round((expected + 1) * 127.5), 0, 255)[:60, :84])
    assert _psnr(decoded, lanczos) > 40


def test_config_rules_of_the_family():
    with pytest.raises(ConfigError, match="edsr generator"):
        preset("rlsrgan-tiny").replace(scale=1)
    with pytest.raises(ConfigError, match="base_quality"):
        _config(base_codec="jpeg", base_qualities=[0, 50])  # JPEG's scale starts at 1
    assert _config(base_codec="heic", base_qualities=[0, 50]).train.base_qualities == [0, 50]
    with pytest.raises(ConfigError, match="base_codec"):
        _config(base_codec="png")
    with pytest.raises(ConfigError, match="interpolates edsr"):
        preset("rlsrgan-tiny").replace(fidelity_control=True)
    with pytest.raises(ConfigError, match="upsampling_skip"):
        _config(upsampling_skip="none")
    legacy = dict(preset("rlsrgan-tiny").to_dict())
    legacy["model"] = {k: v for k, v in legacy["model"].items() if k != "base_quality"}
    legacy["model"]["jpeg_quality"] = 40  # a config written before other bases
    assert Config.from_dict(legacy).model.base_quality == 40


def test_training_bases_are_whole_images_coded_once_and_crops_align(tmp_path, photo_folder, capsys):
    from tfgc import data

    folder = photo_folder("images", ("astronaut", "coffee", "chelsea"), height=80, width=120)
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(folder / "small.png")
    paths = data.list_images([folder])
    cache = tmp_path / "cache"
    images = data.base_layer_images(paths, "jpeg", 2, [20, 80], crop_size=32, cache=cache, progress=False)
    assert "1 of 4 images are smaller than the 32-pixel crop" in capsys.readouterr().out
    assert len(images) == 3 and all(len(i.bases) == 2 for i in images)
    first = images[0]
    whole = np.asarray(Image.open(first.path))
    for quality, base in zip((20, 80), first.bases):
        # the base of the whole image, not of a crop: a crop of the coded image holds its real artefacts
        np.testing.assert_array_equal(np.asarray(Image.open(base)), sr.degrade(whole, 2, quality))
    stamps = {b: (tmp_path / b).stat().st_mtime_ns for i in images for b in i.bases}
    again = data.base_layer_images(paths, "jpeg", 2, [20, 80], crop_size=32, cache=cache, progress=False)
    assert again == images and "coding" not in capsys.readouterr().out  # made once
    assert stamps == {b: (tmp_path / b).stat().st_mtime_ns for b in stamps}

    tf.random.set_seed(0)
    bases = {i.path: [np.asarray(Image.open(b)) for b in i.bases] for i in images}
    originals = {i.path: np.asarray(Image.open(i.path)) for i in images}
    batch = next(iter(data.base_layer_dataset(images, 2, 32, batch_size=6)))
    for low, high in zip(batch["low"].numpy(), batch["high"].numpy().astype(np.uint8)):
        # each example is an aligned crop (maybe flipped) of one image and one of its bases
        found = False
        for path, stack in bases.items():
            for base in stack:
                for flip in (False, True):
                    b, o = (base[:, ::-1], originals[path][:, ::-1]) if flip else (base, originals[path])
                    for top in range(b.shape[0] - 16 + 1):
                        for left in range(b.shape[1] - 16 + 1):
                            if np.array_equal(b[top:top + 16, left:left + 16], low):
                                found |= np.array_equal(o[2 * top:2 * top + 32, 2 * left:2 * left + 32], high)
        assert found
    with pytest.raises(DataError, match="no image of at least"):
        data.base_layer_images(paths, "jpeg", 2, [50], crop_size=256, cache=cache, progress=False)


@pytest.mark.slow
def test_stage_one_learns_and_stage_two_interpolates_from_it(tmp_path, photos, photo_folder):
    from tfgc import data
    from tfgc.models.store import initialize_from
    from tfgc.train import compile_model

    folder = photo_folder("images", ("astronaut", "coffee"), height=96, width=128)
    images = data.base_layer_images(data.list_images([folder]), "jpeg", 2, [30, 70], 32, tmp_path / "cache",
                                    progress=False)
    config = _config(width=8, learning_rate=3e-3, batch_size=8, stage=1)
    tf.keras.utils.set_random_seed(2)
    model = build_model(config)
    compile_model(model, config)
    history = model.fit(data.base_layer_dataset(images, 2, 32, 8), steps_per_epoch=40, epochs=2, verbose=0)
    psnr = history.history["psnr"]
    assert psnr[1] > psnr[0]  # the decoder learns on top of the upscaler
    stage1 = save_model(model, tmp_path / "stage1")

    gan = _config(width=8, stage=2, init_from=str(stage1), fidelity_control=True, adversarial_weight=1e-2,
                  learning_rate=1e-3)
    tf.keras.utils.set_random_seed(3)
    model2 = build_model(gan)
    initialize_from(model2, stage1)
    compile_model(model2, gan)
    model2.fit(data.base_layer_dataset(images, 2, 32, 4), steps_per_epoch=5, epochs=1, verbose=0)
    stage2 = load_model(save_model(model2, tmp_path / "stage2"))
    first = load_model(stage1)
    file = api.compress(photos["chelsea"][:70, :90], first)
    assert file == api.compress(photos["chelsea"][:70, :90], stage2)  # one file for both
    mse, half, gan_decoded = (api.decode(file, stage2, alpha=a) for a in (0.0, 0.5, 1.0))
    np.testing.assert_array_equal(mse, api.decode(file, first))  # alpha 0 is the stage-1 decoder, bit for bit
    assert not np.array_equal(mse, gan_decoded)
    between = np.abs(half.astype(int) - (mse.astype(int) + gan_decoded.astype(int)) / 2)
    assert between.mean() < np.abs(mse.astype(int) - gan_decoded.astype(int)).mean()
    assert stage2.config.model.default_alpha == 1.0
    np.testing.assert_array_equal(api.decode(file, stage2), gan_decoded)


@pytest.mark.slow
def test_a_fidelity_controlled_sr_decoder_exports_with_alpha(tmp_path, photos):
    from tfgc import export

    config = _config(stage=2, init_from="unused", fidelity_control=True, adversarial_weight=1e-3)
    tf.keras.utils.set_random_seed(4)
    model = build_model(config, for_training=False)
    rng = np.random.default_rng(0)
    for mse_weight, weight in zip(model.mse_decoder.weights + model.mse_encoder.weights,
                                  model.decoder.weights + model.encoder.weights):
        weight.assign(mse_weight + rng.normal(0, 0.05, mse_weight.shape))  # the two decoders differ
    directory = save_model(model, tmp_path / "model")
    check = tmp_path / "check.png"
    Image.fromarray(photos["coffee"][:60, :84]).save(check)
    folders = export.export(directory, tmp_path / "out", ["serving", "onnx"], check_image=check)
    loaded = load_model(directory)
    data = api.compress(photos["coffee"][:60, :84], loaded)
    for alpha in (0.0, 0.5, 1.0):
        reference = api.decode(data, loaded, alpha=alpha)
        np.testing.assert_array_equal(api.decode(data, load_model(folders["serving"]), alpha=alpha), reference)
        onnx = api.decode(data, export.load_backend(tmp_path / "out", "onnx"), alpha=alpha)
        assert np.abs(onnx.astype(int) - reference.astype(int)).max() <= 2
    manifest = json.loads((folders["onnx"] / export.EXPORT_MANIFEST).read_text())
    assert "alpha" in manifest["signatures"]["synthesis"]["inputs"]


def test_a_decoder_refuses_files_of_another_base(photos):
    tf.keras.utils.set_random_seed(5)
    model = build_model(_config(), for_training=False)
    other = [b for b in BASES if b != "jpeg"]
    if not other:
        pytest.skip("no base codec but JPEG here")
    with pytest.raises(ModelMismatchError, match="decodes jpeg bases at 1/2"):
        api.decode(api.encode_sr(photos["coffee"][:32, :32], 2, 50, other[0]).data, model)


def test_compress_cli_with_a_base_codec_and_the_model_settings(tmp_path, photos):
    def tfgc(*args):
        return subprocess.run([sys.executable, "-m", "tfgc", *map(str, args)], capture_output=True, text=True,
                              timeout=300)

    image = tmp_path / "coffee.png"
    Image.fromarray(photos["coffee"][:64, :96]).save(image)
    base = BASES[-1]
    packed = tmp_path / "coffee.tfgc"
    done = tfgc("compress", image, packed, "--codec", "sr", "--base", base, "--scale", 2, "--quality", 20)
    assert done.returncode == 0, done.stderr
    info = json.loads(tfgc("info", packed).stdout)
    assert (info["base"], info["scale"], info["quality"]) == (base, 2, 20)
    assert "at 1/2 size" in done.stdout
    tf.keras.utils.set_random_seed(5)
    directory = save_model(build_model(_config(), for_training=False), tmp_path / "model")
    refused = tfgc("compress", image, tmp_path / "x.tfgc", "--codec", "sr", "--model", directory, "--base", "webp")
    assert refused.returncode != 0 and "decodes jpeg bases" in refused.stderr
    assert not (tmp_path / "x.tfgc").exists()


@pytest.mark.slow
def test_an_sr_file_decodes_without_tensorflow_through_an_onnx_or_tflite_export(tmp_path, photos):
    from tfgc import export

    tf.keras.utils.set_random_seed(6)
    model = build_model(_config(), for_training=False)
    for weight in model.decoder.weights:  # a decoder that adds something to the upscale
        weight.assign(np.random.default_rng(1).normal(0, 0.01, weight.shape))
    directory = save_model(model, tmp_path / "model")
    check = tmp_path / "check.png"
    Image.fromarray(photos["coffee"][:48, :64]).save(check)
    export.export(directory, tmp_path / "out", ["onnx", "tflite"], check_image=check)
    image = tmp_path / "astronaut.png"
    Image.fromarray(photos["astronaut"][:90, :70]).save(image)
    packed = tmp_path / "astronaut.tfgc"
    packed.write_bytes(api.compress(image, model))
    reference = api.decode(packed.read_bytes(), model)
    backends = ["onnx"]
    try:
        import tflite_runtime  # noqa: F401
        backends.append("tflite")
    except ImportError:
        pass
    for backend in backends:
        script = (
            "import sys, numpy as np\n"
            "from tfgc.codec import api\n"
            "from tfgc.export import load_backend\n"
            f"image = api.decode(open({str(packed)!r}, 'rb').read(), load_backend({str(tmp_path / 'out')!r}, "
            f"{backend!r}))\n"
            f"np.save({str(tmp_path / backend)!r}, image)\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', "
            "'tensorflow_compression')))\n")
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        assert done.stdout.strip() == "[]"  # no TensorFlow in the process
        decoded = np.load(tmp_path / f"{backend}.npy")
        assert decoded.shape == reference.shape and np.abs(decoded.astype(int) - reference.astype(int)).max() <= 2


@pytest.mark.slow
def test_bench_draws_an_sr_model_as_a_curve_beside_the_upscales_of_the_same_files(tmp_path, photos, photo_folder):
    import argparse

    from tfgc.reports import bench

    folder = photo_folder("images", ("coffee", "chelsea"), height=64, width=96)
    tf.keras.utils.set_random_seed(5)
    directory = save_model(build_model(_config(), for_training=False), tmp_path / "srtiny")
    out = tmp_path / "bench"
    args = argparse.Namespace(data=[str(folder)], tfds=None, limit=None, inception_weights=None, force=False,
                              model=[str(directory)], codecs="jpeg", out=str(out), name="report", crop_image=None,
                              crop_bpp=None, crop_size=32, alphas=None, sr_qualities=[30, 70], target_bpps=[0.5, 1.0])
    assert bench.run_bench(args) == 0
    result = json.loads((out / "report" / "results.json").read_text())
    learned, lanczos = result["codecs"]["srtiny"], result["codecs"]["JPEG at 1/2 + Lanczos"]
    assert [p["setting"] for p in learned] == ["q30", "q70"] and len(result["codecs"]["JPEG at 1/2 + bicubic"]) == 2
    assert [p["bpp"] for p in learned] == [p["bpp"] for p in lanczos]  # the same files
    expected = np.mean([8 * len(api.encode_sr(photos[n][:64, :96], 2, 30, "jpeg").data) / (64 * 96)
                        for n in ("coffee", "chelsea")])
    assert learned[0]["bpp"] == pytest.approx(expected)
    # An untrained edsr decoder is the Lanczos upscaler, up to Pillow's 8-bit intermediate rounding and its borders.
    assert abs(learned[0]["psnr"] - lanczos[0]["psnr"]) < 0.5
    report = (out / "report.md").read_text()
    assert "against a Lanczos upscale of the same files" in report and "| tfgc srtiny | q30 |" in report
    assert "PSNR @ 0.5 bpp" in report


@pytest.mark.slow
def test_two_stage_training_from_the_command_line(tmp_path, photo_folder, monkeypatch):
    monkeypatch.setenv("TFGC_BASE_CACHE", str(tmp_path / "cache"))
    folder = photo_folder("images", ("astronaut", "coffee"), height=96, width=128)

    def run(*args, module="tfgc"):
        done = subprocess.run([sys.executable, "-m", module, *map(str, args)], capture_output=True, text=True,
                              timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        return done

    first = run("--preset", "sr-tiny", "--stage", "1", "--data", folder, "--out", tmp_path / "s1", "--steps", 2,
                module="tfgc.train")
    assert "coding 4 bases (jpeg, 1/2 size, qualities 30, 70) of 2 images once" in first.stdout
    second = run("--stage", "2", "--init-from", tmp_path / "s1" / "model", "--discriminator", "patch", "--data",
                 folder, "--out", tmp_path / "s2", "--steps", 2, module="tfgc.train")
    assert "coding" not in second.stdout  # the bases of stage 1, from the cache
    config = json.loads((tmp_path / "s2" / "model" / "config.json").read_text())
    assert config["model"]["fidelity_control"] and config["model"]["discriminator"] == "patch"
    assert (config["model"]["adversarial_weight"], config["model"]["feature_matching_weight"]) == (0.05, 0.5)
    image = folder / "coffee.png"
    run("compress", image, tmp_path / "c.tfgc", "--model", tmp_path / "s2" / "model")
    run("decompress", tmp_path / "c.tfgc", tmp_path / "mse.png", "--model", tmp_path / "s2" / "model", "--alpha", 0)
    run("decompress", tmp_path / "c.tfgc", tmp_path / "one.png", "--model", tmp_path / "s1" / "model")
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "mse.png")),
                                  np.asarray(Image.open(tmp_path / "one.png")))
