#!/usr/bin/env bash
# Every test: the Rust suites (unit, golden, property, emulator integration), then the
# official-SDK conformance scenario against a freshly started emulator.
#
# Works from a clean clone on a fresh machine: it needs cargo, python3 (with venv) and
# access to PyPI; it creates .venv itself. The last line printed is the conformance
# summary, `N passed, 0 failed`; the exit status is non-zero if anything failed.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo test --locked --all-targets

# ---------------------------------------------------------------------------------------
# Conformance: the official Alibaba Cloud Python SDKs (pinned in
# tests/conformance/requirements.txt) drive the emulator through the whole scenario with
# both signature schemes (V3 ACS3-HMAC-SHA256 and V1 HMAC-SHA1). Must end "N passed, 0 failed".

# The script and its pins are the official copies from shared/conformance, unmodified.
(cd tests/conformance && sha256sum --check --quiet SHA256SUMS) || {
    echo "tests/conformance differs from the official copies (SHA256SUMS)" >&2
    exit 1
}
if [ -d ../shared/conformance ]; then
    for f in requirements.txt sdk_conformance.py; do
        cmp -s "tests/conformance/$f" "../shared/conformance/$f" || {
            echo "tests/conformance/$f differs from ../shared/conformance/$f" >&2
            exit 1
        }
    done
fi
# Likewise the SDK vectors the signer and the emulator's verifier are tested against.
if [ -d ../shared/vectors ]; then
    for f in signature-v1.json signature-v3.json sdk-requests.json; do
        cmp -s "tests/data/vectors/$f" "../shared/vectors/$f" || {
            echo "tests/data/vectors/$f differs from ../shared/vectors/$f" >&2
            exit 1
        }
    done
fi

PYTHON="${PYTHON:-python3}"
if ! .venv/bin/python -c 'import sys' >/dev/null 2>&1; then
    rm -rf .venv
    "$PYTHON" -m venv .venv || {
        echo "could not create a virtualenv with $PYTHON (on Debian: apt-get install python3-venv)" >&2
        exit 1
    }
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check \
    -r tests/conformance/requirements.txt

cargo build --locked --bin immctl
target_dir="${CARGO_TARGET_DIR:-target}"
immctl="$target_dir/debug/immctl"

# A free loopback port: bind port 0, read it back, release it.
port="$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')"
emulator_log="$(mktemp)"
# Without --state: the fresh test account with the documented key emulator-admin.
"$immctl" emulator --listen "127.0.0.1:$port" >"$emulator_log" 2>&1 &
emulator_pid=$!
cleanup() {
    kill "$emulator_pid" 2>/dev/null || true
    wait "$emulator_pid" 2>/dev/null || true
    rm -f "$emulator_log"
}
trap cleanup EXIT

# Wait until it answers (any HTTP answer will do), at most 20 s.
ready=no
for _ in $(seq 1 200); do
    if .venv/bin/python -c "import urllib.request,sys
try:
    urllib.request.urlopen('http://127.0.0.1:$port/_emulator/stats', timeout=1)
except Exception:
    sys.exit(1)" 2>/dev/null; then
        ready=yes
        break
    fi
    if ! kill -0 "$emulator_pid" 2>/dev/null; then
        echo "emulator exited early:" >&2
        cat "$emulator_log" >&2
        exit 1
    fi
    sleep 0.1
done
if [ "$ready" != yes ]; then
    echo "emulator did not answer on 127.0.0.1:$port within 20 s:" >&2
    cat "$emulator_log" >&2
    exit 1
fi

endpoint="http://127.0.0.1:$port"
.venv/bin/python tests/conformance/sdk_conformance.py \
    --endpoint-ram "$endpoint" --endpoint-imm "$endpoint" --endpoint-sts "$endpoint" \
    --access-key-id emulator-admin --access-key-secret emulator-secret \
    --signature both
