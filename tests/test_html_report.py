"""bench's comparison page: self-contained (no network), lossless, each codec at the rate closest to the tfgc model's
on each image; and it works in a real browser (headless Chromium: the split slider and the alpha slider move what
the screenshot shows). Without a Chromium on the machine the browser test is skipped, saying so."""

import argparse
import base64
import io
import json
import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from tfgc.errors import TfgcError
from tfgc.reports import bench
from tfgc.codec import api
from tfgc.reports.html import PageImage, Version, write_page

BROWSER = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
needs_browser = pytest.mark.skipif(BROWSER is None, reason="no headless Chromium here (Debian: apt install chromium)")


def _page_data(path):
    text = path.read_text()
    return text, json.loads(re.search(r'<script type="application/json" id="data">(.*?)</script>', text, re.S)
                            .group(1).replace("<\\/", "</"))


def _decoded(uri):
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))).convert("RGB"))


@pytest.mark.slow
def test_bench_writes_a_self_contained_comparison_page(trained, photos, tmp_path):
    model, directory = trained
    data = tmp_path / "images"
    data.mkdir()
    Image.fromarray(photos["coffee"][:96, :128]).save(data / "a.png")
    Image.fromarray(photos["rocket"][100:180, 200:300]).save(data / "b.png")
    args = argparse.Namespace(
        data=[str(data)], model=[str(directory)], codecs="jpeg,webp", out=str(tmp_path / "bench"), name="report",
        crop_image=None, crop_bpp=None, crop_size=48, tfds=None, limit=None, inception_weights=None, force=False)
    assert bench.run_bench(args) == 0
    text, images = _page_data(tmp_path / "bench" / "report.html")
    assert not re.search(r"(src|href)=\"?https?:", text) and "<link" not in text  # nothing from the network
    assert text.count('<img alt="') == 2  # the two RD plots, embedded
    result = json.loads((tmp_path / "bench" / "report" / "results.json").read_text())
    rows = result["measurements"]
    assert [item["name"] for item in images] == ["a.png", "b.png"]
    for item in images:
        original = np.asarray(Image.open(data / item["name"]).convert("RGB"))
        np.testing.assert_array_equal(_decoded(item["original"]), original)  # lossless
        by_label = {group["label"]: group["points"] for group in item["versions"]}
        assert len(by_label) == 3 and "tfgc tiny" in by_label
        model_point = by_label.pop("tfgc tiny")[0]
        np.testing.assert_array_equal(_decoded(model_point["src"]), api.decode(api.compress(original, model), model))
        target = next(r["bpp"] for r in rows if r["codec"] == "tiny" and r["image"] == item["name"])
        for label, (point,) in by_label.items():
            codec = "jpeg" if label.startswith("JPEG") else "webp"
            rates = [r["bpp"] for r in rows if r["codec"] == codec and r["image"] == item["name"]]
            closest = min(rates, key=lambda rate: abs(np.log(rate / target)))
            assert point["bpp"] == pytest.approx(closest, abs=1e-4), label
    with pytest.raises(TfgcError, match="report.html exists"):
        (tmp_path / "bench" / "report.md").unlink()
        shutil.rmtree(tmp_path / "bench" / "report")
        bench.run_bench(args)


def _solid(color, size=(100, 200)):
    image = np.zeros((*size, 3), np.uint8)
    image[:] = color
    return image


RED, BLUE, GREEN, YELLOW = (255, 0, 0), (0, 0, 255), (0, 255, 0), (255, 255, 0)


@pytest.fixture
def solid_page(tmp_path):
    """A page whose pictures are solid colours, so that a screenshot says which one shows where."""
    item = PageImage("solid", _solid(RED), [Version("blue codec", 0.1, 20.0, _solid(BLUE)),
                                            Version("model", 0.1, 21.0, _solid(GREEN), alpha=0.0),
                                            Version("model", 0.1, 22.0, _solid(YELLOW), alpha=1.0)])
    path = tmp_path / "page.html"
    write_page(path, "solid colours", [item], {})
    return path


def _browser(*arguments):
    return subprocess.run([BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           "--window-size=500,1000", *arguments], capture_output=True, text=True, timeout=120)


def _columns_of(screenshot, color):
    """The x range of the pixels of exactly `color`."""
    pixels = np.asarray(Image.open(screenshot).convert("RGB"))
    xs = np.where((pixels == color).all(axis=-1))[1]
    return (int(xs.min()), int(xs.max())) if xs.size else None


@needs_browser
@pytest.mark.slow
def test_the_page_works_in_a_headless_browser(solid_page, tmp_path):
    dom = _browser("--dump-dom", f"file://{solid_page}").stdout
    assert 'data-ready="1"' in dom  # the script ran and built every image's viewer
    assert dom.count("<option") == 2 and 'class="split"' in dom and 'class="alpha-slider"' in dom

    shots = {}
    for name, state in {"split 30, model at alpha 0": "version=1&alpha=0&split=30",
                        "split 75, model at alpha 1": "version=1&alpha=1&split=75",
                        "the classic codec": "version=0"}.items():
        shots[name] = tmp_path / f"{len(shots)}.png"
        done = _browser(f"--screenshot={shots[name]}", f"file://{solid_page}#image=0&{state}")
        assert shots[name].is_file(), done.stderr[-500:]
    # The frame is 200 pixels wide: the original (red) fills the left of the split, the version the right.
    red, green = _columns_of(shots["split 30, model at alpha 0"], RED), \
        _columns_of(shots["split 30, model at alpha 0"], GREEN)
    assert red is not None and green is not None and abs((red[1] - red[0] + 1) - 60) <= 2
    assert green[0] > red[1] and _columns_of(shots["split 30, model at alpha 0"], YELLOW) is None
    red, yellow = _columns_of(shots["split 75, model at alpha 1"], RED), \
        _columns_of(shots["split 75, model at alpha 1"], YELLOW)
    assert abs((red[1] - red[0] + 1) - 150) <= 2 and yellow[0] > red[1]
    assert _columns_of(shots["the classic codec"], BLUE) is not None
    assert _columns_of(shots["the classic codec"], GREEN) is None
