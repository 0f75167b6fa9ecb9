"""python -m tfgc: compress, decompress, info, eval, bench, fidelity, ratecontrol, selective, superres, export, models.

Errors a user can cause end in one line on stderr and a non-zero exit: 1 for a bad file, image or model, 2 for bad
arguments. No output is overwritten without --force.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
from pathlib import Path
from typing import List, Optional

from tfgc import export  # the lists of formats and backends; TensorFlow loads only when an export runs
from tfgc.errors import TfgcError
from tfgc.utils import HelpFormatter, check_output, program_name, refuse_existing, run_command, version_text

QUIET_HELP = "print nothing but errors"
MODEL_HELP = "a model: its folder, or the name of an installed one (python -m tfgc models lists them)"


def _default_model():
    from tfgc.codec.api import default_model

    directory = default_model()
    if directory is not None:
        return directory
    raise TfgcError("no --model given and no model is installed (saved_models/ or $TFGC_MODEL_PATH); "
                    "train one with `python -m tfgc.train`")


def _check_backend(args) -> None:
    if args.backend != "tensorflow" and not args.model:
        raise TfgcError(f"--backend {args.backend} needs --model: the folder of a `python -m tfgc export` with that "
                        "format (or of --format all)")


def _backend_model(args, default):
    """The model a command runs: a tfgc model directory, or with --backend an export run by TFLite or ONNX."""
    if args.backend == "tensorflow":
        return args.model or default()
    from tfgc.export import load_backend

    return load_backend(args.model, args.backend)


def cmd_compress(args) -> int:
    check_output(args.output, args.force)
    _check_backend(args)
    from tfgc.codec import api
    from tfgc.utils import write_atomic

    if args.preserve is not None and args.preserve_classes is not None:
        raise TfgcError("give --preserve or --preserve-classes, not both")
    if (args.preserve is not None or args.preserve_classes is not None) and args.semantics is None:
        raise TfgcError("--preserve and --preserve-classes need --semantics LABELS.png (and an sc model)")
    note = None
    if args.target_bpp is not None:
        result, note = _compress_to_rate(args)
    elif args.bpp_strict:
        raise TfgcError("--bpp-strict goes with --target-bpp")
    elif args.codec == "sr" or _model_family(args) == "sr":
        result = _compress_sr(args)
    else:
        if args.scale is not None or args.quality is not None or args.base is not None:
            raise TfgcError("--base, --scale and --quality set the base image of sr files (--codec sr, or an sr "
                            "--model)")
        result = api.encode(args.input, _backend_model(args, _default_model), semantics=args.semantics,
                            preserve=args.preserve, preserve_classes=args.preserve_classes,
                            max_pixels=args.max_pixels)
    write_atomic(args.output, result.data, force=args.force)
    if args.json:
        print(json.dumps(dict(result.report(), output=args.output, **({"chosen": note} if note else {}))))
    elif not args.quiet:
        if note:
            print(note)
        print(f"{args.output}: {result.summary()}")
    return 0


def _model_family(args) -> str:
    """The family of the model compress would run (TensorFlow backend), from its manifest alone."""
    if args.backend != "tensorflow":
        return "export"
    from tfgc.models.store import read_manifest

    return read_manifest(args.model or _default_model()).get("family")


def _scale(args):
    return None if args.scale in (None, "auto") else int(args.scale)


def _compress_to_rate(args):
    """--target-bpp: the file whose real size is the largest at most that rate (tfgc.codec.rate), or for an sr model
    with a rate policy, the file of the quality the policy picks (one encode, no model loaded)."""
    from tfgc.codec import rate
    from tfgc.models.store import model_label
    from tfgc.models.store import installed_models, load_model, read_manifest, sr_settings

    if args.backend != "tensorflow" or args.semantics is not None:
        raise TfgcError("--target-bpp chooses among gc and sr models run by TensorFlow: no --backend, no --semantics")
    if args.quality is not None:
        raise TfgcError("--target-bpp chooses the quality itself: no --quality")
    if args.codec == "sr" and not args.model:
        if args.scale == "auto":
            raise TfgcError("--scale auto chooses among sr models: give --model (or install them), or a scale")
        choice = rate.choose(args.input, args.target_bpp, [], args.bpp_strict, args.max_pixels,
                             sr_settings=(args.base or "jpeg", _scale(args) or 4))
        return choice.result, choice.note
    directory = Path(args.model or _default_model())
    manifest = read_manifest(directory)
    family = manifest.get("family")
    if args.rate_control == "policy" and (family != "sr" or args.scale == "auto"):
        raise TfgcError("--rate-control policy needs one sr model that has a rate policy (not --scale auto)")
    if family == "sr":
        base, scale, _ = sr_settings(manifest)
        if args.base is not None and args.base != base:
            raise TfgcError(f"--base {args.base}: the model {directory} decodes {base} bases")
        if args.scale not in (None, "auto") and int(args.scale) != scale:
            raise TfgcError(f"--scale {args.scale}: the model {directory} decodes 1/{scale} bases (--scale auto "
                            "chooses among the installed sr models)")
        policy = _rate_policy(args, directory, base, scale)
        if policy is not None:
            choice = rate.by_policy(args.input, args.target_bpp, policy, args.bpp_strict, args.max_pixels,
                                    f"{model_label(directory)}'s rate policy")
            return choice.result, choice.note
        same = [d for d, m in installed_models() if m.get("family") == "sr" and sr_settings(m)[0] == base
                and sr_settings(m)[1] != scale] if args.scale == "auto" else []
    elif family == "gc":
        if args.codec == "sr" or args.scale is not None or args.base is not None:
            raise TfgcError(f"{directory} is a gc model: --codec sr, --base and --scale are for sr models")
        same = [d for d, m in installed_models() if m.get("family") == "gc"]
    else:
        raise TfgcError(f"--target-bpp chooses among gc and sr models; {directory} is a {family} model")
    directories = [directory] + [d for d in same if d.resolve() != directory.resolve()]
    models = [load_model(d) for d in directories]
    labels = {id(m): model_label(d) for m, d in zip(models, directories)}
    choice = rate.choose(args.input, args.target_bpp, models, args.bpp_strict, args.max_pixels,
                         label=lambda m: labels[id(m)])
    return choice.result, choice.note


def _rate_policy(args, directory, base: str, scale: int):
    """The rate policy of the sr model in `directory` that --rate-control asks for (None: search)."""
    from tfgc.codec import rate_policy
    from tfgc.models.store import resolve_model

    if args.rate_control == "search" or args.scale == "auto":
        return None
    policy = rate_policy.for_model(resolve_model(directory))
    if policy is None and args.rate_control == "policy":
        raise TfgcError(f"{directory} has no rate policy ({rate_policy.POLICY_FILE}; python -m "
                        "tfgc.training.rate_policy trains one)")
    if policy is not None and (policy.base, policy.scale) != (base, scale):
        raise TfgcError(f"{directory}'s rate policy picks {policy.base} qualities at 1/{policy.scale} size; the model "
                        f"decodes {base} at 1/{scale}")
    return policy


def _compress_sr(args):
    """An sr file: with --codec sr a model-free one, its base codec, scale and quality from the flags, else from an sr
    --model, else JPEG, 4 and 75 (RL-SRGAN's); without, the sr model's own (--quality may change its quality)."""
    from tfgc.codec import api
    from tfgc.models.store import read_manifest, sr_settings

    if args.semantics is not None or args.backend != "tensorflow":
        raise TfgcError("sr files take no --semantics and no --backend (their encoder is Pillow's)")
    if args.scale == "auto":
        raise TfgcError("--scale auto goes with --target-bpp")
    base, scale, quality = "jpeg", 4, 75
    directory = args.model or (None if args.codec == "sr" else _default_model())
    if directory:
        manifest = read_manifest(directory)
        if manifest.get("family") != "sr":
            raise TfgcError(f"--codec sr: {directory} is a {manifest.get('family')} model, not an sr one")
        base, scale, quality = sr_settings(manifest)
        if args.base is not None and args.base != base:
            raise TfgcError(f"--base {args.base}: the model {directory} decodes {base} bases")
        if args.codec != "sr" and _scale(args) not in (None, scale):
            raise TfgcError(f"--scale {args.scale}: the model {directory} decodes 1/{scale} bases (--codec sr writes "
                            "a file for other decoders)")
    base = args.base or base
    scale = _scale(args) or scale
    quality = args.quality if args.quality is not None else quality
    return api.encode_sr(args.input, scale, quality, base, max_pixels=args.max_pixels)


def cmd_decompress(args) -> int:
    check_output(args.output, args.force)
    _check_backend(args)
    from tfgc.codec import api
    from tfgc.codec.io import output_format, save_image

    output_format(args.output)  # an unknown extension fails before the decoding work
    if args.alpha is not None and not 0.0 <= args.alpha <= 1.0:
        raise TfgcError(f"--alpha must be in [0, 1], not {args.alpha:g}")
    data = _read_file(args.input)
    if args.semantics_out:  # checked before anything is decoded or written
        from tfgc.codec import bitstream

        if bitstream.unpack(data)[0].family != "sc":
            raise TfgcError("--semantics-out: only sc files hold a label map")
        for path in _semantics_paths(args.semantics_out):
            refuse_existing(path, args.force)
    if args.decoder != "model":
        if args.model or args.alpha is not None or args.backend != "tensorflow":
            raise TfgcError(f"--decoder {args.decoder} upscales by itself: no --model, --alpha or --backend")
        image = api.decode(data, decoder=args.decoder, max_pixels=args.max_pixels)
    else:
        image = api.decode(data, _backend_model(args, lambda: None), args.alpha, max_pixels=args.max_pixels)
    save_image(image, args.output, force=args.force)
    if args.semantics_out:
        _write_semantics(data, args.semantics_out, args.force)
    if not args.quiet:
        print(f"{args.output}: {image.shape[1]}x{image.shape[0]}")
    return 0


def _semantics_paths(path: str):
    """Where --semantics-out writes the label map and the mask."""
    return Path(path), Path(path).with_name(Path(path).stem + "_mask.png")


def _write_semantics(data: bytes, path: str, force: bool) -> None:
    """An sc file's label map (classes) and latent mask, as PNGs: PATH and PATH's stem + '_mask.png'."""
    import io

    from PIL import Image

    from tfgc.codec import api, bitstream
    from tfgc.utils import write_atomic

    classes, mask, _ = api.read_selective(*bitstream.unpack(data))
    for array, target in zip((classes, mask * 255), _semantics_paths(path)):
        buffer = io.BytesIO()
        Image.fromarray(array.astype("uint8"), "L").save(buffer, format="PNG")
        write_atomic(target, buffer.getvalue(), force=force)


def cmd_info(args) -> int:
    from tfgc.codec import bitstream

    data = _read_file(args.input)
    header, payload = bitstream.unpack(data)
    pixels = header.width * header.height
    from tfgc.codec.family import codec_for

    info = {"family": header.family, "fingerprint": header.fingerprint.hex(), "width": header.width,
            "height": header.height, "coding": "uniform table" if header.uniform_table else "model prior",
            "bytes": len(data), "payload_bytes": len(payload), "bpp": 8 * len(data) / pixels}
    info.update(codec_for(header.family).info(header, payload))  # None: a field the family's files do not have
    print(json.dumps({name: value for name, value in info.items() if value is not None}, indent=2))
    return 0


def cmd_export(args) -> int:
    formats = export.FORMATS if args.format == "all" else (args.format,)
    folders = export.export(args.model, args.out, formats, name=args.name, version=args.version, force=args.force,
                            check_image=args.check_image, check=not args.no_check,
                            progress=None if args.quiet else lambda line: print(line, flush=True))
    for export_format, folder in folders.items():
        manifest = json.loads((folder / export.EXPORT_MANIFEST).read_text())
        if not args.quiet:
            print(f"{export_format}: {folder}  {export.describe_parity(manifest.get('parity'))}")
    return 0


def cmd_models(args) -> int:
    from tfgc.codec.api import default_model
    from tfgc.codec.family import CODECS, FamilyCodec, codec_for
    from tfgc.models.store import installed_models, model_label, read_card

    rows = list(installed_models())
    if not rows:
        print("no models installed (saved_models/ or $TFGC_MODEL_PATH)")
        return 0
    default = default_model()
    for directory, manifest in rows:
        family = manifest.get("family")
        rate = (codec_for(family) if family in CODECS else FamilyCodec()).rate_label(manifest)
        mark = "  (default)" if default is not None and directory.resolve() == default.resolve() else ""
        print(f"{model_label(directory)}{mark}  {manifest.get('preset', '?')}  {rate}  fingerprint "
              f"{manifest.get('fingerprint')}\n    in {directory}")
        card = read_card(directory)
        figures = (card or {}).get("kodak", {}).get("figures", {})
        for alpha, s in figures.items():
            at = "" if alpha == "default" else f" at alpha {alpha}"
            print(f"    Kodak{at}: {s['bpp']:.4f} bpp, {s['psnr']:.2f} dB PSNR, {s['ms_ssim']:.4f} MS-SSIM")
    return 0


def _read_file(path: str) -> bytes:
    from tfgc.codec.bitstream import MAX_FILE_BYTES
    from tfgc.codec.io import read_file

    return read_file(path, MAX_FILE_BYTES)


def _max_pixels_argument(parser) -> None:
    from tfgc.codec.bitstream import MAX_IMAGE_PIXELS

    parser.add_argument("--max-pixels", type=int, default=MAX_IMAGE_PIXELS,
                        help="refuse images larger than this many pixels, before decoding them (as Pillow's "
                             "MAX_IMAGE_PIXELS); large images are transformed in tiles")


def _backend_argument(parser) -> None:
    parser.add_argument("--backend", default="tensorflow", choices=export.BACKENDS,
                        help="what runs the transforms: TensorFlow with a model directory, or TFLite (float32 or "
                             "float16 weights) or onnxruntime with the folder of a `python -m tfgc export`; entropy "
                             "coding is the same in all")


def _data_arguments(parser, inception: bool = True, required: bool = True) -> None:
    source = parser.add_mutually_exclusive_group(required=required)
    source.add_argument("--data", nargs="+", help="folders of PNG/JPEG images (searched recursively)")
    source.add_argument("--tfds", help="a tensorflow-datasets name instead (e.g. kodak, clic; needs tfgc[tfds] and "
                                       "the network on first use)")
    parser.add_argument("--limit", type=int, help="use only the first N images")
    if inception:
        parser.add_argument("--inception-weights", help="InceptionV3 weights for FID/KID: a Keras .h5 without top, "
                                                        "or 'imagenet' (Keras downloads them); without, FID/KID are "
                                                        "skipped")
    parser.add_argument("--force", action="store_true", help="overwrite existing results")


def _report(module: str, name: str):
    """The report command `name` of tfgc.reports.`module`, imported when it runs."""
    def run(args):
        import importlib

        return getattr(importlib.import_module(f"tfgc.reports.{module}"), name)(args)

    return run


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=program_name("tfgc"), description="GAN-based extreme learned image compression.",
                                formatter_class=HelpFormatter)
    p.add_argument("--version", action="version", version=version_text())
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser = functools.partial(sub.add_parser, formatter_class=HelpFormatter)

    c = sub.add_parser("compress", help="image -> .tfgc file")
    c.add_argument("input", help="image file (PNG, JPEG, anything Pillow reads)")
    c.add_argument("output", help="output .tfgc file")
    c.add_argument("--model", help=MODEL_HELP + "; default: the installed default model")
    c.add_argument("--force", action="store_true", help="overwrite the output if it exists")
    _backend_argument(c)
    c.add_argument("--semantics", metavar="LABELS.png",
                   help="sc models: the image's semantic label map (ids of the model's label set, e.g. Cityscapes "
                        "*_gtFine_labelIds.png), stored losslessly in the file")
    c.add_argument("--preserve", metavar="MASK.png|all|none",
                   help="sc models: what to store: a binary mask image (image or latent-grid size; nonzero = "
                        "preserve), 'all' (default) or 'none' (everything synthesized from the label map)")
    c.add_argument("--preserve-classes", metavar="CLASSES",
                   help="sc models: comma-separated classes to preserve, e.g. person,car (the rest is synthesized)")
    c.add_argument("--codec", choices=["model", "sr"], default="model",
                   help="model: the model's own codec (default); sr: the image downsampled by --scale (bicubic) as a "
                        "--base file of --quality, for any sr decoder of that base and scale (needs no model)")
    c.add_argument("--base", choices=["jpeg", "webp", "avif", "heic"],
                   help="--codec sr: the base codec (default: the sr --model's, else jpeg, RL-SRGAN's)")
    c.add_argument("--scale", choices=["1", "2", "4", "8", "auto"],
                   help="--codec sr: downsampling factor, 1 for none (default: the sr --model's, else 4); with "
                        "--target-bpp, auto: among the installed sr models of the base codec, the scale whose file "
                        "decodes best")
    c.add_argument("--quality", type=int, help="--codec sr: the base codec's quality 0..100 (JPEG 1..100; default: "
                                               "the sr --model's, else 75)")
    c.add_argument("--target-bpp", type=float, metavar="BPP",
                   help="the largest file at most this many bits per pixel, measured on real files: sr models "
                        "search their base codec's quality (and with --scale auto the scale); gc models choose among "
                        "the installed gc models")
    c.add_argument("--bpp-strict", action="store_true",
                   help="with --target-bpp: refuse when no file fits (default: write the smallest and say so)")
    c.add_argument("--rate-control", choices=["auto", "search", "policy"], default="auto",
                   help="with --target-bpp and an sr model: search (the largest file that fits, 7-9 encodes), policy "
                        "(the model's learned rate control picks the quality in one encode; a file may land a little "
                        "above the target, which --bpp-strict codes again), auto (policy where the model has one; "
                        "default)")
    c.add_argument("--json", action="store_true", help="print the rate report as JSON")
    _max_pixels_argument(c)
    c.add_argument("--quiet", "-q", action="store_true", help=QUIET_HELP)
    c.set_defaults(run=cmd_compress)

    d = sub.add_parser("decompress", help=".tfgc file -> image")
    d.add_argument("input", help=".tfgc file")
    d.add_argument("output", help="output image; the format follows the extension (PNG if none)")
    d.add_argument("--model", help=MODEL_HELP + "; default: the installed model whose fingerprint the file names")
    d.add_argument("--force", action="store_true", help="overwrite the output if it exists")
    d.add_argument("--alpha", type=float, help="fidelity-controlled models: 0 decodes with the MSE decoder (fidelity), "
                                               "1 with the GAN decoder (detail), between interpolates (default: "
                                               "the model's default_alpha)")
    _backend_argument(d)
    d.add_argument("--decoder", choices=["model", "bicubic", "lanczos"], default="model",
                   help="sr files: upscale with the model (default: --model, or the installed sr model of the "
                        "file's scale) or with Pillow's bicubic or Lanczos filter")
    d.add_argument("--semantics-out", metavar="LABELS.png",
                   help="sc files: also write the stored label map (classes) there, and the mask beside it")
    _max_pixels_argument(d)
    d.add_argument("--quiet", "-q", action="store_true", help=QUIET_HELP)
    d.set_defaults(run=cmd_decompress)

    i = sub.add_parser("info", help="print a .tfgc file's header")
    i.add_argument("input", help=".tfgc file")
    i.set_defaults(run=cmd_info)

    e = sub.add_parser("eval", help="compress and decompress every image of a folder with one model; report rate, "
                                     "PSNR, MS-SSIM, detail, speed (and FID/KID)")
    _data_arguments(e)
    e.add_argument("--model", required=True, help=MODEL_HELP)
    e.add_argument("--alpha", type=float, help="decoder interpolation of a fidelity-controlled model, in [0, 1]")
    e.add_argument("--out", default="results.json", help="results JSON (a CSV is written beside it)")
    e.set_defaults(run=_report("eval", "run_eval"))

    b = sub.add_parser("bench", help="tfgc models against JPEG, WebP, AVIF, HEIC (x265) and JPEG XL: RD plots, table "
                                     "at matched bpp, speed, crops figure")
    _data_arguments(b, required=False)  # not with --report-only; run_bench checks
    b.add_argument("--model", nargs="+", help="tfgc models to include (folders or installed names)")
    b.add_argument("--alphas", type=float, nargs="+",
                   help="fidelity-controlled models: one point per alpha (default: each model's default alpha)")
    b.add_argument("--sr-qualities", type=int, nargs="+",
                   help="sr models: the base codec qualities of their curves (default: the qualities they trained on)")
    b.add_argument("--target-bpps", type=float, nargs="+",
                   help="rates of the table of interpolated curves (default: 0.05 0.1 0.2 0.4)")
    b.add_argument("--references", help="JSON list of figures reported elsewhere on these images (label, bpp, psnr "
                                        "and/or ms_ssim, source): drawn on the RD plots, listed apart")
    b.add_argument("--notes", help="a Markdown file appended to the report (findings written by hand)")
    b.add_argument("--codecs", default="jpeg,webp,avif,heic,jxl", help="comma-separated classic codecs")
    b.add_argument("--classic-from", metavar="RESULTS_JSON",
                   help="reuse the classic codecs' measurements of an earlier bench of the same images (its "
                        "results.json) instead of coding every image again: each setting's file of the crops "
                        "figure's image is coded again and must have the size measured there")
    b.add_argument("--out", default="bench", help="folder for the report NAME.md and its assets NAME/")
    b.add_argument("--name", default="benchmarks", help="report name")
    b.add_argument("--crop-image", help="image of the crops figure (default: the first)")
    b.add_argument("--crop-bpp", type=float, help="rate of the crops figure (default: the first model's, else 0.1)")
    b.add_argument("--crop-size", type=int, default=192, help="side of the crop in pixels")
    b.add_argument("--no-page", action="store_true",
                   help="skip the comparison page NAME.html (every image beside each codec's version of it at the "
                        "tfgc model's rate, lossless: several MB an image)")
    b.add_argument("--report-only", action="store_true",
                   help="measure nothing: rewrite OUT/NAME.md, its tables and RD plots from OUT/NAME/results.json "
                        "with the --notes and --references given now (the crops figure stays)")
    b.set_defaults(run=_report("bench", "run_bench"))

    x = sub.add_parser("export", help="export a model: a codec SavedModel, a TF Serving SavedModel, TFLite, ONNX")
    x.add_argument("--model", required=True, help=MODEL_HELP)
    x.add_argument("--format", default="all", choices=[*export.FORMATS, "all"],
                   help="what to export (default: all, each in OUT/FORMAT)")
    x.add_argument("--out", required=True, help="output folder (for serving: OUT/NAME/VERSION)")
    x.add_argument("--name", help="model name in the serving layout and the manifests (default: the preset)")
    x.add_argument("--version", type=int, help="serving version (default: one more than the highest in OUT/NAME)")
    x.add_argument("--check-image", help="image for the parity check (default: a bundled photograph at 768x512)")
    x.add_argument("--no-check", action="store_true", help="skip running the exports for the parity check")
    x.add_argument("--force", action="store_true", help="replace existing exports")
    x.add_argument("--quiet", "-q", action="store_true", help=QUIET_HELP)
    x.set_defaults(run=cmd_export)

    f = sub.add_parser("fidelity", help="fidelity-controlled models across alpha: one file per image and model decoded "
                                         "at each alpha; a table per model with per-image monotonicity, plot, crops")
    _data_arguments(f, inception=False)
    f.add_argument("--model", required=True, nargs="+",
                   help="fidelity-controlled (stage-2) models: folders or installed names")
    f.add_argument("--alphas", type=float, nargs="+", help="alphas to decode at (default: 0 0.25 0.5 0.75 1)")
    f.add_argument("--out", default="docs", help="folder for the report NAME.md and its assets NAME/")
    f.add_argument("--name", default="fidelity", help="report name")
    f.add_argument("--crop-image", help="image of the crops figure (default: the first)")
    f.add_argument("--crop-size", type=int, default=192, help="side of the crop in pixels")
    f.set_defaults(run=_report("fidelity", "run_fidelity"))

    r = sub.add_parser("ratecontrol", help="an sr model's learned rate control against --target-bpp's search: PSNR "
                                           "at equal mean rate and encode time, on real files")
    _data_arguments(r, inception=False)
    r.add_argument("--model", required=True, help="an sr model (folder or installed name)")
    r.add_argument("--policy", help="a rate_policy.json (default: the one in the model's folder)")
    r.add_argument("--targets", type=float, nargs="+",
                   help="target rates in bits per pixel (default: 0.02 0.03 0.05 0.08 0.12 0.2)")
    r.add_argument("--out", default="docs", help="folder for the report NAME.md and its assets NAME/")
    r.add_argument("--name", default="rate-control", help="report name")
    r.add_argument("--notes", help="a Markdown file appended to the report (findings written by hand)")
    r.set_defaults(run=_report("rate_policy", "run_rate_control"))

    s = sub.add_parser("selective", help="an sc model on photographs with label maps: rate breakdown and PSNR "
                                          "inside and outside the preserved region as it grows; table and figures")
    s.add_argument("--data", nargs="+", required=True, help="folders in the Cityscapes layout (NAME_leftImg8bit.png "
                                                            "with NAME_gtFine_labelIds.png)")
    s.add_argument("--model", required=True, help="an sc model directory")
    s.add_argument("--limit", type=int, help="use only the first N images")
    s.add_argument("--downscale", type=int, help="shrink images and label maps by this factor (default: the "
                                                 "model's training downscale)")
    s.add_argument("--fractions", type=float, nargs="+", help="preserved box areas (default: 0 0.25 0.5 0.75 1)")
    s.add_argument("--classes", default="person,car", help="classes of the class-based row ('' for none)")
    s.add_argument("--alphas", type=float, nargs="+", help="fidelity-controlled models: decode each file at these "
                                                           "alphas (default: the model's default)")
    s.add_argument("--notes", help="a Markdown file appended to the report (findings written by hand)")
    s.add_argument("--out", default="docs", help="folder for the report NAME.md and its assets NAME/")
    s.add_argument("--name", default="selective", help="report name")
    s.add_argument("--force", action="store_true", help="overwrite existing results")
    s.set_defaults(run=_report("sc", "run_selective"))

    r = sub.add_parser("superres", help="the super-resolution codec (RL-SRGAN) on a folder: one file per image and "
                                         "JPEG quality, decoded by each sr model and by Lanczos and bicubic; Table 1 "
                                         "analogue, RD chart, crops")
    r.add_argument("--data", nargs="+", required=True, help="folders of PNG/JPEG images (searched recursively)")
    r.add_argument("--model", nargs="+", required=True, help="sr model directories (e.g. RL-SRGAN and SRGAN runs)")
    r.add_argument("--quality", type=int, help="JPEG quality of the table (default: the first model's)")
    r.add_argument("--qualities", type=int, nargs="+", help="JPEG qualities of the RD sweep (default: 30 50 75 90)")
    r.add_argument("--compare", nargs="+", help="other tfgc model directories to place on the RD chart")
    r.add_argument("--bench", help="a `python -m tfgc bench` results.json on the same images: its codecs join the "
                                   "RD chart")
    r.add_argument("--limit", type=int, help="use only the first N images")
    r.add_argument("--crop-image", help="image of the crops figure (default: the first)")
    r.add_argument("--crop-size", type=int, default=192, help="side of the crop in pixels")
    r.add_argument("--notes", help="a Markdown file appended to the report (findings written by hand)")
    r.add_argument("--out", default="docs", help="folder for the report NAME.md and its assets NAME/")
    r.add_argument("--name", default="rlsrgan", help="report name")
    r.add_argument("--force", action="store_true", help="overwrite existing results")
    r.set_defaults(run=_report("sr", "run_superres"))

    m = sub.add_parser("models", help="list installed models")
    m.set_defaults(run=cmd_models)
    return p


def _resolve_models(args) -> None:
    """--model NAME means the installed model of that name (tfgc.models.store.resolve_model); exports run by
    --backend are folders of another kind."""
    if not getattr(args, "model", None) or getattr(args, "backend", "tensorflow") != "tensorflow":
        return
    from tfgc.models.store import resolve_model

    def resolved(model) -> str:
        # Relative to the working folder where it lies inside it, so that reports name saved_models/NAME/VERSION
        # rather than a path of the machine that made them.
        # os.path.abspath, not Path.resolve: a model reached through a symbolic link inside the working folder is
        # named by that link.
        folder = Path(os.path.abspath(resolve_model(model)))
        try:
            return str(folder.relative_to(os.path.abspath(os.getcwd())))
        except ValueError:
            return str(folder.resolve())

    args.model = [resolved(m) for m in args.model] if isinstance(args.model, list) else resolved(args.model)


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else list(argv)  # what reports print as their command line

    def run():
        _resolve_models(args)
        return args.run(args)

    return run_command("tfgc", run)


if __name__ == "__main__":
    sys.exit(main())
