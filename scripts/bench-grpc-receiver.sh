#!/usr/bin/env bash
# Requests per second of the OTLP/gRPC receiver under h2load, with a bare tonic server
# doing the same work side by side as a ceiling reference, for small (10 spans) and large
# (1000 spans) trace requests at 1 to 100 concurrent streams.
#
#   scripts/bench-grpc-receiver.sh       # from anywhere; needs h2load (nghttp2-client) and taskset
#
# Environment (all optional):
#   VALIDATION=full        what both servers do with a message: full (prost decode, the
#                          receiver's default) or framing (framing walk only)
#   SERVERS="ours tonic"   which servers to run
#   LOADS="1x1 1x10 1x100 10x10"   h2load connections x max concurrent streams per connection
#   N_SMALL=30000 N_LARGE=3000     h2load requests per run (bounded by -n, and by `timeout`)
#   CHECK=20               calls per server sent by the example's tonic client, which must
#                          all be answered grpc-status 0 (h2load counts HTTP 200 only)
#
# The machine has 2 cores: the server runs on cpu 0 with 1 tokio worker, h2load on cpu 1
# with 1 thread. Everything goes to 127.0.0.1 only. Each server is stopped with SIGINT
# at the end (and is bounded by --seconds in any case).
set -euo pipefail

cd "$(dirname "$0")/.."
VALIDATION=${VALIDATION:-full}
SERVERS=${SERVERS:-"ours tonic"}
LOADS=${LOADS:-"1x1 1x10 1x100 10x10"}
N_SMALL=${N_SMALL:-30000}
N_LARGE=${N_LARGE:-3000}
CHECK=${CHECK:-20}
OUT=target/grpc-receiver-bench
BIN=target/release/examples/grpc_receiver_bench
PATH_TRACES=/opentelemetry.proto.collector.trace.v1.TraceService/Export

if ! command -v h2load >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "installing h2load (nghttp2-client)"
        apt-get update -qq && apt-get install -y -qq nghttp2-client >/dev/null
    else
        echo "missing h2load: sudo apt-get install nghttp2-client" >&2
        exit 1
    fi
fi
command -v taskset >/dev/null || { echo "missing taskset (util-linux)" >&2; exit 1; }

cargo build --release -q -p otlp-transport-grpc --example grpc_receiver_bench
mkdir -p "$OUT"

SERVER_PID=
cleanup() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -INT "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
}
trap cleanup EXIT

RESULTS=$OUT/results-$VALIDATION.tsv
printf 'server\tspans\tconns x streams\trequests\th2load 2xx\tgrpc OK\treq/s\tspans/s\tMB/s\tlat mean\tlat max\tsrv CPU s\treq/srv-CPU-s\n' >"$RESULTS"

TCK=$(getconf CLK_TCK)
server_ticks() {
    awk '{ print $14 + $15 }' "/proc/$SERVER_PID/stat"
}

# The server's count of calls answered OK, from its `stats` line (printed on SIGUSR1).
server_ok() {
    local log=$1 before after
    before=$(grep -c '^stats ' "$log" || true)
    kill -USR1 "$SERVER_PID"
    for _ in $(seq 50); do
        after=$(grep -c '^stats ' "$log" || true)
        [ "$after" -gt "$before" ] && break
        sleep 0.05
    done
    grep '^stats ' "$log" | tail -1 | sed 's/.*ok=\([0-9]*\).*/\1/'
}

# run SERVER SPANS LOAD(CxM) N PORT SERVERLOG
run_h2load() {
    local server=$1 spans=$2 load=$3 n=$4 port=$5 slog=$6
    local c=${load%x*} m=${load#*x}
    local file=$OUT/traces-$spans.grpc
    local log=$OUT/h2load-$VALIDATION-$server-$spans-$load.log
    local cmd=(taskset -c 1 timeout 300 h2load -n "$n" -c "$c" -m "$m" -t 1
        -H 'content-type: application/grpc' -H 'te: trailers' -d "$file"
        "http://127.0.0.1:$port$PATH_TRACES")
    echo "+ ${cmd[*]}" | tee "$log"
    local t0 t1 ok0 ok1
    ok0=$(server_ok "$slog")
    t0=$(server_ticks)
    "${cmd[@]}" >>"$log" 2>&1
    t1=$(server_ticks)
    ok1=$(server_ok "$slog")
    local bytes rps ok mean max
    bytes=$(stat -c %s "$file")
    rps=$(awk '/^finished in/ {gsub(",", "", $4); print $4}' "$log")
    ok=$(awk '/^status codes:/ {print $3}' "$log")
    mean=$(awk '/^time for request:/ {print $6}' "$log")
    max=$(awk '/^time for request:/ {print $5}' "$log")
    awk -v sv="$server" -v s="$spans" -v l="$load" -v n="$n" -v ok="$ok" -v g="$((ok1 - ok0))" \
        -v r="$rps" -v b="$bytes" -v m="$mean" -v x="$max" -v cpu="$((t1 - t0))" -v tck="$TCK" 'BEGIN {
        printf "%s\t%d\t%s\t%d\t%s\t%d\t%.0f\t%.0f\t%.1f\t%s\t%s\t%.2f\t%.0f\n",
            sv, s, l, n, ok, g, r, r * s, r * b / 1e6, m, x, cpu / tck, g / (cpu / tck) }' >>"$RESULTS"
    if [ "$((ok1 - ok0))" != "$ok" ]; then
        echo "WARNING: h2load counted $ok 2xx answers, the server $((ok1 - ok0)) grpc-status 0" >&2
    fi
}

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for server in $SERVERS; do
    slog=$OUT/server-$VALIDATION-$server.log
    taskset -c 0 "$BIN" --server "$server" --port 0 --workers 1 --seconds 1800 \
        --validation "$VALIDATION" --out "$OUT" >"$slog" 2>&1 &
    SERVER_PID=$!
    port=
    for _ in $(seq 50); do
        port=$(sed -n 's/^listening 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$slog")
        [ -n "$port" ] && break
        sleep 0.1
    done
    [ -n "$port" ] || { echo "server did not start" >&2; cat "$slog" >&2; exit 1; }
    echo "== $server: pid $SERVER_PID on cpu 0, port $port, h2load on cpu 1"
    for spans in 10 1000; do
        # grpc-status 0 for real, with a gRPC client.
        taskset -c 1 timeout 120 "$BIN" --check "127.0.0.1:$port" --file "$OUT/traces-$spans.grpc" \
            --count "$CHECK" | tee -a "$OUT/check-$VALIDATION.log"
    done
    # Warm-up (connections, allocator): not recorded.
    taskset -c 1 timeout 120 h2load -n 2000 -c 10 -m 10 -t 1 -H 'content-type: application/grpc' \
        -H 'te: trailers' -d "$OUT/traces-10.grpc" "http://127.0.0.1:$port$PATH_TRACES" >/dev/null 2>&1
    for spans in 10 1000; do
        n=$N_SMALL
        [ "$spans" = 1000 ] && n=$N_LARGE
        for load in $LOADS; do
            run_h2load "$server" "$spans" "$load" "$n" "$port" "$slog"
        done
    done
    echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
    kill -INT "$SERVER_PID"
    wait "$SERVER_PID" || true
    SERVER_PID=
    grep -E '^(received|receiver traces|shutdown)' "$slog"
done

echo
echo "validation: $VALIDATION; requests: 10 and 1000 spans x 10 attributes," \
    "$(stat -c %s "$OUT/traces-10.grpc") and $(stat -c %s "$OUT/traces-1000.grpc") bytes with the gRPC prefix"
column -t -s $'\t' "$RESULTS"
echo "(logs and $RESULTS in $OUT/)"
