"""Run the immctl steps of the shipped CI workflows, verbatim, against a local emulator.

The GitHub workflow's `run:` steps (bash -e -o pipefail, with GITHUB_OUTPUT and
GITHUB_STEP_SUMMARY files, as the runner does) and the GitLab jobs' `script:` lines (sh -e)
are taken from deploy/ci/ and executed in a scratch copy of manifests/, with the built
immctl on PATH and the emulator's test-only key in the environment. Steps that need the
hosting service (installing the image with docker, credentials actions, posting comments)
are skipped by name. Checked, for each workflow:

  pull request: validate passes; reconcile exits 2 (changes), plan.md is the Markdown plan
  merge:        plan-main says changes=true and saves plan.json; apply applies it; planning
                again says changes=false
  stale:        a live change between plan-main and apply makes the apply step fail,
                changing nothing
Each job runs in its own fresh copy of manifests/; the plan files travel between jobs as
the artifacts do.

Usage: python3 run_ci_steps.py IMMCTL_BIN REPO_ROOT SCRATCH_DIR
"""

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import urllib.request

import yaml

immctl, root, scratch = sys.argv[1:4]
SKIP = re.compile(r"Install immctl|Post the plan|credentials", re.I)


def start_emulator():
    p = subprocess.Popen([immctl, "emulator", "--listen", "127.0.0.1:0"],
                         stderr=subprocess.PIPE, text=True)
    for line in p.stderr:
        m = re.search(r"listening on (http://\S+)", line)
        if m:
            # Keep draining its stderr so that it can never block on a full pipe.
            threading.Thread(target=lambda: [None for _ in p.stderr], daemon=True).start()
            return p, m.group(1)
    raise SystemExit("the emulator did not start")


def condition_holds(expr, step_outputs):
    """The step `if:` conditions this workflow uses: comparisons of step outputs, `&&`."""
    def value(m):
        return repr(step_outputs.get(m.group(1), {}).get(m.group(2), ""))
    py = re.sub(r"steps\.([\w-]+)\.outputs\.([\w-]+)", value, expr).replace("&&", " and ")
    if not re.fullmatch(r"[\s'\w!=-]*(and[\s'\w!=-]*)*", py):
        raise SystemExit(f"unsupported condition: {expr}")
    return eval(py)  # only quoted literals, ==, != and `and` remain


def checkout(name, source=None):
    """A job's fresh checkout: a copy of manifests/ (from `source`, default the repo)."""
    d = os.path.join(scratch, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    shutil.copytree(os.path.join(source or root, "manifests"), os.path.join(d, "manifests"))
    # The demo seed is for --emulator; this emulator starts empty.
    seed = os.path.join(d, "manifests", "demo-live-state.yaml")
    if os.path.exists(seed):
        os.remove(seed)
    return d


def artifact(src, dst, names=("plan.md", "plan.json")):
    """What an upload-artifact / download-artifact pair (or GitLab `needs:`) carries."""
    for n in names:
        shutil.copy(os.path.join(src, n), os.path.join(dst, n))


def edit(d, old, new):
    path = os.path.join(d, "manifests", "projects.yaml")
    text = open(path).read()
    assert old in text
    open(path, "w").write(text.replace(old, new))


def run(script, shell, cwd, env):
    flags = ["-e", "-o", "pipefail"] if shell == "bash" else ["-e"]
    return subprocess.run([shell, *flags, "-c", script], cwd=cwd, env=env,
                          capture_output=True, text=True)


def outputs(path):
    out = {}
    if os.path.exists(path):
        for line in open(path):
            if "=" in line:
                k, v = line.rstrip("\n").split("=", 1)
                out[k] = v
    return out


problems = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        problems.append(what)


def github(env, endpoint):
    doc = yaml.safe_load(open(os.path.join(root, "deploy/ci/github-actions/immctl-plan.yml")))
    env = {**env, **doc["env"]}

    def job(name, cwd, expect_ok=True):
        res = {}
        step_outputs = {}
        for step in doc["jobs"][name]["steps"]:
            if "run" not in step or SKIP.search(step.get("name", "")):
                continue
            if "if" in step and not condition_holds(step["if"], step_outputs):
                continue
            gh_out = os.path.join(cwd, ".gh-output")
            open(gh_out, "w").close()
            e = {**env, "GITHUB_OUTPUT": gh_out,
                 "GITHUB_STEP_SUMMARY": os.path.join(cwd, ".gh-summary"),
                 "RUNNER_TEMP": cwd}
            r = run(step["run"], "bash", cwd, e)
            res[step.get("id") or step["name"]] = (r, outputs(gh_out))
            if "id" in step:
                step_outputs[step["id"]] = outputs(gh_out)
            if r.returncode != 0:
                if expect_ok:
                    print(r.stdout[-2000:], r.stderr[-2000:])
                break
        return res

    pr_dir = checkout("gh-plan-pr")
    pr = job("plan-pr", pr_dir)
    check(pr["immctl validate"][0].returncode == 0, "github plan-pr: immctl validate")
    check(pr["plan"][1].get("exitcode") == "2", "github plan-pr: reconcile exit code 2 (changes)")
    md = open(os.path.join(pr_dir, "plan.md")).read()
    check(md.startswith("## immctl plan"), "github plan-pr: plan.md is the Markdown plan")
    fail = pr.get("Fail on plan errors")
    check(fail is None or fail[0].returncode == 0, "github plan-pr: no plan error")

    # Merge: plan-main and apply are separate jobs with separate checkouts of the same
    # commit; the plan travels as the artifact.
    main_dir = checkout("gh-plan-main")
    main = job("plan-main", main_dir)
    check(main["plan"][1].get("changes") == "true", "github plan-main: changes=true, plan.json saved")
    apply_dir = checkout("gh-apply")
    artifact(main_dir, apply_dir)
    apply = job("apply", apply_dir)
    check(all(r.returncode == 0 for r, _ in apply.values()), "github apply: immctl apply plan.json")
    again = job("plan-main", checkout("gh-plan-main-2"))
    check(again["plan"][1].get("changes") == "false", "github plan-main after apply: changes=false")

    # Stale: a new commit is planned; before the approved apply runs, someone changes the
    # same project in the cloud (simulated with another immctl run).
    main_dir = checkout("gh-plan-main-3")
    edit(main_dir, "datasetMaxBindCount: 5", "datasetMaxBindCount: 7")
    main = job("plan-main", main_dir)
    check(main["plan"][1].get("changes") == "true", "github plan-main: a new change")
    console = checkout("console")
    edit(console, "datasetMaxBindCount: 5", "datasetMaxBindCount: 8")
    r = run('immctl reconcile manifests --owner "$IMMCTL_OWNER"', "bash", console, env)
    assert r.returncode == 0, r.stderr
    before = urllib.request.urlopen(endpoint + "/_emulator/state").read()
    apply_dir = checkout("gh-apply-3", main_dir)
    artifact(main_dir, apply_dir)
    apply = job("apply", apply_dir, expect_ok=False)
    r = apply["immctl apply plan.json"][0]
    after = urllib.request.urlopen(endpoint + "/_emulator/state").read()
    check(r.returncode == 1 and "stale plan" in r.stderr and json.loads(before) == json.loads(after),
          "github apply of a stale plan (live state changed since plan-main): refused, nothing changed")


def gitlab(env):
    doc = yaml.safe_load(open(os.path.join(root, "deploy/ci/gitlab/immctl-plan.gitlab-ci.yml")))
    env = {**env, **{k: str(v) for k, v in doc["variables"].items()
                     if not k.startswith("DOCKER_")}}

    def job(name, cwd):
        lines = doc[name]["script"]
        if name == "immctl-plan":  # the MR note needs the GitLab API: run the rest
            lines = [l for l in lines if "curl" not in l]
        return run("\n".join(lines), "sh", cwd, env)

    d = checkout("gl-plan")
    r = job("immctl-plan", d)
    check(r.returncode == 0 and open(os.path.join(d, "plan.md")).read().startswith("## immctl plan"),
          "gitlab immctl-plan: validate + Markdown plan")
    main_dir = checkout("gl-plan-main")
    r = job("immctl-plan-main", main_dir)
    check(r.returncode == 0 and os.path.exists(os.path.join(main_dir, "plan.json")),
          "gitlab immctl-plan-main: plan.json saved")
    apply_dir = checkout("gl-apply")
    artifact(main_dir, apply_dir)
    r = job("immctl-apply", apply_dir)
    check(r.returncode == 0, "gitlab immctl-apply: immctl apply plan.json")
    if r.returncode:
        print(r.stdout[-2000:], r.stderr[-2000:])
    r = run('immctl reconcile "$MANIFESTS" --dry-run --detailed-exitcode', "sh", checkout("gl-again"), env)
    check(r.returncode == 0, "gitlab: planning again finds no changes")


proc, endpoint = start_emulator()
try:
    env = {**os.environ,
           "PATH": os.path.dirname(os.path.abspath(immctl)) + os.pathsep + os.environ["PATH"],
           "ALIBABA_CLOUD_ACCESS_KEY_ID": "emulator-admin",
           "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "emulator-secret",
           "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true",
           "ALIBABA_CLOUD_CLI_PROFILE_DISABLED": "true",
           "IMMCTL_ENDPOINT_RAM": endpoint, "IMMCTL_ENDPOINT_IMM": endpoint,
           "IMMCTL_ENDPOINT_STS": endpoint}
    for k in ("ALIBABA_CLOUD_SECURITY_TOKEN", "ALIBABA_CLOUD_ROLE_ARN", "IMMCTL_CONFIG"):
        env.pop(k, None)
    github(env, endpoint)
    urllib.request.urlopen(urllib.request.Request(endpoint + "/_emulator/reset", method="POST"))
    gitlab(env)
finally:
    proc.terminate()
    proc.wait()
sys.exit(1 if problems else 0)
