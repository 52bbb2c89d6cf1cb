"""Your own metric (--metric FILE.py:FUNCTION, register_user_metric): its value, what it may read, and that
its failure costs only its own value, with one line naming its file."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from click.testing import CliRunner

from genbench.data.splits import REFERENCE, TRAIN, split_images
from genbench.errors import ConfigError
from genbench.evaluate import EvalConfig, evaluate_model, evaluate_samples
from genbench.metrics.group import _GROUPS
from genbench.metrics.spec import _METRICS
from genbench.metrics.user_metric import _USER_METRICS, load_user_metric, register_user_metric

pytestmark = pytest.mark.usefixtures("single_thread")

FID_ONLY = EvalConfig(metric_groups=frozenset({"fid"}))
METRICS_FILE = '''
def mean_ink(samples):
    """Mean pixel value of the samples (0-255)."""
    return float(samples.mean())

def ink_gap(samples, reference):
    return abs(float(samples.mean()) - float(reference.mean()))

def broken(samples):
    return 1 / 0

def wordy(samples):
    return "high"

def scribble(samples):
    samples[0, 0, 0, 0] = 255
    return 0.0

def needs_more(samples, model):
    return 0.0
'''


@pytest.fixture(autouse=True)
def _fresh_registries():
    """User metrics are computed in every evaluation of the process: a test's must not outlive it."""
    saved = dict(_METRICS), dict(_GROUPS), dict(_USER_METRICS)
    yield
    for registry, before in zip((_METRICS, _GROUPS, _USER_METRICS), saved, strict=True):
        registry.clear()
        registry.update(before)


@pytest.fixture
def metrics_file(tmp_path):
    path = tmp_path / "my_metrics.py"
    path.write_text(METRICS_FILE)
    return path


@pytest.fixture(scope="module")
def images(data_root):
    return split_images("mnist", TRAIN, data_root)[:64]


def test_a_registered_metric_gets_the_samples_and_the_reference_images(images, data_root, metrics_file):
    plain = evaluate_samples(images, dataset="mnist", data_root=data_root, config=FID_ONLY)
    load_user_metric(f"{metrics_file}:mean_ink")
    load_user_metric(f"{metrics_file}:ink_gap")
    result = evaluate_samples(images, dataset="mnist", data_root=data_root, config=FID_ONLY)
    reference = split_images("mnist", REFERENCE, data_root)
    assert result.metrics["mean_ink"] == pytest.approx(images.double().mean().item(), rel=1e-12)
    assert result.metrics["ink_gap"] == pytest.approx(
        abs(images.double().mean().item() - reference.double().mean().item()), rel=1e-9)
    assert result.metrics["fid"] == plain.metrics["fid"]  # nothing else changes
    assert [k for k in result.metrics if k not in ("mean_ink", "ink_gap")] == list(plain.metrics)
    assert result.errors == []


def test_the_documented_example_metrics_give_their_known_answers(images, data_root):
    from pathlib import Path

    example = Path(__file__).resolve().parents[1] / "examples" / "my_metric.py"
    load_user_metric(f"{example}:ink_share")
    load_user_metric(f"{example}:ink_share_gap")
    blank = images[:8] * 0
    result = evaluate_samples(blank, dataset="mnist", data_root=data_root, config=FID_ONLY)
    reference_share = (split_images("mnist", REFERENCE, data_root) >= 128).double().mean().item()
    assert result.metrics["ink_share"] == 0.0  # no ink at all
    assert result.metrics["ink_share_gap"] == pytest.approx(reference_share, rel=1e-12)
    assert 0.05 < reference_share < 0.3  # digits are mostly background


def test_a_failing_or_wrong_metric_is_null_with_one_line_naming_its_file_and_the_rest_is_computed(
        images, data_root, metrics_file):
    for name in ("broken", "wordy", "scribble", "mean_ink"):
        load_user_metric(f"{metrics_file}:{name}")
    result = evaluate_samples(images, dataset="mnist", data_root=data_root, config=FID_ONLY)
    source = f"--metric {metrics_file}"
    assert result.metrics["broken"] is None and result.metrics["wordy"] is None and result.metrics["scribble"] is None
    assert result.null_reasons["broken"] == f"{source}:broken: raised ZeroDivisionError: division by zero"
    assert result.null_reasons["wordy"] == f"{source}:wordy: returned str, not a number; return a float"
    # the samples are read-only: one metric cannot change what the next one (or the record) sees
    assert result.null_reasons["scribble"].startswith(f"{source}:scribble: raised ValueError: assignment destination")
    assert result.errors == [result.null_reasons[k] for k in ("broken", "wordy", "scribble")]
    assert result.metrics["mean_ink"] == pytest.approx(images.double().mean().item(), rel=1e-12)
    assert result.metrics["fid"] is not None and result.metrics["fid"] > 0


def test_a_non_finite_value_is_refused_not_kept(images, data_root):
    def nan_metric(samples: np.ndarray) -> float:
        return float("nan")

    register_user_metric(nan_metric, source="tests:nan_metric")
    result = evaluate_samples(images, dataset="mnist", data_root=data_root, config=FID_ONLY)
    assert result.metrics["nan_metric"] is None
    assert result.null_reasons["nan_metric"] == "tests:nan_metric: returned nan; a metric must return a finite number"


def test_registration_refuses_what_genbench_could_not_call_or_store(metrics_file):
    with pytest.raises(ConfigError, match=f"^--metric {metrics_file}:needs_more: parameter\\(s\\) model are not "
                                          "passed by genbench; a metric takes the samples and optionally 'reference'$"):
        load_user_metric(f"{metrics_file}:needs_more")
    with pytest.raises(ConfigError, match="a metric named 'fid' exists already; rename the function"):
        register_user_metric(lambda samples: 0.0, key="fid", source="tests:fid")
    with pytest.raises(ConfigError, match=f"^--metric: {metrics_file} has no function 'nope'$"):
        load_user_metric(f"{metrics_file}:nope")
    with pytest.raises(ConfigError, match=r"^--metric expects path/to/file\.py:FUNCTION"):
        load_user_metric(str(metrics_file))
    group = load_user_metric(f"{metrics_file}:mean_ink")
    assert load_user_metric(f"{metrics_file}:mean_ink") is group  # the same file twice: registered once


def test_eval_cli_writes_every_other_metric_then_fails_with_one_line_per_failed_metric(
        images, data_root, metrics_file, tmp_path):
    from genbench.cli import main

    samples = tmp_path / "s.npy"
    np.save(samples, images.numpy())
    out = tmp_path / "eval.json"
    r = CliRunner().invoke(main, ["eval", "--samples", str(samples), "--data-root", data_root, "--metrics", "fid",
                                  "--metric", f"{metrics_file}:mean_ink", "--metric", f"{metrics_file}:broken",
                                  "--json", str(out)])
    assert r.exit_code == 2
    errors = [line for line in r.stderr.splitlines() if line.startswith("Error:")]
    assert errors == [f"Error: --metric {metrics_file}:broken: raised ZeroDivisionError: division by zero"]
    record = json.loads(out.read_text())
    assert record["mean_ink"] == pytest.approx(images.double().mean().item(), rel=1e-12)
    assert record["broken"] is None and record["fid"] > 0
    r = CliRunner().invoke(main, ["eval", "--samples", str(samples), "--metric", f"{metrics_file}:needs_more"])
    assert r.exit_code == 2 and "needs_more: parameter(s) model are not passed by genbench" in r.stderr


def test_run_records_and_the_leaderboard_details_carry_the_metric(tmp_path, data_root, metrics_file):
    from genbench.results import read_run_record
    from genbench.run.plan import RunOptions, run_suite
    from genbench.suite import parse_suite

    suite = parse_suite({"name": "u", "version": 1, "dataset": "mnist", "models": ["seed-gan"], "tiny": True,
                         "budget": {"steps": 5}, "eval": {"n_samples": 64}})
    # FID alone beside the user metrics: the copy checks' first-use calibration would take most of a minute
    def fid_only(model, *, config, **kwargs):  # the suite's settings, FID alone
        return evaluate_model(model, config=dataclasses.replace(config, metric_groups=FID_ONLY.metric_groups), **kwargs)

    run_suite(suite, RunOptions(out=tmp_path, data_root=data_root,
                                metric_files=[f"{metrics_file}:mean_ink", f"{metrics_file}:broken"]),
              show_progress=False, evaluator=fid_only)
    run_dir = tmp_path / "u" / "seed-gan" / "seed0"
    saved = read_run_record(run_dir / "run.json")
    samples = np.load(run_dir / "samples" / "samples.npz")
    pixels = next(iter(samples.values()))
    assert saved.status == "ok"
    assert saved.metrics["mean_ink"] == pytest.approx(float(pixels.mean()), rel=1e-12)
    assert saved.metric_meta["mean_ink"] == {"unit": "", "higher_is_better": None, "group": "quality"}
    assert saved.metrics["broken"] is None
    broken = f"--metric {metrics_file.resolve()}:broken: raised ZeroDivisionError: division by zero"
    assert saved.null_reasons["broken"] == broken and broken in saved.warnings
    html = (tmp_path / "u" / "leaderboard.html").read_text()
    assert "mean_ink" in html
    with pytest.raises(ConfigError, match="has no function 'nope'"):  # refused before anything trains
        run_suite(suite, RunOptions(out=tmp_path / "other", data_root=data_root, metric_files=[f"{metrics_file}:nope"]),
                  show_progress=False)
    assert not (tmp_path / "other").exists()
