"""Procedural street scenes with label maps, in the Cityscapes layout, for selective compression.

Cityscapes may not be redistributed, so tests and small training runs use these: sky over a horizon, buildings with
windows, trees, a road in perspective with sidewalks, cars and people, each class drawn with its own textured colour
and labelled with its Cityscapes labelId. They are cartoons, not photographs: a model trained on them learns the
mechanics of SC (what is stored, what is synthesized from the label map), not the look of real streets.

    python -m tfgc.scenes OUT --count 200 --size 512x256
writes OUT/scene_0000_leftImg8bit.png and OUT/scene_0000_gtFine_labelIds.png, ...
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np

ROAD, SIDEWALK, BUILDING, POLE, VEGETATION, SKY, PERSON, CAR = 7, 8, 11, 17, 21, 23, 24, 26
_COLOURS = {ROAD: (90, 88, 95), SIDEWALK: (170, 160, 150), BUILDING: (150, 110, 90), POLE: (60, 60, 60),
            VEGETATION: (60, 120, 40), SKY: (130, 170, 220), PERSON: (180, 60, 70), CAR: (40, 60, 160)}


def _smooth_noise(rng, height: int, width: int, scale: int) -> np.ndarray:
    """Noise in [-1, 1] with features about `scale` pixels wide (bilinear upsampling of a coarse grid)."""
    gh, gw = height // scale + 2, width // scale + 2
    grid = rng.uniform(-1, 1, (gh, gw))
    ys = np.linspace(0, gh - 1.001, height)
    xs = np.linspace(0, gw - 1.001, width)
    y0, x0 = ys.astype(int), xs.astype(int)
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
    top = grid[y0][:, x0] * (1 - fx) + grid[y0][:, x0 + 1] * fx
    bottom = grid[y0 + 1][:, x0] * (1 - fx) + grid[y0 + 1][:, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


def _ellipse(height, width, cy, cx, ry, rx):
    y, x = np.ogrid[:height, :width]
    return ((y - cy) / max(ry, 1)) ** 2 + ((x - cx) / max(rx, 1)) ** 2 <= 1


def procedural_scene(height: int, width: int, rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
    """(photograph uint8 [H, W, 3], Cityscapes labelIds uint8 [H, W]) of one random street scene."""
    labels = np.full((height, width), SKY, np.uint8)
    horizon = int(height * rng.uniform(0.35, 0.55))
    # Buildings stand on the horizon, of random widths and heights.
    x = 0
    while x < width:
        w = int(rng.uniform(0.08, 0.25) * width)
        top = int(horizon - rng.uniform(0.1, 0.45) * height)
        labels[max(top, 0):horizon, x:x + w] = BUILDING
        x += w + int(rng.uniform(0, 0.05) * width)
    # Trees: crowns over the horizon.
    for _ in range(rng.integers(1, 5)):
        cx, r = rng.uniform(0, width), rng.uniform(0.05, 0.12) * height
        labels[_ellipse(height, width, horizon - r * 0.8, cx, r, r * 1.2)] = VEGETATION
    # Ground: sidewalk everywhere below the horizon, the road a trapezoid widening toward the viewer.
    y, xs = np.ogrid[:height, :width]
    labels[horizon:] = SIDEWALK
    depth = np.clip((y - horizon) / max(height - horizon, 1), 0, 1)
    centre = width * rng.uniform(0.4, 0.6)
    half = width * (0.05 + 0.6 * depth)
    labels[(y >= horizon) & (np.abs(xs - centre) <= half)] = ROAD
    # Poles, cars on the road, people on the sidewalks; nearer ones lower and larger.
    for _ in range(rng.integers(0, 3)):
        px = int(rng.uniform(0, width))
        labels[int(horizon - 0.25 * height):int(horizon + 0.1 * height), px:px + max(2, width // 200)] = POLE
    for _ in range(rng.integers(1, 4)):
        d = rng.uniform(0.1, 0.9)
        cy = int(horizon + d * (height - horizon))
        cw, ch = int(width * (0.05 + 0.2 * d)), int(height * (0.03 + 0.12 * d))
        cx = int(centre + rng.uniform(-0.8, 0.8) * width * (0.05 + 0.6 * d) - cw / 2)
        labels[max(cy - ch, 0):cy, max(cx, 0):cx + cw] = CAR
    for _ in range(rng.integers(0, 4)):
        d = rng.uniform(0.1, 0.9)
        cy = horizon + d * (height - horizon)
        ph = height * (0.05 + 0.2 * d)
        side = 1 if rng.uniform() < 0.5 else -1
        cx = centre + side * (width * (0.05 + 0.6 * d) + rng.uniform(0.02, 0.1) * width)
        labels[_ellipse(height, width, cy - ph / 2, cx, ph / 2, ph / 7)] = PERSON
    return _paint(labels, horizon, rng), labels


def _paint(labels: np.ndarray, horizon: int, rng: np.random.Generator) -> np.ndarray:
    height, width = labels.shape
    image = np.zeros((height, width, 3), np.float64)
    fine = _smooth_noise(rng, height, width, 4)
    coarse = _smooth_noise(rng, height, width, 32)
    for label, colour in _COLOURS.items():
        where = labels == label
        if not where.any():
            continue
        tint = np.array(colour) * rng.uniform(0.8, 1.2, 3)
        textures = {VEGETATION: 40 * fine, ROAD: 12 * fine, SIDEWALK: 15 * fine, BUILDING: 10 * fine}
        texture = textures.get(label, 4 * fine)
        image[where] = tint + (texture + 20 * coarse)[where][:, None]
    # Sky brightens toward the horizon; windows on buildings.
    y = np.arange(height)[:, None]
    sky = labels == SKY
    image[sky] += (40 * (y / max(horizon, 1)) * np.ones((1, width)))[sky][:, None]
    rows, cols = (y // 12) % 2 == 0, (np.arange(width)[None, :] // 10) % 2 == 0
    windows = (labels == BUILDING) & rows & cols
    image[windows] = image[windows] * 0.45 + 30
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


def write_scenes(out, count: int, height: int, width: int, seed: int = 0) -> List[Path]:
    """Write `count` scenes into `out` in the Cityscapes layout; returns the photographs' paths."""
    from PIL import Image

    from tfgc.data import IMAGE_SUFFIX, LABEL_SUFFIX

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    written = []
    for i in range(count):
        image, labels = procedural_scene(height, width, rng)
        stem = out / f"scene_{i:04d}"
        Image.fromarray(image).save(f"{stem}{IMAGE_SUFFIX}")
        Image.fromarray(labels, "L").save(f"{stem}{LABEL_SUFFIX}")
        written.append(Path(f"{stem}{IMAGE_SUFFIX}"))
    return written


def main(argv: Optional[List[str]] = None) -> int:
    from tfgc.errors import TfgcError
    from tfgc.utils import run_command

    p = argparse.ArgumentParser(prog="python -m tfgc.scenes",
                                description="Write procedural street scenes with Cityscapes labelIds maps.")
    p.add_argument("out", help="output folder (created)")
    p.add_argument("--count", type=int, default=100)
    p.add_argument("--size", default="512x256", help="WIDTHxHEIGHT")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    def run():
        try:
            width, height = (int(v) for v in args.size.lower().split("x"))
        except ValueError:
            raise TfgcError(f"--size must be WIDTHxHEIGHT, not {args.size!r}") from None
        if width < 16 or height < 16 or args.count < 1:
            raise TfgcError("scenes need --size of at least 16x16 and --count >= 1")
        if Path(args.out).exists() and any(Path(args.out).glob("scene_*")):
            raise TfgcError(f"{args.out} holds scenes already; choose another folder")
        written = write_scenes(args.out, args.count, height, width, args.seed)
        print(f"wrote {len(written)} scenes of {width}x{height} to {args.out}")
        return 0

    return run_command("tfgc.scenes", run)


if __name__ == "__main__":
    sys.exit(main())
