#!/usr/bin/env bash
# Create or update a Python virtual environment holding an OpenTelemetry SDK peer for
# interop tests, and print its path on stdout (nothing else goes to stdout).
#
#   interop/setup-venv.sh proto   # SDK + official OTLP/HTTP protobuf exporter
#   interop/setup-venv.sh json    # SDK + official OTLP/HTTP JSON exporter (own venv:
#                                 # its pins conflict with the protobuf exporter's)
#   interop/setup-venv.sh grpc    # SDK + official OTLP/gRPC exporter, grpcio and the
#                                 # generated OTLP service classes (own venv: adding
#                                 # grpcio to `proto` would rebuild that one)
#
# The venv lives in $OTLP_INTEROP_DIR/venv-KIND (default: ${CARGO_TARGET_DIR:-target}/interop).
# It is rebuilt only when the requirements file, the Python version or this script's
# install recipe change: a stamp file inside the venv records their hash. Concurrent
# callers (parallel test binaries) are serialised with flock on a lock file per venv, so
# one installs and the others wait, then reuse it.
#
# Exit status: 0 with the path printed; 2 on bad usage; 3 when python3 is missing
# (callers may skip on that one alone); 1 on any other failure, with pip's output on
# stderr. Environment: PYTHON (default python3), OTLP_INTEROP_DIR, CARGO_TARGET_DIR,
# OTLP_INTEROP_LOCK_TIMEOUT (seconds to wait for another installer, default 600).
set -euo pipefail

# Bump when the install steps below change in a way that needs fresh venvs.
RECIPE_VERSION=1

usage() {
    echo "usage: $0 proto|json|grpc" >&2
    exit 2
}

[ $# -eq 1 ] || usage
kind=$1
case "$kind" in
    proto | json | grpc) ;;
    *) usage ;;
esac

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_root=$(dirname "$script_dir")
requirements="$script_dir/python/requirements-$kind.txt"
[ -f "$requirements" ] || {
    echo "setup-venv: missing $requirements" >&2
    exit 1
}

python=${PYTHON:-python3}
if ! command -v "$python" >/dev/null 2>&1; then
    echo "setup-venv: '$python' not found on PATH" >&2
    exit 3
fi
python_version=$("$python" -c 'import sys; print(sys.version)' 2>&1) || {
    echo "setup-venv: '$python' does not run: $python_version" >&2
    exit 3
}

target_dir=${CARGO_TARGET_DIR:-$repo_root/target}
case "$target_dir" in
    /*) ;;
    *) target_dir="$repo_root/$target_dir" ;;
esac
interop_dir=${OTLP_INTEROP_DIR:-$target_dir/interop}
mkdir -p "$interop_dir"
venv="$interop_dir/venv-$kind"
stamp="$venv/.otlp-interop-stamp"

want=$(
    {
        echo "recipe $RECIPE_VERSION"
        echo "python $python_version"
        cat "$requirements"
    } | sha256sum | cut -d' ' -f1
)

is_current() {
    [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]
}

# Fast path without the lock: a complete venv is never modified in place (a rebuild
# removes the stamp first), so a matching stamp means it is ready.
if is_current; then
    echo "$venv"
    exit 0
fi

exec 9>"$interop_dir/venv-$kind.lock"
if ! flock -w "${OTLP_INTEROP_LOCK_TIMEOUT:-600}" 9; then
    echo "setup-venv: timed out waiting for $interop_dir/venv-$kind.lock" >&2
    exit 1
fi

# Another process may have finished the install while we waited.
if is_current; then
    echo "$venv"
    exit 0
fi

echo "setup-venv: installing $kind peer into $venv (up to a minute)" >&2
rm -f "$stamp"
rm -rf "$venv"
log="$interop_dir/venv-$kind.pip.log"
if ! "$python" -m venv "$venv" >"$log" 2>&1; then
    echo "setup-venv: '$python -m venv' failed (on Debian: apt-get install python3-venv):" >&2
    cat "$log" >&2
    exit 1
fi
# Bounded: pip retries a dead index a few times with a per-request timeout, then fails.
if ! PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 \
    "$venv/bin/python" -m pip install --timeout 60 --retries 3 \
    --only-binary=:all: -r "$requirements" >>"$log" 2>&1; then
    echo "setup-venv: pip install -r $requirements failed:" >&2
    cat "$log" >&2
    exit 1
fi
# Fail here, not in the test, if the environment is inconsistent.
if ! "$venv/bin/python" -m pip check >>"$log" 2>&1; then
    echo "setup-venv: pip check failed in $venv:" >&2
    cat "$log" >&2
    exit 1
fi

echo "$want" >"$stamp.tmp"
mv "$stamp.tmp" "$stamp"
echo "setup-venv: $kind peer ready" >&2
echo "$venv"
