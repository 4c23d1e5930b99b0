#!/usr/bin/env python3
"""OTLP/HTTP capture server that decodes every request with the official Python
`opentelemetry-proto` package, for checking what an exporter sends.

    VENV/bin/python interop/python/capture_decode.py --out DIR

Listens on 127.0.0.1 on a free port and prints `PORT <n>` as its first stdout line.
Every POST to /v1/traces, /v1/metrics or /v1/logs (protobuf, optionally gzip) is parsed
with `opentelemetry.proto.collector.*_pb2`, turned into a dict with
`google.protobuf.json_format.MessageToDict` (lowerCamelCase, enums as integers) and
written to DIR/<signal>.<n>.json, numbered in arrival order per signal, with the
request's Content-Encoding and headers in DIR/<signal>.<n>.meta.json. json_format
writes bytes as base64 while OTLP/JSON writes trace and span ids as hex, so the id
fields are converted to hex: the files are OTLP/JSON that an OTLP/JSON decoder reads.
Each request is answered 200 with an empty Export*ServiceResponse in protobuf; a body
that does not parse is answered 400 and recorded in DIR/errors.txt.

POST /shutdown answers 200 and stops the server, after which the script prints
`DONE <requests>` and exits 0. A watchdog ends it (exit 2) after --timeout seconds.
"""

import argparse
import base64
import gzip
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

SIGNALS = {
    "/v1/traces": (
        "traces",
        trace_service_pb2.ExportTraceServiceRequest,
        trace_service_pb2.ExportTraceServiceResponse,
    ),
    "/v1/metrics": (
        "metrics",
        metrics_service_pb2.ExportMetricsServiceRequest,
        metrics_service_pb2.ExportMetricsServiceResponse,
    ),
    "/v1/logs": (
        "logs",
        logs_service_pb2.ExportLogsServiceRequest,
        logs_service_pb2.ExportLogsServiceResponse,
    ),
}

# Keys whose values are ids (bytes in protobuf): spans, links, log records, exemplars.
ID_KEYS = {"traceId", "spanId", "parentSpanId"}


def ids_to_hex(node):
    """Rewrites base64 id fields as lowercase hex, in place, everywhere in the dict."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ID_KEYS and isinstance(value, str):
                node[key] = base64.b64decode(value).hex()
            else:
                ids_to_hex(value)
    elif isinstance(node, list):
        for item in node:
            ids_to_hex(item)


class State:
    def __init__(self, out):
        self.out = out
        self.lock = threading.Lock()
        self.counts = {}
        self.requests = 0


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state = None  # set in main
    server_ref = None

    def log_message(self, fmt, *args):  # keep stderr for real problems
        pass

    def reply(self, status, body=b"", content_type="application/x-protobuf"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        if self.path == "/shutdown":
            self.reply(200, b"", "text/plain")
            threading.Thread(target=self.server_ref.shutdown, daemon=True).start()
            return
        if self.path not in SIGNALS:
            self.reply(404, b"unknown path", "text/plain")
            return
        name, request_type, response_type = SIGNALS[self.path]
        state = self.state
        try:
            encoding = (self.headers.get("Content-Encoding") or "identity").strip().lower()
            if encoding == "gzip":
                body = gzip.decompress(body)
            elif encoding != "identity":
                raise ValueError(f"unsupported Content-Encoding {encoding}")
            content_type = self.headers.get("Content-Type", "")
            if not content_type.startswith("application/x-protobuf"):
                raise ValueError(f"unexpected Content-Type {content_type!r}")
            message = request_type()
            message.ParseFromString(body)
            as_dict = json_format.MessageToDict(message, use_integers_for_enums=True)
            ids_to_hex(as_dict)
        except Exception as exc:  # noqa: BLE001 - every failure is reported to the test
            with state.lock:
                with open(os.path.join(state.out, "errors.txt"), "a") as f:
                    f.write(f"{self.path}: {exc}\n")
            self.reply(400, str(exc).encode(), "text/plain")
            return
        with state.lock:
            state.requests += 1
            n = state.counts.get(name, 0) + 1
            state.counts[name] = n
            meta = {
                "encoding": encoding,
                "headers": {k.lower(): v for k, v in self.headers.items()},
            }
            with open(os.path.join(state.out, f"{name}.{n}.json"), "w") as f:
                json.dump(as_dict, f, sort_keys=True)
            with open(os.path.join(state.out, f"{name}.{n}.meta.json"), "w") as f:
                json.dump(meta, f, sort_keys=True)
        self.reply(200, response_type().SerializeToString())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)

    def watchdog():
        sys.stderr.write(f"capture_decode: watchdog fired after {args.timeout}s\n")
        sys.stderr.flush()
        os._exit(2)

    timer = threading.Timer(args.timeout, watchdog)
    timer.daemon = True
    timer.start()

    Handler.state = State(args.out)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    Handler.server_ref = server
    print(f"PORT {server.server_address[1]}", flush=True)
    server.serve_forever()
    server.server_close()
    print(f"DONE {Handler.state.requests}", flush=True)
    timer.cancel()


if __name__ == "__main__":
    main()
