#!/usr/bin/env python3
"""Send many spans, a few metrics and many log records with known ids through the official
Python OpenTelemetry SDK and its OTLP/gRPC or OTLP/HTTP (protobuf) exporter, and write
down exactly what the receiver acknowledged.

    VENV/bin/python interop/python/emit_load.py --protocol grpc|http --endpoint URL \
        --out DIR --tag TAG [--spans N] [--span-base HEX] [--error-every K] \
        [--logs M] [--batch B] [--timeout S]

VENV is the `grpc` venv (for --protocol grpc) or the `proto` venv (for --protocol http)
of interop/setup-venv.sh. URL is `http://127.0.0.1:PORT` (the base URL: /v1/<signal> is
added for HTTP; gRPC uses host:port, insecure). OTEL_* variables are removed first.

What is sent (used by crates/otlp/tests/gateway_e2e.rs, which checks that every
acknowledged item arrives after passing through gateways):

- N spans, each the root of its own trace, span id = SPAN_BASE + i and trace id =
  (SPAN_BASE << 64) | i (i = 0..N-1), named "<TAG> span <i>", with attributes
  `load.tag` = TAG and `load.index` = i; every K-th span (i % K == 0) has an ERROR status.
  The BatchSpanProcessor sends them in requests of at most B spans.
- One metrics request: a counter `<TAG>.requests`, a histogram `<TAG>.latency` and an
  up-down counter `<TAG>.inflight` (TAG lowercased: the metrics SDK lowercases names).
- M log records with string bodies "<TAG> log <i>", severity INFO (ERROR every 10th).

DIR/summary.json, written in every case:

    {
      "ok": true,                       # every export succeeded, nothing dropped
      "protocol": "grpc"|"http", "endpoint": URL, "tag": TAG,
      "spans": ["<16 hex>", ...],       # span ids in requests the receiver acknowledged
      "error_spans": ["<16 hex>", ...], # the ERROR ones among them
      "failed_spans": 0,                # spans in requests that failed
      "metric_names": ["..."],          # in acknowledged metrics requests
      "log_bodies": ["..."],            # in acknowledged logs requests
      "failed_requests": {"traces": 0, "metrics": 0, "logs": 0},
      "warnings": ["logger: message"], "problems": ["why ok is false"]
    }

Exit status 0 when ok, else 1. A watchdog (--timeout, default 120 s) prints every
thread's stack and exits 1.
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import logging
import math
import os
import sys
from pathlib import Path

T0 = 1_700_000_000_000_000_000  # 2023-11-14T22:13:20Z
MS = 1_000_000
EXPORT_TIMEOUT_SECONDS = 30


class WarningCollector(logging.Handler):
    """SDK and exporter warnings (failed exports, dropped spans) make the run not ok."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(f"{record.name}: {record.getMessage()}")


class Recorder:
    """What the receiver acknowledged, read from the request each export call sends."""

    def __init__(self) -> None:
        self.spans: list[str] = []
        self.error_spans: list[str] = []
        self.failed_spans = 0
        self.metric_names: set[str] = set()
        self.log_bodies: list[str] = []
        self.failed = {"traces": 0, "metrics": 0, "logs": 0}

    def traces(self, request, ok: bool) -> None:
        ids = []
        errors = []
        for rs in request.resource_spans:
            for ss in rs.scope_spans:
                for span in ss.spans:
                    ids.append(span.span_id.hex())
                    if span.status.code == 2:  # STATUS_CODE_ERROR
                        errors.append(span.span_id.hex())
        if ok:
            self.spans += ids
            self.error_spans += errors
        else:
            self.failed["traces"] += 1
            self.failed_spans += len(ids)

    def metrics(self, request, ok: bool) -> None:
        if not ok:
            self.failed["metrics"] += 1
            return
        for rm in request.resource_metrics:
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    self.metric_names.add(metric.name)

    def logs(self, request, ok: bool) -> None:
        if not ok:
            self.failed["logs"] += 1
            return
        for rl in request.resource_logs:
            for sl in rl.scope_logs:
                for record in sl.log_records:
                    self.log_bodies.append(record.body.string_value)


def exporters(protocol: str, endpoint: str, recorder: Recorder):
    """The SDK's exporter classes, each `export` call recorded with its result."""
    from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
    from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.sdk._logs.export import LogRecordExportResult
    from opentelemetry.sdk.metrics.export import MetricExportResult
    from opentelemetry.sdk.trace.export import SpanExportResult

    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        def kwargs(signal: str) -> dict:
            return dict(endpoint=endpoint, insecure=True, timeout=EXPORT_TIMEOUT_SECONDS)
    else:
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        def kwargs(signal: str) -> dict:
            return dict(endpoint=f"{endpoint.rstrip('/')}/v1/{signal}", timeout=EXPORT_TIMEOUT_SECONDS)

    class SpanExporter(OTLPSpanExporter):
        def export(self, spans):
            request = encode_spans(spans)
            result = super().export(spans)
            recorder.traces(request, result == SpanExportResult.SUCCESS)
            return result

    class MetricExporter(OTLPMetricExporter):
        def export(self, metrics_data, timeout_millis: float = 10_000, **kw):
            request = encode_metrics(metrics_data)
            result = super().export(metrics_data, timeout_millis, **kw)
            recorder.metrics(request, result == MetricExportResult.SUCCESS)
            return result

    class LogExporter(OTLPLogExporter):
        def export(self, batch):
            request = encode_logs(batch)
            result = super().export(batch)
            recorder.logs(request, result == LogRecordExportResult.SUCCESS)
            return result

    return (
        SpanExporter(**kwargs("traces")),
        MetricExporter(**kwargs("metrics")),
        LogExporter(**kwargs("logs")),
    )


def resource(tag: str):
    from opentelemetry.sdk.resources import Resource

    # Built directly: Resource.create() would run detectors.
    return Resource({"service.name": "emit-load", "load.tag": tag})


def emit_spans(exporter, tag: str, count: int, span_base: int, error_every: int, batch: int) -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.id_generator import IdGenerator
    from opentelemetry.trace import SpanKind, Status, StatusCode

    class SequentialIds(IdGenerator):
        """Span i gets span id SPAN_BASE + i and trace id (SPAN_BASE << 64) | i."""

        def __init__(self) -> None:
            self.next_span = 0
            self.next_trace = 0

        def generate_span_id(self) -> int:
            value = (span_base + self.next_span) & 0xFFFFFFFFFFFFFFFF
            self.next_span += 1
            return value

        def generate_trace_id(self) -> int:
            value = (span_base << 64) | self.next_trace
            self.next_trace += 1
            return value

    provider = TracerProvider(resource=resource(tag), id_generator=SequentialIds())
    provider.add_span_processor(
        BatchSpanProcessor(
            exporter,
            # Large enough that the processor never drops a span.
            max_queue_size=max(2048, count + 1),
            max_export_batch_size=batch,
            schedule_delay_millis=100,
            export_timeout_millis=EXPORT_TIMEOUT_SECONDS * 1000,
        )
    )
    tracer = provider.get_tracer("emit_load", "1.0.0")
    for i in range(count):
        span = tracer.start_span(
            f"{tag} span {i}",
            kind=SpanKind.SERVER,
            start_time=T0 + i * MS,
            attributes={"load.tag": tag, "load.index": i},
        )
        if error_every and i % error_every == 0:
            span.set_status(Status(StatusCode.ERROR, "load error"))
        span.end(end_time=T0 + i * MS + MS // 2)
    if not provider.force_flush(EXPORT_TIMEOUT_SECONDS * 4 * 1000):
        raise SystemExit("traces: force_flush timed out")
    provider.shutdown()


def emit_metrics(exporter, tag: str) -> None:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

    reader = PeriodicExportingMetricReader(
        exporter,
        export_interval_millis=math.inf,  # no background thread: one collection on flush
        export_timeout_millis=EXPORT_TIMEOUT_SECONDS * 1000,
    )
    provider = MeterProvider(resource=resource(tag), metric_readers=[reader])
    meter = provider.get_meter("emit_load", "1.0.0")
    requests = meter.create_counter(f"{tag}.requests", unit="{request}")
    latency = meter.create_histogram(f"{tag}.latency", unit="ms")
    inflight = meter.create_up_down_counter(f"{tag}.inflight", unit="{request}")
    for i in range(10):
        requests.add(1, {"route": f"/r{i % 3}"})
        latency.record(float(i), {"route": f"/r{i % 3}"})
        inflight.add(1 if i % 2 else -1)
    if not provider.force_flush(EXPORT_TIMEOUT_SECONDS * 1000):
        raise SystemExit("metrics: force_flush timed out")
    provider.shutdown(timeout_millis=EXPORT_TIMEOUT_SECONDS * 1000)


def emit_logs(exporter, tag: str, count: int, batch: int) -> None:
    from opentelemetry._logs import SeverityNumber
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor

    provider = LoggerProvider(resource=resource(tag))
    provider.add_log_record_processor(
        BatchLogRecordProcessor(
            exporter,
            max_queue_size=max(2048, count + 1),
            max_export_batch_size=batch,
            schedule_delay_millis=100,
            export_timeout_millis=EXPORT_TIMEOUT_SECONDS * 1000,
        )
    )
    logger = provider.get_logger("emit_load", "1.0.0")
    for i in range(count):
        error = i % 10 == 0
        logger.emit(
            timestamp=T0 + i * MS,
            observed_timestamp=T0 + i * MS + 1,
            severity_number=SeverityNumber.ERROR if error else SeverityNumber.INFO,
            severity_text="ERROR" if error else "INFO",
            body=f"{tag} log {i}",
            attributes={"load.tag": tag, "load.index": i},
        )
    if not provider.force_flush(EXPORT_TIMEOUT_SECONDS * 1000):
        raise SystemExit("logs: force_flush timed out")
    provider.shutdown()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--protocol", choices=["grpc", "http"], required=True)
    parser.add_argument("--endpoint", required=True, help="http://HOST:PORT")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--tag", required=True, help="names, bodies and attributes carry it")
    parser.add_argument("--spans", type=int, default=1000)
    parser.add_argument("--span-base", type=lambda s: int(s, 16), default=0xE2E0000000000000)
    parser.add_argument("--error-every", type=int, default=10, help="0: no ERROR spans")
    parser.add_argument("--logs", type=int, default=100)
    parser.add_argument("--batch", type=int, default=256, help="most spans / records per request")
    parser.add_argument("--timeout", type=float, default=120, help="watchdog, seconds")
    args = parser.parse_args()

    faulthandler.dump_traceback_later(args.timeout, exit=True)
    for name in [n for n in os.environ if n.startswith("OTEL_")]:
        del os.environ[name]
    warnings = WarningCollector()
    logging.getLogger().addHandler(warnings)
    args.out.mkdir(parents=True, exist_ok=True)

    tag = args.tag.lower()
    recorder = Recorder()
    span_exporter, metric_exporter, log_exporter = exporters(args.protocol, args.endpoint, recorder)
    problems: list[str] = []
    for send in (
        lambda: emit_spans(span_exporter, tag, args.spans, args.span_base, args.error_every, args.batch),
        lambda: emit_metrics(metric_exporter, tag),
        lambda: emit_logs(log_exporter, tag, args.logs, args.batch),
    ):
        try:
            send()
        except SystemExit as stop:  # a flush timed out: still write the summary
            problems.append(str(stop.code))
    for signal, failed in recorder.failed.items():
        if failed:
            problems.append(f"{signal}: {failed} export(s) failed")
    if len(recorder.spans) + recorder.failed_spans != args.spans:
        problems.append(f"{len(recorder.spans) + recorder.failed_spans} spans exported, {args.spans} made")
    if len(recorder.log_bodies) != args.logs and not recorder.failed["logs"]:
        problems.append(f"{len(recorder.log_bodies)} log records exported, {args.logs} made")
    problems += [f"logged: {m}" for m in warnings.messages]

    summary = {
        "ok": not problems,
        "protocol": args.protocol,
        "endpoint": args.endpoint,
        "tag": tag,
        "spans": recorder.spans,
        "error_spans": recorder.error_spans,
        "failed_spans": recorder.failed_spans,
        "metric_names": sorted(recorder.metric_names),
        "log_bodies": recorder.log_bodies,
        "failed_requests": recorder.failed,
        "warnings": warnings.messages,
        "problems": problems,
    }
    tmp = args.out / "summary.json.tmp"
    tmp.write_text(json.dumps(summary, indent=1, sort_keys=True))
    os.replace(tmp, args.out / "summary.json")
    for problem in problems:
        print(f"emit_load.py: {problem}", file=sys.stderr)
    print(
        f"emit_load.py: {args.protocol} to {args.endpoint}: {len(recorder.spans)} spans, "
        f"{len(recorder.metric_names)} metrics, {len(recorder.log_bodies)} logs acknowledged",
        file=sys.stderr,
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
