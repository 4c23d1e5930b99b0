#!/usr/bin/env python3
"""Send one fixed set of traces, metrics and logs through the official Python
OpenTelemetry SDK and opentelemetry-exporter-otlp-proto-http to an OTLP/HTTP receiver.

    send_http.py http://127.0.0.1:PORT

The exporters post to PORT's /v1/traces (gzip-compressed), /v1/metrics and /v1/logs.
Used by crates/otlp-transport-http/tests/receiver_interop.rs, which runs our receiver,
then this script from the `proto` venv (interop/setup-venv.sh proto), and checks that
every span, attribute, data point and log record arrived as sent here.

Determinism: ids come from a fixed IdGenerator, span, event and log timestamps are
explicit, the resource is built directly (no detectors) and OTEL_* variables are
removed. Metric data-point timestamps are the SDK's clock and are not checked.

Exit status 0 when every export succeeded; 1 if the SDK or an exporter logged any
warning or error (a failed export, a dropped attribute) or a flush timed out. A
watchdog ends the script after WATCHDOG_SECONDS.
"""

from __future__ import annotations

import argparse
import faulthandler
import logging
import math
import os
import sys

WATCHDOG_SECONDS = 60
EXPORT_TIMEOUT_SECONDS = 10

T0 = 1_700_000_000_000_000_000  # 2023-11-14T22:13:20Z
MS = 1_000_000
BIG_INT = 2**53 + 1  # not representable as an IEEE double

TRACE_ID = 0x4BF92F3577B34DA6A3CE929D0E0E4736
LINKED_TRACE_ID = 0x00F067AA0BA902B700000000000000AB
SPAN_IDS = [0x1000000000000001, 0x00000000000000F2, 0xFFFFFFFFFFFFFFFF]


class WarningCollector(logging.Handler):
    """Every SDK or exporter warning is a failed premise: collect and fail at the end."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(f"{record.name}: {record.getMessage()}")


def resource():
    from opentelemetry.sdk.resources import Resource

    return Resource({"service.name": "python-interop", "service.instance.id": "py-0001"})


def span_context(trace_id: int, span_id: int, *, remote: bool):
    from opentelemetry.trace import SpanContext, TraceFlags

    return SpanContext(
        trace_id=trace_id, span_id=span_id, is_remote=remote, trace_flags=TraceFlags(TraceFlags.SAMPLED)
    )


def send_traces(base: str) -> None:
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.id_generator import IdGenerator
    from opentelemetry.trace import Link, SpanKind, Status, StatusCode

    class FixedIdGenerator(IdGenerator):
        def __init__(self) -> None:
            self.span_ids = iter(SPAN_IDS)

        def generate_trace_id(self) -> int:
            return TRACE_ID

        def generate_span_id(self) -> int:
            return next(self.span_ids)

    exporter = OTLPSpanExporter(
        endpoint=f"{base}/v1/traces", compression=Compression.Gzip, timeout=EXPORT_TIMEOUT_SECONDS
    )
    provider = TracerProvider(resource=resource(), id_generator=FixedIdGenerator())
    provider.add_span_processor(
        BatchSpanProcessor(exporter, schedule_delay_millis=60_000, export_timeout_millis=EXPORT_TIMEOUT_SECONDS * 1000)
    )
    tracer = provider.get_tracer("interop.python", "0.1.0")

    root = tracer.start_span(
        "POST /checkout",
        kind=SpanKind.SERVER,
        start_time=T0,
        attributes={
            "http.request.method": "POST",
            "int.big": BIG_INT,
            "double.quarter": 0.25,
            "bool.flag": True,
            "array.tags": ["a", "b"],
        },
    )
    root.add_event("payment.authorized", attributes={"amount.cents": 1999}, timestamp=T0 + 30 * MS)
    root_ctx = trace.set_span_in_context(root)

    client = tracer.start_span(
        "POST /payments",
        context=root_ctx,
        kind=SpanKind.CLIENT,
        start_time=T0 + 10 * MS,
        links=[Link(span_context(LINKED_TRACE_ID, 0xDEF, remote=True), attributes={"link.kind": "follows"})],
    )
    client.end(end_time=T0 + 40 * MS)

    render = tracer.start_span("render receipt", context=root_ctx, start_time=T0 + 50 * MS)
    render.end(end_time=T0 + 60 * MS)

    root.set_status(Status(StatusCode.ERROR, "card declined"))
    root.end(end_time=T0 + 100 * MS)

    if not provider.force_flush(EXPORT_TIMEOUT_SECONDS * 1000):
        raise SystemExit("traces: force_flush timed out")
    provider.shutdown()


def send_metrics(base: str) -> None:
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

    reader = PeriodicExportingMetricReader(
        OTLPMetricExporter(endpoint=f"{base}/v1/metrics", timeout=EXPORT_TIMEOUT_SECONDS),
        export_interval_millis=math.inf,  # no background collection: one force_flush, one request
        export_timeout_millis=EXPORT_TIMEOUT_SECONDS * 1000,
    )
    provider = MeterProvider(resource=resource(), metric_readers=[reader])
    meter = provider.get_meter("interop.python", "0.1.0")

    # The Python metrics SDK lowercases instrument names: lowercase names only.
    orders = meter.create_counter("orders.created", unit="{order}", description="Orders placed.")
    value = meter.create_histogram("order.value", unit="EUR", explicit_bucket_boundaries_advisory=[10.0, 100.0])
    depth = meter.create_gauge("queue.depth", unit="{item}")
    inflight = meter.create_up_down_counter("requests.inflight")

    orders.add(3, {"region": "eu"})
    orders.add(2, {"region": "us"})
    for v in (5.0, 50.0, 500.0):
        value.record(v)
    depth.set(-7)
    inflight.add(4)
    inflight.add(-1)

    if not provider.force_flush(EXPORT_TIMEOUT_SECONDS * 1000):
        raise SystemExit("metrics: force_flush timed out")
    provider.shutdown(timeout_millis=EXPORT_TIMEOUT_SECONDS * 1000)


def send_logs(base: str) -> None:
    from opentelemetry import trace
    from opentelemetry._logs import SeverityNumber
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor

    provider = LoggerProvider(resource=resource())
    provider.add_log_record_processor(
        BatchLogRecordProcessor(
            OTLPLogExporter(endpoint=f"{base}/v1/logs", timeout=EXPORT_TIMEOUT_SECONDS),
            schedule_delay_millis=60_000,
            export_timeout_millis=EXPORT_TIMEOUT_SECONDS * 1000,
        )
    )
    logger = provider.get_logger("interop.python", "0.1.0")
    in_span = trace.set_span_in_context(trace.NonRecordingSpan(span_context(TRACE_ID, SPAN_IDS[0], remote=False)))

    logger.emit(
        timestamp=T0 + 5_000 * MS,
        observed_timestamp=T0 + 5_000 * MS + 500,
        context=in_span,
        severity_number=SeverityNumber.INFO,
        severity_text="INFO",
        body="order created",
        event_name="order.created",
        attributes={"order.id": BIG_INT},
    )
    logger.emit(
        timestamp=T0 + 5_001 * MS,
        observed_timestamp=T0 + 5_001 * MS,
        severity_number=SeverityNumber.WARN,
        severity_text="WARN",
        body={"retry": 2, "reason": "slow upstream"},
    )
    logger.emit(
        timestamp=T0 + 5_002 * MS,
        observed_timestamp=T0 + 5_002 * MS,
        severity_number=SeverityNumber.ERROR,
        severity_text="ERROR",
        body=b"\x00\xff",
        attributes={"error.type": "timeout"},
    )

    if not provider.force_flush(EXPORT_TIMEOUT_SECONDS * 1000):
        raise SystemExit("logs: force_flush timed out")
    provider.shutdown()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("endpoint", help="base URL of the receiver, e.g. http://127.0.0.1:4318")
    args = parser.parse_args()
    base = args.endpoint.rstrip("/")

    faulthandler.dump_traceback_later(WATCHDOG_SECONDS, exit=True)
    for name in [n for n in os.environ if n.startswith("OTEL_")]:
        del os.environ[name]
    collector = WarningCollector()
    logging.getLogger().addHandler(collector)

    send_traces(base)
    send_metrics(base)
    send_logs(base)

    if collector.messages:
        print("the SDK reported problems:", *collector.messages, sep="\n  ", file=sys.stderr)
        return 1
    print("sent: traces 3 spans, metrics 5 data points, logs 3 records")
    return 0


if __name__ == "__main__":
    sys.exit(main())
