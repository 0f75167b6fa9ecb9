"""Compress and decompress with a tfgc model served by TensorFlow Serving, entropy coding on the client.

The server runs the transforms (`python -m tfgc export --format serving`, served by scripts/serve.sh); this client
turns an image into symbols and symbols into an image through the REST `:predict` endpoint, and does the range coding
and the .tfgc container itself with tfgc (its Python range coder: the client needs no TensorFlow).

    python scripts/serving_client.py compress photo.png photo.tfgc --manifest EXPORT/serving/gc-small-c8/1/export.json
    python scripts/serving_client.py decompress photo.tfgc photo.png --alpha 0.5 --manifest .../export.json

The request bodies are TF Serving's columnar ("inputs") format (the inputs differ in their 0-th dimension, which the
row format cannot express):

    {"signature_name": "analysis", "inputs": {"image": [[[[r, g, b], ...], ...]]}}            (uint8 [1, H, W, 3])
    -> {"outputs": {"image_size": [H, W], "symbols": [[[[s, ...], ...], ...]]}}
    {"signature_name": "synthesis", "inputs": {"symbols": [...], "image_size": [H, W], "alpha": 0.5}}
    -> {"outputs": [[[[r, g, b], ...], ...]]}                          (a single output comes back unnamed)

("alpha" only for a fidelity-controlled model.)
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

from tfgc.errors import TfgcError
from tfgc.export import ExportedTransforms
from tfgc.utils import run_command, write_atomic


def request_body(signature: str, inputs: dict) -> dict:
    return {"signature_name": signature, "inputs": {name: np.asarray(value).tolist() for name, value in inputs.items()}}


def parse_response(body: dict, signature: dict) -> dict:
    """TF Serving's columnar response -> {output name: numpy array of the signature's dtype}."""
    if "error" in body:
        raise TfgcError(f"server: {body['error']}")
    if "outputs" not in body:
        raise TfgcError("server response has no 'outputs'")
    outputs = body["outputs"]
    names = sorted(signature["outputs"])
    if not isinstance(outputs, dict):  # TF Serving leaves a lone output unnamed
        outputs = {names[0]: outputs}
    missing = set(names) - set(outputs)
    if missing:
        raise TfgcError(f"server response lacks {', '.join(sorted(missing))}")
    return {name: np.asarray(outputs[name], dtype=signature["outputs"][name]["dtype"]) for name in names}


class ServedTransforms(ExportedTransforms):
    """The transforms of a served tfgc model, for tfgc.codec.api."""

    def __init__(self, manifest_path, url: str = None, timeout: float = 300.0):
        manifest_path = Path(manifest_path)
        try:
            manifest = json.loads(manifest_path.read_text())
        except (OSError, ValueError) as e:
            raise TfgcError(f"cannot read {manifest_path}: {e}") from None
        if manifest.get("format") != "serving":
            raise TfgcError(f"{manifest_path} is not the export.json of a serving export")
        super().__init__(manifest_path.parent, manifest)
        self.url = (url or f"http://localhost:8501/v1/models/{manifest['name']}").rstrip("/") + ":predict"
        self.timeout = timeout

    def run(self, key, **inputs):
        data = json.dumps(request_body(key, inputs)).encode()
        request = urllib.request.Request(self.url, data=data, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                body = json.loads(response.read())
        except urllib.error.HTTPError as e:
            try:
                body = json.loads(e.read())
            except ValueError:
                raise TfgcError(f"server answered HTTP {e.code}") from None
        except (urllib.error.URLError, OSError) as e:
            raise TfgcError(f"cannot reach {self.url}: {getattr(e, 'reason', e)}") from None
        except ValueError:
            raise TfgcError(f"{self.url} did not answer with JSON") from None
        return parse_response(body, self.manifest["signatures"][key])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="tfgc through TensorFlow Serving (entropy coding on the client)")
    p.add_argument("command", choices=["compress", "decompress"])
    p.add_argument("input")
    p.add_argument("output")
    p.add_argument("--manifest", required=True, help="export.json of the served model (from its serving export)")
    p.add_argument("--url", help="model URL (default: http://localhost:8501/v1/models/NAME)")
    p.add_argument("--alpha", type=float, help="decompress with a fidelity-controlled model: decoder interpolation "
                                               "in [0, 1] (default: the model's)")
    p.add_argument("--force", action="store_true", help="overwrite the output if it exists")
    args = p.parse_args(argv)

    def run():
        from tfgc.codec import api
        from tfgc.codec.io import save_image

        model = ServedTransforms(args.manifest, args.url)
        if args.command == "compress":
            result = api.encode(args.input, model)
            write_atomic(args.output, result.data, force=args.force)
            print(f"{args.output}: {result.summary()}")
        else:
            image = api.decode(Path(args.input).read_bytes(), model, args.alpha)
            save_image(image, args.output, force=args.force)
            print(f"{args.output}: {image.shape[1]}x{image.shape[0]}")
        return 0

    return run_command("serving_client", run)


if __name__ == "__main__":
    sys.exit(main())
