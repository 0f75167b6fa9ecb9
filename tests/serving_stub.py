"""A stand-in for TensorFlow Serving's REST predict API on 127.0.0.1, running a SavedModel's signatures in-process.

It answers what TF Serving answers for the columnar format: POST /v1/models/NAME[/versions/N]:predict with
{"signature_name", "inputs"} -> {"outputs": {name: value}} (a lone output unnamed), errors as {"error": ...}.
The tests use it to check scripts/serving_client.py's requests and its handling of the responses; no Docker engine is
needed, and nothing leaves the machine.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import tensorflow as tf


class ServingStub:
    def __init__(self, name: str, saved_model_dir):
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

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/models/{name}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def predict(self, path, body):
        if not re.fullmatch(rf"/v1/models/{re.escape(self.name)}(/versions/\d+)?:predict", path):
            return 404, {"error": f"Servable not found for request: {path}"}
        try:
            request = json.loads(body)
        except ValueError:
            return 400, {"error": "JSON Parse error"}
        self.requests.append(request)
        signature = self.loaded.signatures.get(request.get("signature_name", "serving_default"))
        if signature is None or "inputs" not in request:
            return 400, {"error": "unknown signature or no 'inputs'"}
        specs = signature.structured_input_signature[1]
        try:
            inputs = {name: tf.constant(np.asarray(value), dtype=specs[name].dtype)
                      for name, value in request["inputs"].items()}
            outputs = {name: value.numpy().tolist() for name, value in signature(**inputs).items()}
        except (KeyError, TypeError, ValueError, tf.errors.OpError) as e:
            return 400, {"error": str(e).splitlines()[0]}
        return 200, {"outputs": outputs if len(outputs) > 1 else next(iter(outputs.values()))}

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
