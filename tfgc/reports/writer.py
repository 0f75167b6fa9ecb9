"""What every report shares: its destination (OUT/NAME.md beside the folder OUT/NAME/), the command line, the
machine and versions it ran on, progress, results.json, results.csv, the Markdown's provenance lines and the plots."""

from __future__ import annotations

import csv
import json
import io
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import List, Optional, Sequence

from tfgc.errors import TfgcError
from tfgc.utils import refuse_existing, write_atomic


def environment() -> dict:
    """Package versions, the machine and the commit, for the results JSON."""
    from importlib import metadata

    versions = {}
    for package in ("tfgc", "tensorflow", "tensorflow-compression", "keras", "numpy", "pillow", "pillow-heif",
                    "pillow-jxl-plugin", "matplotlib"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        memory = None
    return {"versions": versions, "python": platform.python_version(),
            "machine": {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": memory, "platform": platform.platform()},
            "commit": _commit()}


def describe_machine(machine: dict) -> str:
    """'CPU, N cores, M GiB' of an environment()['machine']."""
    memory = f", {machine['memory_gib']:.0f} GiB" if machine.get("memory_gib") else ""
    return f"{machine.get('cpu')}, {machine.get('cores')} cores{memory}"


def _commit() -> Optional[str]:
    root = Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return head.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def write_csv(path, rows: Sequence, force: bool = True) -> None:
    """Measurements (or dicts) as CSV, one column per key any row has."""
    buffer = io.StringIO()
    dicts = [r.row() if hasattr(r, "row") else r for r in rows]
    fields = list(dict.fromkeys(k for d in dicts for k in d))
    writer = csv.DictWriter(buffer, fieldnames=fields)
    writer.writeheader()
    writer.writerows(dicts)
    write_atomic(path, buffer.getvalue().encode(), force=force)


def report_destination(args, rewrite: bool = False):
    """(OUT/NAME.md, OUT/NAME/) of a report command, refused when they exist (without --force) unless `rewrite`; its
    --notes file, if any, must exist."""
    out = Path(args.out)
    report_path, assets = out / f"{args.name}.md", out / args.name
    if not rewrite:
        for path in (report_path, assets):
            refuse_existing(path, args.force)
    notes = getattr(args, "notes", None)
    if notes and not Path(notes).is_file():
        raise TfgcError(f"--notes {notes}: no such file")
    return report_path, assets


def command_line(args) -> str:
    import shlex

    argv = getattr(args, "argv", None)
    return "python -m tfgc " + shlex.join(sys.argv[1:] if argv is None else argv)


def require_matplotlib(command: str) -> None:
    """Checked before a long run whose plots need it."""
    try:
        pyplot()
    except ImportError:
        raise TfgcError(f"{command} draws its plots with matplotlib: pip install 'tfgc[bench]'") from None


def pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def save_figure(plt, figure, path) -> None:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    write_atomic(path, buffer.getvalue(), force=True)


def finish_rd_plot(plt, figure, axes, ylabel, path, legend_size=8) -> None:
    """Axes of an RD chart (log bpp), legend, and the PNG written to `path`."""
    axes.set_xscale("log")
    axes.set_xlabel("bits per pixel (real files, log scale)")
    axes.set_ylabel(ylabel)
    axes.grid(True, which="both", alpha=0.3)
    # beside the chart, not on it: the curves of the lowest rates are where the legend would sit
    axes.legend(fontsize=legend_size, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    figure.tight_layout()
    save_figure(plt, figure, path)


def plot_panels(panels, size, title, path, columns=4) -> None:
    """The same centre crop of several images side by side; `title` may name {size}."""
    plt = pyplot()
    height, width = panels[0][1].shape[:2]
    size = min(size, height, width)
    top, left = (height - size) // 2, (width - size) // 2
    columns = min(columns, len(panels))
    rows = -(-len(panels) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(3.0 * columns, 3.3 * rows + 0.4), dpi=120, squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (caption, image) in zip(axes.ravel(), panels):
        ax.imshow(image[top:top + size, left:left + size], interpolation="nearest")
        ax.set_title(caption, fontsize=8)
    figure.suptitle(title.format(size=size), fontsize=9)
    figure.tight_layout(rect=(0, 0, 1, 0.95))
    save_figure(plt, figure, path)


def training_summary(manifest: dict) -> str:
    def one(m):
        if m.get("train_seconds"):
            time = f", {m['train_seconds'] / 60:.1f} min of training"
        elif m.get("train_seconds_this_session"):  # models from before tfgc kept a run's total time
            time = f", {m['train_seconds_this_session'] / 60:.1f} min in its last session"
        else:
            time = ""
        return f"`{m.get('command', '?')}` ({m.get('steps', '?')} steps{time})"

    text = f"Trained with {one(manifest)}"
    if "stage1" in manifest:
        text += f", from the stage-1 model trained with {one(manifest['stage1'])}"
    return text + "."


def provenance(result) -> List[str]:
    """A report's opening lines: the command that made it, the machine and the commit."""
    env = result["environment"]
    machine = env["machine"]
    return ["Generated by:", "", f"    {result['command']}", "",
            f"Machine: {machine['cpu']}, {machine['cores']} cores; {machine['platform']}. Python {env['python']}. "
            f"Commit {env['commit']}."]


def model_record(directory, model) -> dict:
    """A report's record of a model: its manifest, then the folder as the command named it (last, so that no key of
    a manifest can replace it)."""
    return {**model.manifest, "directory": str(directory)}


def write_json(path, data: dict) -> None:
    write_atomic(path, (json.dumps(data, indent=2) + "\n").encode(), force=True)


def results_links(assets: str) -> str:
    """The sentence that ends every report: where its per-image results and everything else are."""
    return (f"Per-image results: [{assets}/results.csv]({assets}/results.csv); everything, with versions and machine: "
            f"[{assets}/results.json]({assets}/results.json).")


class Report:
    """A report's files: OUT/NAME.md and the folder OUT/NAME/ beside it (plots, results.json, results.csv). They are
    refused up front where they exist (without --force; `rewrite` writes a report again in place), and the results
    and the Markdown are written in one call at the end."""

    def __init__(self, args, rewrite: bool = False):
        self.args = args
        self.markdown_path, self.assets = report_destination(args, rewrite)

    def asset(self, name: str) -> Path:
        """OUT/NAME/name, the folder made on first use."""
        self.assets.mkdir(parents=True, exist_ok=True)
        return self.assets / name

    def result(self, **fields) -> dict:
        """results.json's content: the command line first, then `fields` in their order."""
        return {"command": command_line(self.args), **fields}

    def notes(self) -> str:
        """The text of the --notes file, or ''."""
        notes = getattr(self.args, "notes", None)
        return Path(notes).read_text() if notes else ""

    def write(self, result: dict, rows: Sequence, markdown: str) -> None:
        write_json(self.asset("results.json"), result)
        write_csv(self.asset("results.csv"), rows)
        write_atomic(self.markdown_path, markdown.encode(), force=True)
