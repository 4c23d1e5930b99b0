#!/usr/bin/env bash
# Throughput of the OTLP/HTTP receiver under h2load (HTTP/1.1 and h2c) and wrk
# (HTTP/1.1, for latency percentiles), protobuf and OTLP/JSON, on 1 and 2 cores.
#
#   scripts/bench-receiver.sh            # from anywhere; needs h2load (nghttp2-client), wrk, taskset
#
# Environment (all optional):
#   CORES="1 2"          core counts to measure (receiver pinned to cpu 0, or to cpus 0,1)
#   VALIDATION=full      receiver validation: full (prost decode, the default) or framing
#   N_PB=20000 N_JSON=5000   h2load requests per run (bounded by -n)
#   C=16 M=8             h2load clients and max concurrent streams per client (h2c)
#   WRK_SECONDS=10       wrk duration (wrk is time-bounded), WRK=0 to skip wrk
#
# 1 core: the receiver runs on cpu 0 with 1 tokio worker, the load generator on cpu 1.
# 2 cores: the receiver runs on cpus 0,1 with 2 workers and the load generator SHARES
# those cpus (the machine has only 2), so 2-core numbers include the client's CPU cost.
# Everything goes to 127.0.0.1 only. The receiver is stopped with SIGINT at the end
# (and bounded by --seconds in any case).
set -euo pipefail

cd "$(dirname "$0")/.."
CORES=${CORES:-"1 2"}
VALIDATION=${VALIDATION:-full}
N_PB=${N_PB:-20000}
N_JSON=${N_JSON:-5000}
C=${C:-16}
M=${M:-8}
WRK_SECONDS=${WRK_SECONDS:-10}
WRK=${WRK:-1}
OUT=target/receiver-bench
BIN=target/release/examples/receiver_bench
SPANS=100

for tool in h2load taskset; do
    command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 1; }
done
if [ "$WRK" = 1 ] && ! command -v wrk >/dev/null; then
    echo "missing wrk (WRK=0 to skip)" >&2
    exit 1
fi

cargo build --release -q -p otlp-transport-http --example receiver_bench
mkdir -p "$OUT"

RECEIVER_PID=
cleanup() {
    if [ -n "$RECEIVER_PID" ] && kill -0 "$RECEIVER_PID" 2>/dev/null; then
        kill -INT "$RECEIVER_PID" 2>/dev/null || true
        wait "$RECEIVER_PID" 2>/dev/null || true
    fi
}
trap cleanup EXIT

RESULTS=$OUT/results-$VALIDATION.tsv
printf 'cores\ttool\tproto\tencoding\trequests\tok\treq/s\tbody MB/s\tspans/s\tlat mean\tlat p50\tlat p99\trcv CPU s\tspans/rcv-CPU-s\n' >"$RESULTS"

# CPU time (user + system, in clock ticks) the receiver process has used so far.
TCK=$(getconf CLK_TCK)
receiver_ticks() {
    awk '{ print $14 + $15 }' "/proc/$RECEIVER_PID/stat"
}

# h2load CORES PROTO(h1|h2c) ENCODING(pb|json) N PORT LOADCPUS
run_h2load() {
    local cores=$1 proto=$2 enc=$3 n=$4 port=$5 cpus=$6
    local file=$OUT/traces-$SPANS.$enc ctype=application/x-protobuf flags=()
    [ "$enc" = json ] && ctype=application/json
    [ "$proto" = h1 ] && flags=(--h1)
    local log=$OUT/h2load-$VALIDATION-$cores-$proto-$enc.log
    local cmd=(taskset -c "$cpus" h2load -n "$n" -c "$C" -m "$M" "${flags[@]}"
        -H "content-type: $ctype" -d "$file" "http://127.0.0.1:$port/v1/traces")
    echo "+ ${cmd[*]}" | tee "$log"
    local t0 t1
    t0=$(receiver_ticks)
    "${cmd[@]}" >>"$log" 2>&1
    t1=$(receiver_ticks)
    local bytes rps ok mean
    bytes=$(stat -c %s "$file")
    rps=$(awk '/^finished in/ {gsub(",", "", $4); print $4}' "$log")
    ok=$(awk '/^status codes:/ {print $3}' "$log")
    mean=$(awk '/^time for request:/ {print $6}' "$log")
    awk -v c="$cores" -v p="$proto" -v e="$enc" -v n="$n" -v ok="$ok" -v r="$rps" \
        -v b="$bytes" -v s="$SPANS" -v m="$mean" -v cpu="$((t1 - t0))" -v tck="$TCK" 'BEGIN {
        printf "%s\th2load\t%s\t%s\t%d\t%s\t%.0f\t%.1f\t%.0f\t%s\t-\t-\t%.2f\t%.0f\n",
            c, p, e, n, ok, r, r * b / 1e6, r * s, m, cpu / tck, ok * s / (cpu / tck) }' >>"$RESULTS"
}

# wrk CORES ENCODING PORT LOADCPUS  (HTTP/1.1, C connections, 1 thread)
run_wrk() {
    local cores=$1 enc=$2 port=$3 cpus=$4
    local file=$OUT/traces-$SPANS.$enc ctype=application/x-protobuf
    [ "$enc" = json ] && ctype=application/json
    local lua=$OUT/post-$enc.lua log=$OUT/wrk-$VALIDATION-$cores-$enc.log
    cat >"$lua" <<EOF
wrk.method = "POST"
wrk.headers["Content-Type"] = "$ctype"
local f = assert(io.open("$PWD/$file", "rb"))
wrk.body = f:read("*a")
f:close()
EOF
    local cmd=(taskset -c "$cpus" wrk -t 1 -c "$C" -d "${WRK_SECONDS}s" --latency -s "$lua"
        "http://127.0.0.1:$port/v1/traces")
    echo "+ ${cmd[*]}" | tee "$log"
    local t0 t1
    t0=$(receiver_ticks)
    "${cmd[@]}" >>"$log" 2>&1
    t1=$(receiver_ticks)
    local bytes
    bytes=$(stat -c %s "$file")
    awk -v c="$cores" -v e="$enc" -v b="$bytes" -v s="$SPANS" -v cpu="$((t1 - t0))" -v tck="$TCK" '
        /requests in/ { n = $1 }
        /Non-2xx/ { bad = $5 }
        /^Requests\/sec:/ { r = $2 }
        /^ +Latency +[0-9]/ { mean = $2 }
        /^ +50%/ { p50 = $2 }
        /^ +99%/ { p99 = $2 }
        END { printf "%s\twrk\th1\t%s\t%d\t%d\t%.0f\t%.1f\t%.0f\t%s\t%s\t%s\t%.2f\t%.0f\n",
            c, e, n, n - bad, r, r * b / 1e6, r * s, mean, p50, p99,
            cpu / tck, (n - bad) * s / (cpu / tck) }' "$log" >>"$RESULTS"
}

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for cores in $CORES; do
    if [ "$cores" = 1 ]; then
        rcpus=0 lcpus=1
    else
        rcpus=0,1 lcpus=0,1
    fi
    rlog=$OUT/receiver-$VALIDATION-$cores.log
    taskset -c "$rcpus" "$BIN" --port 0 --workers "$cores" --seconds 1800 \
        --validation "$VALIDATION" --out "$OUT" >"$rlog" 2>&1 &
    RECEIVER_PID=$!
    port=
    for _ in $(seq 50); do
        port=$(sed -n 's/^listening 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$rlog")
        [ -n "$port" ] && break
        sleep 0.1
    done
    [ -n "$port" ] || { echo "receiver did not start" >&2; cat "$rlog" >&2; exit 1; }
    echo "== $cores core(s): receiver pid $RECEIVER_PID on cpus $rcpus, port $port, load on cpus $lcpus"
    # Warm-up (connections, allocator): not recorded.
    taskset -c "$lcpus" h2load -n 1000 -c "$C" -m "$M" -H 'content-type: application/x-protobuf' \
        -d "$OUT/traces-$SPANS.pb" "http://127.0.0.1:$port/v1/traces" >/dev/null 2>&1
    for enc in pb json; do
        n=$N_PB
        [ "$enc" = json ] && n=$N_JSON
        run_h2load "$cores" h1 "$enc" "$n" "$port" "$lcpus"
        run_h2load "$cores" h2c "$enc" "$n" "$port" "$lcpus"
        if [ "$WRK" = 1 ]; then run_wrk "$cores" "$enc" "$port" "$lcpus"; fi
    done
    echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
    kill -INT "$RECEIVER_PID"
    wait "$RECEIVER_PID" || true
    RECEIVER_PID=
    grep -E '^(received|shutdown)' "$rlog"
done

echo
echo "validation: $VALIDATION; request: $SPANS spans x 10 attributes," \
    "$(stat -c %s "$OUT/traces-$SPANS.pb") B protobuf, $(stat -c %s "$OUT/traces-$SPANS.json") B JSON"
column -t -s $'\t' "$RESULTS"
echo "(logs and $RESULTS in $OUT/)"
