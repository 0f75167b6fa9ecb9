"""python -m tfgc superres: the super-resolution codec (RL-SRGAN) with each of its decoders on the same files.

Every image is compressed once per base quality (the sr file depends on no model), and that one file is decoded by
each sr model given and by Pillow's Lanczos and bicubic upscalers, so every decoder is measured on identical bytes.
The report holds the analogue of Savioli 2019's Table 1 at one quality (PSNR, MS-SSIM, file and PNG bytes, their
ratio, bpp, and the paired PSNR differences between decoders), an RD chart over the quality sweep, optionally beside
tfgc models (--compare) and the classic codecs of an earlier `python -m tfgc bench` (--bench), and a crops figure.
"""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Dict, List

import numpy as np

from tfgc.errors import TfgcError
from tfgc.reports.measure import crop_image_name, evaluate_model, load_images, measure, summarize, unique_model_labels
from tfgc.reports.writer import (environment, finish_rd_plot, model_record, plot_panels, provenance, pyplot,
                                 Report, require_matplotlib, results_links, training_summary)
from tfgc.utils import progress_bar

DEFAULT_QUALITIES = (30, 50, 75, 90)
CLASSIC = ("lanczos", "bicubic")


def png_bytes(image: np.ndarray) -> int:
    """The size of the image as a PNG from Pillow (default settings): the paper's reference for its compression rate."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image, "RGB").save(buffer, format="PNG")
    return len(buffer.getvalue())


def paired_difference(rows: List[dict], better: str, worse: str, key: str = "psnr") -> dict:
    """Mean of `better` - `worse` over the images both decoded from the same file, and on how many `better` wins."""
    a = {r["image"]: r[key] for r in rows if r["decoder"] == better}
    b = {r["image"]: r[key] for r in rows if r["decoder"] == worse}
    differences = np.array([a[name] - b[name] for name in a if name in b])
    return {"mean": float(differences.mean()), "std": float(differences.std()),
            "wins": int((differences > 0).sum()), "images": int(differences.size)}


def run_superres(args) -> int:
    from tfgc.codec import api
    from tfgc.models.store import load_model

    report = Report(args)
    labels = unique_model_labels(list(args.model) + list(args.compare or []))
    models = [(label, load_model(d)) for d, label in zip(args.model, labels)]
    for directory, (_, model) in zip(args.model, models):
        if model.family != "sr":
            raise TfgcError(f"{directory} is a {model.family} model; superres decodes with sr models (--compare "
                            "takes others)")
    settings = {(model.config.model.base_codec, model.config.model.scale) for _, model in models}
    if len(settings) != 1:
        raise TfgcError(f"the sr models decode different bases or scales ({sorted(settings)}): they cannot share files")
    base, scale = settings.pop()
    table_quality = args.quality if args.quality is not None else models[0][1].config.model.base_quality
    qualities = sorted(set(args.qualities or DEFAULT_QUALITIES) | {table_quality})
    lowest = 1 if base == "jpeg" else 0
    if any(not lowest <= q <= 100 for q in qualities):
        raise TfgcError(f"{base} qualities must lie in {lowest}..100")
    bench = _read_bench(args.bench) if args.bench else None
    compare = [(label, load_model(d)) for d, label in zip(args.compare or [], labels[len(models):])]
    require_matplotlib("superres")
    images = load_images(args.data, args.limit)
    if bench is not None and sorted(bench["images"]) != sorted(name for name, _ in images):
        raise TfgcError(f"--bench {args.bench} was measured on other images than --data")
    crop_name = crop_image_name(images, args.crop_image)
    started_in = environment()  # taken at the start: the commit whose code runs
    decoders = [label for label, _ in models] + list(CLASSIC)
    progress = progress_bar(len(images) * (len(qualities) * len(decoders) + len(compare)), "decode")
    rows: List[dict] = []
    crops = {}
    for name, original in images:
        reference_bytes = png_bytes(original)
        for quality in qualities:
            started = time.perf_counter()
            result = api.encode_sr(original, scale, quality, base)
            encode_seconds = time.perf_counter() - started
            for decoder in decoders:
                started = time.perf_counter()
                if decoder in CLASSIC:
                    reconstruction = api.decode(result.data, decoder=decoder)
                else:
                    reconstruction = api.decode(result.data, dict(models)[decoder])
                row = measure(name, decoder, f"q{quality}", original, result.data, reconstruction, encode_seconds,
                              time.perf_counter() - started).row()
                rows.append(dict(row, decoder=decoder, quality=quality, png_bytes=reference_bytes,
                                 base_bytes=result.parts["base"]))
                if name == crop_name and quality == table_quality:
                    crops[decoder] = (rows[-1], reconstruction)
                progress.add(1)
    compared = {}
    for label, model in compare:
        compared[label] = summarize(evaluate_model(model, images, label, progress))

    table_rows = [r for r in rows if r["quality"] == table_quality]
    table = {decoder: _mean([r for r in table_rows if r["decoder"] == decoder]) for decoder in decoders}
    differences = {}
    pairs = [(a, b) for i, a in enumerate(decoders) for b in decoders[i + 1:]]
    for better, worse in pairs:
        differences[f"{better} - {worse}"] = {key: paired_difference(table_rows, better, worse, key)
                                              for key in ("psnr", "ms_ssim")}
    sweep = {decoder: [dict(_mean([r for r in rows if r["decoder"] == decoder and r["quality"] == q]), quality=q)
                       for q in qualities] for decoder in decoders}

    _plot_rd(sweep, compared, bench, report.asset("rd_psnr.png"), "psnr", "PSNR (dB, RGB)")
    _plot_rd(sweep, compared, bench, report.asset("rd_msssim.png"), "ms_ssim", "MS-SSIM")
    _plot_crops(dict(images)[crop_name], crop_name, crops, args.crop_size, report.asset("crops.png"))
    result = report.result(environment=started_in, base=base, scale=scale, table_quality=table_quality,
                           qualities=qualities,
                           models={label: model_record(d, model)
                                   for d, (label, model) in zip(args.model, models)},
                           bench=args.bench, compare=compared, table=table, differences=differences, sweep=sweep,
                           images=rows)
    report.write(result, rows, _report(result, len(images), report.assets.name, crop_name, report.notes()))
    print(_table(table))
    print(f"wrote {report.markdown_path} and {report.assets}/")
    return 0


def _mean(rows: List[dict]) -> dict:
    keys = ("bytes", "png_bytes", "base_bytes", "bpp", "psnr", "ms_ssim", "detail", "decode_seconds")
    mean = {key: float(np.mean([r[key] for r in rows])) for key in keys}
    # The paper's "compression rate": how many times smaller than the PNG the file is, per image, averaged.
    mean["compression_ratio"] = float(np.mean([r["png_bytes"] / r["bytes"] for r in rows]))
    mean["images"] = len(rows)
    return mean


def _read_bench(path) -> dict:
    try:
        bench = json.loads(Path(path).read_text())
        bench["codecs"], bench["images"]  # noqa: B018  (both must be there)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise TfgcError(f"--bench {path} is not a `python -m tfgc bench` results.json: {e}") from None
    return bench


_LABELS = {"lanczos": "Lanczos (Pillow)", "bicubic": "bicubic (Pillow)"}


def _label(decoder: str) -> str:
    return _LABELS.get(decoder, decoder)


def _table(table: Dict[str, dict]) -> str:
    lines = ["| decoder | PSNR (dB) | MS-SSIM | detail ratio | file bytes | PNG bytes | compression ratio (PNG / file) "
             "| bpp |", "|---|---|---|---|---|---|---|---|"]
    for decoder, s in table.items():
        lines.append(f"| {_label(decoder)} | {s['psnr']:.2f} | {s['ms_ssim']:.4f} | {s['detail']:.3f} | "
                     f"{s['bytes']:.0f} | {s['png_bytes']:.0f} | {s['compression_ratio']:.1f} | {s['bpp']:.4f} |")
    return "\n".join(lines)


def _differences_table(differences: Dict[str, dict]) -> str:
    lines = ["| pair (same files) | mean PSNR difference (dB) | wins | mean MS-SSIM difference |", "|---|---|---|---|"]
    for pair, d in differences.items():
        p, s = d["psnr"], d["ms_ssim"]
        a, b = pair.split(" - ")
        lines.append(f"| {_label(a)} - {_label(b)} | {p['mean']:+.2f} (sd {p['std']:.2f}) | {p['wins']} of "
                     f"{p['images']} | {s['mean']:+.4f} |")
    return "\n".join(lines)


def _sweep_table(sweep: Dict[str, List[dict]]) -> str:
    qualities = [p["quality"] for p in next(iter(sweep.values()))]
    lines = ["| decoder | " + " | ".join(f"q{q}" for q in qualities) + " |", "|---" * (1 + len(qualities)) + "|"]
    for decoder, points in sweep.items():
        lines.append(f"| {_label(decoder)} | " + " | ".join(f"{p['bpp']:.4f} bpp, {p['psnr']:.2f} dB, "
                                                            f"{p['ms_ssim']:.4f}" for p in points) + " |")
    return "\n".join(lines)


def _plot_rd(sweep, compared, bench, path, key, ylabel) -> None:

    plt = pyplot()
    figure, axes = plt.subplots(figsize=(10, 5.5), dpi=120)
    if bench is not None:
        for codec, points in bench["codecs"].items():
            points = sorted(points, key=lambda p: p["bpp"])
            axes.plot([p["bpp"] for p in points], [p[key] for p in points], marker="o", markersize=2, linewidth=0.8,
                      alpha=0.6, label=codec)
    for decoder, points in sweep.items():
        style = dict(linestyle="--") if decoder in CLASSIC else dict(linewidth=2)
        axes.plot([p["bpp"] for p in points], [p[key] for p in points], marker="s", markersize=4,
                  label=f"sr codec, {_label(decoder)}", **style)
    for label, stats in compared.items():
        axes.plot([stats["bpp"]], [stats[key]], marker="*", markersize=14, linestyle="none", label=f"tfgc {label}")
    finish_rd_plot(plt, figure, axes, ylabel, path, legend_size=7)


def _plot_crops(original, name, crops, size, path) -> None:

    panels = [("original", original)] + [
        (f"{_label(d)}\n{row['bpp']:.4f} bpp, {row['psnr']:.2f} dB", image) for d, (row, image) in crops.items()]
    plot_panels(panels, size, f"{name}, centre {{size}}x{{size}} crop; one file, decoded by each decoder", path,
                 columns=3)


def _report(result, image_count: int, assets: str, crop_name: str, notes: str) -> str:

    q, scale = result["table_quality"], result["scale"]
    trained = [f"- {label}: {training_summary(m)}" for label, m in result["models"].items()]
    compare = ""
    if result["compare"]:
        compare = ("Stars: tfgc models of other families on the same images (" + ", ".join(
            f"{label} {s['bpp']:.4f} bpp, {s['psnr']:.2f} dB, MS-SSIM {s['ms_ssim']:.4f}"
            for label, s in result["compare"].items()) + ").")
    from tfgc.codec.sr import BASE_NAMES, base_label

    base = result.get("base", "jpeg")  # results from before other bases were all JPEG
    name = BASE_NAMES[base]
    return "\n".join([
        f"# Super-resolution codec ({'RL-SRGAN' if base == 'jpeg' else name + ' base'}): {image_count} images, "
        f"x{scale}",
        "",
        *provenance(result),
        "",
        "Models:",
        "",
        *trained,
        "",
        f"Each image is downsampled by {scale} (Pillow's bicubic) and stored as {base_label(base)}; each file is "
        "decoded by every decoder, so all rows of a quality describe identical bytes. bpp = 8 x file bytes / pixels "
        f"(the .tfgc file: the {name} file, 3 bytes of base codec, scale and quality, 31 bytes of header and "
        "checksum). PNG bytes: the original as Pillow "
        "writes a PNG; compression ratio = PNG bytes / file bytes, per image, averaged (the paper's \"compression "
        "rate\"). Detail ratio = gradient energy of the reconstruction / that of the original (1: as much fine "
        "detail as the original; it measures amount, not faithfulness).",
        "",
        f"## Table 1 analogue: {name} quality {q}",
        "",
        _table(result["table"]),
        "",
        "Paired differences on the same files (wins: images where the first decoder has the higher value):",
        "",
        _differences_table(result["differences"]),
        "",
        f"## Rate-distortion over the {name} quality",
        "",
        f"![bpp vs PSNR]({assets}/rd_psnr.png)",
        f"![bpp vs MS-SSIM]({assets}/rd_msssim.png)",
        "",
        ("Thin lines: the classic codecs of the benchmark's results (--bench), same images. " if result["bench"]
         else "") + compare,
        "",
        _sweep_table(result["sweep"]),
        "",
        "## The same crop, one file, every decoder",
        "",
        f"![crops]({assets}/crops.png)",
        "",
        f"{crop_name} at {name} quality {q}. {results_links(assets)}",
        "",
        notes,
    ])
