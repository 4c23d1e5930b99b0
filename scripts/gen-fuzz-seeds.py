#!/usr/bin/env python3
"""Write the checked-in fuzz seeds in fuzz/seeds/<target>/.

Run once from anywhere: `python3 scripts/gen-fuzz-seeds.py` (Python 3 stdlib plus the
`zstd` command line tool). The protobuf encoder below is hand-rolled so the script needs
no protobuf package; field numbers follow opentelemetry-proto v1. Each seed is a few
hundred bytes: seeds only need to reach the interesting code, libFuzzer does the rest.

Seeds for `decompress` start with the selector byte the fuzz target reads:
0 = gzip, 1 = zstd, 2 = deflate (3 = identity).
"""

import gzip
import json
import pathlib
import shutil
import struct
import subprocess
import zlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
SEEDS = ROOT / "fuzz" / "seeds"

# --- protobuf wire format ------------------------------------------------------------


def varint(n):
    out = bytearray()
    n &= (1 << 64) - 1
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def tag(field, wire_type):
    return varint((field << 3) | wire_type)


def f_varint(field, n):
    return tag(field, 0) + varint(n)


def f_fixed64(field, n):
    return tag(field, 1) + struct.pack("<Q", n)


def f_double(field, x):
    return tag(field, 1) + struct.pack("<d", x)


def f_fixed32(field, n):
    return tag(field, 5) + struct.pack("<I", n)


def f_bytes(field, data):
    if isinstance(data, str):
        data = data.encode()
    return tag(field, 2) + varint(len(data)) + data


def f_msg(field, *parts):
    return f_bytes(field, b"".join(parts))


def any_string(field, text):
    return f_msg(field, f_bytes(1, text))  # AnyValue.string_value


def key_value(field, key, value):
    return f_msg(field, f_bytes(1, key), any_string(2, value))  # KeyValue


def resource(field):
    return f_msg(field, key_value(1, "service.name", "checkout"), key_value(1, "host.name", "node-1"))


def scope(field):
    return f_msg(field, f_bytes(1, "otlp-rust-fuzz"), f_bytes(2, "1.0.0"))  # InstrumentationScope


TRACE_ID = bytes.fromhex("5b8efff798038103d269b633813fc60c")
SPAN_ID = bytes.fromhex("eee19b7ec3c1b174")
PARENT_ID = bytes.fromhex("eee19b7ec3c1b173")
START = 1544712660000000000
END = 1544712661000000000


def span(name, parent=True):
    return f_msg(
        2,  # ScopeSpans.spans
        f_bytes(1, TRACE_ID),
        f_bytes(2, SPAN_ID),
        f_bytes(3, "congo=t61rcWkgMzE"),  # trace_state
        f_bytes(4, PARENT_ID) if parent else b"",
        f_bytes(5, name),
        f_varint(6, 2),  # SPAN_KIND_SERVER
        f_fixed64(7, START),
        f_fixed64(8, END),
        key_value(9, "http.method", "GET"),
        f_msg(11, f_fixed64(1, START + 5), f_bytes(2, "exception")),  # Span.Event
        f_msg(13, f_bytes(1, TRACE_ID), f_bytes(2, PARENT_ID)),  # Span.Link
        f_msg(15, f_bytes(2, "ok"), f_varint(3, 1)),  # Status
        f_fixed32(16, 1),  # flags
    )


def trace_request():
    scope_spans = f_msg(2, scope(1), span("GET /", parent=False), span("SELECT users"))
    return f_msg(1, resource(1), scope_spans, f_bytes(3, "https://opentelemetry.io/schemas/1.21.0"))


def number_point(value):
    return b"".join(
        [
            key_value(7, "route", "/"),
            f_fixed64(2, START),
            f_fixed64(3, END),
            f_double(4, value) if isinstance(value, float) else tag(6, 1) + struct.pack("<q", value),
        ]
    )


def metrics_request():
    gauge = f_msg(
        2,  # ScopeMetrics.metrics
        f_bytes(1, "memory.used"),
        f_bytes(3, "By"),
        f_msg(5, f_msg(1, number_point(1024.5)), f_msg(1, number_point(2048.0))),  # Gauge
    )
    counter = f_msg(
        2,
        f_bytes(1, "requests"),
        f_msg(7, f_msg(1, number_point(17)), f_varint(2, 2), f_varint(3, 1)),  # Sum, cumulative
    )
    histogram = f_msg(
        2,
        f_bytes(1, "latency"),
        f_bytes(3, "ms"),
        f_msg(
            9,  # Histogram
            f_msg(
                1,
                f_fixed64(2, START),
                f_fixed64(3, END),
                f_fixed64(4, 6),  # count
                f_double(5, 42.0),  # sum
                f_bytes(6, struct.pack("<3Q", 1, 2, 3)),  # bucket_counts, packed
                f_bytes(7, struct.pack("<2d", 5.0, 10.0)),  # explicit_bounds, packed
                f_double(11, 1.0),
                f_double(12, 20.0),
            ),
            f_varint(2, 1),  # delta
        ),
    )
    summary = f_msg(
        2,
        f_bytes(1, "gc.pause"),
        f_msg(11, f_msg(1, f_fixed64(3, END), f_fixed64(4, 3), f_double(5, 9.5),
                        f_msg(6, f_double(1, 0.5), f_double(2, 3.0)))),  # Summary
    )
    scope_metrics = f_msg(2, scope(1), gauge, counter, histogram, summary)
    return f_msg(1, resource(1), scope_metrics)


def logs_request():
    record = f_msg(
        2,  # ScopeLogs.log_records
        f_fixed64(1, START),
        f_fixed64(11, END),
        f_varint(2, 9),  # SEVERITY_NUMBER_INFO
        f_bytes(3, "INFO"),
        any_string(5, "user logged in"),
        key_value(6, "user.id", "42"),
        f_fixed32(8, 1),
        f_bytes(9, TRACE_ID),
        f_bytes(10, SPAN_ID),
    )
    scope_logs = f_msg(2, scope(1), record, record)
    return f_msg(1, resource(1), scope_logs)


# --- OTLP/JSON -----------------------------------------------------------------------

RESOURCE_JSON = {
    "attributes": [
        {"key": "service.name", "value": {"stringValue": "checkout"}},
        {"key": "retries", "value": {"intValue": "3"}},
        {"key": "ratio", "value": {"doubleValue": 0.25}},
        {"key": "tags", "value": {"arrayValue": {"values": [{"boolValue": True}, {"bytesValue": "AAEC"}]}}},
        {"key": "nested", "value": {"kvlistValue": {"values": [{"key": "a", "value": {"intValue": 1}}]}}},
    ]
}
SCOPE_JSON = {"name": "otlp-rust-fuzz", "version": "1.0.0"}

TRACE_JSON = {
    "resourceSpans": [
        {
            "resource": RESOURCE_JSON,
            "scopeSpans": [
                {
                    "scope": SCOPE_JSON,
                    "spans": [
                        {
                            # Upper-case hex is legal input; the encoder writes lower case.
                            "traceId": "5B8EFFF798038103D269B633813FC60C",
                            "spanId": "EEE19B7EC3C1B174",
                            "parentSpanId": "",
                            "name": "GET /",
                            "kind": "SPAN_KIND_SERVER",
                            "startTimeUnixNano": "1544712660000000000",
                            "endTimeUnixNano": 1544712661000000000,
                            "attributes": [{"key": "http.method", "value": {"stringValue": "GET"}}],
                            "events": [{"timeUnixNano": "1544712660500000000", "name": "retry"}],
                            "links": [{"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b173"}],
                            "status": {"code": 2, "message": "boom"},
                            "flags": 1,
                        }
                    ],
                }
            ],
            "schemaUrl": "https://opentelemetry.io/schemas/1.21.0",
        }
    ]
}

METRICS_JSON = {
    "resourceMetrics": [
        {
            "resource": RESOURCE_JSON,
            "scopeMetrics": [
                {
                    "scope": SCOPE_JSON,
                    "metrics": [
                        {
                            "name": "requests",
                            "unit": "1",
                            "sum": {
                                "aggregationTemporality": "AGGREGATION_TEMPORALITY_CUMULATIVE",
                                "isMonotonic": True,
                                "dataPoints": [{"asInt": "17", "timeUnixNano": "1544712661000000000"}],
                            },
                        },
                        {
                            "name": "memory.used",
                            "gauge": {"dataPoints": [{"asDouble": 1024.5, "timeUnixNano": 1544712661000000000}]},
                        },
                        {
                            "name": "latency",
                            "histogram": {
                                "aggregationTemporality": 1,
                                "dataPoints": [
                                    {
                                        "count": "6",
                                        "sum": 42.0,
                                        "bucketCounts": ["1", 2, "3"],
                                        "explicitBounds": [5.0, 10.0],
                                        "min": 1.0,
                                        "max": 20.0,
                                    }
                                ],
                            },
                        },
                        {
                            "name": "sizes",
                            "exponentialHistogram": {
                                "dataPoints": [
                                    {"count": "3", "scale": 2, "zeroCount": "1",
                                     "positive": {"offset": -1, "bucketCounts": ["1", "1"]}}
                                ]
                            },
                        },
                        {
                            "name": "gc.pause",
                            "summary": {
                                "dataPoints": [
                                    {"count": "3", "sum": 9.5,
                                     "quantileValues": [{"quantile": 0.5, "value": 3.0}]}
                                ]
                            },
                        },
                    ],
                }
            ],
        }
    ]
}

LOGS_JSON = {
    "resourceLogs": [
        {
            "resource": RESOURCE_JSON,
            "scopeLogs": [
                {
                    "scope": SCOPE_JSON,
                    "logRecords": [
                        {
                            "timeUnixNano": "1544712660000000000",
                            "observedTimeUnixNano": "1544712661000000000",
                            "severityNumber": 9,
                            "severityText": "INFO",
                            "body": {"stringValue": "user logged in"},
                            "attributes": [{"key": "user.id", "value": {"intValue": 42}}],
                            "traceId": "5b8efff798038103d269b633813fc60c",
                            "spanId": "eee19b7ec3c1b174",
                            "unknownField": {"ignored": [1, 2, 3]},
                        }
                    ],
                }
            ],
        }
    ]
}

# --- compression ---------------------------------------------------------------------


def zstd_compress(data):
    zstd = shutil.which("zstd")
    if zstd is None:
        raise SystemExit("the zstd command line tool is needed (apt-get install zstd)")
    return subprocess.run([zstd, "-q", "-c", "-19"], input=data, capture_output=True, check=True).stdout


def raw_deflate(data):
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush()


def write(target, name, data):
    path = SEEDS / target / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    assert len(data) < 20 * 1024, f"{path} is {len(data)} bytes; keep seeds under 20 KiB"
    print(f"{path.relative_to(ROOT)}: {len(data)} bytes")


def main():
    proto = {"traces": trace_request(), "metrics": metrics_request(), "logs": logs_request()}
    docs = {"traces": TRACE_JSON, "metrics": METRICS_JSON, "logs": LOGS_JSON}

    for signal, data in proto.items():
        write("protobuf_decode", f"{signal}.pb", data)

    for signal, doc in docs.items():
        write("json_decode", f"{signal}.json", json.dumps(doc, indent=1).encode())
    write("json_decode", "empty.json", b'{"resourceSpans":[]}')

    body = proto["traces"]
    text = json.dumps(docs["logs"]).encode()
    write("decompress", "gzip-traces.bin", b"\x00" + gzip.compress(body, mtime=0))
    write("decompress", "gzip-two-members.bin", b"\x00" + gzip.compress(b"ab", mtime=0) + gzip.compress(b"cd", mtime=0))
    write("decompress", "zstd-traces.bin", b"\x01" + zstd_compress(body))
    write("decompress", "zstd-json.bin", b"\x01" + zstd_compress(text))
    write("decompress", "deflate-zlib-traces.bin", b"\x02" + zlib.compress(body, 9))
    write("decompress", "deflate-raw-json.bin", b"\x02" + raw_deflate(text))
    # A small bomb: 4 MiB of zeros, beyond the target's 1 MiB limit.
    write("decompress", "gzip-bomb.bin", b"\x00" + gzip.compress(bytes(4 << 20), 9, mtime=0))
    write("decompress", "identity.bin", b"\x03" + body)


if __name__ == "__main__":
    main()
