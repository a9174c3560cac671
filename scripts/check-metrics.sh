#!/usr/bin/env bash
# The daemon's /metrics text, as a running `immctl run` serves it, through a real Prometheus
# exposition parser and linter: `promtool check metrics` (rc 0 = parsed and no lint problem:
# HELP on every family, `_total` on counters, units in names...).
#
# Works on a fresh Debian machine: installs promtool (Debian package `prometheus`; the
# service is not started) when it is missing, idempotently. Needs cargo and python3.
# Called by scripts/test-all.sh; runs on its own too: scripts/check-metrics.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

if ! command -v promtool >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "check-metrics: installing promtool (Debian package prometheus)"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends prometheus >/dev/null
    else
        echo "check-metrics: promtool is missing; install it with" \
            "'apt-get install --no-install-recommends prometheus' (Debian) and run again" >&2
        exit 1
    fi
fi
promtool --version | head -1

cargo build --locked --bin immctl
immctl="$root/${CARGO_TARGET_DIR:-target}/debug/immctl"
[[ $immctl = /* ]] || immctl="$root/$immctl"

work="$(mktemp -d)"
cp -r manifests "$work/"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')"
http() { # http PATH -> prints "CODE" then the body to $work/body
    python3 - "$port" "$1" "$work/body" <<'PY'
import sys, urllib.request, urllib.error
port, path, out = sys.argv[1], sys.argv[2], sys.argv[3]
try:
    r = urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5)
    code, body = r.status, r.read()
except urllib.error.HTTPError as e:
    code, body = e.code, e.read()
except Exception:
    code, body = 0, b""
open(out, "wb").write(body)
print(code)
PY
}

# The example manifests against the embedded emulator (seeded from the demo account), so the
# first tick applies changes and the text holds every kind of series.
# --adopt: the manifests move a project onto the demo account's unowned role (as in the
# README's `reconcile --emulator --adopt`); without it the plan is held back (IMM014).
(cd "$work" && exec "$immctl" run --emulator --adopt --listen "127.0.0.1:$port" --interval 2s) \
    >"$work/daemon.log" 2>&1 &
pid=$!
cleanup() {
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

ready=no
for _ in $(seq 1 600); do
    if [ "$(http /readyz)" = 200 ]; then
        ready=yes
        break
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "check-metrics: immctl run exited early:" >&2
        cat "$work/daemon.log" >&2
        exit 1
    fi
    sleep 0.1
done
if [ "$ready" != yes ]; then
    echo "check-metrics: /readyz never answered 200 within 60 s:" >&2
    cat "$work/daemon.log" >&2
    exit 1
fi

code="$(http /metrics)"
[ "$code" = 200 ] || { echo "check-metrics: GET /metrics answered $code" >&2; exit 1; }
cp "$work/body" "$work/metrics.txt"
for series in immctl_ticks_total immctl_tick_duration_seconds_bucket immctl_drifted_resources \
    immctl_changes_applied_total immctl_api_calls_total immctl_last_success_timestamp_seconds; do
    grep -q "^$series" "$work/metrics.txt" || {
        echo "check-metrics: $series missing from /metrics:" >&2
        cat "$work/metrics.txt" >&2
        exit 1
    }
done
if ! promtool check metrics <"$work/metrics.txt"; then
    echo "check-metrics: promtool rejected the /metrics text:" >&2
    cat "$work/metrics.txt" >&2
    exit 1
fi
echo "check-metrics: promtool accepts /metrics ($(grep -c '^# TYPE' "$work/metrics.txt") families, $(grep -vc '^#' "$work/metrics.txt") samples)"

# SIGTERM: exit 0.
kill -TERM "$pid"
status=0
wait "$pid" || status=$?
if [ "$status" != 0 ]; then
    echo "check-metrics: immctl run exited $status after SIGTERM:" >&2
    cat "$work/daemon.log" >&2
    exit 1
fi
echo "check-metrics: immctl run exited 0 after SIGTERM"
