"""Files at a target rate: the highest base quality (or the model) whose real file fits."""

import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tfgc.codec import api, rate, sr
from tfgc.config import preset
from tfgc.errors import TfgcError
from tfgc.models.registry import build_model


def test_the_quality_search_finds_the_largest_file_that_fits(photos):
    image = photos["astronaut"][:120, :160]
    for base, target in (("jpeg", 1.0), ("webp", 0.3), ("jpeg", 3.0)):
        result, fits = sr.at_rate(image, target, base, 2)
        quality = result.sr["quality"]
        assert fits and result.file_bits <= target * result.pixels
        for higher in range(quality + 1, min(quality + 4, 101)):  # no higher quality nearby fits
            assert api.encode_sr(image, 2, higher, base).file_bits > target * result.pixels
    smallest, fits = sr.at_rate(image, 0.001, "jpeg", 2)
    assert not fits and smallest.sr["quality"] == 1


def test_among_scales_the_one_that_decodes_best_and_strictness(photos):
    image = photos["coffee"][:96, :128]
    models = []
    for scale in (2, 4):
        tf.keras.utils.set_random_seed(scale)
        models.append(build_model(preset("sr-tiny").replace(scale=scale), for_training=False))
    names = {id(m): f"x{m.config.model.scale}" for m in models}
    choice = rate.choose(image, 1.0, models, label=lambda m: names[id(m)])
    assert choice.fits and choice.result.bpp <= 1.0
    psnrs = {names[id(m)]: float(np.mean((image.astype(float) - api.decode(
        sr.at_rate(image, 1.0, "jpeg", m.config.model.scale)[0].data, m)) ** 2)) for m in models}
    assert names[id(choice.model)] == min(psnrs, key=psnrs.get)  # the smaller error wins
    assert "decodes best" in choice.note and "x2" in choice.note and "x4" in choice.note
    with pytest.raises(TfgcError, match="nothing fits 0.001 bpp"):
        rate.choose(image, 0.001, models, strict=True, label=lambda m: names[id(m)])
    loose = rate.choose(image, 0.001, models, label=lambda m: names[id(m)])
    assert not loose.fits and "written anyway" in loose.note
    assert loose.result.file_bits == min(sr.at_rate(image, 0.001, "jpeg", s)[0].file_bits for s in (2, 4))
    with pytest.raises(TfgcError, match="> 0"):
        rate.choose(image, 0.0, models)


def test_gc_models_give_the_largest_file_that_fits(photos, tiny_model):
    tf.keras.utils.set_random_seed(2)
    larger = build_model(preset("gc-tiny").replace(latent_channels=8), for_training=False)
    image = photos["chelsea"][:64, :64]
    sizes = {id(m): api.encode(image, m).bpp for m in (tiny_model, larger)}
    between = (sizes[id(tiny_model)] + sizes[id(larger)]) / 2
    assert rate.choose(image, between, [tiny_model, larger], label=str).model is tiny_model
    assert rate.choose(image, 10.0, [tiny_model, larger], label=str).model is larger


def test_the_command_line_says_what_it_chose(tmp_path, photos):
    from PIL import Image

    image = tmp_path / "a.png"
    Image.fromarray(photos["astronaut"][:120, :160]).save(image)

    def tfgc(*args):
        return subprocess.run([sys.executable, "-m", "tfgc", "compress", image, tmp_path / "a.tfgc", *map(str, args)],
                              capture_output=True, text=True, timeout=300)

    done = tfgc("--codec", "sr", "--base", "webp", "--scale", 2, "--target-bpp", 0.3)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("chose webp quality") and (tmp_path / "a.tfgc").stat().st_size * 8 <= 0.3 * 120 * 160
    for args, message in [(("--codec", "sr", "--target-bpp", 0.0001, "--bpp-strict", "--force"), "nothing fits"),
                          (("--codec", "sr", "--bpp-strict", "--force"), "--bpp-strict goes with --target-bpp"),
                          (("--codec", "sr", "--scale", "auto", "--force"), "--scale auto goes with --target-bpp"),
                          (("--codec", "sr", "--target-bpp", 0.3, "--quality", 5, "--force"), "no --quality")]:
        refused = tfgc(*args)
        assert refused.returncode == 1 and message in refused.stderr and len(refused.stderr.splitlines()) == 1
