"""Ship trained models: export each into saved_models/NAME/VERSION/ (the TF Serving layout, which is also a tfgc
model directory), evaluate the exported model on the Kodak images, and write its model card beside it.

    python scripts/ship_models.py --kodak kodak --out saved_models \
        --model gc-small-c8=runs/c8-stage2/model --model rlsrgan-small-x4=runs/sr/model --default gc-small-c8

Each version folder gets MODEL_CARD.md (for people) and card.json (for `python -m tfgc models`): what the model is,
the data, preset, steps, wall time and machine of its training, the exact training command of each stage, and its
Kodak figures from real files (a fidelity-controlled model at alpha 0, 0.5 and 1). A version folder holds at most
50 MB; a larger export is removed again and reported. `--default NAME` writes OUT/DEFAULT, the model that
`python -m tfgc compress` uses when --model is omitted; several names are an order of preference (the first that
runs on the user's machine: a base-layer model needs its base codec's plugin).
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import sys
import time
from pathlib import Path

MAX_MEGABYTES = 50
CARD_ALPHAS = (0.0, 0.5, 1.0)


def folder_megabytes(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


def parse_model_argument(text: str):
    name, sep, directory = text.partition("=")
    if not sep or not name or not directory:
        raise SystemExit(f"ship_models: --model {text!r}: expected NAME=MODEL_DIRECTORY")
    if "/" in name or name.startswith("."):
        raise SystemExit(f"ship_models: --model {text!r}: NAME must be a plain folder name")
    return name, Path(directory)


def kodak_figures(model, images, label: str) -> dict:
    """Mean figures over `images`, one real file per image; per alpha for a fidelity-controlled model."""
    from tfgc.reports.measure import evaluate_model, summarize
    from tfgc.utils import progress_bar

    alphas = CARD_ALPHAS if model.config.model.fidelity_control else (None,)
    progress = progress_bar(len(images) * len(alphas), "decode")
    figures = {}
    for alpha in alphas:
        rows = evaluate_model(model, images, label, progress, alpha=alpha)
        figures["default" if alpha is None else f"{alpha:g}"] = summarize(rows)
    return figures


def quality_sweep(model, images, label: str) -> dict:
    """An sr model trained on several base qualities: at each, the mean figures of its decoder (per alpha) and of a
    Lanczos upscale of the same files, {"q20": {"alpha 0": ..., "lanczos": ...}}; {} for other models."""
    from tfgc.codec import api
    from tfgc.reports.measure import encode_images, measure_decodes, summarize
    from tfgc.utils import progress_bar

    if model.family != "sr" or not model.config.train.base_qualities:
        return {}
    m = model.config.model
    alphas = CARD_ALPHAS if m.fidelity_control else (None,)
    qualities = model.config.train.base_qualities
    progress = progress_bar(len(images) * len(qualities) * (len(alphas) + 1), "decode")
    sweep = {}
    for quality in qualities:
        coded = encode_images(images, lambda image: api.encode_sr(image, m.scale, quality, m.base_codec))
        decoders = {"decoder" if alpha is None else f"alpha {alpha:g}":
                    lambda data, alpha=alpha: api.decode(data, model, alpha) for alpha in alphas}
        decoders["lanczos"] = lambda data: api.decode(data, decoder="lanczos")
        sweep[f"q{quality}"] = {key: summarize(measure_decodes(images, coded, label, f"q{quality}", decode, progress))
                                for key, decode in decoders.items()}
    return sweep


def _minutes(seconds) -> str:
    return "?" if seconds is None else f"{seconds / 60:.1f} min"


def _machine(machine) -> str:
    """A manifest's recorded machine, the text given by --training-machine, or 'not recorded'."""
    from tfgc.reports.writer import describe_machine

    if not machine:
        return "not recorded"
    return machine if isinstance(machine, str) else describe_machine(machine)


def describe(manifest: dict) -> str:
    if manifest["family"] == "sr":
        from tfgc.codec.sr import base_label
        from tfgc.models.store import sr_settings

        base, scale, quality = sr_settings(manifest)
        rl_srgan = manifest.get("generator", "srgan") == "srgan"
        kind = "RL-SRGAN" if rl_srgan else "a classic base layer and a learned decoder"
        text = (f"super-resolution codec ({kind}): the image downsampled x{scale} (bicubic) and stored as "
                f"{base_label(base)} at quality {quality} (by default; each file names its own), decoded by the "
                f"{manifest['preset']} generator"
                f"{' trained with the actor-critic term' if manifest.get('actor_critic') else ''}")
        if manifest.get("stage1"):
            text += "; two decoders (MSE and GAN) interpolated at decode time by alpha (fidelity control)"
        return text
    text = (f"generative compression (GC): C={manifest['latent_channels']} latent channels, L={manifest['levels']} "
            f"levels, rate bound {manifest['bound_bpp']:.4f} bpp")
    if manifest.get("stage1"):
        text += "; two decoders (MSE and GAN) interpolated at decode time by alpha (fidelity control)"
    return text


def training_rows(manifest: dict):
    """(stage, command, steps, wall time, machine) of each stage of a model's training."""
    rows = []
    stage1 = manifest.get("stage1")
    if stage1:
        first = "1 (MSE, the decoder)" if manifest["family"] == "sr" else "1 (rate + distortion, every module)"
        rows.append((first, stage1.get("command"), stage1.get("steps"),
                     stage1.get("train_seconds"), stage1.get("machine")))
        rows.append(("2 (GAN, a copy of the decoder)", manifest.get("command"), manifest.get("steps"),
                     manifest.get("train_seconds"), manifest.get("machine")))
    else:
        rows.append(("one stage", manifest.get("command"), manifest.get("steps"), manifest.get("train_seconds"),
                     manifest.get("machine")))
    return rows


def serving_note(manifest: dict) -> str:
    if manifest["family"] == "sr":
        from tfgc.codec.sr import base_label
        from tfgc.models.store import sr_settings

        base = base_label(sr_settings(manifest)[0])
        return ("TF Serving: point `--model_base_path` at the folder above this one (signature `synthesis`: the "
                f"decoded base image ({base}) of a tfgc file and the image size in, the image out; tfgc makes and "
                "reads the base image).")
    return ("TF Serving: point `--model_base_path` at the folder above this one (signatures `analysis` and "
            "`synthesis`; the client codes the symbols: scripts/serving_client.py).")


def describe_data(manifest: dict) -> str:
    folders = manifest.get("data") or []
    if not folders:
        return "Data: not recorded (the model was not saved by python -m tfgc.train)."
    text = f"Data: {', '.join(folders)} ({manifest.get('training_images')} photographs"
    if all("bsds500" in folder.lower() for folder in folders):
        text += "; BSDS500, Arbelaez et al., TPAMI 2011, research use"
    return text + ")."


def render_card(card: dict) -> str:
    m = card["manifest"]
    lines = [f"# {card['name']} (version {card['version']})", "", describe(m) + ".", "",
             f"Preset `{m.get('preset')}`, fingerprint `{m['fingerprint']}`, tfgc {m.get('tfgc_version')}; "
             f"{card['megabytes']:.1f} MB on disk (a TF Serving SavedModel, which tfgc reads too).", "",
             "## Use", "",
             "    python -m tfgc compress photo.png photo.tfgc --model " + card["path"],
             "    python -m tfgc decompress photo.tfgc photo-decoded.png",
             ""]
    if m.get("stage1"):
        lines += ["    python -m tfgc decompress photo.tfgc sharper.png --alpha 1      # GAN decoder",
                  "    python -m tfgc decompress photo.tfgc faithful.png --alpha 0     # MSE decoder", ""]
    lines += [serving_note(m), "", "## Training", "", describe_data(m), "",
              "| stage | steps | wall time | machine |", "|---|---:|---:|---|"]
    rows = training_rows(m)
    for stage, _, steps, seconds, machine in rows:
        lines.append(f"| {stage} | {steps} | {_minutes(seconds)} | "
                     f"{_machine(machine or card.get('training_machine'))} |")
    if card.get("training_machine") and any(not machine for *_, machine in rows):
        lines += ["", "(The machine of a stage whose manifest predates tfgc recording it is as given by "
                  "`--training-machine` when the model was shipped.)"]
    lines += ["", "Commands, as run (in a clone of the repository at the commit named in manifest.json):", ""]
    for stage, command, *_ in rows:
        lines += [f"- stage {stage.split(' ')[0]}:" if len(rows) > 1 else "- training:", "", f"      {command}", ""]
    k = card["kodak"]
    lines += [f"## Kodak ({k['images']} images, real files)", "",
              f"Evaluated by `{card['command']}` on {_machine(k['machine'])}, commit {k['commit']}:", "",
              "| alpha | bpp | PSNR (dB) | MS-SSIM | detail ratio | encode s/image | decode s/image |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    for alpha, s in k["figures"].items():
        lines.append(f"| {alpha if alpha != 'default' else '-'} | {s['bpp']:.4f} | {s['psnr']:.2f} | "
                     f"{s['ms_ssim']:.4f} | {s['detail']:.3f} | {s['encode_seconds']:.3f} | "
                     f"{s['decode_seconds']:.3f} |")
    if k.get("sweep"):
        lines += ["", "Over the base qualities it trained on, the learned decoder and a Lanczos upscale of the same "
                  "files (the same bytes):", "",
                  "| quality | bpp | decoder | PSNR (dB) | gain over Lanczos | MS-SSIM | detail ratio |",
                  "|---|---:|---|---:|---:|---:|---:|"]
        for quality, row in k["sweep"].items():
            lanczos = row["lanczos"]
            for decoder, s in row.items():
                lines.append(f"| {quality} | {s['bpp']:.4f} | {decoder} | {s['psnr']:.2f} | "
                             f"{s['psnr'] - lanczos['psnr']:+.2f} | {s['ms_ssim']:.4f} | {s['detail']:.3f} |")
    lines += ["", "bpp = 8 x file bytes / pixels (header and checksum included); detail ratio = gradient energy of "
              "the reconstruction / the original's. Against the classic codecs: docs/results.md.", "",
              "## Limits", "",
              f"Trained on the machine and for the wall time above, on {m.get('training_images', '?')} "
              "photographs: far less than the papers' GPU "
              "runs, so its quality is below theirs at the same rate (docs/results.md says by how much). "
              + limits_note(card), ""]
    return "\n".join(lines)


def limits_note(card: dict) -> str:
    if card.get("gan", True):
        alpha_zero = " (alpha 0 decodes with the MSE decoder alone)" if card["manifest"].get("stage1") else ""
        return ("Not for images where faithful detail matters (text, faces, medical, evidence): a GAN decoder invents "
                f"plausible texture{alpha_zero}.")
    return ("Its decoder trained on MSE alone: it invents no texture, and at low rates its images are as blurred as "
            "the base layer lets them be.")


PATH_KEYS = ("init_from", "directory")  # where a training run wrote a folder of this machine by its absolute path


def portable_paths(directory: Path) -> None:
    """Name the stage-1 model a stage-2 run started from as the shipper's command line did (relative to the working
    folder, or to the repository), not by this machine's absolute path, in the export's JSON files."""
    def portable(path: str) -> str:
        for root in (Path.cwd(), Path(__file__).resolve().parents[1]):
            try:
                return str(Path(path).relative_to(root))
            except ValueError:
                continue
        return path

    def rewrite(value):
        if isinstance(value, dict):
            return {k: portable(v) if k in PATH_KEYS and isinstance(v, str) else rewrite(v) for k, v in value.items()}
        return [rewrite(v) for v in value] if isinstance(value, list) else value

    for path in sorted(directory.glob("*.json")):
        content = json.loads(path.read_text())
        rewritten = rewrite(content)
        if rewritten != content:  # the keys keep their order
            path.write_text(json.dumps(rewritten, indent=2) + "\n")


def ship(name: str, source: Path, args, images) -> Path:
    from tfgc import export
    from tfgc.reports.writer import environment
    from tfgc.models.store import load_model

    out = Path(args.out)
    model = load_model(source)
    destination = export.export(model, out, ("serving",), name=name, version=args.version)["serving"]
    megabytes = folder_megabytes(destination)
    if megabytes > MAX_MEGABYTES:
        shutil.rmtree(destination)
        raise SystemExit(f"ship_models: {name} is {megabytes:.1f} MB, over the {MAX_MEGABYTES} MB a shipped model may "
                         "take; removed it again")
    portable_paths(destination)
    shipped = load_model(destination)  # the card describes the files as shipped
    print(f"{name}: exported {destination} ({megabytes:.1f} MB); evaluating on {len(images)} images", flush=True)
    env = environment()
    card = {"name": name, "version": int(destination.name), "path": str(destination), "megabytes": megabytes,
            "command": "python " + shlex.join(sys.argv), "manifest": shipped.manifest,
            "training_machine": args.training_machine, "gan": shipped.config.model.adversarial_weight > 0,
            "kodak": {"images": len(images), "machine": env["machine"], "commit": env["commit"],
                      "evaluated": time.strftime("%Y-%m-%d"), "figures": kodak_figures(shipped, images, name),
                      "sweep": quality_sweep(shipped, images, name)}}
    (destination / "card.json").write_text(json.dumps(card, indent=2) + "\n")
    (destination / "MODEL_CARD.md").write_text(render_card(card))
    return destination


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", action="append", required=True, help="NAME=MODEL_DIRECTORY (repeat for each model)")
    p.add_argument("--kodak", required=True, help="folder of the evaluation images")
    p.add_argument("--out", default="saved_models", help="where the models go: OUT/NAME/VERSION")
    p.add_argument("--version", type=int, help="version folder (default: one more than the highest of each NAME)")
    p.add_argument("--default", nargs="+", metavar="NAME",
                   help="the model `python -m tfgc compress` uses without --model; several in order of preference "
                        "(the first that runs here: a base-layer model needs its base codec's plugin)")
    p.add_argument("--training-machine", help="the machine the models trained on, for manifests made before tfgc "
                                              "recorded it (the card says so where it is used)")
    args = p.parse_args(argv)
    models = [parse_model_argument(m) for m in args.model]
    shipping = {name for name, _ in models}
    for default in args.default or ():
        if default not in shipping and not (Path(args.out) / default).is_dir():
            raise SystemExit(f"ship_models: --default {default}: not among the models shipped or in {args.out}")

    from tfgc.errors import TfgcError
    from tfgc.reports.measure import load_images

    try:
        images = load_images([args.kodak])
        for name, source in models:
            print(f"wrote {ship(name, source, args, images)}", flush=True)
    except TfgcError as e:
        raise SystemExit(f"ship_models: {e}") from None
    if args.default:
        (Path(args.out) / "DEFAULT").write_text("".join(name + "\n" for name in args.default))
    return 0


if __name__ == "__main__":
    sys.exit(main())
