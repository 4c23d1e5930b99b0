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
#   ROUNDS=3               every case this many times; the summary gives medians
#
# The machine has 2 cores: the servers run on cpu 0 with 1 tokio worker each (both
# started at once, only the one under load is busy), h2load on cpu 1 with 1 thread; the
# cases alternate between the servers. Every request goes to 127.0.0.1 only. The servers
# are stopped with SIGINT at the end (and are bounded by --seconds in any case). Besides
# h2load's HTTP status count, each server's own count of grpc-status 0 answers is read
# around every run (SIGUSR1 prints it) and must match.
set -euo pipefail

cd "$(dirname "$0")/.."
VALIDATION=${VALIDATION:-full}
SERVERS=${SERVERS:-"ours tonic"}
LOADS=${LOADS:-"1x1 1x10 1x100 10x10"}
N_SMALL=${N_SMALL:-30000}
N_LARGE=${N_LARGE:-3000}
CHECK=${CHECK:-20}
ROUNDS=${ROUNDS:-3}
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

declare -A PID PORT LOG
cleanup() {
    for server in "${!PID[@]}"; do
        if kill -0 "${PID[$server]}" 2>/dev/null; then
            kill -INT "${PID[$server]}" 2>/dev/null || true
            wait "${PID[$server]}" 2>/dev/null || true
        fi
    done
}
trap cleanup EXIT

RESULTS=$OUT/results-$VALIDATION.tsv
printf 'round\tserver\tspans\tconns x streams\trequests\th2load 2xx\tgrpc OK\treq/s\tspans/s\tMB/s\tlat mean\tlat max\tsrv CPU s\treq/srv-CPU-s\n' >"$RESULTS"

TCK=$(getconf CLK_TCK)
server_ticks() {
    awk '{ print $14 + $15 }' "/proc/${PID[$1]}/stat"
}

# The server's count of calls answered OK, from its `stats` line (printed on SIGUSR1).
server_ok() {
    local server=$1 before after
    before=$(grep -c '^stats ' "${LOG[$server]}" || true)
    kill -USR1 "${PID[$server]}"
    for _ in $(seq 50); do
        after=$(grep -c '^stats ' "${LOG[$server]}" || true)
        [ "$after" -gt "$before" ] && break
        sleep 0.05
    done
    grep '^stats ' "${LOG[$server]}" | tail -1 | sed 's/.*ok=\([0-9]*\).*/\1/'
}

# run_h2load ROUND SERVER SPANS LOAD(CxM) N
run_h2load() {
    local round=$1 server=$2 spans=$3 load=$4 n=$5
    local c=${load%x*} m=${load#*x} port=${PORT[$server]}
    local file=$OUT/traces-$spans.grpc
    local log=$OUT/h2load-$VALIDATION-$round-$server-$spans-$load.log
    local cmd=(taskset -c 1 timeout 300 h2load -n "$n" -c "$c" -m "$m" -t 1
        -H 'content-type: application/grpc' -H 'te: trailers' -d "$file"
        "http://127.0.0.1:$port$PATH_TRACES")
    echo "+ ${cmd[*]}" >"$log"
    local t0 t1 ok0 ok1
    ok0=$(server_ok "$server")
    t0=$(server_ticks "$server")
    "${cmd[@]}" >>"$log" 2>&1
    t1=$(server_ticks "$server")
    ok1=$(server_ok "$server")
    local bytes rps ok mean max
    bytes=$(stat -c %s "$file")
    rps=$(awk '/^finished in/ {gsub(",", "", $4); print $4}' "$log")
    ok=$(awk '/^status codes:/ {print $3}' "$log")
    mean=$(awk '/^time for request:/ {print $6}' "$log")
    max=$(awk '/^time for request:/ {print $5}' "$log")
    awk -v rd="$round" -v sv="$server" -v s="$spans" -v l="$load" -v n="$n" -v ok="$ok" \
        -v g="$((ok1 - ok0))" -v r="$rps" -v b="$bytes" -v m="$mean" -v x="$max" \
        -v cpu="$((t1 - t0))" -v tck="$TCK" 'BEGIN {
        printf "%d\t%s\t%d\t%s\t%d\t%s\t%d\t%.0f\t%.0f\t%.1f\t%s\t%s\t%.2f\t%.0f\n",
            rd, sv, s, l, n, ok, g, r, r * s, r * b / 1e6, m, x, cpu / tck, g / (cpu / tck) }' \
        | tee -a "$RESULTS"
    if [ "$((ok1 - ok0))" != "$ok" ]; then
        echo "WARNING: h2load counted $ok 2xx answers, the $server server $((ok1 - ok0)) grpc-status 0" >&2
    fi
}

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
# Both servers run at once, on cpu 0; only the one under load is busy. Cases alternate
# between them so that changes in the machine's load hit both alike.
for server in $SERVERS; do
    LOG[$server]=$OUT/server-$VALIDATION-$server.log
    taskset -c 0 "$BIN" --server "$server" --port 0 --workers 1 --seconds 3600 \
        --validation "$VALIDATION" --out "$OUT" >"${LOG[$server]}" 2>&1 &
    PID[$server]=$!
    port=
    for _ in $(seq 50); do
        port=$(sed -n 's/^listening 127\.0\.0\.1:\([0-9]*\).*/\1/p' "${LOG[$server]}")
        [ -n "$port" ] && break
        sleep 0.1
    done
    [ -n "$port" ] || { echo "$server server did not start" >&2; cat "${LOG[$server]}" >&2; exit 1; }
    PORT[$server]=$port
    echo "== $server: pid ${PID[$server]} on cpu 0, port $port; h2load on cpu 1"
    for spans in 10 1000; do
        # grpc-status 0 for real, with a gRPC client.
        taskset -c 1 timeout 120 "$BIN" --check "127.0.0.1:$port" --file "$OUT/traces-$spans.grpc" \
            --count "$CHECK" | tee -a "$OUT/check-$VALIDATION.log"
    done
    # Warm-up (connections, allocator): not recorded.
    taskset -c 1 timeout 120 h2load -n 2000 -c 10 -m 10 -t 1 -H 'content-type: application/grpc' \
        -H 'te: trailers' -d "$OUT/traces-10.grpc" "http://127.0.0.1:$port$PATH_TRACES" >/dev/null 2>&1
done

for round in $(seq "$ROUNDS"); do
    for spans in 10 1000; do
        n=$N_SMALL
        [ "$spans" = 1000 ] && n=$N_LARGE
        for load in $LOADS; do
            for server in $SERVERS; do
                run_h2load "$round" "$server" "$spans" "$load" "$n"
            done
        done
    done
    echo "load average after round $round: $(cut -d' ' -f1-3 /proc/loadavg)"
done

for server in $SERVERS; do
    kill -INT "${PID[$server]}"
    wait "${PID[$server]}" || true
    echo "$server:"
    grep -E '^(received|receiver traces|shutdown)' "${LOG[$server]}"
done

echo
echo "validation: $VALIDATION; requests: 10 and 1000 spans x 10 attributes," \
    "$(stat -c %s "$OUT/traces-10.grpc") and $(stat -c %s "$OUT/traces-1000.grpc") bytes with the gRPC prefix"
column -t -s $'\t' "$RESULTS"
echo
echo "median over $ROUNDS rounds (req/s; requests per server CPU-second):"
awk -F'\t' 'NR > 1 {
        key = $3 "\t" $4; keys[key] = 1
        n = ++count[$2, key]; rps[$2, key, n] = $8; eff[$2, key, n] = $14
    }
    function median(a, s, k, n,    i, j, t, v) {
        for (i = 1; i <= n; i++) v[i] = a[s, k, i]
        for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
        return v[int((n + 1) / 2)]
    }
    END {
        print "spans\tconns x streams\tours req/s\ttonic req/s\tours/tonic\tours req/CPU-s\ttonic req/CPU-s"
        for (key in keys) {
            o = median(rps, "ours", key, count["ours", key]); t = median(rps, "tonic", key, count["tonic", key])
            oe = median(eff, "ours", key, count["ours", key]); te = median(eff, "tonic", key, count["tonic", key])
            printf "%s\t%.0f\t%.0f\t%.2f\t%.0f\t%.0f\n", key, o, t, (t > 0 ? o / t : 0), oe, te
        }
    }' "$RESULTS" | sort -t$'\t' -k1,1n -k2,2 | column -t -s $'\t'
echo "(logs and $RESULTS in $OUT/)"
