#!/usr/bin/env bash
# Make sure Debian's Chromium is installed, for the status page's screenshot test
# (crates/otlp-gateway/tests/status_page.rs) and for people who want to look at /status
# headless.
#
#   scripts/install-chromium.sh          # idempotent; prints the browser's path last
#
# Installs the `chromium` package with apt-get (as root, or through `sudo -n` when that
# works without a password) if no chromium is on PATH yet. No browser is downloaded from
# anywhere else. Exits non-zero with a message on stderr when it cannot: no apt-get, not
# root and no password-less sudo, or the package cannot be installed.
#
# Environment (optional):
#   CHROMIUM=/path/to/chrome   use this browser instead (checked, not installed)
#   APT_LOCK_TIMEOUT=300       seconds to wait for another apt/dpkg to finish
set -euo pipefail

say() { echo "install-chromium: $*" >&2; }
die() { say "error: $*"; exit 1; }

found() {
    say "using $1 ($("$1" --version 2>/dev/null || echo 'version unknown'))"
    echo "$1"
    exit 0
}

if [[ -n "${CHROMIUM:-}" ]]; then
    [[ -x "$CHROMIUM" ]] || die "CHROMIUM=$CHROMIUM is not an executable file"
    found "$CHROMIUM"
fi

find_browser() {
    local name path
    for name in chromium chromium-browser; do
        if path=$(command -v "$name" 2>/dev/null); then
            echo "$path"
            return 0
        fi
    done
    return 1
}

if path=$(find_browser); then
    found "$path"
fi

command -v apt-get >/dev/null 2>&1 ||
    die "chromium is not installed and apt-get is not available; install Chromium by hand and set CHROMIUM=/path/to/it"

if [[ "$(id -u)" == 0 ]]; then
    sudo=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo=(sudo -n)
else
    die "chromium is not installed, and installing it needs root: run 'sudo apt-get install -y chromium' (or this script as root)"
fi

export DEBIAN_FRONTEND=noninteractive
lock=(-o "DPkg::Lock::Timeout=${APT_LOCK_TIMEOUT:-300}")
started=$SECONDS
say "installing Debian's chromium package with apt-get"
if ! "${sudo[@]}" apt-get install -y -q "${lock[@]}" chromium >&2; then
    say "install failed; refreshing the package lists and trying again"
    "${sudo[@]}" apt-get update -q "${lock[@]}" >&2 || die "apt-get update failed"
    "${sudo[@]}" apt-get install -y -q "${lock[@]}" chromium >&2 ||
        die "apt-get install chromium failed (see above)"
fi
say "installed in $((SECONDS - started)) s"

path=$(find_browser) || die "the chromium package is installed but no chromium is on PATH"
found "$path"
