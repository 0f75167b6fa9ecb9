"""The comparison page of `python -m tfgc bench`: one self-contained HTML file to judge codecs by looking.

For each image, the original and one version of it per codec at matched rate share one frame, split by a slider
(original on the left, the chosen codec on the right, as HiFiC's demo shows them); a fidelity-controlled model's
versions at several alphas get an alpha slider; the RD plots sit on top. Every picture is embedded losslessly (WebP,
else PNG) as a data URI, and the page loads nothing from the network, so it opens anywhere, offline.

Its state can be set from the address, for links and for the tests that check it in a headless browser:
`PAGE.html#image=0&version=1&alpha=0&split=30` (indices, and the split in percent).
"""

from __future__ import annotations

import base64
import html
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
from PIL import Image, features

from tfgc.utils import write_atomic


@dataclass
class Version:
    """An image as one codec or model decoded it."""
    label: str  # what the page calls it: "WebP q20", "tfgc gc-small-c8"
    bpp: float
    psnr: float
    image: np.ndarray
    alpha: Optional[float] = None  # a fidelity-controlled model's alpha: versions of one label form an alpha slider


@dataclass
class PageImage:
    name: str
    original: np.ndarray
    versions: List[Version] = field(default_factory=list)


def nearest_rate(candidates: Sequence[float], target: float) -> int:
    """Index of the rate closest to `target` in ratio (bpp are compared as factors, not differences)."""
    return int(np.argmin([abs(np.log(max(rate, 1e-9) / target)) for rate in candidates]))


def _data_uri(mime: str, data: bytes) -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode()


def image_uri(array: np.ndarray) -> str:
    buffer = io.BytesIO()
    image = Image.fromarray(np.asarray(array, np.uint8), "RGB")
    if features.check("webp"):
        image.save(buffer, format="WEBP", lossless=True, quality=100, method=4)
        return _data_uri("image/webp", buffer.getvalue())
    image.save(buffer, format="PNG")
    return _data_uri("image/png", buffer.getvalue())


def _groups(versions: List[Version]) -> List[dict]:
    """One entry per label, in order of first appearance; a label's versions sorted by alpha."""
    groups: Dict[str, dict] = {}
    for version in versions:
        group = groups.setdefault(version.label, {"label": version.label, "points": []})
        group["points"].append({"alpha": version.alpha, "bpp": round(version.bpp, 4), "psnr": round(version.psnr, 2),
                                "src": image_uri(version.image)})
    for group in groups.values():
        group["points"].sort(key=lambda p: -1.0 if p["alpha"] is None else p["alpha"])
    return list(groups.values())


def page(title: str, images: Sequence[PageImage], plots: Dict[str, Path], caption: str = "") -> str:
    """The page's HTML."""
    data = [{"name": item.name, "width": int(item.original.shape[1]), "height": int(item.original.shape[0]),
             "original": image_uri(item.original), "versions": _groups(item.versions)} for item in images]
    plot_uris = {name: _data_uri("image/png", Path(path).read_bytes())
                 for name, path in plots.items() if Path(path).is_file()}
    figures = "\n".join(f'<figure><img alt="{html.escape(name)}" src="{uri}">'
                        f"<figcaption>{html.escape(name)}</figcaption></figure>" for name, uri in plot_uris.items())
    payload = json.dumps(data).replace("</", "<\\/")
    return _TEMPLATE.format(title=html.escape(title), caption=html.escape(caption), figures=figures,
                            payload=payload)


def write_page(path, title: str, images: Sequence[PageImage], plots: Dict[str, Path], caption: str = "") -> None:
    write_atomic(path, page(title, images, plots, caption).encode(), force=True)


_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5em; color: #222; background: #fafafa; }}
h1 {{ font-size: 1.4em; }} h2 {{ font-size: 1.1em; margin-top: 2em; }}
.plots {{ display: flex; flex-wrap: wrap; gap: 1em; }}
.plots figure {{ margin: 0; max-width: 48%; }} .plots img {{ width: 100%; }}
.controls {{ display: flex; flex-wrap: wrap; gap: 1.5em; align-items: center; margin: 0.5em 0; }}
.frame {{ position: relative; max-width: 100%; user-select: none; overflow: hidden; background: #000; }}
.frame img {{ position: absolute; top: 0; left: 0; width: 100%; height: 100%; image-rendering: auto; }}
.frame .divider {{ position: absolute; top: 0; bottom: 0; width: 2px; background: #fff; pointer-events: none; }}
.frame .split {{ position: absolute; left: 0; bottom: 4px; width: 100%; margin: 0; opacity: 0.8; }}
.caption {{ font-size: 0.9em; color: #555; }}
.alpha[hidden] {{ display: none; }}
</style>
</head>
<body>
<h1>{title}</h1>
<p class="caption">{caption}</p>
<div class="plots">{figures}</div>
<p>Each frame shows the original on the left and the chosen codec on the right, at the rate closest to the tfgc
model's on that image; drag the slider in the frame (or click in it) to move the split.</p>
<div id="images"></div>
<script type="application/json" id="data">{payload}</script>
<script>
"use strict";
const IMAGES = JSON.parse(document.getElementById("data").textContent);
const state = Object.fromEntries(new URLSearchParams(location.hash.slice(1)));

function element(tag, attributes, parent) {{
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes || {{}})) {{
    if (key === "text") node.textContent = value; else node.setAttribute(key, value);
  }}
  if (parent) parent.appendChild(node);
  return node;
}}

function build(item, index, root) {{
  const section = element("section", {{"class": "image", "id": "image-" + index}}, root);
  element("h2", {{text: item.name}}, section);
  const controls = element("div", {{"class": "controls"}}, section);
  const versionLabel = element("label", {{text: "Right: "}}, controls);
  const select = element("select", {{"class": "version"}}, versionLabel);
  item.versions.forEach((group, i) => element("option", {{value: i, text: group.label}}, select));
  const alphaLabel = element("label", {{"class": "alpha", text: "alpha "}}, controls);
  const alpha = element("input", {{type: "range", "class": "alpha-slider", min: 0, step: 1}}, alphaLabel);
  const alphaValue = element("span", {{"class": "alpha-value"}}, alphaLabel);
  const frame = element("div", {{"class": "frame"}}, section);
  frame.style.width = item.width + "px";
  frame.style.aspectRatio = item.width + " / " + item.height;
  const left = element("img", {{"class": "left", alt: item.name + " (original)", src: item.original}}, frame);
  const right = element("img", {{"class": "right", alt: ""}}, frame);
  const divider = element("div", {{"class": "divider"}}, frame);
  const split = element("input", {{type: "range", "class": "split", min: 0, max: 100, step: 0.1, value: 50}}, frame);
  const caption = element("p", {{"class": "caption"}}, section);

  function setSplit(percent) {{
    split.value = percent;
    right.style.clipPath = "inset(0 0 0 " + percent + "%)";
    divider.style.left = "calc(" + percent + "% - 1px)";
  }}
  function show() {{
    const group = item.versions[Number(select.value)];
    alphaLabel.hidden = group.points.length < 2;
    alpha.max = group.points.length - 1;
    const point = group.points[Math.min(Number(alpha.value), group.points.length - 1)];
    right.src = point.src;
    right.alt = item.name + " (" + group.label + ")";
    alphaValue.textContent = point.alpha === null ? "" : String(point.alpha);
    caption.textContent = "left: original \u00b7 right: " + group.label +
      (point.alpha === null ? "" : " at alpha " + point.alpha) + ", " + point.bpp.toFixed(4) + " bpp, " +
      point.psnr.toFixed(2) + " dB PSNR";
  }}
  select.addEventListener("change", () => {{  // a newly chosen model starts at its highest alpha
    alpha.max = item.versions[Number(select.value)].points.length - 1;
    alpha.value = alpha.max;
    show();
  }});
  alpha.addEventListener("input", show);
  split.addEventListener("input", () => setSplit(Number(split.value)));
  frame.addEventListener("pointerdown", (event) => {{
    const box = frame.getBoundingClientRect();
    setSplit(Math.max(0, Math.min(100, 100 * (event.clientX - box.left) / box.width)));
  }});
  const chosen = Number(state.image) === index;
  select.value = chosen && state.version !== undefined ? state.version : 0;
  alpha.max = item.versions[Number(select.value)].points.length - 1;
  alpha.value = chosen && state.alpha !== undefined ? state.alpha : alpha.max;
  setSplit(chosen && state.split !== undefined ? Number(state.split) : 50);
  show();
  if (chosen) section.scrollIntoView();
}}

const root = document.getElementById("images");
IMAGES.forEach((item, index) => build(item, index, root));
document.body.setAttribute("data-ready", IMAGES.length);
</script>
</body>
</html>
"""
