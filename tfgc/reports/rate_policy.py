"""`python -m tfgc ratecontrol`: an sr model's learned rate control against --target-bpp's search, on real files.

At each target rate every image is coded twice: by the search (the highest base quality whose file fits, found by
bisection on real files) and by the rate policy (one encode at the quality it picks); both files are decoded by the
model. The two are compared at equal mean rate: the policy's PSNR read off its own curve (interpolated in log bpp) at
the search's mean bpp, since a policy's files are near the target, not exactly at the search's sizes.
"""

from __future__ import annotations

import time
from typing import Dict, List

import numpy as np

from tfgc.errors import TfgcError
from tfgc.reports.measure import Measurement, load_images, load_tfds, measure, summarize
from tfgc.reports.writer import (environment, finish_rd_plot, provenance, pyplot, Report, require_matplotlib,
                                results_links)
from tfgc.utils import progress_bar

DEFAULT_TARGETS = (0.02, 0.03, 0.05, 0.08, 0.12, 0.2)
OBJECTIVE_TEXT = {"cap": "each file at most the target, as large as it can be, as the search aims",
                  "mean": "the target on average, bits where they buy the most PSNR"}
METHODS = ("search", "policy")


def run_rate_control(args) -> int:
    from tfgc.codec import api, rate, rate_policy, sr
    from tfgc.models.store import load_model, model_label, resolve_model

    report = Report(args)
    directory = resolve_model(args.model)
    policy = rate_policy.load(args.policy) if args.policy else rate_policy.for_model(directory)
    if policy is None:
        raise TfgcError(f"{args.model} has no rate policy: give --policy FILE (python -m tfgc.training.rate_policy "
                        "trains one)")
    model = load_model(directory)
    m = model.config.model
    if m.family != "sr" or (m.base_codec, m.scale) != (policy.base, policy.scale):
        raise TfgcError(f"the rate policy picks {policy.base} qualities at 1/{policy.scale} size; {args.model} is not "
                        "an sr model of that base and scale")
    require_matplotlib("ratecontrol")
    images = load_tfds(args.tfds, args.limit) if args.tfds else load_images(args.data, args.limit)
    targets = sorted(args.targets or DEFAULT_TARGETS)
    if not all(t > 0 for t in targets):
        raise TfgcError("--targets: rates must be > 0 bits per pixel")
    started_in = environment()
    label = model_label(directory)
    rows: Dict[str, Dict[float, List[Measurement]]] = {method: {t: [] for t in targets} for method in METHODS}
    progress = progress_bar(len(images), "image")
    for name, original in images:
        for target in targets:
            for method in METHODS:
                started = time.perf_counter()
                if method == "search":
                    result, _ = sr.at_rate(original, target, m.base_codec, m.scale)
                else:
                    result = rate.by_policy(original, target, policy).result
                encode_seconds = time.perf_counter() - started
                started = time.perf_counter()
                reconstruction = api.decode(result.data, model)
                rows[method][target].append(measure(name, f"{label} {method}", f"target={target:g}", original,
                                                    result.data, reconstruction, encode_seconds,
                                                    time.perf_counter() - started, quality=result.sr["quality"]))
        progress.add(1)
    summary = {method: {t: summarize(group) for t, group in by_target.items()} for method, by_target in rows.items()}
    comparison = compare(summary)
    for row in comparison:
        files = rows["policy"][row["target"]]
        row["policy_files_above_target"] = float(np.mean([r.bpp > row["target"] for r in files]))
    _plot(summary, label, report.asset("rate-control.png"))
    result = report.result(model=str(args.model), policy=policy.to_json()["metadata"], environment=started_in,
                           objective=policy.objective, rate_weight=policy.rate_weight, targets=targets,
                           mean={method: {f"{t:g}": s for t, s in by_target.items()}
                                 for method, by_target in summary.items()},
                           comparison=comparison,
                           images=[r.row() for by_target in rows.values() for g in by_target.values() for r in g])
    table = _table(summary, comparison)
    report.write(result, [r for by_target in rows.values() for g in by_target.values() for r in g],
                 _markdown(result, table, comparison, len(images), label, report))
    print(table)
    print(_verdict(comparison))
    print(f"wrote {report.markdown_path} and {report.assets}/")
    return 0


def compare(summary) -> List[dict]:
    """At each target: the search's mean bpp and PSNR, the policy's PSNR at that mean bpp (interpolated on its curve
    in log bpp; None outside it), their difference, and the encode times."""
    policy_bpp = np.array([s["bpp"] for s in summary["policy"].values()])
    policy_psnr = np.array([s["psnr"] for s in summary["policy"].values()])
    order = np.argsort(policy_bpp)
    rows = []
    for target, search in summary["search"].items():
        inside = policy_bpp.min() <= search["bpp"] <= policy_bpp.max()
        at_rate = float(np.interp(np.log(search["bpp"]), np.log(policy_bpp[order]), policy_psnr[order])) \
            if inside else None
        rows.append({"target": target, "search_bpp": search["bpp"], "search_psnr": search["psnr"],
                     "policy_psnr_at_search_bpp": at_rate,
                     "difference_db": None if at_rate is None else at_rate - search["psnr"],
                     "search_encode_seconds": search["encode_seconds"],
                     "policy_encode_seconds": summary["policy"][target]["encode_seconds"]})
    return rows


def _verdict(comparison) -> str:
    differences = [c["difference_db"] for c in comparison if c["difference_db"] is not None]
    speed = np.mean([c["search_encode_seconds"] / c["policy_encode_seconds"] for c in comparison])
    if not differences:
        return f"The policy's curve does not reach the search's rates; encodes {speed:.1f} times faster."
    return (f"At the search's mean rates the policy is {min(differences):+.2f} to {max(differences):+.2f} dB from "
            f"the search (mean {np.mean(differences):+.2f} dB over {len(differences)} targets), and encodes "
            f"{speed:.1f} times faster.")


def _table(summary, comparison) -> str:
    lines = ["| target (bpp) | search: bpp | PSNR (dB) | encode (s) | policy: bpp | files above the target | "
             "PSNR (dB) | encode (s) | policy at the search's bpp | difference (dB) |", "|---" * 10 + "|"]
    for c in comparison:
        p = summary["policy"][c["target"]]
        at = "-" if c["policy_psnr_at_search_bpp"] is None else f"{c['policy_psnr_at_search_bpp']:.2f}"
        diff = "-" if c["difference_db"] is None else f"{c['difference_db']:+.2f}"
        lines.append(f"| {c['target']:g} | {c['search_bpp']:.4f} | {c['search_psnr']:.2f} | "
                     f"{c['search_encode_seconds']:.3f} | {p['bpp']:.4f} | {100 * c['policy_files_above_target']:.0f}% "
                     f"| {p['psnr']:.2f} | {p['encode_seconds']:.3f} | {at} | {diff} |")
    return "\n".join(lines)


def _plot(summary, label, path) -> None:
    plt = pyplot()
    figure, axes = plt.subplots(figsize=(7.5, 4), dpi=120)
    for method, marker in zip(METHODS, ("o", "s")):
        points = sorted((s["bpp"], s["psnr"]) for s in summary[method].values())
        axes.plot(*zip(*points), marker=marker, label=f"{label}: {method}")
    finish_rd_plot(plt, figure, axes, "PSNR (dB), mean over the images", path)


def _markdown(result, table, comparison, images, label, report) -> str:
    assets = report.assets.name
    return "\n".join([
        f"# Learned rate control: {label}, {images} images",
        "",
        *provenance(result),
        "",
        f"Policy: {result['policy'].get('model', '?')}'s rate policy, trained on {result['policy'].get('images', '?')} "
        f"images of {', '.join(result['policy'].get('data', []))} for {result['policy'].get('steps', '?')} steps; "
        f"objective {result['objective']} ({OBJECTIVE_TEXT[result['objective']]}), weight {result['rate_weight']:.3f}.",
        "",
        "At each target every image is coded by the search (the highest base quality whose real file fits the "
        "target) and by the policy (one encode, at the quality its actor picks from the image's features); both "
        "files are decoded by the model. Means over the images; encode = seconds per image, the search's several "
        "encodes included. The two are compared at equal mean rate: the policy's PSNR on its own curve at the "
        "search's mean bpp.",
        "",
        table,
        "",
        _verdict(comparison),
        "",
        f"![PSNR against mean bpp: search and policy]({assets}/rate-control.png)",
        "",
        report.notes(),
        results_links(assets),
        "",
    ])
