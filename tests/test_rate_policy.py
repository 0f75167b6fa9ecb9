"""The sr family's learned rate control: features and the stored actor, the actor-critic on measured rewards, and the
commands that train it, use it and compare it with the search."""

import json

import numpy as np
import pytest
import tensorflow as tf

from tfgc.codec import rate_policy
from tfgc.config import preset
from tfgc.errors import ModelError
from tfgc.models.registry import build_model
from tfgc.models.store import save_model
from tfgc.training import rate_policy as training


def _synthetic_table(images=64, seed=0):
    """A table where each image's rate at a quality follows its probe feature, and PSNR grows with log rate at a
    per-image slope that another feature carries: the best quality depends on the image and the target."""
    rng = np.random.default_rng(seed)
    qualities = np.arange(0, 52, 2)
    features = rng.normal(size=(images, len(rate_policy.FEATURES) - 1))
    log_bpp = np.log(0.01) + 0.6 * features[:, 7:8] + 0.08 * qualities[None, :]
    slope = 4.0 + 1.0 * np.tanh(features[:, 0:1])
    psnr = 20 + features[:, 1:2] + slope * (log_bpp - np.log(0.01))
    return {"paths": np.array([f"{i}.png" for i in range(images)]), "qualities": qualities, "bpp": np.exp(log_bpp),
            "psnr": psnr, "features": features}


def test_the_rate_weight_makes_the_best_choices_average_the_target():
    table = _synthetic_table()
    targets = np.array([0.02, 0.05, 0.1])
    weight = training.fit_rate_weight(table, targets)
    choice = training.best_choices(table, targets, "mean", weight)
    ratio = np.mean(table["bpp"][np.arange(len(choice))[:, None], choice] / targets[None, :])
    assert ratio == pytest.approx(1.0, abs=0.1)


@pytest.mark.parametrize("objective", training.OBJECTIVES)
def test_the_actor_critic_learns_choices_close_to_the_best(objective):
    """Its reward depends on the action, so training moves the policy: the mean reward rises well above the first
    steps', and its choices come within a few tenths of a dB of the best ones the table holds, at about their rate."""
    table = _synthetic_table()
    parts, history = training.train_policy(table, (0.02, 0.2), objective, steps=3000, batch=64, log=None)
    assert np.mean(history[-300:]) > np.mean(history[:100]) + 1.0
    policy = rate_policy.RatePolicy("jpeg", 2, [int(q) for q in table["qualities"]], parts["mean"], parts["std"],
                                    parts["layers"], parts["rate_weight"], objective, {})
    check = training.choice_quality(table, policy, np.array([0.03, 0.06, 0.12]))
    assert check["policy"]["psnr"] > check["best"]["psnr"] - 0.3
    assert abs(check["policy"]["rate_ratio"] - check["best"]["rate_ratio"]) < 0.15


def test_the_stored_actor_computes_what_keras_computes(photos):
    actor = tf.keras.Sequential([tf.keras.layers.Dense(8, activation="tanh"), tf.keras.layers.Dense(2)])
    inputs = rate_policy.with_target(rate_policy.image_features(photos["chelsea"]), 0.05)
    mean, std = np.zeros(len(inputs)), np.ones(len(inputs))
    actor(inputs[None].astype(np.float32))
    layers = [(layer.kernel.numpy().astype(np.float64), layer.bias.numpy().astype(np.float64))
              for layer in actor.layers]
    policy = rate_policy.RatePolicy("jpeg", 2, [10, 20, 30, 40, 50], mean, std, layers, 5.0, "cap", {})
    out = actor(inputs[None].astype(np.float32)).numpy()[0]
    np.testing.assert_allclose(policy.outputs(inputs), out, atol=1e-4)
    expected = int(np.rint(2 + 2 * np.tanh(out[0])))  # the grid point nearest the Gaussian's mean
    assert policy.quality(photos["chelsea"], 0.05) == [10, 20, 30, 40, 50][expected]
    again = rate_policy.RatePolicy.from_json(json.loads(json.dumps(policy.to_json())))
    assert again.quality(photos["chelsea"], 0.05) == policy.quality(photos["chelsea"], 0.05)
    assert np.all(np.isfinite(inputs)) and inputs.shape == (len(rate_policy.FEATURES),)


@pytest.mark.parametrize("damage", ["format", "features", "layers", "qualities", "std", "objective", "base",
                                    "missing"])
def test_a_damaged_policy_file_is_one_line(damage):
    layers = [(np.zeros((len(rate_policy.FEATURES), 4)), np.zeros(4)), (np.zeros((4, 2)), np.zeros(2))]
    data = rate_policy.RatePolicy("jpeg", 2, [10, 20, 30], np.zeros(len(rate_policy.FEATURES)),
                                  np.ones(len(rate_policy.FEATURES)), layers, 1.0, "cap", {}).to_json()
    assert rate_policy.RatePolicy.from_json(json.loads(json.dumps(data))).qualities == [10, 20, 30]
    if damage == "format":
        data["format"] = 99
    elif damage == "features":
        data["features"] = data["features"][:-1]
    elif damage == "layers":
        data["layers"][1][0] = [[0.0] * 2] * 5
    elif damage == "qualities":
        data["qualities"] = [10]
    elif damage == "std":
        data["std"][0] = 0.0
    elif damage == "objective":
        data["objective"] = "most"
    elif damage == "base":
        data["base"] = "gif"
    else:
        del data["rate_weight"]
    with pytest.raises(ModelError) as error:
        rate_policy.RatePolicy.from_json(data)
    assert "\n" not in str(error.value)


@pytest.mark.slow
def test_train_compress_and_report_with_a_policy(photo_folder, tmp_path, capsys):
    """The training command on real files of an sr model, then compress --target-bpp with its policy (one encode),
    the search when asked, a policy of another base refused, and the report beside the search."""
    from tfgc.__main__ import main as tfgc_main

    tf.keras.utils.set_random_seed(0)
    model_dir = save_model(build_model(preset("sr-tiny"), for_training=False), tmp_path / "sr-tiny")
    folder = photo_folder("images", ("chelsea", "coffee", "astronaut"), 96, 128)
    out = tmp_path / "policy"
    assert training.main(["--model", str(model_dir), "--data", str(folder), "--out", str(out), "--steps", "300",
                          "--qualities", "10", "90", "20", "--targets", "0.2", "2"]) == 0
    table = np.load(out / "table.npz")
    assert table["bpp"].shape == (3, 5) and np.all(np.diff(table["bpp"], axis=1) > 0)  # real files grow with q
    policy = rate_policy.load(out / rate_policy.POLICY_FILE)
    assert policy.qualities == [10, 30, 50, 70, 90] and (policy.base, policy.scale) == ("jpeg", 2)
    (model_dir / rate_policy.POLICY_FILE).write_bytes((out / rate_policy.POLICY_FILE).read_bytes())
    capsys.readouterr()
    assert training.main(["--model", str(model_dir), "--data", str(folder), "--out", str(out), "--steps", "10",
                          "--qualities", "10", "90", "20", "--targets", "0.2", "2"]) == 0
    assert "(reused)" in capsys.readouterr().out  # the same model, photographs and qualities: measured once

    image = folder / "chelsea.png"
    capsys.readouterr()
    assert tfgc_main(["compress", str(image), str(tmp_path / "a.tfgc"), "--model", str(model_dir),
                      "--target-bpp", "0.8"]) == 0
    assert "rate policy chose jpeg quality" in capsys.readouterr().out
    assert tfgc_main(["compress", str(image), str(tmp_path / "b.tfgc"), "--model", str(model_dir),
                      "--target-bpp", "0.8", "--rate-control", "search"]) == 0
    assert "the highest quality that fits" in capsys.readouterr().out

    other = policy.to_json()
    other["base"] = "webp"
    (model_dir / rate_policy.POLICY_FILE).write_text(json.dumps(other))
    assert tfgc_main(["compress", str(image), str(tmp_path / "c.tfgc"), "--model", str(model_dir),
                      "--target-bpp", "0.8"]) == 1
    assert "picks webp qualities" in capsys.readouterr().err

    assert tfgc_main(["ratecontrol", "--model", str(model_dir), "--policy", str(out / rate_policy.POLICY_FILE),
                      "--data", str(folder), "--targets", "0.4", "0.8", "1.6", "--out", str(tmp_path / "docs")]) == 0
    result = json.loads((tmp_path / "docs" / "rate-control" / "results.json").read_text())
    assert [c["target"] for c in result["comparison"]] == [0.4, 0.8, 1.6]
    searched = [r for r in result["images"] if r["codec"].endswith("search")]
    assert all(r["bpp"] <= float(r["setting"].split("=")[1]) + 1e-9 for r in searched if r["quality"] > 1)
    assert "| target (bpp) |" in (tmp_path / "docs" / "rate-control.md").read_text()


def test_the_shipped_heic_x2_policy_matches_its_model_and_orders_its_choices(photos):
    from pathlib import Path

    from tfgc.models.store import read_manifest, sr_settings

    folder = Path(__file__).resolve().parents[1] / "saved_models" / "heic-x2" / "2"
    policy = rate_policy.for_model(folder)
    assert (policy.base, policy.scale) == sr_settings(read_manifest(folder))[:2] and policy.objective == "cap"
    base = photos["astronaut"][::2, ::2]
    chosen = [policy.quality(base, target) for target in (0.02, 0.05, 0.1, 0.2)]
    assert all(q in policy.qualities for q in chosen) and chosen == sorted(chosen) and chosen[0] < chosen[-1]
