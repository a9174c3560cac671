"""shellcheck the shell inside CI workflow files.

GitHub Actions: every `run:` step, as GitHub runs it on Linux (`bash -e -o pipefail`).
GitLab CI: each job's before_script + script, joined as the runner does, as POSIX sh (the
jobs run in docker:cli, an Alpine image: busybox ash).
`${{ ... }}` expressions become a placeholder variable, so unquoted uses are still flagged.

Usage: python shellcheck_ci.py SHELLCHECK FILE...   (exit 1 on any finding)
"""

import re
import subprocess
import sys
import tempfile

import yaml

EXPR = re.compile(r"\$\{\{.*?\}\}", re.S)


def github_scripts(doc):
    for job_id, job in (doc.get("jobs") or {}).items():
        for i, step in enumerate(job.get("steps") or []):
            if "run" in step:
                name = step.get("name") or step.get("id") or f"step {i + 1}"
                body = EXPR.sub("${GITHUB_EXPR}", step["run"])
                yield f"{job_id} / {name}", "bash", "set -eo pipefail\n" + body


def gitlab_scripts(doc):
    templates = {k: v for k, v in doc.items() if isinstance(v, dict)}

    def resolve(job, key):
        if key in job:
            return job[key]
        parent = job.get("extends")
        return resolve(templates[parent], key) if parent in templates else None

    for job_id, job in templates.items():
        if job_id.startswith(".") or "script" not in job:
            continue
        lines = (resolve(job, "before_script") or []) + job["script"]
        yield job_id, "sh", "set -e\n" + "\n".join(lines)


def main():
    shellcheck, *files = sys.argv[1:]
    failed = False
    for path in files:
        doc = yaml.safe_load(open(path))
        scripts = gitlab_scripts(doc) if "jobs" not in doc else github_scripts(doc)
        for where, shell, text in scripts:
            with tempfile.NamedTemporaryFile("w", suffix=".sh") as f:
                f.write(text + "\n")
                f.flush()
                r = subprocess.run(
                    [shellcheck, f"--shell={shell}", "--format=gcc", f.name],
                    capture_output=True, text=True,
                )
            if r.returncode != 0:
                failed = True
                out = r.stdout.replace(f.name, f"{path} [{where}] (line-1)")
                print(out, end="")
            else:
                print(f"{path} [{where}]: ok")
    sys.exit(1 if failed else 0)


main()
