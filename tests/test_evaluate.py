import argparse
import csv
import json
import math

import numpy as np
import pytest
from PIL import Image

from tfgc import metrics
from tfgc.reports import bench, measure
from tfgc.reports.eval import run_eval
from tfgc.codec import api
from tfgc.codec.classic import CODECS, get_codec
from tfgc.errors import ConfigError, TfgcError


def test_psnr_of_a_known_mse(photos):
    a = photos["coffee"][:64, :64].astype(np.int16)
    a = np.clip(a, 10, 240).astype(np.uint8)
    b = (a.astype(np.int16) + 4).astype(np.uint8)  # every value off by 4: MSE 16
    assert metrics.psnr(a, b) == pytest.approx(10 * math.log10(255**2 / 16), abs=1e-9)
    assert metrics.psnr(a, a) == float("inf")


def test_ms_ssim_and_detail_of_identical_and_degraded_images(photos):
    for image in (photos["astronaut"][:200, :240], photos["chelsea"][:40, :50]):
        assert metrics.ms_ssim(image, image) == pytest.approx(1.0, abs=1e-6)
        assert metrics.detail_ratio(image, image) == pytest.approx(1.0)
        blurred = np.asarray(Image.fromarray(image).resize((image.shape[1] // 4, image.shape[0] // 4))
                             .resize((image.shape[1], image.shape[0]), Image.BILINEAR))
        assert metrics.ms_ssim(image, blurred) < 0.98
        assert metrics.detail_ratio(image, blurred) < 0.6
    assert metrics.ms_ssim_scales(512, 768) == 5 and metrics.ms_ssim_scales(40, 50) == 2


def test_interpolation_at_target_rates():
    curve = [(0.2, 30.0), (0.1, 26.0), (0.4, 33.0)]
    assert bench.interpolate(curve, 0.1) == 26.0
    assert bench.interpolate(curve, 0.15) == pytest.approx(28.0)
    assert bench.interpolate(curve, 0.3) == pytest.approx(31.5)
    assert bench.interpolate(curve, 0.05) is None and bench.interpolate(curve, 0.5) is None


def test_fid_and_kid_on_features():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 8))
    assert metrics.fid(x, x) == pytest.approx(0.0, abs=1e-6)
    shifted = x + np.array([3.0] + [0.0] * 7)
    assert metrics.fid(x, shifted) == pytest.approx(9.0, rel=1e-6)
    y = rng.normal(size=(400, 8))
    assert abs(metrics.kid(x, y, subsets=5, subset_size=200)) < 0.05
    assert metrics.kid(x, shifted, subsets=5, subset_size=200) > 1.0


@pytest.mark.slow
def test_fid_pipeline_with_random_inception_weights(photos):
    images = [photos["astronaut"][:256, :256], photos["astronaut"][256:, 256:]]
    assert len(metrics.patches(photos["astronaut"])) == 4 + 1  # 2x2 grid, plus the one shifted by 128
    features = metrics.InceptionFeatures("random")
    result = metrics.fid_kid(features, metrics.patch_features(features, images), images[::-1])
    assert result["patches"] == 2 and np.isfinite(result["fid"]) and np.isfinite(result["kid"])
    with pytest.raises(ConfigError, match="does not exist"):
        metrics.InceptionFeatures("/nonexistent/inception.h5")


@pytest.mark.parametrize("name", sorted(CODECS))
def test_classic_codecs_round_trip_and_sweep_monotonic_rates(name, photos):
    codec = get_codec(name)
    image = photos["chelsea"][:96, :128]
    sizes = [len(codec.encode(image, q)) for q in (codec.qualities[0], codec.qualities[-1])]
    assert sizes[0] < sizes[1]
    data = codec.encode(image, codec.qualities[-1])
    decoded = codec.decode(data)
    assert decoded.shape == image.shape and metrics.psnr(image, decoded) > 25


def test_unknown_codec():
    with pytest.raises(ConfigError, match="unknown codec"):
        get_codec("bpg")


@pytest.fixture
def folder(tmp_path, photos):
    data = tmp_path / "images"
    data.mkdir()
    Image.fromarray(photos["coffee"][:96, :128]).save(data / "a.png")
    Image.fromarray(photos["rocket"][100:180, 200:300]).save(data / "b.png")
    Image.fromarray(photos["chelsea"][:64, :64]).save(data / "c.jpg", quality=95)
    return data


def _args(**kwargs):
    defaults = dict(tfds=None, limit=None, inception_weights=None, force=False, alpha=None)
    defaults.update(kwargs)
    return argparse.Namespace(**defaults)


def test_eval_reports_bpp_of_the_real_files(trained, folder, tmp_path):
    model, directory = trained
    out = tmp_path / "results.json"
    assert run_eval(_args(data=[str(folder)], model=str(directory), out=str(out))) == 0
    result = json.loads(out.read_text())
    assert [r["image"] for r in result["images"]] == ["a.png", "b.png", "c.jpg"]
    for row in result["images"]:
        from tfgc.codec.io import load_image

        image = load_image(folder / row["image"])
        size = len(api.compress(image, model))
        assert row["bytes"] == size and row["bpp"] == pytest.approx(8 * size / image.shape[0] / image.shape[1])
        assert row["bound_bpp"] > 0 and row["encode_seconds"] > 0 and 0 < row["ms_ssim"] <= 1
    assert result["mean"]["bpp"] == pytest.approx(np.mean([r["bpp"] for r in result["images"]]))
    assert result["environment"]["versions"]["tensorflow"] == "2.14.1"
    with open(out.with_suffix(".csv")) as f:
        assert len(list(csv.DictReader(f))) == 3
    with pytest.raises(TfgcError, match="exists"):
        run_eval(_args(data=[str(folder)], model=str(directory), out=str(out)))


@pytest.mark.slow
def test_bench_end_to_end_on_small_images(trained, folder, tmp_path, capsys):
    _, directory = trained
    out = tmp_path / "bench"
    args = _args(data=[str(folder)], model=[str(directory)], codecs="jpeg,webp", out=str(out), name="report",
                 crop_image=None, crop_bpp=None, crop_size=48)
    assert bench.run_bench(args) == 0
    report = (out / "report.md").read_text()
    for asset in ("rd_psnr.png", "rd_msssim.png", "crops.png", "results.json", "results.csv"):
        assert (out / "report" / asset).stat().st_size > 0
        assert f"report/{asset}" in report
    assert "| JPEG (libjpeg, 4:2:0) |" in report and "| WebP (libwebp) |" in report
    assert "encode MP/s" in report and "python -m tfgc" in report
    result = json.loads((out / "report" / "results.json").read_text())
    assert set(result["codecs"]) == {"jpeg", "webp", "tiny"}
    assert "commit" in result["environment"] and result["environment"]["machine"]["cores"] >= 1
    jpeg = result["codecs"]["jpeg"]
    assert len(jpeg) == len(CODECS["jpeg"].qualities)
    # The table's interpolated PSNR agrees with the curve it was read from.
    curve = [(p["bpp"], p["psnr"]) for p in jpeg]
    for target in bench.TARGET_BPPS:
        value = bench.interpolate(curve, target)
        cell = "not reachable" if value is None else f"{value:.2f}"
        assert cell in report.split("| JPEG (libjpeg, 4:2:0) |")[1].split("\n")[0]
    # bpp comes from the real file.
    row = next(m for m in result["measurements"] if m["codec"] == "webp" and m["image"] == "b.png"
               and m["setting"] == "q50")
    from tfgc.codec.io import load_image

    image = load_image(folder / "b.png")
    assert row["bytes"] == len(CODECS["webp"].encode(image, 50))
    assert json.loads(json.dumps(row))["bpp"] == pytest.approx(8 * row["bytes"] / (100 * 80))
    with pytest.raises(TfgcError, match="exists"):
        bench.run_bench(args)

    # --report-only: new notes and references on the same measurements, nothing coded again.
    from tfgc.__main__ import main

    notes, references = tmp_path / "notes.md", tmp_path / "refs.json"
    notes.write_text("## Findings\n\nWritten after the run.\n")
    references.write_text(json.dumps([{"label": "Elsewhere", "bpp": 0.5, "psnr": 30.0, "source": "a paper"}]))
    crops = (out / "report" / "crops.png").read_bytes()
    capsys.readouterr()
    assert main(["bench", "--report-only", "--out", str(out), "--name", "report", "--notes", str(notes),
                 "--references", str(references)]) == 0
    rewritten = (out / "report.md").read_text()
    assert rewritten.endswith("Written after the run.\n") and "| Elsewhere |" in rewritten
    assert "rewritten from its results.json" in rewritten and "--report-only" in rewritten
    assert report.split("## Speed")[0].split("## Rate")[1] in rewritten  # the same tables, references added
    again = json.loads((out / "report" / "results.json").read_text())
    assert again["measurements"] == result["measurements"] and again["codecs"] == result["codecs"]
    assert (out / "report" / "crops.png").read_bytes() == crops
    assert main(["bench", "--report-only", "--out", str(tmp_path / "none"), "--name", "report"]) == 1
    assert "does not exist (run the bench first)" in capsys.readouterr().err
    assert main(["bench", "--out", str(tmp_path / "none")]) == 1
    assert "bench needs images" in capsys.readouterr().err


def test_a_model_is_warmed_up_before_its_images_are_timed(tiny_model, photos, monkeypatch):
    calls = []
    encode, decode = api.encode, api.decode

    def counted_encode(image, model):
        calls.append(("encode", image.shape))
        return encode(image, model)

    def counted_decode(data, model, alpha=None):
        calls.append("decode")
        return decode(data, model, alpha)

    monkeypatch.setattr(api, "encode", counted_encode)
    monkeypatch.setattr(api, "decode", counted_decode)
    images = [("a", photos["coffee"][:32, :48]), ("b", photos["chelsea"][:48, :32])]
    rows = measure.evaluate_model(tiny_model, images, "tiny")
    # One untimed round trip of the first image (the first call traces the model), then one per image.
    assert calls == [("encode", (32, 48, 3)), "decode", ("encode", (32, 48, 3)), "decode", ("encode", (48, 32, 3)),
                     "decode"]
    assert [r.image for r in rows] == ["a", "b"]


def test_model_labels_name_shipped_versions_and_runs_and_never_collide():
    assert measure.unique_model_labels(["runs/a/model", "saved_models/gc-small-c8/1", "saved_models/gc-small-c4/1",
                                         "exports/b"]) == ["a", "gc-small-c8", "gc-small-c4", "b"]
    # Two models of one name: each stands under its directory as given, not both under the name.
    assert measure.unique_model_labels(["x/m/1", "y/m/1", "z"]) == ["x/m/1", "y/m/1", "z"]
    with pytest.raises(TfgcError, match="given twice"):
        measure.unique_model_labels(["x/m/1", "x/m/1"])


def test_tfds_without_the_package_is_a_clear_error(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)
    with pytest.raises(TfgcError, match=r"tfgc\[tfds\]"):
        measure.load_tfds("kodak")


def test_command_line_errors(folder, tmp_path, capsys):
    from tfgc.__main__ import main

    assert main(["bench", "--data", str(folder), "--codecs", "jpeg,bpg", "--out", str(tmp_path)]) == 1
    assert "unknown codec 'bpg'" in capsys.readouterr().err
    assert main(["eval", "--data", str(tmp_path / "none"), "--model", "gc-small-c8", "--out",
                 str(tmp_path / "r.json")]) == 1
    assert f"image folder {tmp_path / 'none'} does not exist" in capsys.readouterr().err
    assert main(["eval", "--data", str(folder), "--model", str(tmp_path), "--out", str(tmp_path / "r.json")]) == 1
    assert "is not a tfgc model" in capsys.readouterr().err


@pytest.mark.slow
def test_bench_reuses_an_earlier_runs_classic_codecs_once_their_files_check_out(folder, tmp_path, monkeypatch):
    from tfgc.codec.classic import ClassicCodec

    def run_bench(name, **kwargs):
        args = _args(data=[str(folder)], model=None, codecs="jpeg", out=str(tmp_path / name), name="r",
                     crop_image=None, crop_bpp=None, crop_size=48)
        vars(args).update(kwargs)
        return bench.run_bench(args)

    assert run_bench("first") == 0
    earlier = tmp_path / "first" / "r" / "results.json"
    encoded = []
    encode = ClassicCodec.encode
    monkeypatch.setattr(ClassicCodec, "encode", lambda self, image, q: encoded.append(q) or encode(self, image, q))
    # only the crops figure's image is coded again (the comparison page, left out here, codes each image once more)
    assert run_bench("second", classic_from=str(earlier), no_page=True) == 0
    assert sorted(encoded) == sorted(CODECS["jpeg"].qualities)
    first = json.loads(earlier.read_text())
    second = json.loads((tmp_path / "second" / "r" / "results.json").read_text())
    assert second["codecs"] == first["codecs"] and second["measurements"] == first["measurements"]
    assert second["classic_from"]["command"] == first["command"]
    assert "reused with --classic-from" in (tmp_path / "second" / "r.md").read_text()

    tampered = dict(first, measurements=[dict(m, bytes=m["bytes"] + 1) if m["image"] == "a.png" else m
                                         for m in first["measurements"]])
    (tmp_path / "tampered.json").write_text(json.dumps(tampered))
    with pytest.raises(TfgcError, match=r"codes a.png in \d+ bytes here, \d+ there"):
        run_bench("third", classic_from=str(tmp_path / "tampered.json"))
    with pytest.raises(TfgcError, match="has no measurement of a.png by webp at q0"):
        run_bench("third", classic_from=str(earlier), codecs="webp")
    (tmp_path / "other.json").write_text("[]")
    with pytest.raises(TfgcError, match="not the results.json of a bench"):
        run_bench("third", classic_from=str(tmp_path / "other.json"))
    with pytest.raises(TfgcError, match="FID/KID"):
        run_bench("third", classic_from=str(earlier), inception_weights="imagenet")


@pytest.mark.slow
def test_eval_and_bench_compute_fid_kid_when_given_weights(trained, photos, tmp_path):
    import tensorflow as tf

    tf.keras.utils.set_random_seed(0)  # the Inception weights are random: fix them
    _, directory = trained
    data = tmp_path / "large"
    data.mkdir()
    Image.fromarray(photos["astronaut"][:256, :256]).save(data / "a.png")
    Image.fromarray(photos["astronaut"][256:, 256:]).save(data / "b.png")
    out = tmp_path / "r.json"
    run_eval(_args(data=[str(data)], model=str(directory), out=str(out), inception_weights="random"))
    mean = json.loads(out.read_text())["mean"]
    assert mean["patches"] == 2 and np.isfinite(mean["fid"]) and np.isfinite(mean["kid"])
    args = _args(data=[str(data)], model=None, codecs="jpeg", out=str(tmp_path / "b"), name="r", crop_image=None,
                 crop_bpp=None, crop_size=64, inception_weights="random")
    bench.run_bench(args)
    points = json.loads((tmp_path / "b" / "r" / "results.json").read_text())["codecs"]["jpeg"]
    assert all(np.isfinite(p["fid"]) for p in points)
    assert points[0]["fid"] > points[-1]["fid"]  # the lowest JPEG quality is furthest from the originals
