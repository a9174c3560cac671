#!/usr/bin/env bash
# Offline checks of deploy/ (no cluster, no network once the venv exists):
#   1. yamllint (deploy/.yamllint.yaml) on every YAML file under deploy/;
#   2. `kubectl kustomize` renders deploy/ and every overlay;
#   3. kubernetes-validate --strict (JSON schemas shipped in the wheel, unknown fields are
#      errors) on every plain manifest and every rendering, for the oldest and newest
#      Kubernetes we support;
#   4. the properties the docs promise, asserted on the renderings (one replica, Recreate,
#      locked-down securityContext, probes, limits, RRSA wiring, Service/ServiceMonitor
#      selectors, the ConfigMap overlay really drops git-sync);
#   5. the CI workflows against their JSON schemas (check-jsonschema's vendored schemas).
# Installs its tools into a venv (.venv/ship, or $SHIP_VENV). kubectl is preinstalled.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=${SHIP_VENV:-$PWD/.venv/ship}
versions=(1.28.0 1.37.0)
start=$(date +%s)
step() { printf '== [%3ds] %s\n' "$(($(date +%s) - start))" "$*"; }

step "venv $venv"
if ! [[ -x $venv/bin/kubernetes-validate && -x $venv/bin/yamllint && -x $venv/bin/check-jsonschema ]]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check \
        kubernetes-validate yamllint check-jsonschema
fi
command -v kubectl >/dev/null || { echo "error: kubectl is needed for 'kubectl kustomize'" >&2; exit 1; }

step "yamllint deploy/"
"$venv/bin/yamllint" --strict -c deploy/.yamllint.yaml deploy/

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
step "kubectl kustomize"
kubectl kustomize deploy/ >"$out/default.yaml"
kubectl kustomize deploy/overlays/manifests-from-configmap >"$out/configmap-overlay.yaml"
wc -l "$out"/*.yaml

# Plain manifests (everything Kubernetes would accept as-is; kustomizations and the
# immctl manifests under overlays/*/manifests are not Kubernetes objects).
mapfile -t plain < <(find deploy/base deploy/optional -name '*.yaml' ! -name kustomization.yaml | sort)
for v in "${versions[@]}"; do
    step "kubernetes-validate --strict -k $v"
    # The ServiceMonitor CRD has no schema here (only a warning); step 4 checks it.
    "$venv/bin/kubernetes-validate" --strict --quiet -k "$v" "${plain[@]}" \
        "$out/default.yaml" "$out/configmap-overlay.yaml"
done

step "promised properties"
"$venv/bin/python" - "$out/default.yaml" "$out/configmap-overlay.yaml" deploy/optional/servicemonitor.yaml <<'PY'
import sys, yaml

def load(path):
    return [d for d in yaml.safe_load_all(open(path)) if d]

problems = []
def check(cond, what):
    if not cond:
        problems.append(what)

def by_kind(docs, kind):
    found = [d for d in docs if d["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]

def check_rendering(name, docs, git_sync):
    dep = by_kind(docs, "Deployment")
    svc = by_kind(docs, "Service")
    spec = dep["spec"]
    pod = spec["template"]["spec"]
    check(spec["replicas"] == 1, f"{name}: replicas must be 1")
    check(spec["strategy"] == {"type": "Recreate"}, f"{name}: strategy must be Recreate")
    psc = pod["securityContext"]
    check(psc.get("runAsNonRoot") is True, f"{name}: pod runAsNonRoot")
    check(psc.get("seccompProfile") == {"type": "RuntimeDefault"}, f"{name}: seccomp RuntimeDefault")
    containers = pod["containers"] + pod.get("initContainers", [])
    for c in containers:
        sc = c.get("securityContext", {})
        check(sc.get("allowPrivilegeEscalation") is False, f"{name}/{c['name']}: allowPrivilegeEscalation false")
        check(sc.get("readOnlyRootFilesystem") is True, f"{name}/{c['name']}: readOnlyRootFilesystem")
        check(sc.get("capabilities", {}).get("drop") == ["ALL"], f"{name}/{c['name']}: drop ALL")
        res = c.get("resources", {})
        for kind in ("requests", "limits"):
            check({"cpu", "memory"} <= set(res.get(kind, {})), f"{name}/{c['name']}: resources.{kind}")
    names = [c["name"] for c in containers]
    check(("git-sync" in names) == git_sync, f"{name}: git-sync present={git_sync} expected, got {names}")
    immctl = next(c for c in pod["containers"] if c["name"] == "immctl")
    ports = {p["name"]: p["containerPort"] for p in immctl["ports"]}
    check(ports.get("http") == 9090, f"{name}: immctl port http=9090")
    check(immctl["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}, f"{name}: liveness /healthz")
    check(immctl["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}, f"{name}: readiness /readyz")
    check(immctl["args"][0] == "run", f"{name}: immctl runs the daemon")
    env = {e["name"]: e.get("value") for e in immctl["env"]}
    for var in ("ALIBABA_CLOUD_ROLE_ARN", "ALIBABA_CLOUD_OIDC_PROVIDER_ARN", "ALIBABA_CLOUD_OIDC_TOKEN_FILE"):
        check(var in env, f"{name}: env {var}")
    mounts = {m["name"]: m["mountPath"] for m in immctl["volumeMounts"]}
    vols = {v["name"]: v for v in pod["volumes"]}
    token = vols["rrsa-oidc-token"]["projected"]["sources"][0]["serviceAccountToken"]
    check(token["audience"] == "sts.aliyuncs.com", f"{name}: RRSA token audience")
    check(env.get("ALIBABA_CLOUD_OIDC_TOKEN_FILE") == f"{mounts['rrsa-oidc-token']}/{token['path']}",
          f"{name}: OIDC token file path matches the projected volume")
    check(env.get("IMMCTL_CONFIG", "").startswith(mounts["settings"] + "/"), f"{name}: IMMCTL_CONFIG in the settings mount")
    cm = vols["settings"]["configMap"]["name"]
    check(any(d["kind"] == "ConfigMap" and d["metadata"]["name"] == cm for d in docs), f"{name}: settings ConfigMap exists")
    for v in vols.values():
        if "configMap" in v:
            check(any(d["kind"] == "ConfigMap" and d["metadata"]["name"] == v["configMap"]["name"] for d in docs),
                  f"{name}: volume {v['name']} names an existing ConfigMap")
    labels = spec["template"]["metadata"]["labels"]
    check(all(labels.get(k) == v for k, v in svc["spec"]["selector"].items()), f"{name}: Service selects the pod")
    check(all(labels.get(k) == v for k, v in spec["selector"]["matchLabels"].items()), f"{name}: Deployment selector")
    check(svc["spec"]["ports"][0]["targetPort"] == "http", f"{name}: Service targets port http")
    check(pod["serviceAccountName"] == by_kind(docs, "ServiceAccount")["metadata"]["name"], f"{name}: ServiceAccount")
    return svc

default = load(sys.argv[1])
svc = check_rendering("default", default, git_sync=True)
check_rendering("configmap-overlay", load(sys.argv[2]), git_sync=False)
sm = load(sys.argv[3])[0]
check(all(svc["metadata"]["labels"].get(k) == v for k, v in sm["spec"]["selector"]["matchLabels"].items()),
      "ServiceMonitor selects the Service")
check(sm["metadata"]["namespace"] == svc["metadata"]["namespace"], "ServiceMonitor in the Service's namespace")
check({e["port"] for e in sm["spec"]["endpoints"]} <= {p["name"] for p in svc["spec"]["ports"]},
      "ServiceMonitor endpoint port exists on the Service")
for p in problems:
    print("FAIL", p)
if problems:
    sys.exit(1)
print("ok: all promised properties hold")
PY

step "CI workflows against their schemas"
"$venv/bin/check-jsonschema" --builtin-schema vendor.github-workflows deploy/ci/github-actions/*.yml
"$venv/bin/check-jsonschema" --builtin-schema vendor.gitlab-ci deploy/ci/gitlab/*.yml

step "deploy checks passed"
