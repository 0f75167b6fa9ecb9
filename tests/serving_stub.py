"""A stand-in for TensorFlow Serving's REST predict API on 127.0.0.1, running a SavedModel's signatures in-process.

It answers POST /v1/models/NAME[/versions/N]:predict as TF Serving's REST API documents it
(https://www.tensorflow.org/tfx/serving/api_rest, "Predict API"):
- columnar: {"signature_name"?, "inputs": value or {name: value}} -> {"outputs": value or {name: value}} (a lone
  output unnamed);
- row: {"signature_name"?, "instances": [value, ...] or [{name: value}, ...]} -> {"predictions": [value, ...]} (one
  output) or [{name: value}, ...] (several), the instances stacked on a new 0-th dimension;
- errors: {"error": message} with an HTTP error status (404 "Servable not found for request: Latest(NAME)").
tests/test_export.py holds it to that page's request and response examples, and uses it to check
scripts/serving_client.py; no Docker engine is needed, and nothing leaves the machine.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import tensorflow as tf


def _json_value(array: np.ndarray):
    """A tensor as TF Serving writes it: nested lists, strings as text (the API's `_bytes` outputs aside)."""
    if array.dtype.kind in "SO":
        return np.vectorize(lambda b: b.decode(), otypes=[object])(array).tolist()
    return array.tolist()


class ServingStub:
    def __init__(self, name: str, saved_model_dir, port: int = 0):
        self.name = name
        self.loaded = tf.saved_model.load(str(saved_model_dir))
        self.requests = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status, answer = stub.predict(self.path, body)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/models/{name}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def predict(self, path, body):
        found = re.fullmatch(r"/v1/models/([^/:]+)(/versions/\d+)?:predict", path)
        if not found or found.group(1) != self.name:
            name = found.group(1) if found else path
            return 404, {"error": f"Servable not found for request: Latest({name})"}
        try:
            request = json.loads(body)
        except ValueError:
            return 400, {"error": "JSON Parse error"}
        self.requests.append(request)
        signature = self.loaded.signatures.get(request.get("signature_name", "serving_default"))
        if signature is None:
            return 400, {"error": f"Serving signature name: \"{request.get('signature_name')}\" not found"}
        if ("inputs" in request) == ("instances" in request):
            return 400, {"error": "JSON object: does not have named input(s): 'instances' or 'inputs'"}
        specs = signature.structured_input_signature[1]
        try:
            if "inputs" in request:
                inputs = request["inputs"]
                if not isinstance(inputs, dict):  # a lone input may go unnamed
                    (name,) = specs
                    inputs = {name: inputs}
            else:
                instances = request["instances"]
                if instances and isinstance(instances[0], dict):
                    inputs = {name: [instance[name] for instance in instances] for name in instances[0]}
                else:
                    (name,) = specs
                    inputs = {name: instances}
            if set(inputs) != set(specs):
                raise ValueError(f"inputs {sorted(inputs)} are not the signature's {sorted(specs)}")
            tensors = {name: tf.constant(np.asarray(value), dtype=specs[name].dtype) for name, value in inputs.items()}
            outputs = {name: _json_value(value.numpy()) for name, value in signature(**tensors).items()}
        except (KeyError, TypeError, ValueError, tf.errors.OpError) as e:
            return 400, {"error": str(e).splitlines()[0]}
        if "inputs" in request:
            return 200, {"outputs": outputs if len(outputs) > 1 else next(iter(outputs.values()))}
        if len(outputs) == 1:
            return 200, {"predictions": next(iter(outputs.values()))}
        rows = len(next(iter(outputs.values())))
        return 200, {"predictions": [{name: value[i] for name, value in outputs.items()} for i in range(rows)]}

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
