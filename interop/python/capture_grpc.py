#!/usr/bin/env python3
"""OTLP/gRPC capture server built from grpcio and the official `opentelemetry-proto`
generated service classes, for checking what an OTLP/gRPC exporter sends.

    VENV/bin/python interop/python/capture_grpc.py --out DIR [--expect N] [--timeout S]
        [--partial-success N] [--require-header KEY=VALUE]... [--max-receive-bytes B]

VENV is the `grpc` venv of interop/setup-venv.sh. The server listens on 127.0.0.1 on a
free port and prints `PORT <n>` as its first stdout line (flushed). It serves
opentelemetry.proto.collector.{trace,metrics,logs}.v1 `Export`, registered with the
generated `add_*ServiceServicer_to_server` functions, so every request is decoded by
the `*_pb2` classes before it reaches this script; a request they cannot decode is
answered by grpcio itself (INTERNAL) and never stored. Compression: grpcio accepts
`grpc-encoding` identity, gzip and deflate (not zstd: grpcio 1.85 answers INTERNAL).
grpcio strips `grpc-encoding` from the metadata this script sees, so meta.json never
shows whether a call was compressed.

Each accepted request is re-serialized from the decoded message and written to
DIR/<signal>.<n>.pb (signal = traces, metrics or logs; n = 1, 2, ... per signal in
arrival order), with its metadata in DIR/<signal>.<n>.meta.json as
{"metadata": [[key, value], ...]} (keys lowercase, in arrival order; `-bin` values in
base64). Both files are complete before the answer is sent, and appear atomically.

Answers:
  * success: an empty Export*ServiceResponse;
  * --partial-success N (N > 0): a response whose partial_success has
    rejected_spans / rejected_data_points / rejected_log_records = N and the
    error_message "capture_grpc: rejected N on request" (the request is still stored);
  * --require-header KEY=VALUE (repeatable): a request whose metadata lacks any of
    them (KEY compared case-insensitively, VALUE exactly) is answered
    UNAUTHENTICATED and not stored.

It stops when --expect N requests were answered (accepted and rejected alike), or
when stdin reaches end of file (only watched when stdin is a pipe, socket or
terminal, so /dev/null does not stop it at once), then writes DIR/capture.json:
    {"accepted": {"traces": n, "metrics": n, "logs": n},
     "rejected": {"traces": n, "metrics": n, "logs": n},
     "requests": total answered, "expected": N or null, "stopped_by": "expect"|"stdin"}
prints `DONE <total>` and exits 0 -- or 1 when --expect was given and stdin closed
before N requests arrived. A watchdog ends it with exit status 2 after --timeout
seconds (default 60).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import stat
import sys
import threading
from concurrent import futures
from pathlib import Path

import grpc
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

SIGNALS = ("traces", "metrics", "logs")
# Server shutdown: in-flight calls get this long to finish their answer.
STOP_GRACE_SECONDS = 5


def parse_pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip().lower(), value


class State:
    """What every servicer shares: counters, the output directory and the stop signal."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.out: Path = args.out
        self.expect: int | None = args.expect
        self.partial: int = args.partial_success
        self.required: list[tuple[str, str]] = args.require_header
        self.lock = threading.Lock()
        self.accepted = {s: 0 for s in SIGNALS}
        self.rejected = {s: 0 for s in SIGNALS}
        self.requests = 0
        self.done = threading.Event()
        self.stopped_by: str | None = None

    def stop(self, reason: str) -> None:
        with self.lock:
            if self.stopped_by is None:
                self.stopped_by = reason
        self.done.set()

    def missing_header(self, metadata: list[tuple[str, str | bytes]]) -> str | None:
        for key, value in self.required:
            if not any(k.lower() == key and v == value for k, v in metadata):
                return key
        return None

    def handle(self, signal: str, request, context: grpc.ServicerContext) -> str | None:
        """Stores an accepted request; returns the required metadata key that is missing
        or wrong (the call is then answered UNAUTHENTICATED), None when accepted."""
        metadata = [(m.key, m.value) for m in context.invocation_metadata()]
        missing = self.missing_header(metadata)
        with self.lock:
            self.requests += 1
            if missing is None:
                n = self.accepted[signal] + 1
                self.accepted[signal] = n
                meta = {
                    "metadata": [
                        [k, base64.b64encode(v).decode() if isinstance(v, bytes) else v] for k, v in metadata
                    ]
                }
                write_atomic(self.out / f"{signal}.{n}.meta.json", json.dumps(meta, sort_keys=True).encode())
                # .pb last: a test that polls for it finds the .meta.json already there.
                write_atomic(self.out / f"{signal}.{n}.pb", request.SerializeToString())
            else:
                self.rejected[signal] += 1
            reached = self.expect is not None and self.requests >= self.expect
        if reached:
            # The server stops with a grace period, so this call's answer still goes out.
            self.stop("expect")
        return missing

    def summary(self) -> dict:
        with self.lock:
            return {
                "accepted": dict(self.accepted),
                "rejected": dict(self.rejected),
                "requests": self.requests,
                "expected": self.expect,
                "stopped_by": self.stopped_by,
            }


def write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def make_servicers(state: State):
    def export(signal: str, request, context, response_type, partial_type, rejected_field: str):
        missing = state.handle(signal, request, context)
        if missing is not None:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, f"capture_grpc: missing or wrong metadata {missing!r}")
        if state.partial > 0:
            partial = partial_type(error_message=f"capture_grpc: rejected {state.partial} on request")
            setattr(partial, rejected_field, state.partial)
            return response_type(partial_success=partial)
        return response_type()

    class Trace(trace_service_pb2_grpc.TraceServiceServicer):
        def Export(self, request, context):  # noqa: N802 (generated name)
            return export(
                "traces",
                request,
                context,
                trace_service_pb2.ExportTraceServiceResponse,
                trace_service_pb2.ExportTracePartialSuccess,
                "rejected_spans",
            )

    class Metrics(metrics_service_pb2_grpc.MetricsServiceServicer):
        def Export(self, request, context):  # noqa: N802
            return export(
                "metrics",
                request,
                context,
                metrics_service_pb2.ExportMetricsServiceResponse,
                metrics_service_pb2.ExportMetricsPartialSuccess,
                "rejected_data_points",
            )

    class Logs(logs_service_pb2_grpc.LogsServiceServicer):
        def Export(self, request, context):  # noqa: N802
            return export(
                "logs",
                request,
                context,
                logs_service_pb2.ExportLogsServiceResponse,
                logs_service_pb2.ExportLogsPartialSuccess,
                "rejected_log_records",
            )

    return Trace(), Metrics(), Logs()


def watch_stdin(state: State) -> None:
    mode = os.fstat(sys.stdin.fileno()).st_mode
    if not (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or sys.stdin.isatty()):
        return

    def read_to_eof() -> None:
        # The raw descriptor, not sys.stdin.buffer: a daemon thread blocked inside the
        # buffered reader holds its lock, and interpreter shutdown then aborts.
        fd = sys.stdin.fileno()
        while os.read(fd, 65536):
            pass
        state.stop("stdin")

    threading.Thread(target=read_to_eof, name="stdin", daemon=True).start()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--expect", type=int, help="stop after this many requests")
    parser.add_argument("--timeout", type=float, default=60.0, help="watchdog, seconds (exit 2)")
    parser.add_argument("--partial-success", type=int, default=0, metavar="N")
    parser.add_argument("--require-header", type=parse_pair, action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--max-receive-bytes", type=int, default=64 * 1024 * 1024)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    def watchdog() -> None:
        sys.stderr.write(f"capture_grpc: watchdog fired after {args.timeout}s\n")
        sys.stderr.flush()
        os._exit(2)

    timer = threading.Timer(args.timeout, watchdog)
    timer.daemon = True
    timer.start()

    state = State(args)
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=8),
        options=[
            ("grpc.max_receive_message_length", args.max_receive_bytes),
            # Port 0 must give a port nobody else shares.
            ("grpc.so_reuseport", 0),
        ],
    )
    trace_servicer, metrics_servicer, logs_servicer = make_servicers(state)
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(trace_servicer, server)
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(metrics_servicer, server)
    logs_service_pb2_grpc.add_LogsServiceServicer_to_server(logs_servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    if port == 0:
        print("capture_grpc: could not bind 127.0.0.1:0", file=sys.stderr)
        return 1
    server.start()
    print(f"PORT {port}", flush=True)
    if args.expect == 0:
        state.stop("expect")
    watch_stdin(state)

    state.done.wait()
    server.stop(STOP_GRACE_SECONDS).wait()
    summary = state.summary()
    write_atomic(args.out / "capture.json", json.dumps(summary, sort_keys=True).encode())
    print(f"DONE {summary['requests']}", flush=True)
    timer.cancel()
    if args.expect is not None and summary["requests"] < args.expect:
        print(
            f"capture_grpc: stdin closed after {summary['requests']} of {args.expect} expected requests",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
