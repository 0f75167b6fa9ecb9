import glob

import numpy as np
import pytest
import tensorflow as tf

from tfgc import train
from tfgc.config import preset
from tfgc.data import bundled_images, training_dataset
from tfgc.models.registry import build_model
from tfgc.train import compile_model, set_precision
from tfgc.training.callbacks import cosine_factor


def _fixed_batch(photos, n=4, size=32):
    crops = [photos[name][:size, :size] for name in sorted(photos)][:n]
    return tf.constant(np.stack(crops).astype(np.float32))


def _distortion(model, batch):
    outputs = model.generate(batch, training=False)
    return float(tf.reduce_mean(tf.square(outputs["x"] - outputs["x_hat"])))


def test_short_training_on_a_fixed_tiny_set_lowers_distortion(photos):
    config = preset("gc-tiny").replace(adversarial_weight=0.0, feature_matching_weight=0.0, learning_rate=3e-3)
    tf.keras.utils.set_random_seed(0)
    model = build_model(config)
    compile_model(model, config)
    batch = _fixed_batch(photos)
    before = _distortion(model, batch)
    history = model.fit(tf.data.Dataset.from_tensors(batch).repeat(), steps_per_epoch=40, epochs=1, verbose=0)
    after = _distortion(model, batch)
    assert after < 0.5 * before, (before, after)
    assert np.isfinite(history.history["loss"][0])


@pytest.mark.slow
def test_gan_training_updates_both_networks(photos):
    config = preset("gc-tiny")
    tf.keras.utils.set_random_seed(0)
    model = build_model(config)
    compile_model(model, config)
    assert model.adversarial
    g_before = [v.numpy().copy() for v in model.generator.trainable_variables]
    d_before = [v.numpy().copy() for v in model.discriminator.trainable_variables]
    history = model.fit(tf.data.Dataset.from_tensors(_fixed_batch(photos)).repeat(), steps_per_epoch=2, epochs=1,
                        verbose=0)
    assert {"loss", "d_loss", "adversarial", "feature_matching", "distortion", "psnr", "bpp"} <= set(history.history)
    assert int(model.optimizer.iterations) == 2 and int(model.discriminator_optimizer.iterations) == 2
    assert any(not np.array_equal(a, v.numpy()) for a, v in zip(g_before, model.generator.trainable_variables))
    assert any(not np.array_equal(a, v.numpy()) for a, v in zip(d_before, model.discriminator.trainable_variables))


@pytest.mark.parametrize("mode,dtype", [("float16", "float16"), ("bfloat16", "bfloat16")])
@pytest.mark.slow
def test_mixed_precision_steps_keep_weights_finite(photos, mode, dtype):
    set_precision(mode)
    try:
        config = preset("gc-tiny")
        tf.keras.utils.set_random_seed(0)
        model = build_model(config)
        compile_model(model, config)
        assert model.encoder.layers[0].layers[0].compute_dtype == dtype
        for optimizer in (model.optimizer, model.discriminator_optimizer):
            # Every optimizer skips non-finite steps; only float16 scales its losses dynamically.
            assert isinstance(optimizer, tf.keras.mixed_precision.LossScaleOptimizer)
            assert (optimizer.dynamic_growth_steps < 10**6) == (mode == "float16")
        history = model.fit(tf.data.Dataset.from_tensors(_fixed_batch(photos)).repeat(), steps_per_epoch=3,
                            epochs=1, verbose=0)
        assert all(np.isfinite(v[0]) for v in history.history.values())
        assert all(v.dtype == tf.float32 for v in model.trainable_variables)
        assert all(np.all(np.isfinite(v.numpy())) for v in model.trainable_variables)
        outputs = model.generate(_fixed_batch(photos), training=False)
        assert outputs["x_hat"].dtype == tf.float32 and outputs["onehot"].dtype == tf.float32
    finally:
        set_precision("off")


@pytest.mark.slow
def test_mirrored_strategy_step_matches_single_device_step(photos, one_training_step):
    config = preset("gc-tiny")
    batch = _fixed_batch(photos, n=4)

    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert mirrored.num_replicas_in_sync == 2
    start, single, single_logs = one_training_step(config, batch, tf.distribute.get_strategy())
    _, replicated, replicated_logs = one_training_step(config, batch, mirrored, initial=start)
    moved = sum(float(np.abs(a - b).sum()) for a, b in zip(single, start))
    assert moved > 0
    for a, b in zip(single, replicated):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    for name in ("loss", "d_loss", "distortion", "psnr"):
        assert replicated_logs[name][0] == pytest.approx(single_logs[name][0], rel=1e-4)


class _Interrupt(tf.keras.callbacks.Callback):
    def __init__(self, at_step):
        super().__init__()
        self.at_step = at_step

    def on_train_batch_end(self, batch, logs=None):
        if int(self.model.optimizer.iterations) == self.at_step:
            raise KeyboardInterrupt


class _RecordStart(tf.keras.callbacks.Callback):
    started_at = []

    def on_train_begin(self, logs=None):
        _RecordStart.started_at.append(int(self.model.optimizer.iterations))


@pytest.mark.slow
def test_interrupted_run_resumes_from_the_saved_step(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    argv = ["--preset", "gc-tiny", "--out", str(out), "--steps", "6", "--steps-per-epoch", "3",
            "--checkpoint-every", "1"]
    original = train._callbacks

    def with_extra(extra):
        monkeypatch.setattr(train, "_callbacks", lambda *a, **k: original(*a, **k) + [extra])

    with_extra(_Interrupt(at_step=4))
    assert train.main(argv) == 130
    assert "resume" in capsys.readouterr().err
    assert not (out / "model").exists()

    with_extra(_RecordStart())
    assert train.main(argv) == 0
    assert _RecordStart.started_at == [4]
    from tfgc.models.store import load_model

    model = load_model(out / "model")
    assert model.manifest["steps"] == 6
    assert glob.glob(str(out / "logs" / "**" / "events.out.tfevents.*"), recursive=True)
    assert glob.glob(str(out / "checkpoints" / "ckpt-6.index"))

    # A finished run is not trained again, and a different config is refused instead of mixed in.
    _RecordStart.started_at.clear()
    assert train.main(argv) == 0
    assert _RecordStart.started_at == [6]
    assert train.main(argv + ["--levels", "3"]) == 1
    assert "another config" in capsys.readouterr().err


class _StepClock(train.TrainingClock):
    """One second of training per step, so that time limits and budgets fall on known steps."""

    def __init__(self):
        super().__init__()
        self.ticks = 0

    def seconds(self):
        return float(self.ticks)


class _Tick(tf.keras.callbacks.Callback):
    def __init__(self, clock):
        super().__init__()
        self.clock = clock

    def on_train_batch_end(self, batch, logs=None):
        self.clock.ticks += 1


class _RecordLearningRate(tf.keras.callbacks.Callback):
    rates = []

    def on_train_batch_begin(self, batch, logs=None):
        _RecordLearningRate.rates.append(float(tf.keras.backend.get_value(self.model.optimizer.learning_rate)))


@pytest.mark.slow
def test_budget_spans_sessions_schedule_and_snapshots(tmp_path, monkeypatch, capsys):
    import json

    out = tmp_path / "run"
    argv = ["--preset", "gc-tiny", "--stage", "1", "--out", str(out), "--steps", "1000", "--steps-per-epoch", "50",
            "--checkpoint-every", "1", "--learning-rate-schedule", "cosine", "--budget-minutes", "0.1",
            "--snapshot-minutes", "0.05"]
    original = train._callbacks
    monkeypatch.setattr(train, "TrainingClock", _StepClock)
    monkeypatch.setattr(train, "_callbacks", lambda model, config, out, batch, clock: (
        [_Tick(clock)] + original(model, config, out, batch, clock) + [_RecordLearningRate()]))
    manifest = lambda path: json.loads((path / "manifest.json").read_text())  # noqa: E731
    start = preset("gc-tiny").train.learning_rate

    # A session limit of 3 seconds ends the first session after step 4, 4 seconds into the run's 6-second budget.
    assert train.main(argv + ["--time-limit", "0.05"]) == 0
    first = manifest(out / "model")
    assert (first["steps"], first["train_seconds"], first["train_seconds_this_session"]) == (4, 4.0, 4.0)
    # The cosine follows the budget, not the session: at step 4 (3 s of 6) it is halfway, not at its floor.
    assert _RecordLearningRate.rates[-1] == pytest.approx(start * cosine_factor(0.5, 0.01), rel=1e-5)

    _RecordLearningRate.rates.clear()
    assert train.main(argv) == 0
    assert "resumed from step 4 after 0.1 minutes" in capsys.readouterr().out
    second = manifest(out / "model")
    assert (second["steps"], second["train_seconds"], second["train_seconds_this_session"]) == (7, 7.0, 3.0)
    assert _RecordLearningRate.rates[0] == pytest.approx(start * cosine_factor(4 / 6, 0.01), rel=1e-5)
    assert _RecordLearningRate.rates[-1] == pytest.approx(start * 0.01, rel=1e-5)
    # Snapshots every 3 seconds of the run's time, across the session boundary.
    snapshots = {p.name: manifest(p)["train_seconds"] for p in (out / "snapshots").iterdir()}
    assert snapshots == {"step-0000003": 3.0, "step-0000006": 6.0}

    # With the budget spent, a rerun trains no step and exports the last backup again.
    _RecordLearningRate.rates.clear()
    assert train.main(argv) == 0
    assert "budget of 0.1 minutes is spent" in capsys.readouterr().out
    assert _RecordLearningRate.rates == []
    third = manifest(out / "model")
    assert (third["steps"], third["train_seconds"]) == (7, 7.0)


def test_help_documents_every_flag():
    parser = train.build_parser()
    flags = [a for a in parser._actions if a.option_strings and a.dest != "help"]
    assert len(flags) >= 25
    for action in flags:
        assert action.help and len(action.help) > 10, action.option_strings
    text = parser.format_help()
    for action in flags:
        assert action.option_strings[0] in text


def test_training_dataset_shapes():
    dataset = training_dataset(bundled_images(), crop_size=48, batch_size=3)
    batch = next(iter(dataset))
    assert batch.shape == (3, 48, 48, 3) and batch.dtype == tf.float32
    assert 0.0 <= float(tf.reduce_min(batch)) and float(tf.reduce_max(batch)) <= 255.0


@pytest.mark.slow
def test_command_line_training_under_mirrored_strategy(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["--preset", "gc-tiny", "--out", str(out), "--strategy", "mirrored", "--steps", "2",
            "--steps-per-epoch", "1"]
    assert train.main(argv) == 0
    assert "2 replica(s)" in capsys.readouterr().out
    from tfgc.models.store import load_model

    assert load_model(out / "model").manifest["steps"] == 2


@pytest.mark.slow
def test_target_bpp_steps_beta_once_on_the_global_batch_under_mirrored_strategy(photos):
    """Under MirroredStrategy beta moves once per step, by the rate of the whole global batch: as on one device, and
    unlike either replica's half alone."""
    config = preset("gc-tiny").replace(rate_weight=1.0, target_bpp=0.035)
    batch = _fixed_batch(photos, n=4)
    logits = np.random.default_rng(0).normal(0.0, 0.5, size=(4, 5))  # so that an example's bits depend on it

    def beta_after_one_step(images, strategy):
        with strategy.scope():
            tf.keras.utils.set_random_seed(7)
            model = build_model(config)
            model.compile(tf.keras.optimizers.SGD(0.05), tf.keras.optimizers.SGD(0.05))
        model.prior.set_logits(logits)
        model.fit(tf.data.Dataset.from_tensors(images), epochs=1, verbose=0)
        return float(model.adaptive_rate_weight.numpy())

    single = beta_after_one_step(batch, tf.distribute.get_strategy())
    # Not the default collective all-reduce: its instance keys are per process (see test_selective.py).
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"],
                                              cross_device_ops=tf.distribute.ReductionToOneDevice())
    replicated = beta_after_one_step(batch, mirrored)
    halves = [beta_after_one_step(batch[:2], tf.distribute.get_strategy()),
              beta_after_one_step(batch[2:], tf.distribute.get_strategy())]
    step = np.log(single)  # RATE_WEIGHT_STEP times the global batch's excess rate, unclipped here
    assert 0 < step < 0.01 and np.log(replicated) == pytest.approx(step, rel=1e-2), (single, replicated)
    assert all(abs(np.log(half) - step) > 0.1 * step for half in halves), (single, halves)


@pytest.mark.slow
def test_rate_term_lowers_the_coded_rate(photos):
    """beta > 0 puts a gradient on the encoder through the soft-to-hard one-hot: the rate falls below what the prior
    alone reaches when the encoder gets no rate gradient."""
    batch = _fixed_batch(photos)

    def final_bpp(beta):
        config = preset("gc-tiny").replace(adversarial_weight=0.0, feature_matching_weight=0.0,
                                           distortion_weight=0.0, rate_weight=beta, learning_rate=3e-3)
        tf.keras.utils.set_random_seed(0)
        model = build_model(config)
        compile_model(model, config)
        assert ("rate" in model.loss_term_names()) == (beta > 0)
        history = model.fit(tf.data.Dataset.from_tensors(batch).repeat(), steps_per_epoch=20, epochs=3, verbose=0)
        return history.history["bpp"][-1]

    without, with_rate = final_bpp(0.0), final_bpp(20.0)
    assert with_rate < 0.8 * without, (without, with_rate)


@pytest.mark.slow
def test_target_bpp_adapts_beta_toward_the_rate(photos):
    """Under a target rate beta grows while the rate is above it (and the rate ends below a fixed-beta run's from the
    same start), and shrinks while the rate is below it; it is kept in the model's state, logged as `beta`."""
    batch = _fixed_batch(photos)
    bound = preset("gc-tiny").model.bound_bpp

    def trained(target):
        config = preset("gc-tiny").replace(adversarial_weight=0.0, feature_matching_weight=0.0, rate_weight=1.0,
                                           target_bpp=target, learning_rate=3e-3)
        tf.keras.utils.set_random_seed(0)
        model = build_model(config)
        compile_model(model, config)
        history = model.fit(tf.data.Dataset.from_tensors(batch).repeat(), steps_per_epoch=30, epochs=3, verbose=0)
        return model, history.history

    fixed, fixed_history = trained(0.0)
    assert fixed.adaptive_rate_weight is None and "beta" not in fixed_history
    low, low_history = trained(0.2 * bound)
    assert low_history["bpp"][0] > 0.2 * bound
    assert float(low.adaptive_rate_weight.numpy()) > 1.5
    assert low_history["beta"] == sorted(low_history["beta"])
    assert low_history["bpp"][-1] < fixed_history["bpp"][-1]
    assert any(v is low.adaptive_rate_weight for v in low.variables)
    high, _ = trained(0.99 * bound)
    assert float(high.adaptive_rate_weight.numpy()) < 1.0


@pytest.mark.slow
def test_ms_ssim_term_raises_ms_ssim(photos):
    """Beside MSE, a 1 - MS-SSIM term gives reconstructions of higher MS-SSIM (tfgc.metrics, on the uint8 images a
    decoder returns) than MSE alone from the same start; the term is reported as the weight times 1 - MS-SSIM."""
    from tfgc.errors import ConfigError
    from tfgc.metrics import ms_ssim

    batch = _fixed_batch(photos, size=64)
    originals = batch.numpy().astype(np.uint8)

    def trained(weight):
        config = preset("gc-tiny").replace(adversarial_weight=0.0, feature_matching_weight=0.0, ms_ssim_weight=weight,
                                           learning_rate=3e-3)
        tf.keras.utils.set_random_seed(0)
        model = build_model(config)
        compile_model(model, config)
        assert ("ms_ssim" in model.loss_term_names()) == (weight > 0)
        history = model.fit(tf.data.Dataset.from_tensors(batch).repeat(), steps_per_epoch=30, epochs=2, verbose=0)
        score = np.mean([ms_ssim(x, y) for x, y in zip(originals, model.reconstruct(originals).numpy())])
        return score, history.history

    mse_only, _ = trained(0.0)
    with_term, history = trained(10.0)
    assert with_term > mse_only + 0.05, (mse_only, with_term)
    assert 0 < history["ms_ssim"][-1] < 10.0 * (1 - mse_only)
    with pytest.raises(ConfigError, match="ms_ssim_weight"):
        preset("gc-tiny").replace(ms_ssim_weight=-1.0)
    with pytest.raises(ConfigError, match="gc and sc"):
        preset("rlsrgan-tiny").replace(ms_ssim_weight=1.0)


@pytest.mark.slow
def test_perceptual_loss_with_local_vgg_weights(photos, tmp_path):
    from tfgc.errors import ConfigError
    from tfgc.nn.perceptual import VGGFeatureLoss

    weights = tmp_path / "vgg19.h5"
    tf.keras.applications.VGG19(include_top=False, weights=None).save_weights(str(weights))
    config = preset("gc-tiny").replace(perceptual_weight=1.0, perceptual_weights=str(weights))
    tf.keras.utils.set_random_seed(0)
    model = build_model(config)
    compile_model(model, config)
    assert "perceptual" in model.loss_term_names()
    history = model.fit(tf.data.Dataset.from_tensors(_fixed_batch(photos)).repeat(), steps_per_epoch=1, epochs=1,
                        verbose=0)
    assert history.history["perceptual"][0] > 0
    assert not any("perceptual" in v.name for v in model.generator_variables)
    loss = VGGFeatureLoss(str(weights))
    x = tf.random.uniform([1, 32, 32, 3], -1, 1)
    assert float(loss(x, x)[0]) == 0.0 and float(loss(x, -x)[0]) > 0.0
    with pytest.raises(ConfigError, match="does not exist"):
        VGGFeatureLoss(str(tmp_path / "missing.h5"))


@pytest.mark.parametrize("name", ["gc-tiny", "sc-tiny", "rlsrgan-tiny"])
def test_checkpoints_hold_the_discriminator(tmp_path, name):
    """What a resumed run restores: every network, the discriminator too (once left out of Keras' tracking)."""
    tf.keras.utils.set_random_seed(1)
    saved = build_model(preset(name))
    path = tf.train.Checkpoint(model=saved).write(str(tmp_path / "ckpt"))
    tf.keras.utils.set_random_seed(2)
    restored = build_model(preset(name))
    assert any(np.any(a != b) for a, b in zip(saved.discriminator.get_weights(), restored.discriminator.get_weights()))
    tf.train.Checkpoint(model=restored).read(path).assert_existing_objects_matched()
    for a, b in zip(saved.discriminator.get_weights(), restored.discriminator.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
