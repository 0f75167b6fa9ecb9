"""Files at a target rate: the setting whose real file is the largest that fits.

For an sr codec the setting is the base codec's quality (and, among several sr decoders of one base codec, the
scale); for GC models it is the model. Every candidate is a real file, measured in bytes, never a prediction; the
exception is by_policy, where an sr model's learned rate control predicts the quality from the image and one file is
written.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence

from tfgc import metrics
from tfgc.codec import api, sr
from tfgc.codec.family import codec_for
from tfgc.codec.io import load_image
from tfgc.errors import TfgcError


@dataclass(frozen=True)
class RateChoice:
    result: api.EncodeResult
    model: object  # the model the file is for (None for a model-free sr file)
    fits: bool  # the file is at most the target rate
    note: str  # one line: what was chosen, and why


def describe(choice: RateChoice, label: Callable[[object], str]) -> str:
    """'heic quality 12 at 1/2 size (heic-x2): 0.0453 bpp', 'gc-small-c4: 0.0372 bpp'."""
    r = choice.result.sr
    if r is not None:
        setting = f"{r['base']} quality {r['quality']} at {sr.size_label(r['scale'])}"
        if choice.model is not None:
            setting += f" ({label(choice.model)})"
    else:
        setting = label(choice.model)
    return f"{setting}: {choice.result.bpp:.4f} bpp"


def choose(image, target_bpp: float, models: Sequence, strict: bool = False, max_pixels: Optional[int] = None,
           label: Callable[[object], str] = str, sr_settings: Optional[tuple] = None) -> RateChoice:
    """The file for `image` at `target_bpp` bits per pixel: among `models` (sr models: each at its best quality that
    fits; gc models: each file as it is), the largest file that fits; among several sr models (scales) that fit, the
    one whose decoded image has the highest PSNR. `sr_settings` = (base, scale) codes a model-free sr file instead.
    With `strict`, nothing fitting is an error; without, the smallest file is taken and the note says so."""
    if not target_bpp > 0:
        raise TfgcError(f"the target rate must be > 0 bits per pixel, not {target_bpp:g}")
    pixels = load_image(image, max_pixels)
    candidates: List[RateChoice] = []
    if sr_settings is not None:
        result, ok = sr.at_rate(pixels, target_bpp, *sr_settings)
        candidates.append(RateChoice(result, None, ok, ""))
    for model in models:
        result, ok = codec_for(model.family).at_rate(pixels, target_bpp, model)
        candidates.append(RateChoice(result, model, ok, ""))
    fitting = [c for c in candidates if c.fits]
    if not fitting:
        smallest = min(candidates, key=lambda c: c.result.file_bits)
        message = f"nothing fits {target_bpp:g} bpp: the smallest file is {describe(smallest, label)}"
        if strict:
            raise TfgcError(message)
        return RateChoice(smallest.result, smallest.model, False, message + "; written anyway (--bpp-strict refuses)")
    scored = [c for c in fitting if c.result.sr is not None and c.model is not None]
    if len(scored) > 1:
        psnr = {id(c): metrics.psnr(pixels, api.decode(c.result.data, c.model)) for c in scored}
        best = max(scored, key=lambda c: psnr[id(c)])
        others = ", ".join(f"{label(c.model)} {psnr[id(c)]:.2f} dB" for c in scored if c is not best)
        why = f"decodes best: {psnr[id(best)]:.2f} dB PSNR against {others}"
    else:
        best = max(fitting, key=lambda c: c.result.file_bits)
        others = [describe(c, label) for c in candidates if c is not best]
        if best.result.sr is not None:  # its quality was searched
            why = "the highest quality that fits"
        else:
            why = "the largest file that fits" + (f" (besides {', '.join(others)})" if others else "")
    return RateChoice(best.result, best.model, True, f"chose {describe(best, label)} for {target_bpp:g} bpp: {why}")


def by_policy(image, target_bpp: float, policy, strict: bool = False, max_pixels: Optional[int] = None,
              name: str = "rate policy") -> RateChoice:
    """The sr file whose base quality the learned rate control (tfgc.codec.rate_policy) picks for `target_bpp`: one
    encode, at what the policy's objective asks for, so a file may land a little above the target. With `strict`, such
    a file is coded again at the policy's next lower qualities until one fits (nothing fitting is an error)."""
    if not target_bpp > 0:
        raise TfgcError(f"the target rate must be > 0 bits per pixel, not {target_bpp:g}")
    pixels = load_image(image, max_pixels)
    low = sr.downsample(pixels, policy.scale)

    def encoded(quality):
        return sr.encode_downsampled(low, *pixels.shape[:2], policy.scale, quality, policy.base)

    quality = policy.quality(low, target_bpp)
    result = encoded(quality)
    encodes = 1
    if strict:
        for lower in sorted((q for q in policy.qualities if q < quality), reverse=True):
            if result.fits(target_bpp):
                break
            result = encoded(lower)
            encodes += 1
        if not result.fits(target_bpp):
            raise TfgcError(f"nothing fits {target_bpp:g} bpp: the smallest file is {result.bpp:.4f} bpp")
    r = result.sr
    what = f"{r['base']} quality {r['quality']} at {sr.size_label(r['scale'])}: {result.bpp:.4f} bpp"
    return RateChoice(result, None, result.fits(target_bpp),
                      f"{name} chose {what} for {target_bpp:g} bpp ({encodes} encode{'s' if encodes > 1 else ''})")
