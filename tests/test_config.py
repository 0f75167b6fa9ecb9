import json

import pytest

from tfgc.config import PRESETS, Config, preset
from tfgc.errors import ConfigError


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_validate_and_round_trip_through_json(name, tmp_path):
    config = preset(name)
    config.validate()
    config.save(tmp_path / "c.json")
    assert Config.load(tmp_path / "c.json") == config


def test_paper_preset_is_the_paper_architecture():
    from tfgc.models.gc import Encoder, Generator

    config = preset("gc-paper-c4")
    m = config.model
    assert (m.width, m.latent_channels, m.levels, m.residual_blocks, m.distortion_weight) == (60, 4, 5, 9, 10.0)
    assert m.discriminator_scales == 3
    encoder = Encoder(m.width, m.latent_channels)
    filters = [layer.layers[0].filters for layer in encoder.layers[:-1]] + [encoder.layers[-1].filters]
    kernels = [layer.layers[0].kernel_size for layer in encoder.layers[:-1]]
    strides = [layer.layers[0].strides for layer in encoder.layers[:-1]]
    assert filters == [60, 120, 240, 480, 960, 4]
    assert kernels == [(7, 7)] + [(3, 3)] * 4
    assert strides == [(1, 1)] + [(2, 2)] * 4
    generator = Generator(m.width, m.residual_blocks)
    names = [type(layer).__name__ for layer in generator.layers]
    assert names.count("ResidualBlock") == 9
    ups = [layer.layers[0] for layer in generator.layers if type(layer).__name__ == "ConvNormAct"
           and layer.layers[0].strides == (2, 2)]
    assert [u.filters for u in ups] == [480, 240, 120, 60]
    assert generator.layers[0].layers[0].filters == 960
    assert generator.layers[-2].kernel_size == (7, 7) and generator.layers[-2].filters == 3
    assert [preset(f"gc-paper-c{c}").model.latent_channels for c in (2, 4, 8)] == [2, 4, 8]


def test_bound_is_dim_times_log2_levels():
    assert preset("gc-small").model.bound_bpp == pytest.approx(8 * 2.321928 / 256, rel=1e-6)
    assert preset("gc-paper-c2").model.bound_bpp == pytest.approx(0.0181, abs=1e-4)


def test_errors_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="unknown preset"):
        preset("nope")
    with pytest.raises(ConfigError, match="levels"):
        preset("gc-small").replace(levels=1)
    with pytest.raises(ConfigError, match="multiple of 16"):
        preset("gc-small").replace(crop_size=100)
    with pytest.raises(ConfigError, match="unknown setting"):
        preset("gc-small").replace(colour="blue")
    with pytest.raises(ConfigError, match="perceptual_weights"):
        preset("gc-small").replace(perceptual_weight=1.0)
    with pytest.raises(ConfigError, match="rate_weight > 0 to start from"):
        preset("gc-small").replace(target_bpp=0.05)
    with pytest.raises(ConfigError, match="below the rate bound"):
        preset("gc-small").replace(rate_weight=1.0, target_bpp=0.08)
    newer = preset("gc-small").to_dict()
    newer["format"] = 99
    (tmp_path / "new.json").write_text(json.dumps(newer))
    with pytest.raises(ConfigError, match="newer"):
        Config.load(tmp_path / "new.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ConfigError, match="not valid JSON"):
        Config.load(tmp_path / "bad.json")
    unknown = preset("gc-small").to_dict()
    unknown["model"]["depth"] = 3
    with pytest.raises(ConfigError, match="depth"):
        Config.from_dict(unknown)
