"""docs/ci.md's GitHub Actions workflow runs: its `run:` steps, in order, as GitHub would run them,
in a folder holding the example plug-in model (examples/my_gan.py)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import yaml

REPO = Path(__file__).resolve().parents[1]
BASELINE = "ci/genbench-baseline.json"


def _workflow() -> dict:
    page = (REPO / "docs" / "ci.md").read_text(encoding="utf-8")
    (block,) = re.findall(r"```yaml\n(.*?)```", page, re.DOTALL)
    return yaml.safe_load(block)


def _runs(step: dict, repo: Path, outcomes: dict[str, str]) -> bool:
    """Whether GitHub would run this step, for the conditions the workflow uses (any other fails the test)."""
    condition = step.get("if")
    if condition is None:
        return all(outcome == "success" for outcome in outcomes.values())
    if condition == "always()":
        return True
    if condition == f"hashFiles('{BASELINE}') == ''":
        return not (repo / BASELINE).exists()
    match = re.fullmatch(r"steps\.(\w+)\.outcome == 'success'", condition)
    assert match, f"the test does not know the condition {condition!r}"
    return outcomes.get(match.group(1)) == "success"


def test_the_ci_workflow_runs_its_steps_in_order(tmp_path):
    workflow = _workflow()
    assert workflow[True] == ["push", "pull_request"]  # YAML 1.1 reads the key `on` as True
    (job,) = workflow["jobs"].values()
    repo = tmp_path / "my-repo"
    repo.mkdir()
    shutil.copy(REPO / "examples" / "my_gan.py", repo / "my_gan.py")
    summary_page = tmp_path / "step-summary.md"
    env = {**os.environ, "GITHUB_STEP_SUMMARY": str(summary_page), "OMP_NUM_THREADS": "1",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    outcomes: dict[str, str] = {}
    ran, skipped_install = [], []
    for step in job["steps"]:
        if "run" not in step or not _runs(step, repo, outcomes):
            continue
        if step["run"].startswith("pip install"):
            # The tests run from an installed genbench; the step installs the checkout the step before writes.
            assert step["run"].strip() == "pip install -e ./.genbench"
            skipped_install.append(step["name"])
            continue
        # GitHub runs a `run:` step as `bash --noprofile --norc -eo pipefail FILE`.
        done = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]], cwd=repo,
                              env=env, capture_output=True, text=True, timeout=600)
        print(f"$ {step['run'].strip()}\n{done.stdout}{done.stderr}exit {done.returncode}\n")
        outcomes[step.get("id", step["name"])] = "success" if done.returncode == 0 else "failure"
        assert done.returncode == 0, f"{step['name']}: exit {done.returncode}\n{done.stderr[-3000:]}"
        ran.append(step["name"])
    assert skipped_install == ["Install genbench"]
    assert ran == ["Make the baseline (when the repository has none yet)", "Train one seed", "Gate"]
    baseline = json.loads((repo / BASELINE).read_text())
    assert baseline["suite"] == "smoke" and list(baseline["models"]) == ["my-gan"]
    assert baseline["models"]["my-gan"]["seeds"] == [0, 1, 2, 3]
    # Seed 0 retrained with the same threads reproduces its baseline run: every figure held.
    suite = ElementTree.parse(repo / "genbench-junit.xml").getroot().find("testsuite")
    cases = list(suite.iter("testcase"))
    assert len(cases) == int(suite.get("tests")) > 0 and suite.get("failures") == "0" and suite.get("errors") == "0"
    assert {c.get("name") for c in cases} >= {"fid", "is"}
    summary = (repo / "genbench-summary.md").read_text()
    assert summary.startswith("### genbench check: gate-runs/smoke vs ci/genbench-baseline.json")
    assert summary_page.read_text() == summary + "\n"  # posted to the run's page
    smaller = json.loads((repo / "genbench-smaller.json").read_text())
    assert "my-gan fid" in {e["name"] for e in smaller}
    # A second push finds the committed baseline and does not remake it.
    assert not _runs(job["steps"][5], repo, {}) and job["steps"][5]["id"] == "baseline"
