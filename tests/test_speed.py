"""`genbench speed`: unusable input, an end-to-end A/B on a generator slowed on purpose, run-record windows."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from xml.etree import ElementTree

import pytest
import torch
from click.testing import CliRunner

import genbench
import genbench.run.train as harness
from genbench.budget import Budget
from genbench.cli import main
from genbench.evaluate import sample_speed
from genbench.speed.bench import parse_figures, parse_tolerance
from genbench.stats import median_ci
from tests.conftest import REPO, DummyConfig, DummyGenerator

# -- unusable input: exit 2, one line, before any worker starts -------------------------


def _speed(args, cwd, monkeypatch):
    monkeypatch.chdir(cwd)
    return CliRunner().invoke(main, ["speed", "--no-progress", *args])


def _one_line_error(result, text):
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: ") and text in lines[0], result.output


def test_not_a_git_checkout(tmp_path, monkeypatch):
    _one_line_error(_speed(["--against", "HEAD"], tmp_path, monkeypatch), "is not inside a git checkout")


def test_unknown_revision(monkeypatch):
    _one_line_error(_speed(["--against", "no-such-rev-xyz"], REPO, monkeypatch),
                    "unknown revision 'no-such-rev-xyz'")


def test_unknown_model(monkeypatch):
    _one_line_error(_speed(["--models", "dcgan,nosuch"], REPO, monkeypatch), "unknown generator 'nosuch'; valid:")


@pytest.mark.parametrize("args, text", [
    (["--against", "HEAD", "--rounds", "5"], "must be at least 6"),
    (["--against", "HEAD", "--min-rounds", "4"], "must be at least 6"),
    (["--against", "HEAD", "--tol", "ten"], "--tol expects a percentage"),
    (["--figures", "train,speedy"], "--figures: unknown speedy"),
    (["--models", "eval", "--figures", "train"], "has no workload among the figures"),
])
def test_bad_options(args, text, monkeypatch):
    _one_line_error(_speed(args, REPO, monkeypatch), text)


def test_shallow_clone_says_so(tmp_path, monkeypatch):
    shallow = tmp_path / "shallow"
    subprocess.run(["git", "clone", "--quiet", "--depth", "1", f"file://{REPO}", str(shallow)], check=True)
    _one_line_error(_speed(["--against", "HEAD~1"], shallow, monkeypatch), "shallow clone")


def test_option_parsers():
    assert parse_tolerance("10%") == pytest.approx(0.1) and parse_tolerance("0.2") == pytest.approx(0.2)
    assert parse_figures("metrics,train") == ("train_images_per_s", "metric_images_per_s")


# -- end to end: a revision whose generator does three times the work per step -----

TINY = '''"""A tiny generator for the genbench speed test; REPEATS forward/backward passes per step."""

from dataclasses import dataclass

import torch
from torch import nn

from genbench import Capability, Generator, to_unit
from genbench.registry import register_generator

REPEATS = {repeats}


@dataclass
class TinyConfig:
    batch_size: int = 64


@register_generator
class Tiny(Generator):
    name = "tiny-speed"
    Config = TinyConfig
    capabilities = Capability.SAMPLE

    def __init__(self, config):
        super().__init__(config)
        self.net = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 784))
        self.opt = torch.optim.SGD(self.net.parameters(), lr=1e-3)

    def train_step(self, batch, step):
        x = to_unit(batch).flatten(1)
        for _ in range(REPEATS):
            self.opt.zero_grad()
            loss = ((self.net(x) - x) ** 2).mean()
            loss.backward()
        self.opt.step()
        return {{"loss": loss.item()}}

    @torch.no_grad()
    def sample(self, n, generator):
        z = torch.rand(n, 784, generator=generator, device=self.device)
        return torch.sigmoid(self.net(z)).view(n, 1, 28, 28)
'''


def _git(repo, *args):
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args], check=True,
                   capture_output=True)


@pytest.fixture
def slowed_repo(tmp_path):
    """A genbench checkout whose only generator does 1 pass per step at HEAD and 3 in the working tree
    (a slowdown far enough past the tolerance that host noise cannot hide it)."""
    repo = tmp_path / "repo"
    shutil.copytree(Path(genbench.__file__).parent, repo / "genbench", ignore=shutil.ignore_patterns("__pycache__"))
    (repo / "baselines").mkdir()
    (repo / "baselines" / "__init__.py").write_text("from . import tiny  # noqa: F401\n")
    (repo / "baselines" / "tiny.py").write_text(TINY.format(repeats=1))
    # The built-in suites name generators this checkout lacks: the workloads come from a suite of its own.
    (repo / "tiny-suite.toml").write_text('name = "tiny"\nversion = 1\ndataset = "mnist"\nmodels = ["tiny-speed"]\n'
                                          'seeds = [0]\n[budget]\nsteps = 1\n')
    _git(repo, "init", "--quiet")
    _git(repo, "add", ".")
    _git(repo, "commit", "--quiet", "-m", "tiny")
    (repo / "baselines" / "tiny.py").write_text(TINY.format(repeats=3))
    return repo


def test_three_times_the_work_is_flagged_and_nothing_else(slowed_repo, tmp_path, monkeypatch, data_root):
    out = tmp_path / "speed.json"
    step_summary = tmp_path / "step-summary.md"
    step_summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step_summary))
    r = _speed(["--against", "HEAD", "--suite", "tiny-suite.toml", "--models", "tiny-speed",
                "--figures", "train,sample", "--seconds", "1",
                "--window", "0.01", "--tol", "10%", "--data-root", data_root, "--json", str(out),
                "--junit-xml", str(tmp_path / "speed.xml"), "--summary", str(tmp_path / "speed.md"),
                "--bench-bigger", str(tmp_path / "bench.json")],
               slowed_repo, monkeypatch)
    assert r.exit_code == 1, r.output
    # The CI files: one JUnit case per figure, the regression its only failure; the Markdown table appended to
    # GitHub's step summary; the img/s figures (not the work counts) for github-action-benchmark.
    suite = ElementTree.parse(tmp_path / "speed.xml").getroot().find("testsuite")
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert set(cases) == {"train_images_per_s", "sample_images_per_s", "num_parameters", "train_flops_per_image"}
    assert suite.get("tests") == "4" and suite.get("failures") == "1"
    assert [name for name, c in cases.items() if c.find("failure") is not None] == ["train_images_per_s"]
    assert cases["train_images_per_s"].find("failure").get("type") == "regressed"
    summary = (tmp_path / "speed.md").read_text()
    assert summary.startswith("### genbench speed: working tree vs HEAD, tolerance 10%")
    assert "| tiny-speed | train img/s |" in summary and "regressed |" in summary
    assert step_summary.read_text() == "earlier step\n" + summary + "\n"
    bench = json.loads((tmp_path / "bench.json").read_text())
    assert {e["name"] for e in bench} == {"tiny-speed train img/s", "tiny-speed sample img/s"}
    assert all(e["unit"] == "img/s" and e["value"] > 0 for e in bench)
    payload = json.loads(out.read_text())
    rows = {row["figure"]: row for row in payload["results"]}
    for row in rows.values():
        assert {"model", "figure", "old", "new", "ratio", "ci_low", "ci_high", "verdict"} <= set(row)
        assert row["model"] == "tiny-speed"
    train, sample = rows["train_images_per_s"], rows["sample_images_per_s"]
    assert train["verdict"] == "regressed" and train["ci_high"] < 0.9 and train["ci_low"] <= train["ratio"]
    assert sample["verdict"] == "held"
    # Three passes triple the FLOPs counted per image; the parameters are the same.
    assert rows["num_parameters"]["verdict"] == "held"
    assert rows["train_flops_per_image"]["verdict"] == "work changed"
    assert rows["train_flops_per_image"]["ratio"] == pytest.approx(3.0, rel=0.05)
    sides = payload["sides"]
    assert sides["new"]["genbench"] == str(slowed_repo / "genbench" / "__init__.py")
    assert sides["old"]["commit"] and sides["old"]["genbench"] != sides["new"]["genbench"]
    assert sides["new"]["threads"] == sides["old"]["threads"] == 1 and sides["new"]["clock"] == "cpu"
    assert payload["load_average"]["start"] is not None


def test_a_revision_that_cannot_run_is_one_line(slowed_repo, tmp_path, monkeypatch, data_root):
    (slowed_repo / "baselines" / "tiny.py").write_text("def broken(:\n")
    _git(slowed_repo, "commit", "--quiet", "-am", "broken")
    (slowed_repo / "baselines" / "tiny.py").write_text(TINY.format(repeats=1))
    r = _speed(["--against", "HEAD", "--suite", "tiny-suite.toml", "--models", "tiny-speed", "--figures", "train",
                "--data-root", data_root],
               slowed_repo, monkeypatch)
    _one_line_error(r, "old side: SyntaxError")


# -- throughput in run records -----------------------------------------------------------

def _dummy_train(monkeypatch, window, steps=30, **kwargs):
    monkeypatch.setattr(harness, "SPEED_WINDOW_SECONDS", window)
    torch.manual_seed(0)
    images = torch.randint(0, 256, (256, 1, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    return harness.train(DummyGenerator(DummyConfig()), images, Budget(steps=steps), seed=0, **kwargs)


def test_train_speed_is_a_median_of_windows(monkeypatch):
    r = _dummy_train(monkeypatch, 1e-12)  # every step closes a window
    assert r.train_windows == 30
    low, high = r.train_images_per_s_ci
    assert low <= r.train_images_per_s <= high
    metrics, reasons = r.speed_record()
    assert metrics["train_images_per_s_ci_low"] == round(low, 2) and not reasons


def test_short_run_has_no_interval_and_says_why(monkeypatch):
    r = _dummy_train(monkeypatch, 1e9)  # no window fills: the whole run is the figure
    assert r.train_windows == 0 and r.train_images_per_s == pytest.approx(
        r.achieved["images"] / r.achieved["seconds"], rel=0.05)  # achieved seconds are rounded
    metrics, reasons = r.speed_record()
    assert metrics == {"train_images_per_s_ci_low": None, "train_images_per_s_ci_high": None}
    assert set(reasons) == set(metrics) and "fewer than 6 windows" in reasons["train_images_per_s_ci_low"]


def test_resume_keeps_the_windows_measured_before(monkeypatch, tmp_path):
    class Stop(Exception):
        pass

    def stop_at_12(tracker, losses, ips):
        if tracker.steps == 12:
            raise Stop

    with pytest.raises(Stop):
        _dummy_train(monkeypatch, 1e-12, run_dir=tmp_path, checkpoint_every_steps=10, checkpoint_every_seconds=None,
                     log_every=1, progress=stop_at_12)
    r = _dummy_train(monkeypatch, 1e-12, run_dir=tmp_path, resume=True, checkpoint_every_seconds=None)
    assert r.resumed_from_step == 10 and r.train_windows == 30


def test_sample_speed_needs_six_calls_for_an_interval():
    reasons: dict[str, str] = {}
    rates = [100.0, 120.0, 90.0, 110.0, 105.0, 95.0]
    m = sample_speed(rates, reasons)
    assert (m["sample_images_per_s"], m["sample_images_per_s_ci_low"], m["sample_images_per_s_ci_high"]) == \
        median_ci(rates) and not reasons
    m = sample_speed(rates[:4], reasons)
    assert m["sample_images_per_s"] == 105.0 and m["sample_images_per_s_ci_low"] is None
    assert "4 sample call(s)" in reasons["sample_images_per_s_ci_high"]


@pytest.mark.parametrize("how", ["env", "option"])
def test_a_relative_data_root_means_the_users_folder(slowed_repo, monkeypatch, data_root, how):
    # The workers run in a scratch folder; CI sets GENBENCH_DATA=../shared/data.
    (slowed_repo.parent / "data").symlink_to(data_root, target_is_directory=True)
    rel = os.path.join("..", "data")
    args = ["--against", "HEAD", "--suite", "tiny-suite.toml", "--models", "tiny-speed", "--figures", "train",
            "--seconds", "0.2", "--window", "0.01"]
    if how == "env":
        monkeypatch.setenv("GENBENCH_DATA", rel)
    else:
        monkeypatch.delenv("GENBENCH_DATA", raising=False)
        args += ["--data-root", rel]
    out = slowed_repo.parent / "speed.json"
    r = _speed([*args, "--json", str(out)], slowed_repo, monkeypatch)
    # Both sides found the data and trained: no error (exit 2) and the exact work counts of both are there.
    # Whether 0.2 s of timing flags the slowdown is left to the test above; here it would only add noise.
    assert r.exit_code in (0, 1), r.output
    assert "Error" not in r.output
    rows = {row["figure"]: row for row in json.loads(out.read_text())["results"]}
    assert rows["train_flops_per_image"]["verdict"] == "work changed"
    assert rows["train_flops_per_image"]["ratio"] == pytest.approx(3.0, rel=0.05)
    assert rows["train_images_per_s"]["old"] > 0 and rows["train_images_per_s"]["new"] > 0


def test_ci_reports_of_a_plain_measurement(tmp_path, monkeypatch):
    """Without --against every figure is a passing JUnit case, and its median goes to the benchmark file."""
    from genbench.cli.speed import _write_speed_reports

    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    rows = [{"model": "vae", "figure": "train_images_per_s", "median": 1200.0, "ci_low": 1100.0, "ci_high": 1300.0,
             "windows": 9, "unit": "img/s"},
            {"model": "eval", "figure": "features_images_per_s", "median": 5000.0, "ci_low": None, "ci_high": None,
             "windows": 3, "unit": "img/s"}]
    _write_speed_reports(rows, None, None, 12.0, "1 thread(s) per worker", None, str(tmp_path / "s.xml"),
                         str(tmp_path / "s.md"), str(tmp_path / "b.json"))
    suite = ElementTree.parse(tmp_path / "s.xml").getroot().find("testsuite")
    assert [(c.get("classname"), c.get("name")) for c in suite.iter("testcase")] == [
        ("speed.vae", "train_images_per_s"), ("speed.eval", "features_images_per_s")]
    assert suite.get("failures") == suite.get("errors") == "0"
    assert json.loads((tmp_path / "b.json").read_text()) == [
        {"name": "vae train img/s", "unit": "img/s", "value": 1200.0, "range": "±100"},
        {"name": "eval features img/s", "unit": "img/s", "value": 5000.0}]
    assert "| vae | train img/s | 1,200 | [1,100, 1,300] | 9 |" in (tmp_path / "s.md").read_text()
