"""`python -m tfgc fidelity`: one file per image, decoded at several alphas (Iwai et al.'s decoder interpolation)."""

from __future__ import annotations

import time
from typing import Dict, List

from tfgc.errors import TfgcError
from tfgc.reports.measure import (crop_image_name, load_images, load_tfds, measure, Measurement, summarize,
                                 unique_model_labels)
from tfgc.reports.writer import (environment, model_record, plot_panels, provenance, pyplot, Report,
                                require_matplotlib, results_links, save_figure, training_summary)
from tfgc.utils import progress_bar


DEFAULT_ALPHAS = (0.0, 0.25, 0.5, 0.75, 1.0)


def run_fidelity(args) -> int:
    """Compress every image once per model, decode it at each alpha: a table per model with how many images change
    monotonically with alpha, a plot and a crops figure per model (Iwai et al. 2020)."""
    from tfgc.codec import api
    from tfgc.models.store import load_model

    report = Report(args)
    directories = args.model if isinstance(args.model, list) else [args.model]
    models = []
    for label, directory in zip(unique_model_labels(directories), directories):
        model = load_model(directory)
        if not model.config.model.fidelity_control:
            raise TfgcError(f"{directory} has one decoder; fidelity needs a stage-2 model (python -m tfgc.train "
                            "--stage 2)")
        models.append((label, directory, model))
    alphas = sorted({models[0][2].checked_alpha(a) for a in (args.alphas or DEFAULT_ALPHAS)})
    require_matplotlib("fidelity")
    images = load_tfds(args.tfds, args.limit) if args.tfds else load_images(args.data, args.limit)
    crop_name = crop_image_name(images, args.crop_image)
    started_in = environment()  # taken at the start: the commit whose code runs
    progress = progress_bar(len(images) * len(alphas) * len(models), "decode")
    rows: Dict[str, Dict[float, List[Measurement]]] = {label: {a: [] for a in alphas} for label, _, _ in models}
    crops: Dict[str, list] = {label: [] for label, _, _ in models}
    for name, original in images:
        for label, _, model in models:
            started = time.perf_counter()
            data = api.compress(original, model)
            encode_seconds = time.perf_counter() - started
            for alpha in alphas:
                started = time.perf_counter()
                reconstruction = api.decode(data, model, alpha)
                rows[label][alpha].append(measure(name, label, f"alpha={alpha:g}", original, data, reconstruction,
                                                  encode_seconds, time.perf_counter() - started))
                if name == crop_name:
                    crops[label].append((alpha, reconstruction, rows[label][alpha][-1]))
                progress.add(1)
    summaries = {label: {a: summarize(group) for a, group in by_alpha.items()} for label, by_alpha in rows.items()}
    original = dict(images)[crop_name]
    crop_files = {}
    for label, _, _ in models:
        crop_files[label] = "crops.png" if len(models) == 1 else f"crops-{label}.png"
        plot_panels([("original", original)] + [(f"alpha {a:g}: {r.bpp:.4f} bpp, {r.psnr:.2f} dB, detail "
                                                  f"{r.detail:.2f}", image) for a, image, r in crops[label]],
                     args.crop_size, f"{label}: {crop_name}, centre {{size}}x{{size}} crop; one file, decoded at "
                     "each alpha", report.asset(crop_files[label]), columns=3)
    _plot_fidelity(summaries, report.asset("alpha.png"))
    entries = [{"label": label, "model": model_record(directory, model),
                "mean": {f"{a:g}": s for a, s in summaries[label].items()},
                "monotonic": monotonic_counts(rows[label])} for label, directory, model in models]
    result = report.result(models=entries, environment=started_in,
                           images=[r.row() for by_alpha in rows.values() for group in by_alpha.values() for r in group])
    tables = [_fidelity_table(summaries[e["label"]]) for e in entries]
    report.write(result, [r for by_alpha in rows.values() for group in by_alpha.values() for r in group],
                 _fidelity_report(result, tables, summaries, crop_name, crop_files, report.assets.name))
    for entry, table in zip(entries, tables):
        print(entry["label"])
        print(table)
        print(_monotonic_sentence(entry["monotonic"]))
    print(f"wrote {report.markdown_path} and {report.assets}/")
    return 0


def monotonic_counts(by_alpha: Dict[float, List[Measurement]]) -> dict:
    """How many images see PSNR and MS-SSIM never rise, and detail never fall, from each alpha to the next."""
    alphas = sorted(by_alpha)
    images = len(by_alpha[alphas[0]])

    def count(metric, direction):
        steady = 0
        for i in range(images):
            values = [getattr(by_alpha[a][i], metric) for a in alphas]
            steady += all(direction * (later - earlier) >= 0 for earlier, later in zip(values, values[1:]))
        return steady

    return {"images": images, "psnr_never_rises": count("psnr", -1), "ms_ssim_never_rises": count("ms_ssim", -1),
            "detail_never_falls": count("detail", 1)}


def _monotonic_sentence(counts: dict) -> str:
    n = counts["images"]
    return (f"Per image, from each alpha to the next: PSNR never rises on {counts['psnr_never_rises']} of {n} "
            f"images, MS-SSIM never rises on {counts['ms_ssim_never_rises']} of {n}, and the detail ratio never falls "
            f"on {counts['detail_never_falls']} of {n}.")


def _fidelity_table(summary) -> str:
    lines = ["| alpha | bpp | PSNR (dB) | MS-SSIM | detail ratio | decode (s/image) |", "|---|---|---|---|---|---|"]
    for alpha, s in summary.items():
        lines.append(f"| {alpha:g} | {s['bpp']:.4f} | {s['psnr']:.2f} | {s['ms_ssim']:.4f} | {s['detail']:.3f} | "
                     f"{s['decode_seconds']:.3f} |")
    return "\n".join(lines)


def _plot_fidelity(summaries, path) -> None:
    plt = pyplot()
    figure, axes = plt.subplots(1, 3, figsize=(13, 3.6), dpi=120)
    for label, summary in summaries.items():
        alphas = list(summary)
        for ax, metric in zip(axes, ("psnr", "ms_ssim", "detail")):
            ax.plot(alphas, [summary[a][metric] for a in alphas], marker="o", label=label)
    axes[2].axhline(1.0, color="0.7", linewidth=0.8)
    for ax, name in zip(axes, ("PSNR (dB)", "MS-SSIM", "detail ratio (1 = as in the original)")):
        ax.set_ylabel(name)
        ax.set_xlabel("alpha (0: MSE decoder, 1: GAN decoder)")
        ax.grid(True, alpha=0.3)
    axes[0].legend(fontsize=8)
    figure.tight_layout()
    save_figure(plt, figure, path)


def _fidelity_report(result, tables, summaries, crop_name, crop_files, assets) -> str:
    sections = []
    for entry, table in zip(result["models"], tables):
        summary = summaries[entry["label"]]
        first, last = summary[min(summary)], summary[max(summary)]
        trend = (f"From alpha {min(summary):g} to {max(summary):g}, PSNR goes from {first['psnr']:.2f} to "
                 f"{last['psnr']:.2f} dB, MS-SSIM from {first['ms_ssim']:.4f} to {last['ms_ssim']:.4f} and the "
                 f"detail ratio from {first['detail']:.3f} to {last['detail']:.3f}; the rate is the same file at "
                 "every alpha.")
        sections += [f"## {entry['label']}", "", f"Model: {entry['model']['directory']}. "
                     f"{training_summary(entry['model'])}", "", table, "", trend,
                     _monotonic_sentence(entry["monotonic"]), "",
                     f"![{entry['label']}: the same crop across alpha]({assets}/{crop_files[entry['label']]})", ""]
    images = len(result["images"]) // sum(len(s) for s in summaries.values())
    return "\n".join([
        f"# Fidelity control: {images} images, one file each per model, decoded at each alpha",
        "",
        *provenance(result),
        "",
        "Each image is compressed once per model; the file is decoded with the decoder parameters "
        "(1 - alpha) * theta_MSE + alpha * theta_GAN. bpp = 8 x file bytes / pixels; detail ratio = gradient energy "
        "of the reconstruction / that of the original.",
        "",
        f"![PSNR, MS-SSIM and detail against alpha]({assets}/alpha.png)",
        "",
        *sections,
        f"Crops: {crop_name}. {results_links(assets)}",
        "",
    ])
