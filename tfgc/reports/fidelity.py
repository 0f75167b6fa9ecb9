"""`python -m tfgc fidelity`: one file per image, decoded at several alphas (Iwai et al.'s decoder interpolation)."""

from __future__ import annotations

import time
from typing import Dict, List

from tfgc.errors import TfgcError
from tfgc.models.store import model_label
from tfgc.reports.measure import crop_image_name, load_images, load_tfds, measure, Measurement, summarize
from tfgc.reports.writer import (environment, plot_panels, progress_bar, provenance, pyplot, Report, require_matplotlib,
                                 results_links, save_figure, training_summary)


DEFAULT_ALPHAS = (0.0, 0.25, 0.5, 0.75, 1.0)


def run_fidelity(args) -> int:
    """Compress every image once, decode it at each alpha: a table, a plot and a crops figure (Iwai et al. 2020)."""
    from tfgc.codec import api
    from tfgc.models.store import load_model

    report = Report(args)
    model = load_model(args.model)
    if not model.config.model.fidelity_control:
        raise TfgcError(f"{args.model} has one decoder; fidelity needs a stage-2 model (python -m tfgc.train "
                        "--stage 2)")
    alphas = [model.checked_alpha(a) for a in (args.alphas or DEFAULT_ALPHAS)]
    require_matplotlib("fidelity")
    images = load_tfds(args.tfds, args.limit) if args.tfds else load_images(args.data, args.limit)
    crop_name = crop_image_name(images, args.crop_image)
    started_in = environment()  # taken at the start: the commit whose code runs
    label = model_label(args.model)
    progress = progress_bar(len(images) * len(alphas), "decode")
    rows: Dict[float, List[Measurement]] = {alpha: [] for alpha in alphas}
    crops = []
    for name, original in images:
        started = time.perf_counter()
        data = api.compress(original, model)
        encode_seconds = time.perf_counter() - started
        for alpha in alphas:
            started = time.perf_counter()
            reconstruction = api.decode(data, model, alpha)
            rows[alpha].append(measure(name, label, f"alpha={alpha:g}", original, data, reconstruction,
                                       encode_seconds, time.perf_counter() - started))
            if name == crop_name:
                crops.append((alpha, reconstruction, rows[alpha][-1]))
            progress.add(1)
    summary = {alpha: summarize(group) for alpha, group in rows.items()}
    original = dict(images)[crop_name]
    plot_panels([("original", original)] + [(f"alpha {a:g}: {r.bpp:.4f} bpp, {r.psnr:.2f} dB, detail {r.detail:.2f}",
                                              image) for a, image, r in crops],
                 args.crop_size, f"{crop_name}, centre {{size}}x{{size}} crop; one file, decoded at each alpha",
                 report.asset("crops.png"), columns=3)
    _plot_fidelity(summary, report.asset("alpha.png"))
    result = report.result(model={"directory": str(args.model), **model.manifest}, environment=started_in,
                           mean={f"{a:g}": s for a, s in summary.items()},
                           images=[r.row() for group in rows.values() for r in group])
    table = _fidelity_table(summary)
    report.write(result, [r for group in rows.values() for r in group],
                 _fidelity_report(result, table, summary, crop_name, report.assets.name))
    print(table)
    print(f"wrote {report.markdown_path} and {report.assets}/")
    return 0


def _fidelity_table(summary) -> str:
    lines = ["| alpha | bpp | PSNR (dB) | MS-SSIM | detail ratio | decode (s/image) |", "|---|---|---|---|---|---|"]
    for alpha, s in summary.items():
        lines.append(f"| {alpha:g} | {s['bpp']:.4f} | {s['psnr']:.2f} | {s['ms_ssim']:.4f} | {s['detail']:.3f} | "
                     f"{s['decode_seconds']:.3f} |")
    return "\n".join(lines)


def _plot_fidelity(summary, path) -> None:
    plt = pyplot()
    alphas = list(summary)
    figure, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6), dpi=120)
    left.plot(alphas, [summary[a]["psnr"] for a in alphas], marker="o")
    left.set_ylabel("PSNR (dB)")
    right.plot(alphas, [summary[a]["detail"] for a in alphas], marker="o", color="tab:orange")
    right.axhline(1.0, color="0.7", linewidth=0.8)
    right.set_ylabel("detail ratio (1 = as in the original)")
    for ax in (left, right):
        ax.set_xlabel("alpha (0: MSE decoder, 1: GAN decoder)")
        ax.grid(True, alpha=0.3)
    figure.tight_layout()
    save_figure(plt, figure, path)


def _fidelity_report(result, table, summary, crop_name, assets) -> str:
    first, last = summary[min(summary)], summary[max(summary)]
    trend = (f"From alpha {min(summary):g} to {max(summary):g}, PSNR goes from {first['psnr']:.2f} to "
             f"{last['psnr']:.2f} dB, MS-SSIM from {first['ms_ssim']:.4f} to {last['ms_ssim']:.4f} and the detail "
             f"ratio from {first['detail']:.3f} to {last['detail']:.3f}; the rate is the same file at every alpha.")
    return "\n".join([
        f"# Fidelity control: {len(result['images']) // len(summary)} images, one file each, decoded at each alpha",
        "",
        *provenance(result),
        "",
        f"Model: {result['model']['directory']}. {training_summary(result['model'])}",
        "",
        "Each image is compressed once; the file is decoded with the decoder parameters "
        "(1 - alpha) * theta_MSE + alpha * theta_GAN. bpp = 8 x file bytes / pixels; detail ratio = gradient energy "
        "of the reconstruction / that of the original.",
        "",
        table,
        "",
        trend,
        "",
        f"![PSNR and detail against alpha]({assets}/alpha.png)",
        "",
        f"![the same crop across alpha]({assets}/crops.png)",
        "",
        f"{crop_name}. {results_links(assets)}",
        "",
    ])
