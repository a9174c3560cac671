#!/usr/bin/env bash
# Every test: the Rust suites (unit, golden, property, emulator integration), then the
# official-SDK conformance scenario against a freshly started emulator.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo test --locked --all-targets

# ---------------------------------------------------------------------------------------
# Conformance: the official Alibaba Cloud Python SDKs (pinned in
# tests/conformance/requirements.txt) drive the emulator through the whole scenario with
# both signature schemes (V3 ACS3-HMAC-SHA256 and V1 HMAC-SHA1). Must end "N passed, 0 failed".
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/pip install --quiet --disable-pip-version-check -r tests/conformance/requirements.txt

cargo build --locked --bin immctl
target_dir="${CARGO_TARGET_DIR:-target}"
immctl="$target_dir/debug/immctl"

# A free loopback port: bind port 0, read it back, release it.
port="$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')"
emulator_log="$(mktemp)"
"$immctl" emulator --listen "127.0.0.1:$port" >"$emulator_log" 2>&1 &
emulator_pid=$!
cleanup() {
    kill "$emulator_pid" 2>/dev/null || true
    wait "$emulator_pid" 2>/dev/null || true
    rm -f "$emulator_log"
}
trap cleanup EXIT

# Wait until it answers (any HTTP answer will do).
for _ in $(seq 1 100); do
    if .venv/bin/python -c "import urllib.request,sys
try:
    urllib.request.urlopen('http://127.0.0.1:$port/_emulator/stats', timeout=1)
except Exception:
    sys.exit(1)" 2>/dev/null; then
        break
    fi
    if ! kill -0 "$emulator_pid" 2>/dev/null; then
        echo "emulator exited early:" >&2
        cat "$emulator_log" >&2
        exit 1
    fi
    sleep 0.1
done

endpoint="http://127.0.0.1:$port"
.venv/bin/python tests/conformance/sdk_conformance.py \
    --endpoint-ram "$endpoint" --endpoint-imm "$endpoint" --endpoint-sts "$endpoint" \
    --access-key-id emulator-admin --access-key-secret emulator-secret \
    --signature both
