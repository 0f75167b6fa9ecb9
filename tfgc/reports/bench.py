"""`python -m tfgc bench`: tfgc models against the classic codecs at equal bytes, on real files: RD curves, the rate
matched tables, crops, and the comparison page."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from tfgc import metrics
from tfgc.errors import TfgcError
from tfgc.reports.html import nearest_rate, PageImage, Version, write_page
from tfgc.reports.measure import (crop_image_name, encode_images, evaluate_model, inception_or_none, load_images,
                                  load_tfds, measure, measure_decodes, Measurement, summarize, unique_model_labels)
from tfgc.reports.writer import (command_line, describe_machine, environment, finish_rd_plot, plot_panels, pyplot,
                                Report, require_matplotlib, results_links)
from tfgc.utils import first_line, progress_bar, refuse_existing


TARGET_BPPS = (0.05, 0.1, 0.2, 0.4)


def interpolate(curve: Sequence[Tuple[float, float]], bpp: float) -> Optional[float]:
    """Linear interpolation of a (bpp, value) curve at `bpp`; None outside the bpp range the curve reaches."""
    points = sorted(curve)
    rates = [p[0] for p in points]
    if not points or bpp < rates[0] or bpp > rates[-1]:
        return None
    return float(np.interp(bpp, rates, [p[1] for p in points]))


def run_bench(args) -> int:
    from tfgc.codec import api
    from tfgc.codec.classic import get_codec
    from tfgc.models.store import load_model

    if getattr(args, "report_only", False):
        return rewrite_bench_report(args)
    if not args.data and not getattr(args, "tfds", None):
        raise TfgcError("bench needs images: --data FOLDER or --tfds NAME (or --report-only to rewrite a report)")
    report = Report(args)
    report_path, assets = report.markdown_path, report.assets
    if not getattr(args, "no_page", False):
        refuse_existing(report_path.with_suffix(".html"), args.force)
    codecs = [get_codec(name) for name in args.codecs.split(",") if name]
    references = read_references(args.references) if getattr(args, "references", None) else []
    classic_from = getattr(args, "classic_from", None)
    if classic_from and args.inception_weights:
        raise TfgcError("--classic-from reuses measurements, not images: FID/KID (--inception-weights) need the "
                        "classic codecs' images, so measure them again without --classic-from")
    require_matplotlib("bench")
    images = load_tfds(args.tfds, args.limit) if args.tfds else load_images(args.data, args.limit)
    provenance, reused = reused_measurements(classic_from, images, codecs) if classic_from else (None, None)
    directories = args.model or []
    loaded = [(label, load_model(d)) for d, label in zip(directories, unique_model_labels(directories))]
    models = bench_points([(label, model) for label, model in loaded if model.family != "sr"],
                          getattr(args, "alphas", None))
    sr_groups = sr_bench_groups([(label, model) for label, model in loaded if model.family == "sr"],
                                getattr(args, "alphas", None), getattr(args, "sr_qualities", None))
    started_in = environment()  # taken at the start: the commit whose code runs
    inception = inception_or_none(args.inception_weights)
    real_features = metrics.patch_features(inception, [im for _, im in images]) if inception else None
    crop_name = crop_image_name(images, args.crop_image)

    total = len(images) * (sum(len(c.qualities) for c in codecs) + len(models)
                           + sum(len(g.qualities) * (len(g.points) + len(SR_CLASSIC)) for g in sr_groups))
    progress = progress_bar(total, "file")  # each a coding of an image: one codec setting or one model
    rows: List[Measurement] = []
    group_stats: Dict[Tuple[str, str], dict] = {}
    crop_candidates: Dict[Tuple[str, str], Tuple[Measurement, np.ndarray]] = {}
    crop_index = [n for n, _ in images].index(crop_name)

    def finish_group(codec: str, setting: str, group_rows, reconstructions):
        stats = summarize(group_rows)
        if inception is not None:
            stats.update(metrics.fid_kid(inception, real_features, reconstructions) or {})
        group_stats[(codec, setting)] = stats
        rows.extend(group_rows)

    for codec in codecs:
        for quality in codec.qualities:
            if reused is not None:
                group_rows = reused[(codec.name, f"q{quality}")]
                crop_candidates[(codec.name, f"q{quality}")] = (
                    group_rows[crop_index], recoded_like(codec, quality, images[crop_index], group_rows[crop_index],
                                                         classic_from))
                progress.add(len(images))
                finish_group(codec.name, f"q{quality}", group_rows, [])
                continue
            group_rows, reconstructions = [], []
            for name, original in images:
                started = time.perf_counter()
                data = codec.encode(original, quality)
                encoded = time.perf_counter()
                reconstruction = codec.decode(data)
                decoded = time.perf_counter()
                row = measure(name, codec.name, f"q{quality}", original, data, reconstruction, encoded - started,
                              decoded - encoded)
                group_rows.append(row)
                if inception is not None:
                    reconstructions.append(reconstruction)
                if name == crop_name:
                    crop_candidates[(codec.name, row.setting)] = (row, reconstruction)
                progress.add(1)
            finish_group(codec.name, f"q{quality}", group_rows, reconstructions)
    page = None if getattr(args, "no_page", False) else MatchedVersions(images)
    point_names = {label: (name, alpha) for name, model in loaded
                   for label, _, alpha in bench_points([(name, model)], getattr(args, "alphas", None))}
    for label, model, alpha in models:
        kept: List[np.ndarray] = []
        group_rows = evaluate_model(model, images, label, progress, keep=kept, alpha=alpha)
        crop_candidates[(label, label)] = (group_rows[crop_index], kept[crop_index])
        finish_group(label, label, group_rows, kept)
        if page is not None:
            page.add_all(group_rows, kept, f"tfgc {point_names[label][0]}", alpha)
    if page is not None:
        page.set_targets(rows, models[0][0] if models else None, args.crop_bpp)
    for group in sr_groups:
        for quality in group.qualities:
            coded = encode_images(images, lambda image: api.encode_sr(image, group.scale, quality, group.base))
            for label, decode in group.decoders():
                kept: List[np.ndarray] = []
                group_rows = measure_decodes(images, coded, label, f"q{quality}", decode, progress, kept)
                crop_candidates[(label, f"q{quality}")] = (group_rows[crop_index], kept[crop_index])
                finish_group(label, f"q{quality}", group_rows, kept)
                if page is not None:
                    name, alpha = point_names.get(label, (label, None))
                    page.offer_all(group_rows, kept, f"tfgc {name}" if label in point_names else label, alpha)

    curves = {}
    for (codec, setting), stats in group_stats.items():
        curves.setdefault(codec, []).append((setting, stats))
    for codec in curves:
        curves[codec].sort(key=lambda item: item[1]["bpp"])

    labels = {c.name: c.label for c in codecs}
    labels.update({label: f"tfgc {label}" for label, _, _ in models})
    for group in sr_groups:
        labels.update({label: f"tfgc {label}" for label, _, _ in group.points})
        labels.update({group.classic_label(method): group.classic_label(method) for method in SR_CLASSIC})
    model_labels = {label for label, _, _ in models}
    crop_bpp = args.crop_bpp or (group_stats[(models[0][0], models[0][0])]["bpp"] if models else 0.1)
    _plot_crops(dict(images)[crop_name], crop_name, crop_candidates, labels, crop_bpp, args.crop_size,
                report.asset("crops.png"))

    result = report.result(
        environment=started_in, images=[n for n, _ in images],
        targets_bpp=list(getattr(args, "target_bpps", None) or TARGET_BPPS),
        codecs={codec: [{"setting": s, **stats} for s, stats in points] for codec, points in curves.items()},
        labels=labels, models=sorted(model_labels), crop={"image": crop_name, "bpp": crop_bpp},
        learned_curves=[label for group in sr_groups for label, _, _ in group.points],
        upscaled_curves={label: group.classic_label("lanczos") for group in sr_groups for label, _, _ in group.points},
        classic_upscales=[group.classic_label(method) for group in sr_groups for method in SR_CLASSIC],
        references=references, measurements=[r.row() for r in rows])
    if provenance is not None:
        result["classic_from"] = dict(provenance, file=str(classic_from))
    _write_bench_report(report, result, curves, rows)
    if page is not None:
        for codec in codecs:
            page.add_classic(codec, rows)
        write_page(report_path.with_suffix(".html"), f"tfgc bench: {args.name}", page.pages(),
                   {"PSNR": assets / "rd_psnr.png", "MS-SSIM": assets / "rd_msssim.png"},
                   caption=f"{result['command']} ({describe_machine(started_in['machine'])})")
    print(_table(curves, labels, model_labels, result["targets_bpp"]))
    if result["upscaled_curves"]:
        print(_upscaler_table(curves, labels, result["upscaled_curves"]))
    page_note = "" if page is None else f", {report_path.with_suffix('.html')} (the comparison page)"
    print(f"wrote {report_path}{page_note} and {assets}/ (rd_psnr.png, rd_msssim.png, rd_detail.png, crops.png, "
          "results.json, results.csv)")
    return 0


class MatchedVersions:
    """What bench's comparison page shows of each image: every tfgc model's decode (each alpha), and of every other
    codec or decoder the setting whose rate on that image is closest to the image's target: the first tfgc model's
    rate there, or --crop-bpp."""

    def __init__(self, images):
        self.images = images
        self.versions: Dict[str, List[Version]] = {name: [] for name, _ in images}
        self.targets: Dict[str, float] = {}
        self.closest: Dict[Tuple[str, str, Optional[float]], Version] = {}

    def add_all(self, rows: Sequence[Measurement], reconstructions, label: str, alpha: Optional[float]) -> None:
        for row, image in zip(rows, reconstructions):
            self.versions[row.image].append(Version(label, row.bpp, row.psnr, image, alpha))

    def set_targets(self, rows: Sequence[Measurement], model_label: Optional[str], fixed: Optional[float]) -> None:
        measured = {r.image: r.bpp for r in rows if r.codec == model_label}
        self.targets = {name: fixed or measured.get(name, 0.1) for name, _ in self.images}

    def offer_all(self, rows: Sequence[Measurement], reconstructions, label: str, alpha: Optional[float]) -> None:
        """Keep each image's decode by `label` if its rate is the closest to the target so far."""
        for row, image in zip(rows, reconstructions):
            key = (row.image, label, alpha)
            best = self.closest.get(key)
            if best is None or nearest_rate([best.bpp, row.bpp], self.targets[row.image]) == 1:
                self.closest[key] = Version(label, row.bpp, row.psnr, image, alpha)

    def add_classic(self, codec, rows: Sequence[Measurement]) -> None:
        """A classic codec's closest setting on each image, coded again (its decodes were not kept)."""
        for name, original in self.images:
            candidates = [r for r in rows if r.codec == codec.name and r.image == name]
            if not candidates:
                continue
            row = candidates[nearest_rate([r.bpp for r in candidates], self.targets[name])]
            decoded = codec.decode(codec.encode(original, int(row.setting[1:])))
            self.versions[name].append(Version(f"{codec.label} {row.setting}", row.bpp, row.psnr, decoded))

    def pages(self) -> List[PageImage]:
        for (name, _, _), version in self.closest.items():
            self.versions[name].append(version)
        self.closest = {}
        return [PageImage(name, original, self.versions[name]) for name, original in self.images]


def reused_measurements(path, images, codecs):
    """`bench --classic-from`: the run that measured the classic codecs in an earlier bench's results.json (its
    command and machine, through any run that reused them since) and their measurements of `images`,
    {(codec, setting): [Measurement of each image]}, for every setting of `codecs`; a clear error where it lacks one
    or measured an image of another size."""
    try:
        earlier = json.loads(Path(path).read_text())
        rows = [Measurement(**{k: row[k] for k in MEASUREMENT_FIELDS}) for row in earlier["measurements"]]
        provenance = earlier.get("classic_from") or {
            "command": earlier["command"], "machine": describe_machine(earlier["environment"]["machine"])}
        provenance = {"command": provenance["command"], "machine": provenance["machine"]}
    except OSError as e:
        raise TfgcError(f"--classic-from {path}: cannot read it: {first_line(e)}") from None
    except (ValueError, KeyError, TypeError):
        raise TfgcError(f"--classic-from {path}: not the results.json of a bench") from None
    by_key = {(r.codec, r.setting, r.image): r for r in rows}
    reused = {}
    for codec in codecs:
        for quality in codec.qualities:
            group = []
            for name, image in images:
                row = by_key.get((codec.name, f"q{quality}", name))
                if row is None or (row.height, row.width) != image.shape[:2]:
                    what = "no measurement" if row is None else f"a {row.width}x{row.height} measurement"
                    raise TfgcError(f"--classic-from {path} has {what} of {name} by {codec.name} at q{quality}: "
                                    "measure the classic codecs again (without --classic-from)")
                group.append(row)
            reused[(codec.name, f"q{quality}")] = group
    return provenance, reused


def recoded_like(codec, quality: int, named_image, row: Measurement, path) -> np.ndarray:
    """The crops figure's image coded again by `codec`; its file must be the size the earlier run measured, else
    that run's codec (or image) differs from this one's and its measurements are not these files'."""
    name, image = named_image
    data = codec.encode(image, quality)
    if len(data) != row.bytes:
        raise TfgcError(f"--classic-from {path}: {codec.label} at q{quality} codes {name} in {len(data)} bytes here, "
                        f"{row.bytes} there (another codec version or image): measure again without --classic-from")
    return codec.decode(data)


def _write_bench_report(report: Report, result, curves, rows) -> None:
    labels, model_labels, references = result["labels"], set(result["models"]), result["references"]
    style = dict(targets=result.get("targets_bpp", TARGET_BPPS), learned=set(result.get("learned_curves", [])),
                 upscaled=set(result.get("classic_upscales", result.get("upscaled_curves", {}).values())))
    _plot_rd(curves, labels, model_labels, "psnr", "PSNR (dB, RGB)", report.asset("rd_psnr.png"), references,
             **style)
    _plot_rd(curves, labels, model_labels, "ms_ssim", "MS-SSIM", report.asset("rd_msssim.png"), references, **style)
    _plot_rd(curves, labels, model_labels, "detail", "detail ratio (1 = the original's)",
             report.asset("rd_detail.png"), **style)
    crop = result["crop"]
    markdown = _report(result, curves, rows, labels, model_labels, crop["image"], crop["bpp"], report.assets.name)
    if getattr(report.args, "notes", None):
        markdown += "\n" + report.notes()
    report.write(result, rows, markdown)


MEASUREMENT_FIELDS = [f.name for f in fields(Measurement) if f.name != "extra"]


def rewrite_bench_report(args) -> int:
    """`bench --report-only`: the report, its RD plots and tables again from OUT/NAME/results.json, with the --notes
    and --references given now (a bench's measurements take long; editing the notes should not repeat them). The
    crops figure is kept as measured."""
    report = Report(args, rewrite=True)
    report_path, assets = report.markdown_path, report.assets
    try:
        result = json.loads((assets / "results.json").read_text())
    except FileNotFoundError:
        raise TfgcError(f"--report-only: {assets / 'results.json'} does not exist (run the bench first)") from None
    except (OSError, ValueError) as e:
        raise TfgcError(f"--report-only: cannot read {assets / 'results.json'}: {first_line(e)}") from None
    if not isinstance(result, dict) or not {"labels", "models", "crop", "codecs", "measurements"} <= set(result):
        raise TfgcError(f"--report-only: {assets / 'results.json'} was not written by this version's bench; run the "
                        "bench again")
    if getattr(args, "references", None):
        result["references"] = read_references(args.references)
    rows = [Measurement(**{k: m[k] for k in MEASUREMENT_FIELDS},
                        extra={k: v for k, v in m.items() if k not in MEASUREMENT_FIELDS})
            for m in result["measurements"]]
    curves = {codec: [(point["setting"], {k: v for k, v in point.items() if k != "setting"}) for point in points]
              for codec, points in result["codecs"].items()}
    result["report_command"] = command_line(args)
    _write_bench_report(report, result, curves, rows)
    print(f"rewrote {report_path} and its plots from {assets / 'results.json'}")
    return 0


SR_CLASSIC = ("lanczos", "bicubic")


@dataclass
class SRBenchGroup:
    """The sr models of one base codec and scale: each image coded once per quality, that file decoded by each
    model (at each alpha) and by the classic upscalers."""

    base: str
    scale: int
    qualities: List[int]
    points: List[Tuple[str, object, Optional[float]]]

    def classic_label(self, method: str) -> str:
        from tfgc.codec.sr import BASE_NAMES

        size = "full size" if self.scale == 1 else f"1/{self.scale}"
        return f"{BASE_NAMES[self.base]} at {size} + {'Lanczos' if method == 'lanczos' else 'bicubic'}"

    def decoders(self):
        """(label, decode(data)) of each model point, then of each classic upscaler."""
        from tfgc.codec import api

        return ([(label, lambda data, model=model, alpha=alpha: api.decode(data, model, alpha))
                 for label, model, alpha in self.points]
                + [(self.classic_label(method), lambda data, method=method: api.decode(data, decoder=method))
                   for method in SR_CLASSIC])


def sr_bench_groups(models, alphas: Optional[Sequence[float]], qualities: Optional[Sequence[int]] = None):
    """sr models grouped by base codec and scale, each group with its quality sweep: `qualities`, else every quality
    the group's models trained on (their base_qualities, else their default quality)."""
    from tfgc.codec import sr

    groups: Dict[Tuple[str, int], SRBenchGroup] = {}
    for label, model in models:
        m, t = model.config.model, model.config.train
        group = groups.setdefault((m.base_codec, m.scale), SRBenchGroup(m.base_codec, m.scale, [], []))
        group.points += bench_points([(label, model)], alphas)
        group.qualities = sorted(set(group.qualities) | set(qualities or t.base_qualities or [m.base_quality]))
    for group in groups.values():
        for quality in group.qualities:
            sr.check_quality(quality, group.base)
    return list(groups.values())


def bench_points(models, alphas: Optional[Sequence[float]]) -> List[Tuple[str, object, Optional[float]]]:
    """(label, model, alpha) of each point a model adds: a fidelity-controlled model one per alpha of `alphas`
    (its own default without them), any other model one."""
    points = []
    for label, model in models:
        if alphas and model.config.model.fidelity_control:
            points += [(f"{label} alpha={model.checked_alpha(a):g}", model, float(a)) for a in alphas]
        else:
            points.append((label, model, None))
    return points


REFERENCE_KEYS = {"label": str, "bpp": float, "psnr": float, "ms_ssim": float, "source": str}


def read_references(path) -> List[dict]:
    """Figures reported elsewhere on the same images (`--references FILE`): a JSON list of objects with label, bpp,
    source, and psnr and/or ms_ssim. They are drawn on the RD plots and listed apart from what this run measured."""
    try:
        entries = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise TfgcError(f"--references {path}: no such file") from None
    except (OSError, ValueError) as e:
        raise TfgcError(f"--references {path}: {first_line(e)}") from None
    if not isinstance(entries, list):
        raise TfgcError(f"--references {path}: expected a JSON list of points")
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not {"label", "bpp", "source"} <= set(entry) or not (
                {"psnr", "ms_ssim"} & set(entry)):
            raise TfgcError(f"--references {path}: point {i} needs label, bpp, source and psnr or ms_ssim")
        for key, value in entry.items():
            kind = REFERENCE_KEYS.get(key)
            if kind is None:
                raise TfgcError(f"--references {path}: point {i} has an unknown key {key!r}")
            if kind is float and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise TfgcError(f"--references {path}: point {i}: {key} must be a number")
            if kind is str and not isinstance(value, str):
                raise TfgcError(f"--references {path}: point {i}: {key} must be text")
    return entries


def _format(value: Optional[float], digits: int) -> str:
    return "not reachable" if value is None else f"{value:.{digits}f}"


def _table(curves, labels, model_labels, targets=TARGET_BPPS) -> str:
    header = "| codec | " + " | ".join(f"PSNR @ {t} bpp | MS-SSIM @ {t} bpp" for t in targets) + " |"
    lines = [header, "|---" * (1 + 2 * len(targets)) + "|"]
    for codec, points in curves.items():
        if codec in model_labels:
            continue
        cells = []
        for target in targets:
            cells.append(_format(interpolate([(s["bpp"], s["psnr"]) for _, s in points], target), 2))
            cells.append(_format(interpolate([(s["bpp"], s["ms_ssim"]) for _, s in points], target), 4))
        lines.append(f"| {labels[codec]} | " + " | ".join(cells) + " |")
    if model_labels:
        lines += ["", "| tfgc model | bpp (file) | bound bpp | PSNR | MS-SSIM | detail ratio |",
                  "|---|---|---|---|---|---|"]
        for codec, points in curves.items():
            if codec in model_labels:
                s = points[0][1]
                bound = f"{s['bound_bpp']:.4f}" if "bound_bpp" in s else "none (JPEG)"
                lines.append(f"| {labels[codec]} | {s['bpp']:.4f} | {bound} | {s['psnr']:.2f} | "
                             f"{s['ms_ssim']:.4f} | {s['detail']:.3f} |")
    return "\n".join(lines)


def _matched_table(curves, labels, model_labels) -> str:
    """Each tfgc model beside every classic codec's curve read at the model's own mean bpp."""
    blocks = []
    for model, points in curves.items():
        if model not in model_labels:
            continue
        own = points[0][1]
        lines = [f"| at {own['bpp']:.4f} bpp | PSNR (dB) | MS-SSIM | detail ratio |", "|---|---|---|---|",
                 f"| **{labels[model]}** | **{own['psnr']:.2f}** | **{own['ms_ssim']:.4f}** | "
                 f"**{own['detail']:.3f}** |"]
        for codec, codec_points in curves.items():
            if codec in model_labels:
                continue
            cells = [_format(interpolate([(s["bpp"], s[key]) for _, s in codec_points], own["bpp"]), digits)
                     for key, digits in (("psnr", 2), ("ms_ssim", 4), ("detail", 3))]
            lines.append(f"| {labels[codec]} | " + " | ".join(cells) + " |")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def _upscaler_table(curves, labels, upscaled_curves) -> str:
    """Each learned sr decoder against the Lanczos upscale of the same files, quality by quality (same bytes)."""
    lines = ["| decoder | quality | bpp | PSNR (dB) | Lanczos PSNR | gain (dB) | MS-SSIM | Lanczos MS-SSIM | detail | "
             "Lanczos detail |", "|---" * 10 + "|"]
    for learned, lanczos in upscaled_curves.items():
        reference = dict(curves.get(lanczos, []))
        for setting, s in curves.get(learned, []):
            r = reference.get(setting)
            if r is None:
                continue
            lines.append(f"| {labels[learned]} | {setting} | {s['bpp']:.4f} | {s['psnr']:.2f} | {r['psnr']:.2f} | "
                         f"{s['psnr'] - r['psnr']:+.2f} | {s['ms_ssim']:.4f} | {r['ms_ssim']:.4f} | "
                         f"{s['detail']:.3f} | {r['detail']:.3f} |")
    return "\n".join(lines)


def _references_table(references) -> str:
    lines = ["| reported | bpp | PSNR (dB) | MS-SSIM | source |", "|---|---|---|---|---|"]
    for r in references:
        psnr = f"{r['psnr']:.2f}" if "psnr" in r else "-"
        ms_ssim = f"{r['ms_ssim']:.3f}" if "ms_ssim" in r else "-"
        lines.append(f"| {r['label']} | {r['bpp']:.3f} | {psnr} | {ms_ssim} | {r['source']} |")
    return "\n".join(lines)


def _throughput_table(rows: Sequence[Measurement], labels) -> str:
    lines = ["| codec | encode MP/s | decode MP/s | encode s/image | decode s/image |", "|---|---|---|---|---|"]
    for codec in dict.fromkeys(r.codec for r in rows):
        own = [r for r in rows if r.codec == codec]
        megapixels = sum(r.width * r.height for r in own) / 1e6
        encode, decode = sum(r.encode_seconds for r in own), sum(r.decode_seconds for r in own)
        lines.append(f"| {labels[codec]} | {megapixels / encode:.2f} | {megapixels / decode:.2f} | "
                     f"{encode / len(own):.3f} | {decode / len(own):.3f} |")
    return "\n".join(lines)


def _plot_rd(curves, labels, model_labels, key, ylabel, path, references=(), targets=TARGET_BPPS, learned=(),
             upscaled=()) -> None:
    plt = pyplot()
    figure, axes = plt.subplots(figsize=(10, 5.5), dpi=120)
    # one colour per curve however many there are (matplotlib's cycle repeats after ten)
    axes.set_prop_cycle(color=list(plt.cm.tab10.colors) + list(plt.cm.Dark2.colors) + list(plt.cm.Set1.colors))
    for codec, points in curves.items():
        rates = [s["bpp"] for _, s in points]
        values = [s[key] for _, s in points]
        if codec in model_labels:
            axes.plot(rates, values, marker="*", markersize=14, linestyle="none", label=labels[codec])
        elif codec in learned:
            axes.plot(rates, values, marker="*", markersize=8, linewidth=2, label=labels[codec])
        elif codec in upscaled:
            axes.plot(rates, values, marker=".", markersize=4, linestyle="--", linewidth=1, label=labels[codec])
        else:
            axes.plot(rates, values, marker="o", markersize=3, label=labels[codec])
    for reference in references:
        if key in reference:
            axes.plot([reference["bpp"]], [reference[key]], marker="D", markersize=7, linestyle="none",
                      markerfacecolor="none", label=f"{reference['label']} (reported, not measured here)")
    for target in targets:
        axes.axvline(target, color="0.85", linewidth=0.8, zorder=0)
    finish_rd_plot(plt, figure, axes, ylabel, path)


def _plot_crops(original, name, candidates, labels, target_bpp, size, path) -> None:
    """The same crop of one image across codecs, each at the setting whose bpp on that image is closest to target."""
    chosen = {}
    for (codec, setting), (row, reconstruction) in candidates.items():
        best = chosen.get(codec)
        if best is None or abs(np.log(row.bpp / target_bpp)) < abs(np.log(best[0].bpp / target_bpp)):
            chosen[codec] = (row, reconstruction)
    # A model's one setting is its label: the caption would say it twice.
    panels = [("original", original)] + [
        (f"{labels[c]}\n{'' if row.setting == c else row.setting + ': '}{row.bpp:.3f} bpp, {row.psnr:.1f} dB", rec)
        for c, (row, rec) in chosen.items()]
    plot_panels(panels, size, f"{name}, centre {{size}}x{{size}} crop, each codec at the setting nearest "
                               f"{target_bpp:.3f} bpp", path)


def _report(result, curves, rows, labels, model_labels, crop_name, crop_bpp, assets) -> str:
    env = result["environment"]
    machine = env["machine"]
    versions = ", ".join(f"{k} {v}" for k, v in env["versions"].items() if v)
    lines = [
        f"# Benchmark: {len(result['images'])} images",
        "",
        "Generated by:",
        "",
        f"    {result['command']}",
        "",
        *(["Text, tables and RD plots rewritten from its results.json (same measurements) by:", "",
           f"    {result['report_command']}", ""] if result.get("report_command") else []),
        f"Machine: {describe_machine(machine)}; {machine['platform']}. "
        f"Python {env['python']}; {versions}. Commit {env['commit']}.",
        "",
        *([f"The classic codecs' measurements are those of `{result['classic_from']['command']}` (on "
           f"{result['classic_from']['machine']}), reused with --classic-from: each setting's file of {crop_name} "
           "was coded again by this run and has the size that run measured. Their speeds are that machine's.", ""]
          if result.get("classic_from") else []),
        "Every point is a real file: bpp = 8 x file bytes / pixels, averaged over the images at each quality setting "
        "(tfgc models: one point each, or one per alpha of a fidelity-controlled model; sr models: a curve over "
        "their base codec's quality, beside the Lanczos and bicubic upscales of the same files; all as .tfgc "
        "files with header and checksum). PSNR on 8-bit RGB; MS-SSIM is "
        "tf.image.ssim_multiscale; detail ratio = gradient energy of the reconstruction / that of the original "
        "(1 = as much fine detail as the original, < 1 = blurrier; it measures amount of detail, not faithfulness).",
        "",
        "## Rate–distortion",
        "",
        f"![bpp vs PSNR]({assets}/rd_psnr.png)",
        f"![bpp vs MS-SSIM]({assets}/rd_msssim.png)",
        f"![bpp vs detail ratio]({assets}/rd_detail.png)",
        "",
        "Each codec's mean curve interpolated linearly at the target rates (\"not reachable\": the codec's sweep does "
        "not reach that rate on these images):",
        "",
        _table(curves, labels, model_labels, result.get("targets_bpp", TARGET_BPPS)),
        "",
    ]
    if result.get("upscaled_curves"):
        lines += ["## Learned decoders against a Lanczos upscale of the same files", "",
                  "Each sr file (the base codec's file of the image at reduced size) decoded by the learned decoder "
                  "and by Pillow's Lanczos filter: the same bytes, so the gain is the decoder's alone.", "",
                  _upscaler_table(curves, labels, result["upscaled_curves"]), ""]
    if model_labels:
        lines += ["## Each tfgc model at its own rate", "",
                  "Every classic codec's mean curve read (linearly) at the model's mean bpp on these images:", "",
                  _matched_table(curves, labels, model_labels), ""]
    if result.get("references"):
        lines += ["## Reported elsewhere on these images", "",
                  "Figures published by others, drawn on the RD plots as hollow diamonds; not measured by this run "
                  "(other code, machines and sometimes other averaging):", "",
                  _references_table(result["references"]), ""]
    lines += [
        "## Speed (this run; one codec call at a time, each codec free to use its own threads)",
        "",
        _throughput_table(rows, labels),
        "",
        "Megapixels per second: all pixels of the sweep over all the time spent encoding (decoding) them, "
        "in-process, file bytes in memory.",
        "",
        "## The same crop across codecs",
        "",
        f"![crops]({assets}/crops.png)",
        "",
        f"{crop_name}: each codec at its setting nearest {crop_bpp:.3f} bpp on this image.",
        "",
        results_links(assets),
        "",
    ]
    if any("fid" in s for points in curves.values() for _, s in points):
        lines += ["FID/KID (256x256 patches, HiFiC protocol) are in results.json per codec setting.", ""]
    return "\n".join(lines)
