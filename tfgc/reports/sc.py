"""python -m tfgc selective: what selective compression stores and how it decodes, as the preserved area grows.

For every photograph with a label map (Cityscapes layout), the preserved region is a centred box covering each of
`--fractions` of the latent grid, then the classes of `--classes`: each is compressed to a real file, whose bytes are
split into latents, mask, label map and the rest, and decoded; PSNR is measured inside the preserved region (what the
file stores) and outside it (what the decoder synthesizes from the label map). A table, a rate plot, a figure
(original, label map, mask, reconstructions) and JSON/CSV go to OUT/NAME.md and OUT/NAME/.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from tfgc.errors import TfgcError
from tfgc.reports.writer import (environment, model_record, provenance, pyplot, Report, require_matplotlib,
                                results_links, save_figure, training_summary)
from tfgc.utils import progress_bar

DEFAULT_FRACTIONS = (0.0, 0.25, 0.5, 0.75, 1.0)
PARTS = ("latents", "mask", "label_map", "overhead")


def psnr_where(original: np.ndarray, reconstruction: np.ndarray, region: np.ndarray) -> Optional[float]:
    """PSNR over the pixels of `region` (boolean [H, W]); None for an empty region."""
    from tfgc.metrics import psnr

    return psnr(original, reconstruction, region) if region.any() else None


def load_pair(image_path: str, label_path: str, downscale: int) -> Tuple[np.ndarray, np.ndarray]:
    """A photograph (area-averaged) and its label ids (nearest) shrunk by `downscale`."""
    from PIL import Image

    from tfgc.codec.io import load_image
    from tfgc.data.labels import read_label_ids

    image, ids = load_image(image_path), read_label_ids(label_path)
    if downscale > 1:
        height, width = image.shape[0] // downscale, image.shape[1] // downscale
        image = np.asarray(Image.fromarray(image).resize((width, height), Image.BOX))
        ids = np.asarray(Image.fromarray(ids).resize((width, height), Image.NEAREST))
    return image, ids


def _training_keys(manifest: dict) -> set:
    """Names of the pairs the model trained on, from its manifest's data folders (empty when unknown)."""
    from tfgc.data import IMAGE_SUFFIX, semantic_pairs
    from tfgc.errors import DataError

    try:
        pairs = semantic_pairs([d for d in manifest.get("data", []) if Path(d).is_dir()])
    except DataError:
        return set()
    return {Path(image).name[:-len(IMAGE_SUFFIX)] for image, _ in pairs}


def run_selective(args) -> int:
    from tfgc.data import labels
    from tfgc.codec import api, bitstream
    from tfgc.data import IMAGE_SUFFIX, semantic_pairs
    from tfgc.models.store import load_model

    report = Report(args)
    model = load_model(args.model)
    if model.family != "sc":
        raise TfgcError(f"{args.model} is a {model.family} model; selective needs an sc model")
    fractions = list(args.fractions or DEFAULT_FRACTIONS)
    if any(not 0 <= f <= 1 for f in fractions):
        raise TfgcError("--fractions must lie in [0, 1]")
    m = model.config.model
    class_list = labels.class_ids(args.classes.split(","), m.label_set, m.semantic_classes) if args.classes else []
    require_matplotlib("selective")
    pairs = semantic_pairs(args.data)[:args.limit]
    downscale = model.config.train.downscale if args.downscale is None else args.downscale
    seen = _training_keys(model.manifest)
    settings = [(f"box {100 * f:.0f}%", f) for f in fractions]  # fraction None: the classes
    if class_list:
        settings.append((f"classes {args.classes}", None))
    alphas = [model.checked_alpha(a) for a in args.alphas] if args.alphas else [None]
    started_in = environment()  # taken at the start: the commit whose code runs
    progress = progress_bar(len(pairs) * len(settings) * len(alphas), "decode")
    rows: List[dict] = []
    figure_rows = []
    for image_path, label_path in pairs:
        name = Path(image_path).name[:-len(IMAGE_SUFFIX)]
        image, ids = load_pair(image_path, label_path, downscale)
        height, width = image.shape[:2]
        reconstructions = []
        for label, fraction in settings:
            if fraction is not None:
                kwargs = {"preserve": labels.box_mask(height, width, fraction, m.downsampling)}
            else:
                kwargs = {"preserve_classes": [str(c) for c in class_list]}
            result = api.encode(image, model, semantics=ids, **kwargs)
            data = result.data
            header, payload = bitstream.unpack(data)
            classes, mask, _ = api.read_selective(header, payload, m.classes)
            region = labels.expand_to_pixels(mask, height, width, m.downsampling)
            pixels = height * width
            for alpha in alphas:
                reconstruction = api.decode(data, model, alpha)
                setting = label if len(alphas) == 1 else f"{label}, alpha {alpha:g}"
                rows.append({
                    "image": name, "in_training_set": name in seen, "setting": setting, "alpha": alpha,
                    "width": width, "height": height, "preserved": float(mask.mean()), "bpp": 8 * len(data) / pixels,
                    **{f"{part}_bpp": 8 * result.parts[part] / pixels for part in PARTS},
                    "psnr_preserved": psnr_where(image, reconstruction, region),
                    "psnr_synthesized": psnr_where(image, reconstruction, ~region),
                    "psnr": psnr_where(image, reconstruction, np.ones_like(region)),
                })
                if alpha == alphas[-1]:
                    reconstructions.append((label, rows[-1], region, reconstruction))
                progress.add(1)
        if not figure_rows or (figure_rows[0] in seen and name not in seen):  # an image the model never saw
            figure_rows = (name, image, classes, reconstructions)

    setting_names = list(dict.fromkeys(r["setting"] for r in rows))
    summary = _summarize(rows, setting_names)
    unseen = [r for r in rows if not r["in_training_set"]]
    # Only worth a table of its own when the images mix seen and unseen ones.
    unseen_summary = _summarize(unseen, setting_names) if unseen and len(unseen) < len(rows) else None
    first = [label for label, _ in settings] if len(alphas) == 1 else [f"{label}, alpha {alphas[0]:g}"
                                                                        for label, _ in settings]
    _plot_rates({label: summary[key] for (label, _), key in zip(settings, first)}, report.asset("rates.png"))
    name, image, classes, reconstructions = figure_rows
    boxes, by_class = reconstructions[:len(fractions)], reconstructions[len(fractions):]
    if len(boxes) > 3:  # the figure keeps the smallest, middle and largest box
        boxes = [boxes[0], boxes[len(boxes) // 2], boxes[-1]]
    _plot_example(name, image, classes, boxes + by_class, m.label_set, report.asset("example.png"))
    result = report.result(model=model_record(args.model, model), downscale=downscale,
                           environment=started_in, mean=summary, mean_not_in_training_set=unseen_summary, images=rows)
    table = _table(summary)
    if unseen_summary:
        table += ("\n\nThe same, over the images that were not in the training set only:\n\n"
                  + _table(unseen_summary))
    report.write(result, rows, _report(result, table, rows, figure_rows[0], report.assets.name, report.notes()))
    print(table)
    print(f"wrote {report.markdown_path} and {report.assets}/")
    return 0


def _mean(values) -> Optional[float]:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def _summarize(rows: List[dict], settings: List[str]) -> Dict[str, dict]:
    keys = ["preserved", "bpp", *(f"{p}_bpp" for p in PARTS), "psnr_preserved", "psnr_synthesized", "psnr"]
    return {setting: {key: _mean(r[key] for r in rows if r["setting"] == setting) for key in keys}
            for setting in settings}


def _format(value: Optional[float], digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _table(summary: Dict[str, dict]) -> str:
    lines = ["| preserved region | preserved cells | total bpp | latents | mask | label map | header, checksum "
             "| PSNR preserved (dB) | PSNR synthesized (dB) | PSNR whole (dB) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for setting, s in summary.items():
        lines.append(f"| {setting} | {100 * s['preserved']:.1f}% | {s['bpp']:.4f} | {s['latents_bpp']:.4f} | "
                     f"{s['mask_bpp']:.4f} | {s['label_map_bpp']:.4f} | {s['overhead_bpp']:.4f} | "
                     f"{_format(s['psnr_preserved'], 2)} | {_format(s['psnr_synthesized'], 2)} | "
                     f"{_format(s['psnr'], 2)} |")
    return "\n".join(lines)


def _plot_rates(summary: Dict[str, dict], path) -> None:

    plt = pyplot()
    figure, axes = plt.subplots(figsize=(7, 4), dpi=120)
    names = list(summary)
    bottom = np.zeros(len(names))
    for part, colour in zip(PARTS, ("tab:blue", "tab:orange", "tab:green", "0.6")):
        values = np.array([summary[n][f"{part}_bpp"] for n in names])
        axes.bar(names, values, bottom=bottom, label=part.replace("_", " "), color=colour)
        bottom += values
    axes.set_ylabel("bits per pixel (real files)")
    axes.set_title("What an sc file stores, by preserved region (mean over images)", fontsize=9)
    axes.tick_params(axis="x", labelsize=7, rotation=15)
    axes.legend(fontsize=8)
    figure.tight_layout()
    save_figure(plt, figure, path)


def _plot_example(name, image, classes, reconstructions, label_set: str, path) -> None:
    """Original and label map, then each setting's mask (preserved region shaded on the original) and decoding."""
    from tfgc.data.labels import colorize

    plt = pyplot()
    columns = 2
    rows = 1 + len(reconstructions)
    aspect = image.shape[0] / image.shape[1]
    figure, axes = plt.subplots(rows, columns, figsize=(10, rows * 5 * aspect + 0.6 * rows), dpi=90, squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    axes[0, 0].imshow(image)
    axes[0, 0].set_title(f"{name}: original", fontsize=8)
    axes[0, 1].imshow(colorize(classes, label_set), interpolation="nearest")
    axes[0, 1].set_title("label map (stored losslessly)", fontsize=8)
    for row, (label, values, region, reconstruction) in enumerate(reconstructions, start=1):
        shaded = (image * np.where(region[..., None], 1.0, 0.25)).astype(np.uint8)
        axes[row, 0].imshow(shaded)
        axes[row, 0].set_title(f"{label}: preserved region ({100 * values['preserved']:.0f}% of cells)", fontsize=8)
        axes[row, 1].imshow(reconstruction)
        decoder = "" if values["alpha"] is None else f" at alpha {values['alpha']:g}"
        axes[row, 1].set_title(f"decoded{decoder}: {values['bpp']:.4f} bpp, PSNR preserved "
                               f"{_format(values['psnr_preserved'], 2)} / synthesized "
                               f"{_format(values['psnr_synthesized'], 2)} dB", fontsize=8)
    figure.tight_layout()
    save_figure(plt, figure, path)


def _report(result, table, rows, example, assets, notes: str) -> str:

    images = sorted({r["image"] for r in rows})
    seen = sorted({r["image"] for r in rows if r["in_training_set"]})
    width, height = rows[0]["width"], rows[0]["height"]
    return "\n".join([
        f"# Selective compression: {len(images)} images with label maps",
        "",
        *provenance(result),
        "",
        f"Model: {result['model']['directory']} ({result['model'].get('preset')}). "
        f"{training_summary(result['model'])}",
        "",
        f"Images at {width}x{height} (downscaled by "
        f"{result['downscale']}); {len(seen)} of the {len(images)} were in the training set"
        f"{' (' + ', '.join(seen) + ')' if seen else ''}.",
        "",
        "Each row is a real file per image: its bytes split into the preserved latents, the preservation mask, the "
        "label map (lossless) and the header, section lengths and checksum; bpp = 8 x bytes / pixels, averaged over "
        "the images. PSNR is measured over the pixels of the preserved latent cells (stored) and over the rest "
        "(synthesized from the label map).",
        "",
        table,
        "",
        f"![rate breakdown]({assets}/rates.png)",
        "",
        f"![{example}: original, label map, and per setting the preserved region and the decoding]"
        f"({assets}/example.png)",
        "",
        f"{example}{' (not in the training set)' if example not in seen else ''}: the original and its label map, "
        "then for each setting the preserved region (the rest darkened) and the decoding.",
        "",
        results_links(assets),
        "",
        notes.rstrip() + "\n" if notes else "",
    ])
