#!/usr/bin/env python3
"""Send emit.py's fixed set of traces, metrics and logs through the official Python
OpenTelemetry SDK and opentelemetry-exporter-otlp-proto-grpc to an OTLP/gRPC receiver,
and write down what was sent.

    VENV/bin/python interop/python/emit_grpc.py --endpoint 127.0.0.1:PORT --out DIR
        [--compression none|gzip] [--header KEY=VALUE]... [--timeout S] [--allow-warnings]

VENV is the `grpc` venv of interop/setup-venv.sh. The channel is insecure (h2c). The
telemetry is emit.py's, imported from it unchanged (emit_traces, emit_metrics,
emit_logs, its metrics clock and its expected SDK warning), so it is the same set the
OTLP/HTTP and OTLP/JSON twins carry: 6 spans in 1 request, 2 metrics requests, 7 log
records in 1 request. OTEL_* variables are removed first.

The exporters are the SDK's own classes with `export` wrapped: each call's request is
encoded with the exporter's own encoder (`_translate_data`, the very message it
sends; OTLP has no map fields, so encoding twice gives the same bytes) and written to
DIR/sent-<signal>.<n>.pb, n = 1, 2, ... per signal in call order. DIR/summary.json
then says what was sent:

    {
      "ok": true,                       # every export succeeded, no unexpected warning,
                                        # request counts as expected
      "endpoint": "127.0.0.1:PORT", "compression": "none"|"gzip",
      "headers": [["key", "value"], ...],
      "requests":        {"traces": 1, "metrics": 2, "logs": 1},   # succeeded
      "failed_requests": {"traces": 0, "metrics": 0, "logs": 0},   # returned FAILURE
      "sent_files": {"traces": ["sent-traces.1.pb"], "metrics": [...], "logs": [...]},
      # below: only requests whose export succeeded, in send order
      "traces":  {"span_count": 6,
                  "spans": [{"trace_id": "<32 hex>", "span_id": "<16 hex>",
                             "parent_span_id": "<16 hex>" or "", "name": "..."}, ...]},
      "metrics": {"data_point_count": N, "metric_names": ["sorted", "unique", ...]},
      "logs":    {"record_count": 7, "bodies": [AnyValue as OTLP/JSON, ...]},
      "warnings": ["logger: message", ...],   # every SDK warning or error seen
      "problems": ["why ok is false", ...]
    }

Ids are lowercase hex. A log body is the protobuf AnyValue rendered by
google.protobuf.json_format (lowerCamelCase keys): {"stringValue": "..."},
{"intValue": "9007199254740993"} (64-bit as a string), {"bytesValue": "<base64>"},
{"kvlistValue": {"values": [...]}}, {"arrayValue": {"values": [...]}}; {} for no body.

Exit status 0 when `ok`; 1 when an export returned FAILURE, the SDK logged a warning
or error other than emit.py's expected one (unless --allow-warnings, for runs that
provoke retries on purpose), or the per-signal request counts differ from emit.py's
EXPECTED_REQUESTS. summary.json is written in every one of these cases. A watchdog
(--timeout, default 60 s) prints every thread's stack and exits 1.
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import logging
import os
import sys
from pathlib import Path

# emit.py sits next to this script; running the script puts its directory on sys.path.
import emit

SIGNALS = ("traces", "metrics", "logs")


def parse_pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    # gRPC metadata keys are lowercase on the wire; grpcio rejects others.
    return key.strip().lower(), value


class Recorder:
    """Writes every export's request bytes and tallies what the receiver acknowledged."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.calls = {s: 0 for s in SIGNALS}
        self.ok = {s: 0 for s in SIGNALS}
        self.failed = {s: 0 for s in SIGNALS}
        self.files: dict[str, list[str]] = {s: [] for s in SIGNALS}
        self.spans: list[dict[str, str]] = []
        self.metric_names: set[str] = set()
        self.data_points = 0
        self.bodies: list[dict] = []

    def record(self, signal: str, request, succeeded: bool) -> None:
        self.calls[signal] += 1
        name = f"sent-{signal}.{self.calls[signal]}.pb"
        (self.out / name).write_bytes(request.SerializeToString())
        self.files[signal].append(name)
        if not succeeded:
            self.failed[signal] += 1
            return
        self.ok[signal] += 1
        if signal == "traces":
            self._traces(request)
        elif signal == "metrics":
            self._metrics(request)
        else:
            self._logs(request)

    def _traces(self, request) -> None:
        for resource_spans in request.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    self.spans.append(
                        {
                            "trace_id": span.trace_id.hex(),
                            "span_id": span.span_id.hex(),
                            "parent_span_id": span.parent_span_id.hex(),
                            "name": span.name,
                        }
                    )

    def _metrics(self, request) -> None:
        for resource_metrics in request.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    self.metric_names.add(metric.name)
                    kind = metric.WhichOneof("data")
                    if kind is not None:
                        self.data_points += len(getattr(metric, kind).data_points)

    def _logs(self, request) -> None:
        from google.protobuf import json_format

        for resource_logs in request.resource_logs:
            for scope_logs in resource_logs.scope_logs:
                for record in scope_logs.log_records:
                    self.bodies.append(json_format.MessageToDict(record.body))

    def summary(self) -> dict:
        return {
            "requests": dict(self.ok),
            "failed_requests": dict(self.failed),
            "sent_files": {s: list(f) for s, f in self.files.items()},
            "traces": {"span_count": len(self.spans), "spans": self.spans},
            "metrics": {"data_point_count": self.data_points, "metric_names": sorted(self.metric_names)},
            "logs": {"record_count": len(self.bodies), "bodies": self.bodies},
        }


def recording_exporters(recorder: Recorder, url: str, headers: list[tuple[str, str]], compression):
    """The SDK's OTLP/gRPC exporter classes, each `export` call recorded."""
    from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk._logs.export import LogRecordExportResult
    from opentelemetry.sdk.metrics.export import MetricExportResult
    from opentelemetry.sdk.trace.export import SpanExportResult

    class SpanExporter(OTLPSpanExporter):
        def export(self, spans):
            request = self._translate_data(spans)
            result = super().export(spans)
            recorder.record("traces", request, result == SpanExportResult.SUCCESS)
            return result

    class MetricExporter(OTLPMetricExporter):
        def export(self, metrics_data, timeout_millis: float = 10_000, **kwargs):
            request = self._translate_data(metrics_data)
            result = super().export(metrics_data, timeout_millis, **kwargs)
            recorder.record("metrics", request, result == MetricExportResult.SUCCESS)
            return result

    class LogExporter(OTLPLogExporter):
        def export(self, batch):
            request = self._translate_data(batch)
            result = super().export(batch)
            recorder.record("logs", request, result == LogRecordExportResult.SUCCESS)
            return result

    common = dict(insecure=True, headers=headers or None, compression=compression)

    def metric_exporter(**kwargs):
        # emit.emit_metrics passes endpoint, timeout and preferred_temporality.
        return MetricExporter(**common, **kwargs)

    return (
        SpanExporter(endpoint=url, timeout=emit.EXPORT_TIMEOUT_SECONDS, **common),
        metric_exporter,
        LogExporter(endpoint=url, timeout=emit.EXPORT_TIMEOUT_SECONDS, **common),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", required=True, help="HOST:PORT of the OTLP/gRPC receiver")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--compression", choices=["none", "gzip"], default="none")
    parser.add_argument("--header", type=parse_pair, action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--timeout", type=float, default=emit.WATCHDOG_SECONDS, help="watchdog, seconds")
    parser.add_argument(
        "--allow-warnings", action="store_true", help="list SDK warnings in the summary without failing"
    )
    args = parser.parse_args()

    faulthandler.dump_traceback_later(args.timeout, exit=True)
    for name in [n for n in os.environ if n.startswith("OTEL_")]:
        del os.environ[name]

    import grpc

    endpoint = args.endpoint.removeprefix("http://").rstrip("/")
    compression = grpc.Compression.Gzip if args.compression == "gzip" else grpc.Compression.NoCompression
    warnings = emit.WarningCollector()
    logging.getLogger().addHandler(warnings)
    emit.install_metrics_clock()
    args.out.mkdir(parents=True, exist_ok=True)

    recorder = Recorder(args.out)
    # The exporter takes a URL and keeps its host:port; the scheme does not pick TLS here
    # because insecure=True is explicit.
    url = f"http://{endpoint}"
    span_exporter, metric_exporter, log_exporter = recording_exporters(recorder, url, args.header, compression)
    problems = []
    for send in (
        lambda: emit.emit_traces(span_exporter),
        lambda: emit.emit_metrics(metric_exporter, url),
        lambda: emit.emit_logs(log_exporter),
    ):
        try:
            send()
        except SystemExit as stop:  # emit.py's "force_flush timed out": still write the summary
            problems.append(str(stop.code))
    for signal, failed in recorder.failed.items():
        if failed:
            problems.append(f"{signal}: {failed} export(s) returned FAILURE")
    unexpected = list(warnings.messages)
    for expected in emit.EXPECTED_WARNINGS:
        if expected in unexpected:
            unexpected.remove(expected)
        else:
            problems.append(f"expected warning not logged: {expected}")
    if not args.allow_warnings:
        problems += [f"logged: {m}" for m in unexpected]
    if recorder.ok != emit.EXPECTED_REQUESTS:
        problems.append(f"succeeded requests per signal {recorder.ok}, expected {emit.EXPECTED_REQUESTS}")

    summary = {
        "ok": not problems,
        "endpoint": endpoint,
        "compression": args.compression,
        "headers": [list(h) for h in args.header],
        **recorder.summary(),
        "warnings": warnings.messages,
        "problems": problems,
    }
    tmp = args.out / "summary.json.tmp"
    tmp.write_text(json.dumps(summary, indent=1, sort_keys=True))
    os.replace(tmp, args.out / "summary.json")

    for problem in problems:
        print(f"emit_grpc.py: {problem}", file=sys.stderr)
    if problems:
        return 1
    print(f"emit_grpc.py: sent {recorder.ok} to {endpoint}, summary in {args.out / 'summary.json'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
