"""Learned rate control for the sr family: a policy that reads cheap features of an image and picks the base codec's
quality for a target rate, so a file at a rate takes one encode where --target-bpp's search takes seven to nine.

It is an actor-critic whose action matters (tfgc.training.rate_policy trains it): the action is the quality, and the
reward is the rate-distortion result of that quality, measured on real files decoded by the model's learned decoder:
PSNR less a steep penalty for a file above the target (objective "cap", the search's aim, the one shipped), or
PSNR - rate_weight * bpp / target (objective "mean": bits where they buy the most PSNR, the target met on average).
Either way a file may land a little above the target; `--bpp-strict` codes it again at lower qualities.

Features, computed with NumPy and Pillow only (no TensorFlow, no network), of the base image (the image downsampled by
the model's scale, which the encoder makes anyway): the mean absolute luma gradient at full, half and quarter size,
the standard deviations of luma and of the two colour differences, the share of flat 8x8 blocks, the rate of a JPEG
probe of the base at quality 50 and half its size (a few milliseconds), each as a logarithm where it spans decades,
and the logarithm of the target rate. The actor is a small MLP over them whose two outputs are the mean and the
log standard deviation of a Gaussian over the index of the quality in its grid (qualities are ordered, so a policy
gradient on the mean moves the choice to a neighbouring quality); it picks the grid's quality nearest the mean. It is
stored as JSON beside the model (rate_policy.json).
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np
from PIL import Image

from tfgc.config import BASE_CODECS, SR_SCALES
from tfgc.errors import ModelError

POLICY_FILE = "rate_policy.json"
FORMAT = 1
FEATURES = ("log_gradient", "log_gradient_half", "log_gradient_quarter", "log_luma_std", "log_chroma_std_1",
            "log_chroma_std_2", "flat_blocks", "log_probe_bpp", "log_target_bpp")


def _luma(image: np.ndarray) -> np.ndarray:
    rgb = image.astype(np.float32)
    return 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]


def _half(plane: np.ndarray) -> np.ndarray:
    height, width = plane.shape[0] // 2 * 2, plane.shape[1] // 2 * 2
    if height == 0 or width == 0:
        return plane
    p = plane[:height, :width]
    return 0.25 * (p[0::2, 0::2] + p[1::2, 0::2] + p[0::2, 1::2] + p[1::2, 1::2])


def _gradient(plane: np.ndarray) -> float:
    dx = np.abs(np.diff(plane, axis=1)).mean() if plane.shape[1] > 1 else 0.0
    dy = np.abs(np.diff(plane, axis=0)).mean() if plane.shape[0] > 1 else 0.0
    return float(dx + dy)


def image_features(base: np.ndarray) -> np.ndarray:
    """The features of a base image (uint8 [h, w, 3]) that do not depend on the target, float64 [len(FEATURES) - 1]."""
    luma = _luma(base)
    rgb = base.astype(np.float32)
    half = _half(luma)
    blocks_y, blocks_x = luma.shape[0] // 8, luma.shape[1] // 8
    if blocks_y and blocks_x:
        blocks = luma[:blocks_y * 8, :blocks_x * 8].reshape(blocks_y, 8, blocks_x, 8)
        flat = float((blocks.std(axis=(1, 3)) < 2.0).mean())
    else:
        flat = 0.0
    small = Image.fromarray(base).resize((max(1, base.shape[1] // 2), max(1, base.shape[0] // 2)), Image.BOX)
    buffer = io.BytesIO()
    small.save(buffer, format="JPEG", quality=50)
    probe_bpp = 8 * len(buffer.getvalue()) / (small.size[0] * small.size[1])
    chroma = [(rgb[..., 0] - rgb[..., 1]).std(), (rgb[..., 2] - rgb[..., 1]).std()]
    return np.array([math.log(_gradient(luma) + 0.1), math.log(_gradient(half) + 0.1),
                     math.log(_gradient(_half(half)) + 0.1), math.log(luma.std() + 0.1),
                     math.log(chroma[0] + 0.1), math.log(chroma[1] + 0.1), flat, math.log(probe_bpp)])


def with_target(image_part: np.ndarray, target_bpp) -> np.ndarray:
    """Image features [..., F - 1] and target rates [...] -> the policy's inputs [..., F]."""
    target = np.log(np.asarray(target_bpp, np.float64))
    image_part = np.asarray(image_part, np.float64)
    target = np.broadcast_to(target, image_part.shape[:-1])[..., None]
    return np.concatenate([image_part, target], axis=-1)


@dataclass
class RatePolicy:
    """The actor: inputs normalized by (mean, std), tanh hidden layers, the qualities' logits."""

    base: str
    scale: int
    qualities: List[int]
    mean: np.ndarray
    std: np.ndarray
    layers: List[Tuple[np.ndarray, np.ndarray]]
    rate_weight: float
    objective: str  # what its reward asked of the files: "cap" or "mean" (tfgc.training.rate_policy)
    metadata: dict

    def outputs(self, inputs: np.ndarray) -> np.ndarray:
        """The actor's raw outputs [..., 2] (see mean_index)."""
        x = (np.asarray(inputs, np.float64) - self.mean) / self.std
        for i, (weights, bias) in enumerate(self.layers):
            x = x @ weights + bias
            if i < len(self.layers) - 1:
                x = np.tanh(x)
        return x

    def index(self, inputs: np.ndarray) -> np.ndarray:
        """The index into `qualities` the policy picks for each input [..., F]: the grid point nearest its mean."""
        return np.clip(np.rint(mean_index(self.outputs(inputs)[..., 0], len(self.qualities))), 0,
                       len(self.qualities) - 1).astype(int)

    def quality(self, base_image: np.ndarray, target_bpp: float) -> int:
        """The quality the policy picks for this base image at this target."""
        return int(self.qualities[int(self.index(with_target(image_features(base_image), target_bpp)))])

    def to_json(self) -> dict:
        return {"format": FORMAT, "base": self.base, "scale": self.scale, "qualities": list(self.qualities),
                "features": list(FEATURES), "mean": self.mean.tolist(), "std": self.std.tolist(),
                "layers": [[w.tolist(), b.tolist()] for w, b in self.layers], "rate_weight": self.rate_weight,
                "objective": self.objective, "metadata": self.metadata}

    @classmethod
    def from_json(cls, data: dict, where: str = "rate policy") -> "RatePolicy":
        try:
            if data.get("format") != FORMAT or list(data["features"]) != list(FEATURES):
                raise ModelError(f"{where} is of another format or features than this tfgc reads")
            layers = [(np.asarray(w, np.float64), np.asarray(b, np.float64)) for w, b in data["layers"]]
            mean, std = np.asarray(data["mean"], np.float64), np.asarray(data["std"], np.float64)
            qualities = [int(q) for q in data["qualities"]]
            width = len(FEATURES)
            for weights, bias in layers:
                if weights.ndim != 2 or weights.shape[0] != width or bias.shape != (weights.shape[1],):
                    raise ModelError(f"{where}: its layers do not chain")
                width = weights.shape[1]
            if width != 2 or len(qualities) < 2 or mean.shape != (len(FEATURES),) or std.shape != mean.shape:
                raise ModelError(f"{where}: its outputs or normalization do not match its qualities and features")
            if not (np.all(np.isfinite(std)) and np.all(std > 0)):
                raise ModelError(f"{where}: its normalization is not positive")
            if data["objective"] not in ("cap", "mean"):
                raise ModelError(f"{where}: unknown objective {data['objective']!r}")
            if data["base"] not in BASE_CODECS or data["scale"] not in SR_SCALES or not all(
                    0 <= q <= 100 for q in qualities):
                raise ModelError(f"{where}: its base codec, scale or qualities are not an sr model's")
            return cls(str(data["base"]), int(data["scale"]), qualities, mean, std, layers,
                       float(data["rate_weight"]), data["objective"], dict(data.get("metadata", {})))
        except ModelError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise ModelError(f"{where} is not a rate policy: {e}") from None


def mean_index(output, count: int, tanh=np.tanh):
    """The Gaussian's mean over quality indices 0..count-1 from the actor's first output (0: the middle of the grid).
    Bounded by tanh (TensorFlow's in training): a mean that left the grid would have every sample clipped to one end,
    the same reward for all of them, and no gradient to come back."""
    half = (count - 1) / 2.0
    return half + half * tanh(output)


LOG_STD_RANGE = (-0.7, 1.5)  # of the standard deviation in index steps


def save(policy: RatePolicy, path) -> None:
    from tfgc.utils import write_atomic

    write_atomic(Path(path), (json.dumps(policy.to_json(), indent=1) + "\n").encode(), force=True)


def load(path) -> RatePolicy:
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ModelError(f"cannot read the rate policy {path}: {e}") from None
    return RatePolicy.from_json(data, str(path))


def for_model(directory) -> Optional[RatePolicy]:
    """The rate policy stored beside a model (None when it has none)."""
    path = Path(directory) / POLICY_FILE
    return load(path) if path.is_file() else None

