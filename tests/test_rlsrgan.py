"""RL-SRGAN: the super-resolution codec (downsampled JPEG), its generator, the actor-critic arithmetic and schedule,
the SRGAN baseline beside it, training, the CLI and the report."""

import json
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tfgc.codec import api, bitstream, sr
from tfgc.config import preset
from tfgc.errors import ConfigError, FormatError, ModelError, TfgcError
from tfgc.models import sr as sr_family
from tfgc.models.registry import build_model
from tfgc.models.store import load_model, save_model


def _config(**overrides):
    return preset("rlsrgan-tiny").replace(**overrides)


def _batch(photos, crop=32, scale=4, quality=75, n=2):
    high = np.stack([photos["astronaut"][:crop, i * crop:(i + 1) * crop] for i in range(n)])
    low = np.stack([sr.degrade(h, scale, quality) for h in high])
    return {"low": tf.constant(low), "high": tf.constant(high.astype(np.float32))}


@pytest.fixture(scope="module")
def sr_model():
    tf.keras.utils.set_random_seed(3)
    return build_model(_config(), for_training=False)


# ---- the actor-critic arithmetic -----------------------------------------------------------------------------------

def test_rewards_mark_the_steps_whose_psnr_rose():
    psnrs = [20.0, 21.0, 21.0, 20.5, 22.0]
    np.testing.assert_array_equal(sr_family.psnr_rewards(psnrs).numpy(), [0, 1, 0, 0, 1])  # no previous step
    np.testing.assert_array_equal(sr_family.psnr_rewards(psnrs, previous=19.0).numpy(), [1, 1, 0, 0, 1])
    np.testing.assert_array_equal(sr_family.psnr_rewards(psnrs, previous=25.0).numpy(), [0, 1, 0, 0, 1])


def test_discounted_return_of_hand_made_rewards():
    # Oldest first; the newest reward (the one the trained state earned) counts fully.
    assert sr_family.discounted_return([1.0, 0.0, 1.0], 0.5).numpy() == pytest.approx(1.25)
    assert sr_family.discounted_return([0.0, 0.0, 0.0, 1.0], 0.9).numpy() == pytest.approx(1.0)
    assert sr_family.discounted_return([1.0, 0.0, 0.0, 0.0], 0.9).numpy() == pytest.approx(0.729)
    assert sr_family.discounted_return([1.0, 1.0, 1.0, 0.0], 0.9).numpy() == pytest.approx(0.9 + 0.81 + 0.729)
    assert sr_family.discounted_return([1.0, 1.0, 1.0], 1.0).numpy() == pytest.approx(3.0)
    assert sr_family.discounted_return([1.0, 1.0, 1.0], 0.0).numpy() == pytest.approx(1.0)


def test_gaussian_log_probability():
    x, mean, log_std = 23.0, 25.0, np.log(2.0)
    expected = -0.5 * ((x - mean) / 2.0) ** 2 - np.log(2.0) - 0.5 * np.log(2 * np.pi)
    assert float(sr_family.gaussian_log_prob(x, mean, log_std)) == pytest.approx(expected, rel=1e-6)


def test_the_schedule_is_every_kth_step():
    applied = [int(s) for s in range(12) if sr_family.rl_applies(tf.constant(s, tf.int64), 4)]
    assert applied == [3, 7, 11]


@pytest.mark.slow
def test_the_rl_term_joins_the_loss_exactly_every_k_steps(photos):
    from tfgc.train import compile_model

    config = _config(rl_every=3)
    tf.keras.utils.set_random_seed(0)
    model = build_model(config)
    compile_model(model, config)
    batch = _batch(photos)
    applied, terms, psnrs = [], [], []
    for _ in range(8):
        model.reset_metrics()
        logs = model.train_step(batch)
        applied.append(float(logs["rl_applied"]))
        terms.append(float(logs["actor_critic"]))
        psnrs.append(float(logs["psnr"]))
    assert applied == [0, 0, 1, 0, 0, 1, 0, 0]
    assert [t != 0 for t in terms] == [bool(a) for a in applied]
    # The state holds the last k rewards of the PSNR history the steps reported.
    np.testing.assert_array_equal(model.rewards.numpy(), sr_family.psnr_rewards(psnrs).numpy()[-3:])
    assert int(model.rl_step.numpy()) == 8


def test_srgan_and_rl_srgan_share_everything_but_the_head_and_its_loss(photos):
    from tfgc.train import compile_model

    models = {}
    for rl in (False, True):
        config = _config(actor_critic=rl, rl_every=2)
        tf.keras.utils.set_random_seed(5)
        models[rl] = build_model(config)
        compile_model(models[rl], config)
    baseline, hybrid = models[False], models[True]

    def networks(model):
        return model.encoder.variables + model.decoder.variables + model.discriminator.variables

    def own(model):  # the model's variables, not its metric trackers' or the run's training time
        bookkeeping = {id(v) for metric in model.metrics for v in metric.variables} | {id(model.training_seconds)}
        return [v for v in model.variables if id(v) not in bookkeeping]

    assert {id(v) for v in own(baseline)} == {id(v) for v in networks(baseline)}
    for a, b in zip(networks(baseline), networks(hybrid), strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    shared = {id(v) for v in networks(hybrid)}
    head = hybrid.actor_critic.variables + [hybrid.rl_step, hybrid.previous_psnr, hybrid.rewards]
    assert {id(v) for v in own(hybrid) if id(v) not in shared} == {id(v) for v in head}
    assert hybrid.loss_term_names() == baseline.loss_term_names() + ["actor_critic"]
    # On a step without the RL term both optimize the same SRGAN loss of the same weights on the same batch.
    batch = _batch(photos)
    first_base, first_hybrid = baseline.train_step(batch), hybrid.train_step(batch)
    assert float(first_hybrid["actor_critic"]) == 0.0
    for name in ("distortion", "adversarial", "d_loss", "psnr"):
        assert float(first_base[name]) == pytest.approx(float(first_hybrid[name]), rel=1e-6)


# ---- generator and codec -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("scale", [2, 4, 8])
def test_generator_output_shape_for_each_scale(scale):
    tf.keras.utils.set_random_seed(0)
    model = build_model(_config(scale=scale), for_training=False)
    low = np.zeros([2, 5, 7, 3], np.uint8)
    assert model.synthesis(low, 5 * scale, 7 * scale).shape == (2, 5 * scale, 7 * scale, 3)
    assert model.synthesis(low, 5 * scale - 1, 7 * scale - 3).shape == (2, 5 * scale - 1, 7 * scale - 3, 3)
    x_hat = model.generate({"low": low, "high": np.zeros([2, 5 * scale, 7 * scale, 3], np.float32)}, False)["x_hat"]
    assert x_hat.shape == (2, 5 * scale, 7 * scale, 3)


def test_the_paper_generator_shape():
    model = build_model(preset("rlsrgan-paper").replace(perceptual_weight=0.0, perceptual_weights=None),
                        for_training=False)
    convs = [layer for layer in model.encoder.submodules if isinstance(layer, tf.keras.layers.Conv2D)]
    assert convs[0].kernel_size == (9, 9) and convs[0].filters == 64
    assert len(convs) == 1 + 2 * 5 + 1  # head, 5 residual blocks of two convs, the conv before the long skip
    shuffles = [layer for layer in model.decoder.submodules if isinstance(layer, sr_family.SubPixelUpsample)]
    assert len(shuffles) == 2  # x4


@pytest.mark.parametrize("size", [(37, 53), (64, 64), (1, 1)])
def test_the_sr_file_round_trips_the_jpeg_and_the_size(photos, sr_model, size):
    image = photos["chelsea"][:size[0], :size[1]]
    result = api.encode_sr(image, 4, 60)
    header, payload = bitstream.unpack(result.data)
    stored = bitstream.unpack_sr(payload, header.version)
    assert (header.family, header.height, header.width) == ("sr", *size)
    assert stored.data == sr.encode_base(sr.downsample(image, 4), 60, "jpeg")  # the same JPEG bytes in and out
    assert (stored.base, stored.scale, stored.quality) == ("jpeg", 4, 60)
    assert len(result.data) == bitstream.OVERHEAD + 3 + len(stored.data)
    assert result.report()["bpp"] == pytest.approx(8 * len(result.data) / (size[0] * size[1]))
    low = api.read_sr(result.data).low
    assert low.shape == (-(-size[0] // 4), -(-size[1] // 4), 3)
    for decoder in ("lanczos", "bicubic"):
        out = api.decode(result.data, decoder=decoder)
        assert out.shape == (*size, 3)
        np.testing.assert_array_equal(out, sr.upscale(low, 4, decoder, *size))
    decoded = api.decode(result.data, sr_model)
    assert decoded.shape == (*size, 3)
    np.testing.assert_array_equal(decoded, sr_model.synthesis(low[None], *size).numpy()[0])


def test_an_sr_model_writes_the_codec_file_of_its_settings(photos, sr_model):
    m = sr_model.config.model
    data = api.encode(photos["coffee"], sr_model).data
    assert data == api.encode_sr(photos["coffee"], m.scale, m.base_quality, m.base_codec).data
    low = sr.degrade(photos["coffee"], m.scale, m.base_quality, m.base_codec)  # what the file stores, decoded
    height, width = photos["coffee"].shape[:2]
    np.testing.assert_array_equal(api.decode(data, sr_model), sr_model.synthesis(low[None], height, width).numpy()[0])


def test_training_examples_hold_exactly_what_a_file_stores(photos):
    from tfgc.data import super_resolution_example

    crop = photos["coffee"][:48, :64].astype(np.float32)
    example = super_resolution_example(4, 50)(tf.constant(crop))
    np.testing.assert_array_equal(example["low"].numpy(), sr.degrade(crop.astype(np.uint8), 4, 50))
    np.testing.assert_array_equal(example["high"].numpy(), crop)


def test_damaged_or_wrong_sr_files_are_clear_errors(photos, sr_model, tiny_model):
    image = photos["chelsea"][:40, :40]
    data = api.encode_sr(image, 4, 75).data
    header, payload = bitstream.unpack(data)

    def repacked(new_payload, **fields):
        return bitstream.pack(bitstream.Header(**dict(vars(header), **fields)), new_payload)

    assert payload[:3] == bytes([1, 4, 75])  # JPEG, scale 4, quality 75
    with pytest.raises(FormatError, match="scale 3"):
        api.decode(repacked(payload[:1] + bytes([3]) + payload[2:]), sr_model)
    with pytest.raises(FormatError, match="unknown base codec 9"):
        api.decode(repacked(bytes([9]) + payload[1:]), sr_model)
    with pytest.raises(FormatError, match="no base image"):
        api.decode(repacked(payload[:3]), sr_model)
    with pytest.raises(FormatError, match="cannot be decoded|JPEG"):
        api.decode(repacked(payload[:3] + b"\xff\xd8 not a jpeg"), sr_model)
    with pytest.raises(FormatError, match="header implies"):  # a JPEG of another size than the header's image
        api.decode(repacked(payload, height=80), sr_model)
    with pytest.raises(FormatError, match="fingerprint"):
        api.decode(repacked(payload[:1] + bytes([2]) + payload[2:]), decoder="lanczos")
    with pytest.raises(FormatError, match="fingerprint"):  # another base codec is another fingerprint
        api.decode(repacked(bytes([4]) + payload[1:]), decoder="lanczos")
    with pytest.raises(FormatError, match="not a HEIF"):  # a JPEG where the header promises HEIC
        api.decode(repacked(bytes([4]) + payload[1:], fingerprint=sr.fingerprint(4, "heic")), decoder="lanczos")
    with pytest.raises(ModelError, match="sr files"):
        api.decode(api.compress(image, tiny_model), decoder="lanczos")
    with pytest.raises(ModelError, match="no model"):
        api.decode(data, sr_model, decoder="bicubic")
    with pytest.raises(TfgcError, match="scale"):
        api.encode_sr(image, 3, 75)
    with pytest.raises(TfgcError, match="quality"):
        api.encode_sr(image, 4, 0)


def test_config_of_sr_models():
    with pytest.raises(ConfigError, match="scale"):
        _config(scale=3)
    with pytest.raises(ConfigError, match="base_quality"):
        _config(base_quality=101)
    with pytest.raises(ConfigError, match="rl_every"):
        _config(rl_every=0)
    assert preset("rlsrgan-paper").model.adversarial_weight == 1e-3
    assert preset("rlsrgan-paper").model.perceptual_weight == 6e-3
    assert preset("rlsrgan-paper").model.value_weight == 5e-3
    assert preset("rlsrgan-paper").model.upsampling_skip == "none"


def test_save_load_and_both_variants_decode_the_same_files(tmp_path, photos):
    image = photos["astronaut"][:64, :48]
    decoded = {}
    for rl in (False, True):
        tf.keras.utils.set_random_seed(11)
        model = build_model(_config(actor_critic=rl))
        directory = save_model(model, tmp_path / f"rl{rl}")
        loaded = load_model(directory)
        assert loaded.actor_critic is None and loaded.discriminator is None  # inference holds neither
        data = api.compress(image, loaded)
        decoded[rl] = api.decode(data, loaded)
        np.testing.assert_array_equal(decoded[rl], api.decode(data, model))
        manifest = json.loads((directory / "manifest.json").read_text())
        assert manifest["scale"] == 4 and manifest["actor_critic"] is rl and "bound_bpp" not in manifest
    # The same seed gives the same generator: the head is all that differs.
    np.testing.assert_array_equal(decoded[False], decoded[True])


@pytest.mark.parametrize("mode", ["float16", "bfloat16"])
@pytest.mark.slow
def test_sr_mixed_precision_steps_keep_weights_finite(photos, mode):
    from tfgc.train import compile_model, set_precision

    set_precision(mode)
    try:
        config = _config()
        tf.keras.utils.set_random_seed(0)
        model = build_model(config)
        compile_model(model, config)
        history = model.fit(tf.data.Dataset.from_tensors(_batch(photos)).repeat(), steps_per_epoch=3, epochs=1,
                            verbose=0)
        assert all(np.isfinite(v[0]) for v in history.history.values())
        assert all(np.isfinite(w).all() for w in model.get_weights())
    finally:
        set_precision("off")


@pytest.mark.slow
def test_sr_mirrored_strategy_step_shares_the_reward_state(photos, one_training_step):
    config = _config(rl_every=1)
    batch = _batch(photos, n=4)
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"],
                                              cross_device_ops=tf.distribute.ReductionToOneDevice())
    start, after, history = one_training_step(config, batch, mirrored)
    assert history["rl_applied"] == [1.0]
    assert sum(float(np.abs(a - b).sum()) for a, b in zip(after, start)) > 0
    assert all(np.isfinite(w).all() for w in after)


@pytest.mark.slow
def test_sr_training_and_codec_cli_end_to_end(tmp_path, photos, photo_folder):
    from PIL import Image

    data = photo_folder("data", ("astronaut", "coffee"), height=96, width=128)
    run = tmp_path / "run"

    def tfgc(*args, module="tfgc"):
        return subprocess.run([sys.executable, "-m", module, *map(str, args)], capture_output=True, text=True,
                              timeout=600)

    trained = tfgc("--preset", "rlsrgan-tiny", "--data", data, "--out", run, "--steps", 4, "--time-limit", 5,
                   module="tfgc.train")
    assert trained.returncode == 0, trained.stderr[-2000:]
    assert "jpeg q75 at 1/4, actor-critic" in trained.stdout
    image, packed = data / "coffee.png", tmp_path / "coffee.tfgc"
    assert tfgc("compress", image, packed, "--codec", "sr", "--quality", 40).returncode == 0
    info = json.loads(tfgc("info", packed).stdout)
    assert (info["family"], info["base"], info["scale"], info["quality"]) == ("sr", "jpeg", 4, 40)
    assert info["bytes"] == packed.stat().st_size
    for extra in (["--model", run / "model"], ["--decoder", "lanczos"]):
        out = tmp_path / f"out{extra[0]}.png"
        decoded = tfgc("decompress", packed, out, *extra)
        assert decoded.returncode == 0, decoded.stderr
        assert Image.open(out).size == Image.open(image).size

    refused = tfgc("decompress", packed, tmp_path / "x.png", "--decoder", "lanczos", "--model", run / "model")
    assert refused.returncode != 0 and len(refused.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x.png").exists()
    # An sr model's own file at another quality needs no --codec sr; another scale is another decoder's file.
    assert tfgc("compress", image, tmp_path / "y.tfgc", "--model", run / "model", "--quality", 40).returncode == 0
    assert (tmp_path / "y.tfgc").read_bytes() == packed.read_bytes()
    refused = tfgc("compress", image, tmp_path / "z.tfgc", "--model", run / "model", "--scale", 2)
    assert refused.returncode != 0 and "--codec sr" in refused.stderr and not (tmp_path / "z.tfgc").exists()

    report = tfgc("superres", "--data", data, "--model", run / "model", "--qualities", 50, "--limit", 1,
                  "--out", tmp_path / "docs")
    assert report.returncode == 0, report.stderr[-2000:]
    result = json.loads((tmp_path / "docs" / "rlsrgan" / "results.json").read_text())
    assert set(result["table"]) == {"run", "lanczos", "bicubic"}
    rows = [r for r in result["images"] if r["quality"] == 75]
    assert len({r["bytes"] for r in rows}) == 1  # every decoder read the same file
    assert rows[0]["bytes"] == len(api.encode_sr(photos["astronaut"][:96, :128], 4, 75).data)
    for name in ("rd_psnr.png", "rd_msssim.png", "crops.png"):
        assert (tmp_path / "docs" / "rlsrgan" / name).stat().st_size > 0


def test_a_file_of_another_scale_or_base_names_both(photos, sr_model):
    from tfgc.errors import ModelMismatchError

    with pytest.raises(ModelMismatchError, match="a JPEG at 1/2 size; the model decodes jpeg bases at 1/4"):
        api.decode(api.encode_sr(photos["coffee"][:32, :32], 2, 75).data, sr_model)
    with pytest.raises(ModelMismatchError, match="a WebP at 1/4 size; the model decodes jpeg bases at 1/4"):
        api.decode(api.encode_sr(photos["coffee"][:32, :32], 4, 75, "webp").data, sr_model)


def test_the_vgg_term_of_the_srgan_loss(photos):
    from tfgc.train import compile_model

    config = _config(perceptual_weight=6e-3, perceptual_weights="random")  # random features: the mechanics only
    tf.keras.utils.set_random_seed(0)
    model = build_model(config)
    compile_model(model, config)
    logs = model.train_step(_batch(photos))
    assert model.loss_term_names() == ["distortion", "adversarial", "perceptual", "actor_critic"]
    assert np.isfinite(float(logs["perceptual"])) and float(logs["perceptual"]) > 0
    batch = _batch(photos)
    same = model.perceptual(tf.zeros([1, 32, 32, 3]), tf.zeros([1, 32, 32, 3]))
    assert float(same[0]) == 0.0
    assert float(model.perceptual(to_unit(batch["high"][:1]), -to_unit(batch["high"][:1]))[0]) > 0


def to_unit(x):
    return tf.cast(x, tf.float32) / 127.5 - 1.0
