"""Configs as dataclasses, the named presets, and their JSON form.

A `Config` is saved beside every checkpoint and every exported model, so a model directory always says how it was
built and trained. Presets are the one place where the architecture and training defaults of a named model live.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

from tfgc.errors import ConfigError, ModelError, TfgcError

# What the model families are built with and the file format codes (tfgc.codec.bitstream): defined here, below both,
# so that building blocks and models never load the file format.
SR_SCALES = (1, 2, 4, 8)  # downsampling factors of the sr family's base image
BASE_CODECS = ("jpeg", "webp", "avif", "heic")  # the classic codecs a base image may be stored with
# Coding tables hold CDFs out of 2**CODING_PRECISION, the range coder's maximum: tfgc.nn.entropy makes the tables,
# tfgc.codec.range_coder codes with them.
CODING_PRECISION = 16

NORMALIZATIONS = ("instance", "gdn", "none")
SR_GENERATORS = ("srgan", "edsr")
UPSAMPLING_SKIPS = ("none", "bilinear", "lanczos")

CONFIG_FORMAT = 1


@dataclass
class ModelConfig:
    """Architecture and losses of one model.

    Widths scale from `width`: the encoder runs width, 2w, 4w, 8w, 16w channels; the generator 16w (with its residual
    blocks), then 8w, 4w, 2w, w. Agustsson et al. 2019 use width=60 (60..960).
    """

    family: str = "gc"
    width: int = 60
    latent_channels: int = 8  # C
    levels: int = 5  # L: quantizer centres -(L-1)/2 .. (L-1)/2
    residual_blocks: int = 9
    # "instance" (the paper), "gdn" (GDN / inverse GDN in the resampling layers, Balle et al.) or "none"
    normalization: str = "instance"
    noise_channels: int = 0  # extra Gaussian channels concatenated to the quantized latent before the generator
    quantizer_sigma: float = 1.0  # softness of the soft-to-hard gradient; 0 means plain straight-through
    # Discriminator (multi-scale PatchGAN, pix2pixHD style).
    discriminator_width: int = 64
    discriminator_scales: int = 3
    discriminator_layers: int = 3
    # How the least-squares GAN loss combines the discriminator's scales: "sum" is pix2pixHD's (the paper presets),
    # "mean" divides it by the scales (a third of the adversarial weight at 3 scales, against feature matching, which
    # pix2pixHD averages over scales in both settings). The small presets keep "mean": their weights were tuned, and
    # the shipped models trained, with it.
    adversarial_reduction: str = "mean"
    # Loss weights. adversarial_weight = 0 trains without a discriminator (rate + distortion only).
    distortion_weight: float = 10.0  # lambda on MSE of images scaled to [-1, 1]
    # Weight on 1 - MS-SSIM (as many of the 5 scales as the crop holds): MSE alone leaves low-rate reconstructions
    # blurry, which MS-SSIM punishes more than PSNR does.
    ms_ssim_weight: float = 0.0
    adversarial_weight: float = 1.0
    feature_matching_weight: float = 10.0
    perceptual_weight: float = 0.0  # VGG19 feature loss; needs perceptual_weights
    # "imagenet" (Keras downloads them once), a path to a Keras VGG19 weights file, or "random" (tests only)
    perceptual_weights: Optional[str] = None
    rate_weight: float = 0.0  # beta: 0 is the paper's bounded-rate setting, > 0 adds the entropy model's bits/pixel
    # > 0: beta (starting at rate_weight) adapts after every training step, growing while the entropy model's
    # bits/pixel on the training batches exceed this and shrinking while they fall short (dual ascent on the rate
    # constraint), so a run aims at a rate instead of at a weight that only experiments can translate into one.
    target_bpp: float = 0.0
    # Iwai et al. 2020: the model keeps the stage-1 (MSE) decoder beside the trained one, and decodes with their
    # parameters interpolated, theta = (1 - alpha) * theta_mse + alpha * theta; stage 2 builds such models.
    fidelity_control: bool = False
    default_alpha: float = 1.0  # alpha when the user names none (1: the GAN decoder)
    # Selective compression (family "sc"): how label-map ids become classes (tfgc.data.labels), the number of classes
    # of the "identity" label set, the channels of the semantic features F(s) the generator gets, and the weight of
    # MSE on the synthesized (not preserved) region relative to the preserved one.
    label_set: str = "cityscapes"
    semantic_classes: int = 0
    semantic_channels: int = 8
    synthesized_distortion_weight: float = 1.0
    # The super-resolution family "sr" (RL-SRGAN, Savioli 2019, and its generalization): a file is the image
    # downsampled by `scale` (bicubic; 1 keeps the full size) as a file of the classic `base_codec` (jpeg, webp, avif,
    # heic) at `base_quality` by default; the generator (width = its feature channels, residual_blocks) decodes it.
    # `generator` "srgan" is SRGAN's (9x9 convs, batch norm, PReLU, sub-pixel x2 stages); "edsr" is EDSR's residual
    # trunk without normalization (Lim et al. 2017) with one sub-pixel conv to the output, every layer at the base
    # image's resolution. With `actor_critic` a head on the generator's low-resolution features learns a policy over
    # the PSNR and a value, and every `rl_every` (k) steps the actor-critic loss, from rewards discounted by
    # `rl_discount`, joins the SRGAN loss with its value term weighted `value_weight`. discriminator_layers counts the
    # VGG-style discriminator's strided blocks there.
    scale: int = 4
    base_codec: str = "jpeg"
    base_quality: int = 75
    generator: str = "srgan"
    # The generator predicts the difference to the base image upscaled by a fixed filter (a global skip, not in the
    # paper), so training starts at that upscaler's quality: "bilinear", or "lanczos" (Lanczos-3 as Pillow computes it,
    # as a fixed convolution); "none": the paper's generator, tanh output.
    upsampling_skip: str = "none"
    # The sr family's discriminator: "vgg" (SRGAN's, original GAN loss) or "patch" (GC's multi-scale PatchGAN, least
    # squares and feature matching).
    discriminator: str = "vgg"
    actor_critic: bool = False
    rl_every: int = 10
    rl_discount: float = 0.99
    value_weight: float = 5e-3

    @property
    def downsampling(self) -> int:
        return self.scale if self.family == "sr" else 16

    @property
    def bound_bpp(self) -> Optional[float]:
        """The fixed-length rate bound dim(w) * log2(L) per pixel (None for sr models: a JPEG has no such bound)."""
        if self.family == "sr":
            return None
        return self.latent_channels * math.log2(self.levels) / self.downsampling**2

    @property
    def classes(self) -> int:
        """K, the semantic classes of an SC model (0 for GC)."""
        from tfgc.data.labels import class_count

        return class_count(self.label_set, self.semantic_classes) if self.family == "sc" else 0


@dataclass
class TrainConfig:
    crop_size: int = 256
    batch_size: int = 1  # the global batch, split over replicas
    steps: int = 150_000
    steps_per_epoch: int = 1000
    learning_rate: float = 2e-4
    discriminator_learning_rate: float = 2e-4
    # "constant", or "cosine": both learning rates fall along a half cosine to learning_rate_floor times their start
    # as the run progresses toward whichever ends it first: `steps`, the run's `budget_minutes`, or (without a budget)
    # this session's `time_limit_minutes`.
    learning_rate_schedule: str = "constant"
    learning_rate_floor: float = 0.01
    beta_1: float = 0.5
    beta_2: float = 0.999
    mixed_precision: str = "off"  # off | float16 | bfloat16
    strategy: str = "default"  # default | mirrored | multiworker
    jit_compile: bool = False
    seed: int = 0
    checkpoint_every: int = 500  # steps between BackupAndRestore saves
    validation_images: int = 4
    time_limit_minutes: float = 0.0  # 0: no limit; otherwise stop cleanly (checkpoint + export) after this long
    # 0: no budget; otherwise the run's training time in total, over every session that resumes it: stop (checkpoint +
    # export) when it is spent. The time is kept in the model's backups, so a killed session loses only its last steps.
    budget_minutes: float = 0.0
    snapshot_minutes: float = 0.0  # > 0: export the model every this many minutes of training (OUT/snapshots/)
    # 0: every module trains on every loss (Agustsson et al.); 1: every module on rate + distortion, no GAN;
    # 2: the decoder alone with the GAN, from the stage-1 model `init_from`, encoder and entropy model frozen.
    stage: int = 0
    init_from: Optional[str] = None
    # SC: how each training example's preservation mask is drawn: probabilities of preserving nothing (full
    # synthesis from the label map), everything, a random box, and random classes (each present class with
    # preserved_class_probability; Agustsson et al.'s "random instance" with classes, as labelIds carry no instances).
    mask_mix: List[float] = field(default_factory=lambda: [0.25, 0.25, 0.25, 0.25])
    preserved_class_probability: float = 0.25
    downscale: int = 1  # SC data: shrink photographs and label maps by this factor before cropping
    # SR data: the base qualities training images are coded at, each (image, quality) once, its base cached (empty:
    # the model's base_quality alone).
    base_qualities: List[int] = field(default_factory=list)


@dataclass
class Config:
    preset: str = "custom"
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    format: int = CONFIG_FORMAT

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "Config":
        if not isinstance(data, dict):
            raise ConfigError("config must be a JSON object")
        fmt = data.get("format", CONFIG_FORMAT)
        if not isinstance(fmt, int) or fmt > CONFIG_FORMAT:
            raise ConfigError(f"config format {fmt!r} is newer than this tfgc understands ({CONFIG_FORMAT}); "
                              "upgrade tfgc")
        model_values = data.get("model", {})
        if isinstance(model_values, dict) and "jpeg_quality" in model_values:  # sr configs before other bases
            model_values = dict(model_values)
            model_values.setdefault("base_quality", model_values.pop("jpeg_quality"))
        try:
            model = _dataclass_from(ModelConfig, model_values)
            train = _dataclass_from(TrainConfig, data.get("train", {}))
        except TypeError as e:
            raise ConfigError(f"invalid config: {e}") from None
        config = cls(preset=str(data.get("preset", "custom")), model=model, train=train, format=fmt)
        config.validate()
        return config

    @classmethod
    def load(cls, path) -> "Config":
        try:
            text = Path(path).read_text()
        except OSError as e:
            raise ConfigError(f"cannot read config {path}: {e.strerror or e}") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ConfigError(f"config {path} is not valid JSON: {e.msg} at line {e.lineno}") from None
        return cls.from_dict(data)

    def save(self, path) -> None:
        from tfgc.utils import write_atomic

        write_atomic(path, self.to_json().encode() + b"\n", force=True)

    def validate(self) -> None:
        m, t = self.model, self.train
        _require(m.family in ("gc", "sc", "sr"), f"unknown model family {m.family!r}")
        if m.family == "sr":
            _require(m.scale in SR_SCALES, f"scale must be one of {', '.join(map(str, SR_SCALES))}")
            _require(m.base_codec in BASE_CODECS, f"base_codec must be one of {', '.join(BASE_CODECS)}")
            lowest = 1 if m.base_codec == "jpeg" else 0
            _require(all(lowest <= q <= 100 for q in [m.base_quality, *t.base_qualities]),
                     f"base_quality and base_qualities must be in {lowest}..100 for {m.base_codec}")
            _require(m.generator in SR_GENERATORS, f"generator must be one of {', '.join(SR_GENERATORS)}")
            _require(m.discriminator in ("vgg", "patch"), "discriminator must be vgg or patch")
            _require(m.upsampling_skip in UPSAMPLING_SKIPS,
                     f"upsampling_skip must be one of {', '.join(UPSAMPLING_SKIPS)}")
            _require(m.generator != "edsr" or m.upsampling_skip != "none",
                     "the edsr generator adds its output to an upscaled base: upsampling_skip bilinear or lanczos")
            _require(m.scale > 1 or m.generator == "edsr",
                     "scale 1 (restoration at full size) needs the edsr generator")
            _require(not m.fidelity_control or m.generator == "edsr",
                     "fidelity control interpolates edsr generators (srgan's batch norm and PReLU are not supported)")
            _require(m.rl_every >= 1, "rl_every must be >= 1")
            _require(0 <= m.rl_discount <= 1, "rl_discount must be in [0, 1]")
            _require(m.value_weight >= 0, "value_weight must be >= 0")
            _require(t.stage != 1 or not m.actor_critic,
                     "stage 1 trains the decoder on distortion alone: no actor-critic")
            _require(m.ms_ssim_weight == 0, "ms_ssim_weight is for gc and sc models")
        if m.family == "sc":
            from tfgc.data.labels import LABEL_SETS

            _require(m.label_set in LABEL_SETS, f"label_set must be one of {', '.join(LABEL_SETS)}")
            _require(m.label_set != "identity" or 2 <= m.semantic_classes <= 256,
                     "the identity label set needs semantic_classes in 2..256")
            _require(m.synthesized_distortion_weight >= 0, "synthesized_distortion_weight must be >= 0")
            _require(len(t.mask_mix) == 4 and min(t.mask_mix) >= 0 and sum(t.mask_mix) > 0,
                     "mask_mix holds 4 probabilities (none, all, box, classes), >= 0, not all 0")
            _require(0 <= t.preserved_class_probability <= 1, "preserved_class_probability must be in [0, 1]")
            _require(t.downscale >= 1, "downscale must be >= 1")
        _require(m.normalization in NORMALIZATIONS, f"normalization must be one of {', '.join(NORMALIZATIONS)}")
        _require(m.adversarial_reduction in ("mean", "sum"), "adversarial_reduction must be mean or sum")
        # Upper bounds far beyond any published model: a config (a model directory's too) cannot ask for networks that
        # would exhaust memory before anything is checked.
        _require(1 <= m.width <= 1024, "width must be in 1..1024")
        _require(1 <= m.latent_channels <= 1024, "latent_channels must be in 1..1024")
        _require(2 <= m.levels <= 256, "levels must be in 2..256")
        _require(0 <= m.residual_blocks <= 64, "residual_blocks must be in 0..64")
        _require(0 <= m.noise_channels <= 1024, "noise_channels must be in 0..1024")
        _require(1 <= m.discriminator_width <= 1024, "discriminator_width must be in 1..1024")
        _require(1 <= m.semantic_channels <= 1024, "semantic_channels must be in 1..1024")
        _require(m.quantizer_sigma >= 0, "quantizer_sigma must be >= 0")
        _require(1 <= m.discriminator_scales <= 8 and 1 <= m.discriminator_layers <= 8,
                 "discriminator_scales and discriminator_layers must be in 1..8")
        for name in ("distortion_weight", "ms_ssim_weight", "adversarial_weight", "feature_matching_weight",
                     "perceptual_weight", "rate_weight"):
            _require(getattr(m, name) >= 0, f"{name} must be >= 0")
        _require(m.target_bpp >= 0, "target_bpp must be >= 0")
        _require(m.target_bpp == 0 or (m.family != "sr" and m.rate_weight > 0),
                 "target_bpp adapts the rate weight beta of a gc or sc model: it needs rate_weight > 0 to start from")
        _require(m.target_bpp == 0 or m.bound_bpp is None or m.target_bpp < m.bound_bpp,
                 f"target_bpp must be below the rate bound dim*log2(L) = {m.bound_bpp or 0:.4f} bpp, which training "
                 "without a rate term reaches already")
        _require(m.perceptual_weight == 0 or m.perceptual_weights,
                 "perceptual_weight > 0 needs perceptual_weights ('imagenet' or a path to VGG19 weights)")
        _require(t.crop_size >= 16 and t.crop_size % 16 == 0, "crop_size must be a multiple of 16, at least 16")
        _require(t.batch_size >= 1, "batch_size must be >= 1")
        _require(t.steps >= 1 and t.steps_per_epoch >= 1, "steps and steps_per_epoch must be >= 1")
        _require(t.learning_rate > 0 and t.discriminator_learning_rate > 0, "learning rates must be > 0")
        _require(t.learning_rate_schedule in ("constant", "cosine"),
                 "learning_rate_schedule must be constant or cosine")
        _require(0 <= t.learning_rate_floor <= 1, "learning_rate_floor must be in [0, 1]")
        _require(t.mixed_precision in ("off", "float16", "bfloat16"),
                 "mixed_precision must be off, float16 or bfloat16")
        _require(t.strategy in ("default", "mirrored", "multiworker"),
                 "strategy must be default, mirrored or multiworker")
        _require(t.checkpoint_every >= 1, "checkpoint_every must be >= 1")
        _require(t.time_limit_minutes >= 0, "time_limit_minutes must be >= 0")
        _require(t.budget_minutes >= 0, "budget_minutes must be >= 0")
        _require(t.snapshot_minutes >= 0, "snapshot_minutes must be >= 0")
        _require(0.0 <= m.default_alpha <= 1.0, "default_alpha must be in [0, 1]")
        _require(t.stage in (0, 1, 2), "stage must be 0 (joint), 1 (rate + distortion) or 2 (decoder with GAN)")
        _require(t.stage != 1 or m.adversarial_weight == m.feature_matching_weight == m.perceptual_weight == 0,
                 "stage 1 trains on rate and distortion only: adversarial, feature matching and perceptual weights "
                 "must be 0")
        _require(t.stage != 2 or (t.init_from and m.adversarial_weight > 0),
                 "stage 2 fine-tunes a stage-1 model's decoder with the GAN: it needs init_from and "
                 "adversarial_weight > 0")
        _require(t.stage != 2 or m.fidelity_control, "stage 2 builds a fidelity-controlled model (fidelity_control)")

    def replace(self, **overrides) -> "Config":
        """A copy with fields of `model` or `train` replaced by name; unknown names raise ConfigError."""
        model = dataclasses.asdict(self.model)
        train = dataclasses.asdict(self.train)
        for key, value in overrides.items():
            if value is None:
                continue
            if key in model:
                model[key] = value
            elif key in train:
                train[key] = value
            else:
                raise ConfigError(f"unknown setting {key!r}")
        config = Config(preset=self.preset, model=ModelConfig(**model), train=TrainConfig(**train))
        config.validate()
        return config


# How every backend refuses an alpha outside [0, 1] (the graphs' assertion says the same: tfgc.models.fidelity).
ALPHA_RANGE = "alpha must be in [0, 1]"


def checked_alpha(config: Config, alpha) -> float:
    """The decoding alpha for a model of `config`: its default when None; a clear error when out of [0, 1] or when
    the model has a single decoder."""
    if not config.model.fidelity_control:
        if alpha is not None:
            raise ModelError("this model has one decoder: alpha needs a fidelity-controlled model "
                             "(python -m tfgc.train --stage 2)")
        return 1.0
    if alpha is None:
        return float(config.model.default_alpha)
    try:
        alpha = float(alpha)
    except (TypeError, ValueError):
        raise TfgcError(f"{ALPHA_RANGE}, not {type(alpha).__name__} {alpha!r}") from None
    if not 0.0 <= alpha <= 1.0:
        raise TfgcError(f"{ALPHA_RANGE}, not {alpha:g}")
    return alpha


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def _dataclass_from(cls, values: Dict[str, Any]):
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"unknown {cls.__name__} settings: {', '.join(unknown)}")
    return cls(**values)


def _paper(latent_channels: int) -> Config:
    # Architecture, L=5, lambda=10 and the pix2pixHD-style multi-scale discriminator with feature matching follow
    # Agustsson et al. 2019; optimizer settings are pix2pixHD's (Adam 2e-4, beta1 0.5), batch 1.
    return Config(
        preset=f"gc-paper-c{latent_channels}",
        model=ModelConfig(width=60, latent_channels=latent_channels, levels=5, residual_blocks=9,
                          adversarial_reduction="sum"),
        train=TrainConfig(crop_size=256, batch_size=1, steps=150_000, steps_per_epoch=1000),
    )


def _small() -> Config:
    # Narrow enough for 2 CPU cores: encoder 16-32-64-128-256, 4 residual blocks, no discriminator by default
    # (rate-bounded MSE training, the first stage of a two-stage schedule); C=8, L=5 gives the 0.0726 bpp bound.
    # Departures from the paper, measured in docs/cpu-training.md (scripts/cpu_training.py): GDN instead of instance
    # norm, an MS-SSIM term beside the MSE, batches of 4, and Adam 3e-4 on a cosine schedule over the run.
    return Config(
        preset="gc-small",
        model=ModelConfig(width=16, latent_channels=8, levels=5, residual_blocks=4, normalization="gdn",
                          ms_ssim_weight=3.0, discriminator_width=16, discriminator_layers=3, adversarial_weight=0.0,
                          feature_matching_weight=0.0),
        train=TrainConfig(crop_size=128, batch_size=4, steps=240, steps_per_epoch=40, learning_rate=3e-4,
                          learning_rate_schedule="cosine", beta_1=0.9, checkpoint_every=40, validation_images=4),
    )


def with_gan(config: Config) -> Config:
    """The GAN settings of the paper-scale presets on a config that trained without them: GC and SC, LSGAN 1 and
    feature matching 10 with Adam 2e-4, beta1 0.5 (pix2pixHD's); SR with SRGAN's discriminator, its adversarial 1e-3
    with Adam 1e-4; SR with the PatchGAN, half of GC's proportions to its MSE weight of 1 (LSGAN 0.05, feature
    matching 0.5: GC's are 1 and 10 beside an MSE weight of 10) with Adam 1e-4, the shipped heic-x2's stage 2, whose
    GAN decoder keeps more detail than full-size HEIC for a quarter of a dB."""
    if config.model.family == "sr" and config.model.discriminator == "patch":
        return config.replace(adversarial_weight=0.05, feature_matching_weight=0.5, learning_rate=1e-4,
                              discriminator_learning_rate=1e-4, beta_1=0.5)
    if config.model.family == "sr":
        return config.replace(adversarial_weight=1e-3, learning_rate=1e-4, discriminator_learning_rate=1e-4,
                              beta_1=0.9)
    return config.replace(adversarial_weight=1.0, feature_matching_weight=10.0, learning_rate=2e-4, beta_1=0.5)


def _small_gan() -> Config:
    config = with_gan(_small())
    config.preset = "gc-small-gan"
    return config


def _tiny() -> Config:
    # For tests and smoke runs only: seconds per step on any machine, no claim of quality.
    return Config(
        preset="gc-tiny",
        model=ModelConfig(width=4, latent_channels=4, levels=5, residual_blocks=1, discriminator_width=4,
                          discriminator_scales=2, discriminator_layers=2),
        train=TrainConfig(crop_size=32, batch_size=2, steps=4, steps_per_epoch=2, learning_rate=1e-3,
                          checkpoint_every=1, validation_images=2),
    )


def _sc_paper() -> Config:
    # Agustsson et al.'s SC setting: Cityscapes at 1024x512 (downscale 2), the GC architecture and losses, E and G
    # conditioned on the label map, the discriminator on the label map too; masks drawn as random boxes or classes,
    # and sometimes nothing or everything preserved.
    config = _paper(8)
    return dataclasses.replace(config, preset="sc-paper",
                               model=dataclasses.replace(config.model, family="sc", semantic_channels=64),
                               train=dataclasses.replace(config.train, crop_size=512, downscale=2))


def _sc_small() -> Config:
    # gc-small with the label map, at 1024x512 (downscale 2) in 192x192 crops: its GDN (so sc-small decodes and
    # compresses in tiles, in bounded memory, where instance norm needs the whole image), its MS-SSIM term and its
    # cosine schedule. The selective page (docs/selective.md) is measured on this preset.
    config = _small()
    return dataclasses.replace(config, preset="sc-small",
                               model=dataclasses.replace(config.model, family="sc", semantic_channels=16),
                               train=dataclasses.replace(config.train, crop_size=192, batch_size=4, downscale=2))


def _sc_tiny() -> Config:
    config = _tiny()
    return dataclasses.replace(config, preset="sc-tiny",
                               model=dataclasses.replace(config.model, family="sc", semantic_channels=4))


def _rlsrgan_paper() -> Config:
    # Savioli 2019 on SRGAN (Ledig et al. 2017): generator 9x9 conv 64 + PReLU, 5 residual blocks, x4 by sub-pixel
    # convolution; VGG-style discriminator; loss MSE + 1e-3 adversarial + 6e-3 VGG19 (phi_5,4) feature MSE, the
    # actor-critic term every k steps. SRGAN's optimizer (Adam 1e-4, beta1 0.9), 96x96 crops, batch 16.
    return Config(
        preset="rlsrgan-paper",
        model=ModelConfig(family="sr", width=64, residual_blocks=5, discriminator_width=64, discriminator_layers=4,
                          distortion_weight=1.0, adversarial_weight=1e-3, feature_matching_weight=0.0,
                          perceptual_weight=6e-3, perceptual_weights="imagenet", actor_critic=True),
        train=TrainConfig(crop_size=96, batch_size=16, steps=100_000, steps_per_epoch=1000, learning_rate=1e-4,
                          discriminator_learning_rate=1e-4, beta_1=0.9),
    )


def _rlsrgan_small() -> Config:
    # The paper's generator at half width and a quarter-width discriminator, batch 8, without the VGG term (VGG19 on
    # every step is most of a CPU step, and its ImageNet weights need the network or a local file: add it with
    # --perceptual-weight 6e-3 --vgg-weights FILE). A bilinear global skip and a higher learning rate for short CPU
    # runs: from scratch the paper's generator first has to learn what an upscaler does (measured on BSDS500 crops:
    # 15.2 dB after 90 steps without the skip, 24.2 dB after 40 with it).
    config = _rlsrgan_paper()
    return dataclasses.replace(
        config, preset="rlsrgan-small",
        model=dataclasses.replace(config.model, width=32, discriminator_width=16, perceptual_weight=0.0,
                                  perceptual_weights=None, upsampling_skip="bilinear"),
        train=dataclasses.replace(config.train, batch_size=8, steps=20_000, steps_per_epoch=200, learning_rate=5e-4,
                                  checkpoint_every=100))


def _rlsrgan_tiny() -> Config:
    config = _rlsrgan_small()
    return dataclasses.replace(
        config, preset="rlsrgan-tiny",
        model=dataclasses.replace(config.model, width=4, residual_blocks=1, discriminator_width=4,
                                  discriminator_layers=2, rl_every=2),
        train=dataclasses.replace(config.train, crop_size=32, batch_size=2, steps=4, steps_per_epoch=2,
                                  checkpoint_every=1, validation_images=2))


def _sr_small() -> Config:
    # The base-layer codec for 2 CPU cores: HEIC (x265) at half size carries the bits, and the decoder learns what a
    # Lanczos upscale of it misses. EDSR's trunk at width 32 with 8 residual blocks, every layer at the base's
    # resolution, its output added to the Lanczos upscale (the last conv starts at zero, so training starts at
    # Lanczos). Trained on whole images coded at a spread of qualities (base_qualities: 0.012 to 0.19 bpp on Kodak at
    # 1/2 size, the container packed), MSE alone: the first stage of a two-stage schedule (--stage 2 adds the GAN).
    return Config(
        preset="sr-small",
        model=ModelConfig(family="sr", generator="edsr", width=32, residual_blocks=8, upsampling_skip="lanczos",
                          base_codec="heic", scale=2, base_quality=20, distortion_weight=1.0, adversarial_weight=0.0,
                          feature_matching_weight=0.0, discriminator="patch", discriminator_width=16,
                          discriminator_layers=3, discriminator_scales=2),
        train=TrainConfig(crop_size=96, batch_size=16, steps=20_000, steps_per_epoch=200, learning_rate=5e-4,
                          learning_rate_schedule="cosine", learning_rate_floor=0.05, beta_1=0.9, checkpoint_every=100,
                          base_qualities=[0, 10, 20, 30, 40]),
    )


def _sr_tiny() -> Config:
    # For tests only; JPEG, so that no plugin is needed.
    config = _sr_small()
    return dataclasses.replace(
        config, preset="sr-tiny",
        model=dataclasses.replace(config.model, width=4, residual_blocks=1, base_codec="jpeg", base_quality=50,
                                  discriminator_width=4, discriminator_layers=2),
        train=dataclasses.replace(config.train, crop_size=32, batch_size=2, steps=4, steps_per_epoch=2,
                                  checkpoint_every=1, validation_images=2, base_qualities=[30, 70]))


PRESETS = {
    "gc-paper": lambda: dataclasses.replace(_paper(8), preset="gc-paper"),
    "gc-paper-c2": lambda: _paper(2),
    "gc-paper-c4": lambda: _paper(4),
    "gc-paper-c8": lambda: _paper(8),
    "gc-small": _small,
    "gc-small-gan": _small_gan,
    "gc-tiny": _tiny,
    "sc-paper": _sc_paper,
    "sc-small": _sc_small,
    "sc-tiny": _sc_tiny,
    "rlsrgan-paper": _rlsrgan_paper,
    "rlsrgan-small": _rlsrgan_small,
    "rlsrgan-tiny": _rlsrgan_tiny,
    "sr-small": _sr_small,
    "sr-tiny": _sr_tiny,
}


def preset(name: str) -> Config:
    try:
        return PRESETS[name]()
    except KeyError:
        raise ConfigError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}") from None
