#!/usr/bin/env bash
# Every test: the Rust suites (unit, golden, property, emulator integration), then the
# official-SDK conformance scenario against a freshly started emulator.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo test --locked --all-targets
