"""`python -m tfgc eval`: one model on a folder of images (or a TFDS split), per image and on average."""

from __future__ import annotations

from pathlib import Path
from typing import List

import numpy as np

from tfgc import metrics
from tfgc.models.store import model_label
from tfgc.reports.measure import evaluate_model, inception_or_none, load_images, load_tfds, summarize
from tfgc.reports.writer import command_line, environment, model_record, write_csv, write_json
from tfgc.utils import progress_bar, refuse_existing


def run_eval(args) -> int:
    from tfgc.models.store import load_model

    out = Path(args.out)
    csv_path = out.with_suffix(".csv")
    for path in (out, csv_path):
        refuse_existing(path, args.force)
    images = load_tfds(args.tfds, args.limit) if args.tfds else load_images(args.data, args.limit)
    model = load_model(args.model)
    alpha = model.checked_alpha(args.alpha)  # a bad alpha fails before the work
    started_in = environment()  # taken at the start: the commit whose code runs
    inception = inception_or_none(args.inception_weights)
    reconstructions: List[np.ndarray] = []
    rows = evaluate_model(model, images, model_label(args.model), progress_bar(len(images), "image"),
                          keep=reconstructions if inception else None, alpha=args.alpha)
    summary = summarize(rows)
    if inception is not None:
        real_features = metrics.patch_features(inception, [im for _, im in images])
        summary.update(metrics.fid_kid(inception, real_features, reconstructions) or {})
    result = {"command": command_line(args), "model": model_record(args.model, model),
              "alpha": alpha if model.config.model.fidelity_control else None,
              "environment": started_in, "mean": summary, "images": [r.row() for r in rows]}
    write_json(out, result)
    write_csv(csv_path, rows)
    bound = f" (bound {summary['bound_bpp']:.4f})" if "bound_bpp" in summary else ""
    print(f"{len(rows)} images: {summary['bpp']:.4f} bpp{bound}, "
          f"{summary['psnr']:.2f} dB PSNR, {summary['ms_ssim']:.4f} MS-SSIM, detail ratio {summary['detail']:.3f}, "
          f"encode {summary['encode_seconds']:.3f} s, decode {summary['decode_seconds']:.3f} s per image"
          + (f", FID {summary['fid']:.2f}, KID {summary['kid']:.4f}" if "fid" in summary else ""))
    print(f"wrote {out} and {csv_path}")
    return 0
