#!/usr/bin/env python3
"""Emit one fixed set of traces, metrics and logs through the official Python
OpenTelemetry SDK and its OTLP/HTTP exporter, and capture the request bodies.

    emit.py --encoding proto|json --out DIR

`proto` uses opentelemetry-exporter-otlp-proto-http, `json` uses
opentelemetry-exporter-otlp-json-http; each needs its own venv
(interop/setup-venv.sh). Both runs produce the same telemetry, so the bodies are
twins: the Rust test crates/otlp-core/tests/python_sdk_json.rs decodes both and
compares.

Determinism: trace and span ids come from a fixed IdGenerator; every span, event
and log timestamp is passed explicitly; the metrics SDK reads its clock through
module-level `time_ns` names, which are replaced by a clock this script sets by
hand before each step. The resource is built directly (no detectors) and OTEL_*
environment variables are ignored.

Output: DIR/<signal>.<n>.<pb|json>, n = 1, 2, ... in arrival order, one file per
HTTP request the exporter sent. The script fails (exit 1) if the SDK or exporter
logged any warning or error but the expected ones, if a request was not what we expect, or if the request
counts differ from EXPECTED_REQUESTS. A watchdog ends it after WATCHDOG_SECONDS.
"""

from __future__ import annotations

import argparse
import faulthandler
import http.server
import logging
import math
import os
import sys
import threading
from pathlib import Path

WATCHDOG_SECONDS = 60
EXPORT_TIMEOUT_SECONDS = 10

# What this script sends; the Rust test checks the same numbers independently.
# metrics: one export per collection, and emit_metrics collects twice.
EXPECTED_REQUESTS = {"traces": 1, "metrics": 2, "logs": 1}

# The SDK warnings this script provokes on purpose (the link over max_link_attributes),
# each exactly once. Any other warning fails the run.
EXPECTED_WARNINGS = [
    "opentelemetry.attributes: Attributes dict is full. Dropping the oldest key-value pair"
    " from attributes to make space for the new key-value pair.",
]

# 2023-11-14T22:13:20Z: every timestamp below is an offset from here.
T0 = 1_700_000_000_000_000_000
MS = 1_000_000

TRACE_A = 0x5B8EFFF798038103D269B633813FC60C
TRACE_B = 0x00F067AA0BA902B700000000000000AB  # leading zero byte: hex must keep it
REMOTE_PARENT_SPAN = 0x00000000000000F1
SPAN_IDS = [
    0xEEE19B7EC3C1B174,
    0x00F067AA0BA902B7,  # leading zero byte
    0x1111111111111111,
    0xFFFFFFFFFFFFFFFF,  # all bits set: no sign trouble anywhere
    0x0123456789ABCDEF,
    0x8000000000000000,
    0x0000000000000001,
]
TRACE_C = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF
TRACE_IDS = [TRACE_A, TRACE_C]  # root spans only: the others inherit theirs

BIG_INT = 2**53 + 1  # not representable as an IEEE double
UNICODE = 'h\u00e9llo \u2713 \U0001F600 "quoted" \\ back\nnew\ttab \u0001 </script>'


class ManualClock:
    """The metrics SDK's clock: returns `now`, which only this script moves."""

    def __init__(self, now: int) -> None:
        self.now = now

    def time_ns(self) -> int:
        return self.now


CLOCK = ManualClock(T0)


def install_metrics_clock() -> None:
    """Point every metrics-SDK module that stamps data points at CLOCK.

    Deadline arithmetic elsewhere keeps the real clock. If an SDK upgrade moves the
    clock reads, the assertion fails here instead of the Rust test seeing drifting
    timestamps.
    """
    from opentelemetry.sdk.metrics._internal import (
        _view_instrument_match,
        instrument,
        metric_reader_storage,
    )

    for module in (_view_instrument_match, instrument, metric_reader_storage):
        assert hasattr(module, "time_ns"), f"{module.__name__} no longer reads time_ns"
        module.time_ns = CLOCK.time_ns


class WarningCollector(logging.Handler):
    """Every SDK or exporter warning is a failed premise (a dropped attribute, a failed
    export): collect them and fail at the end."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(f"{record.name}: {record.getMessage()}")


class Capture:
    """A loopback HTTP server that stores each request body and answers 200."""

    CONTENT_TYPES = {"application/x-protobuf": "pb", "application/json": "json"}
    EMPTY_RESPONSE = {"pb": b"", "json": b"{}"}

    def __init__(self, out: Path, encoding_ext: str) -> None:
        self.out = out
        self.ext = encoding_ext
        self.counts: dict[str, int] = {}
        self.errors: list[str] = []
        self.lock = threading.Lock()
        capture = self

        class Handler(http.server.BaseHTTPRequestHandler):
            timeout = EXPORT_TIMEOUT_SECONDS

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                status, body, ext = capture.store(
                    self.path,
                    self.headers.get("Content-Type", ""),
                    self.headers.get("Content-Encoding"),
                    self.rfile.read(int(self.headers.get("Content-Length", "0"))),
                )
                self.send_response(status)
                self.send_header("Content-Type", "application/json" if ext == "json" else "application/x-protobuf")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        self.server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.server.timeout = EXPORT_TIMEOUT_SECONDS
        self.thread = threading.Thread(target=self.server.serve_forever, name="capture", daemon=True)

    def store(self, path: str, content_type: str, encoding: str | None, body: bytes) -> tuple[int, bytes, str]:
        signal = path.removeprefix("/v1/")
        ext = self.CONTENT_TYPES.get(content_type.split(";")[0].strip().lower())
        with self.lock:
            problem = None
            if signal not in EXPECTED_REQUESTS:
                problem = f"unexpected path {path}"
            elif ext != self.ext:
                problem = f"{path}: content type {content_type!r}, expected {self.ext}"
            elif encoding not in (None, "identity"):
                problem = f"{path}: unexpected Content-Encoding {encoding}"
            if problem:
                self.errors.append(problem)
                return 400, b"", self.ext
            n = self.counts.get(signal, 0) + 1
            self.counts[signal] = n
            (self.out / f"{signal}.{n}.{ext}").write_bytes(body)
            return 200, self.EMPTY_RESPONSE[ext], ext

    def url(self, signal: str) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/v1/{signal}"

    def __enter__(self) -> Capture:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=EXPORT_TIMEOUT_SECONDS)


def exporters(encoding: str):
    if encoding == "proto":
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    else:
        from opentelemetry.exporter.otlp.json.http._log_exporter import OTLPLogExporter
        from opentelemetry.exporter.otlp.json.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.json.http.trace_exporter import OTLPSpanExporter
    return OTLPSpanExporter, OTLPMetricExporter, OTLPLogExporter


def resource():
    from opentelemetry.sdk.resources import Resource

    # Built directly: Resource.create() would run detectors and read OTEL_RESOURCE_ATTRIBUTES.
    return Resource(
        {
            "service.name": "interop-emitter",
            "service.version": "1.2.3",
            "service.instance.id": "instance-0001",
            "host.cpu.count": 2,
            "deployment.canary": False,
        },
        schema_url="https://opentelemetry.io/schemas/1.21.0",
    )


def span_context(trace_id: int, span_id: int, *, remote: bool, sampled: bool = True, state=None):
    from opentelemetry.trace import SpanContext, TraceFlags, TraceState

    return SpanContext(
        trace_id=trace_id,
        span_id=span_id,
        is_remote=remote,
        trace_flags=TraceFlags(TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT),
        trace_state=TraceState(state or []),
    )


def context_of(ctx):
    from opentelemetry import trace

    return trace.set_span_in_context(trace.NonRecordingSpan(ctx))


# --- traces -----------------------------------------------------------------


def emit_traces(span_exporter) -> None:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import SpanLimits, TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.id_generator import IdGenerator
    from opentelemetry.trace import Link, SpanKind, Status, StatusCode

    class FixedIdGenerator(IdGenerator):
        def __init__(self) -> None:
            self.trace_ids = iter(TRACE_IDS)
            self.span_ids = iter(SPAN_IDS)

        def generate_trace_id(self) -> int:
            return next(self.trace_ids)

        def generate_span_id(self) -> int:
            return next(self.span_ids)

    provider = TracerProvider(
        resource=resource(),
        id_generator=FixedIdGenerator(),
        # Small link limits on purpose: one span has a dropped link and one link a
        # dropped attribute, so the dropped counts are non-zero.
        span_limits=SpanLimits(
            max_span_attributes=64,
            max_events=8,
            max_links=2,
            max_event_attributes=8,
            max_link_attributes=2,
            max_attribute_length=None,
        ),
    )
    processor = BatchSpanProcessor(
        span_exporter,
        max_queue_size=64,
        max_export_batch_size=64,
        schedule_delay_millis=60_000,  # only force_flush exports: one request
        export_timeout_millis=EXPORT_TIMEOUT_SECONDS * 1000,
    )
    provider.add_span_processor(processor)

    main = provider.get_tracer(
        "interop.main",
        "0.9.1",
        schema_url="https://opentelemetry.io/schemas/1.24.0",
        attributes={"scope.kind": "main", "scope.index": 1},
    )
    secondary = provider.get_tracer("interop.secondary")

    # Trace A: a server span with every attribute type, an ERROR status and events.
    root = main.start_span(
        "GET /orders/{id}",
        kind=SpanKind.SERVER,
        start_time=T0,
        attributes={
            "http.request.method": "GET",
            "string.unicode": UNICODE,
            "string.empty": "",
            "bool.true": True,
            "bool.false": False,
            "int.zero": 0,
            "int.negative": -42,
            "int.big": BIG_INT,
            "int.max": 2**63 - 1,
            "int.min": -(2**63),
            "double.pi": 3.141592653589793,
            "double.tiny": 5e-324,
            "double.huge": 1.7976931348623157e308,
            "double.negative": -0.5,
            "double.integral": 2.0,
            "array.string": ["a", "", "\u00e9"],
            "array.bool": [True, False],
            "array.int": [1, -1, BIG_INT],
            "array.double": [1.5, -2.25],
            "array.empty": [],
            "bytes": b"\x00\x01\xfe\xff",
            "bytes.empty": b"",
            "map": {"inner.string": "x", "inner.int": 7, "inner.list": [1, "two"], "inner.map": {"deep": True}},
        },
    )
    root.add_event(
        "cache.miss",
        attributes={"cache.key": "order:42", "cache.size": 512, "cache.hit_ratio": 0.25},
        timestamp=T0 + 10 * MS,
    )
    root.add_event("retry", timestamp=T0 + 20 * MS)
    root_ctx = trace.set_span_in_context(root)

    db = main.start_span(
        "SELECT orders",
        context=root_ctx,
        kind=SpanKind.CLIENT,
        start_time=T0 + 5 * MS,
        attributes={"db.system": "postgresql", "db.rows": 3},
        links=[
            # max_links=2 keeps the newest links: this first one is dropped.
            Link(span_context(TRACE_B, 0x0000000000000DEF, remote=True)),
            # max_link_attributes=2 keeps the newest attributes: "link.dropped" goes.
            Link(
                span_context(TRACE_B, 0x0000000000000ABC, remote=True, state=[("vendor", "abc")]),
                attributes={"link.dropped": "over the limit", "link.reason": "batch", "link.index": 0},
            ),
            Link(span_context(TRACE_A, SPAN_IDS[0], remote=False)),
        ],
    )
    db.set_status(Status(StatusCode.OK))
    db.end(end_time=T0 + 200 * MS)

    producer = main.start_span(
        "publish order.created", context=root_ctx, kind=SpanKind.PRODUCER, start_time=T0 + 201 * MS
    )
    producer.end(end_time=T0 + 202 * MS)

    internal = main.start_span("render", context=root_ctx, kind=SpanKind.INTERNAL, start_time=T0 + 203 * MS)
    internal.end(end_time=T0 + 240 * MS)

    root.set_status(Status(StatusCode.ERROR, "upstream timed out: 504 \u2717"))
    root.end(end_time=T0 + 250 * MS)

    # Trace B continues remotely: a consumer whose parent came over the wire with a
    # tracestate, linking back to the producer in trace A.
    remote_parent = span_context(
        TRACE_B, REMOTE_PARENT_SPAN, remote=True, state=[("vendor", "abc"), ("other", "x:y")]
    )
    consumer = main.start_span(
        "consume order.created",
        context=context_of(remote_parent),
        kind=SpanKind.CONSUMER,
        start_time=T0 + 300 * MS,
        links=[Link(producer.get_span_context(), attributes={"messaging.operation": "receive"})],
    )
    consumer.end(end_time=T0 + 310 * MS)

    # A second scope, a fresh trace, no attributes and UNSET status.
    job = secondary.start_span("background job", start_time=T0 + 400 * MS)
    job.end(end_time=T0 + 900 * MS)

    if not provider.force_flush(EXPORT_TIMEOUT_SECONDS * 1000):
        raise SystemExit("traces: force_flush timed out")
    provider.shutdown()


# --- metrics ----------------------------------------------------------------


def emit_metrics(metric_exporter_class, url: str) -> None:
    from opentelemetry.metrics import CallbackOptions, Observation
    from opentelemetry.sdk.metrics import Histogram, MeterProvider
    from opentelemetry.sdk.metrics.export import AggregationTemporality, PeriodicExportingMetricReader

    exporter = metric_exporter_class(
        endpoint=url,
        timeout=EXPORT_TIMEOUT_SECONDS,
        # Histograms as delta, everything else cumulative (the default): both
        # aggregationTemporality values appear.
        preferred_temporality={Histogram: AggregationTemporality.DELTA},
    )
    reader = PeriodicExportingMetricReader(
        exporter,
        export_interval_millis=math.inf,  # no background thread: we decide when to collect
        export_timeout_millis=EXPORT_TIMEOUT_SECONDS * 1000,
    )
    provider = MeterProvider(resource=resource(), metric_readers=[reader])
    meter = provider.get_meter(
        "interop.meter",
        "1.0.0",
        schema_url="https://opentelemetry.io/schemas/1.24.0",
        attributes={"scope.kind": "metrics"},
    )

    CLOCK.now = T0 + 1_000 * MS
    requests = meter.create_counter("http.server.requests", unit="{request}", description="Requests served.")
    queue = meter.create_up_down_counter("queue.depth", unit="{item}", description="Items waiting.")
    duration = meter.create_histogram(
        "http.server.duration",
        unit="ms",
        description="Time to serve a request.",
        explicit_bucket_boundaries_advisory=[0.0, 5.0, 10.0, 25.0, 50.0, 100.0],
    )
    temperature = meter.create_gauge("room.temperature", unit="Cel", description="Last reading.")

    def observe_memory(options: CallbackOptions):
        yield Observation(BIG_INT, {"memory.state": "used"})
        yield Observation(-(2**62), {"memory.state": "weird"})

    meter.create_observable_gauge("process.memory.usage", callbacks=[observe_memory], unit="By")

    # Measurements in a sampled span context become histogram exemplars with hex ids.
    sampled = context_of(span_context(TRACE_A, SPAN_IDS[0], remote=False))

    CLOCK.now = T0 + 1_100 * MS
    requests.add(3, {"http.route": "/a", "http.response.status_code": 200})
    requests.add(2, {"http.route": "/b", "http.response.status_code": 500})
    queue.add(5, {"queue": "q1"})
    queue.add(-2, {"queue": "q1"})
    CLOCK.now = T0 + 1_200 * MS
    duration.record(3.0, {"http.route": "/a"})
    duration.record(7.5, {"http.route": "/a"}, context=sampled)
    duration.record(250.0, {"http.route": "/a"})
    duration.record(42.0, {"http.route": "/b"}, context=sampled)
    temperature.set(21.5, {"room": "a"})
    temperature.set(-3.25, {"room": "b"})

    CLOCK.now = T0 + 2_000 * MS
    if not provider.force_flush(EXPORT_TIMEOUT_SECONDS * 1000):
        raise SystemExit("metrics: force_flush timed out")

    # Second interval. With an infinite interval the reader's shutdown does not collect,
    # so a second force_flush sends the second request.
    CLOCK.now = T0 + 2_500 * MS
    requests.add(1, {"http.route": "/a", "http.response.status_code": 200})
    queue.add(-1, {"queue": "q1"})
    duration.record(1.0, {"http.route": "/a"})
    temperature.set(22.0, {"room": "a"})
    CLOCK.now = T0 + 3_000 * MS
    if not provider.force_flush(EXPORT_TIMEOUT_SECONDS * 1000):
        raise SystemExit("metrics: second force_flush timed out")
    provider.shutdown(timeout_millis=EXPORT_TIMEOUT_SECONDS * 1000)


# --- logs -------------------------------------------------------------------


def emit_logs(log_exporter) -> None:
    from opentelemetry._logs import SeverityNumber
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor

    provider = LoggerProvider(resource=resource())
    provider.add_log_record_processor(
        BatchLogRecordProcessor(
            log_exporter,
            max_queue_size=64,
            max_export_batch_size=64,
            schedule_delay_millis=60_000,  # only force_flush exports: one request
            export_timeout_millis=EXPORT_TIMEOUT_SECONDS * 1000,
        )
    )
    logger = provider.get_logger(
        "interop.logs",
        "2.0.0",
        schema_url="https://opentelemetry.io/schemas/1.24.0",
        attributes={"scope.kind": "logs"},
    )
    in_span = context_of(span_context(TRACE_A, SPAN_IDS[0], remote=False))
    unsampled = context_of(span_context(TRACE_B, SPAN_IDS[4], remote=False, sampled=False))

    records = [
        dict(severity_number=SeverityNumber.TRACE, severity_text="TRACE", body="starting"),
        dict(
            severity_number=SeverityNumber.DEBUG,
            severity_text="DEBUG",
            body={"user": {"id": 42, "roles": ["admin", "dev"]}, "ok": True, "ratio": 0.5, "raw": b"\x7f"},
            attributes={"component": "auth", "attempt": 2},
        ),
        dict(
            severity_number=SeverityNumber.INFO,
            severity_text="INFO",
            body=UNICODE,
            context=in_span,
            event_name="order.created",
            attributes={"order.id": BIG_INT, "order.total": 99.95, "order.tags": ["new", "vip"]},
        ),
        dict(
            severity_number=SeverityNumber.WARN2,
            severity_text="warning",
            body=[1, "two", 3.0, False],
            context=unsampled,
        ),
        dict(
            severity_number=SeverityNumber.ERROR,
            severity_text="ERROR",
            body=b"\x00\xff binary",
            attributes={"error.type": "timeout", "limit.upper": math.inf, "limit.lower": -math.inf},
        ),
        dict(severity_number=SeverityNumber.FATAL, severity_text="FATAL", body=BIG_INT),
    ]
    for i, record in enumerate(records):
        logger.emit(timestamp=T0 + (5_000 + i) * MS, observed_timestamp=T0 + (5_000 + i) * MS + 500, **record)
    # No timestamp at all: only the observed time is set, timeUnixNano stays 0.
    logger.emit(observed_timestamp=T0 + 5_100 * MS, severity_number=SeverityNumber.UNSPECIFIED, body="no time")

    if not provider.force_flush(EXPORT_TIMEOUT_SECONDS * 1000):
        raise SystemExit("logs: force_flush timed out")
    provider.shutdown()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoding", choices=["proto", "json"], required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    # Bounded no matter what hangs: print every thread's stack and exit.
    faulthandler.dump_traceback_later(WATCHDOG_SECONDS, exit=True)

    # The exporters and SDK read OTEL_* variables (endpoint, headers, compression,
    # limits, temporality): this run must not depend on the caller's environment.
    for name in [n for n in os.environ if n.startswith("OTEL_")]:
        del os.environ[name]

    warnings = WarningCollector()
    logging.getLogger().addHandler(warnings)
    install_metrics_clock()

    args.out.mkdir(parents=True, exist_ok=True)
    ext = "pb" if args.encoding == "proto" else "json"
    span_exporter_class, metric_exporter_class, log_exporter_class = exporters(args.encoding)

    with Capture(args.out, ext) as capture:
        emit_traces(span_exporter_class(endpoint=capture.url("traces"), timeout=EXPORT_TIMEOUT_SECONDS))
        emit_metrics(metric_exporter_class, capture.url("metrics"))
        emit_logs(log_exporter_class(endpoint=capture.url("logs"), timeout=EXPORT_TIMEOUT_SECONDS))

    problems = list(capture.errors)
    unexpected = list(warnings.messages)
    for expected in EXPECTED_WARNINGS:
        if expected in unexpected:
            unexpected.remove(expected)
        else:
            problems.append(f"expected warning not logged: {expected}")
    problems += [f"logged: {m}" for m in unexpected]
    if capture.counts != EXPECTED_REQUESTS:
        problems.append(f"requests per signal {capture.counts}, expected {EXPECTED_REQUESTS}")
    for problem in problems:
        print(f"emit.py ({args.encoding}): {problem}", file=sys.stderr)
    if problems:
        return 1
    files = sorted(p.name for p in args.out.iterdir())
    print(f"emit.py ({args.encoding}): wrote {', '.join(files)} to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
