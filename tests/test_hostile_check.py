"""`genbench check` validates a baseline (and the results) in full: unusable input is exit 2, never exit 1."""

import json
import math

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genbench.cli import main
from genbench.errors import InputError
from genbench.results import write_run_record
from genbench.verify.check import compare, save_baseline


def _record(model="a", seed=0, fid=10.0, status="ok", version=1):
    return {
        "schema_version": 1, "model": {"name": model}, "seed": seed, "status": status,
        "suite": {"name": "syn", "version": version}, "dataset": "mnist", "device": "cpu",
        "machine": {"processor": "cpu", "cpu_count": 2}, "budget": {"kind": "images", "achieved": {"images": 10}},
        "metrics": {"fid": fid, "is": 8.0},
    }


@pytest.fixture
def results(tmp_path):
    root = tmp_path / "now"
    write_run_record(root / "a" / "seed0", _record())
    return root


@pytest.fixture
def good(tmp_path, results):
    path = tmp_path / "good.json"
    save_baseline(results, path)
    return json.loads(path.read_text())


def _check(tmp_path, results, baseline, raw=None):
    path = tmp_path / "b.json"
    path.write_text(raw if raw is not None else json.dumps(baseline))
    return CliRunner().invoke(main, ["check", str(results), "--baseline", str(path)])


def _one_line_exit_2(r, message):
    assert r.exit_code == 2, r.output
    assert r.output.startswith("Error: ") and r.output.count("\n") == 1, r.output
    assert message in r.output, r.output


def test_a_good_baseline_holds(tmp_path, results, good):
    r = _check(tmp_path, results, good)
    assert r.exit_code == 0 and "0 regressed, 0 improved beyond tolerance, 0 work changed, 2 held" in r.output


def test_empty_models_is_unusable(tmp_path, results, good):
    _one_line_exit_2(_check(tmp_path, results, {**good, "models": {}}), "lists no models")


def test_no_metric_at_all_is_unusable(tmp_path, results, good):
    good["models"]["a"]["metrics"] = {}
    _one_line_exit_2(_check(tmp_path, results, good), "holds no metric value")


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_baseline_values_are_unusable(tmp_path, results, good, literal):
    raw = json.dumps(good).replace('"fid": [10.0]', f'"fid": [{literal}]')
    assert literal in raw
    _one_line_exit_2(_check(tmp_path, results, None, raw), "models.a.metrics.fid must be a finite number")


def test_suite_version_mismatch_is_unusable(tmp_path, results, good):
    _one_line_exit_2(_check(tmp_path, results, {**good, "suite_version": 2}),
                     "baseline is for suite 'syn' version 2, the results are version 1")


def test_results_mixing_suite_versions_are_unusable(tmp_path, results, good):
    write_run_record(results / "a" / "seed1", _record(seed=1, version=2))
    _one_line_exit_2(_check(tmp_path, results, good), "mixes versions 1, 2 of suite 'syn'")


@pytest.mark.parametrize("mutate, message", [
    (lambda b: b.pop("suite"), "has no `suite`"),
    (lambda b: b.pop("suite_version"), "has no `suite_version`"),
    (lambda b: b["models"]["a"].pop("status"), "models.a has no `status`"),
    (lambda b: b["models"]["a"].pop("metrics"), "models.a has no `metrics`"),
    (lambda b: b["models"]["a"]["metrics"].update(fid=10.0), "models.a.metrics.fid must be a list of one value per"),
    (lambda b: b["models"]["a"]["metrics"].update(fid=[]), "models.a.metrics.fid must be a list of one value per"),
    (lambda b: b["models"]["a"]["metrics"].update(fid=["10"]), "models.a.metrics.fid must be a number, got a string"),
    (lambda b: b["models"]["a"]["metrics"].update(fid=[None]), "models.a.metrics.fid must be a number, got nothing"),
    (lambda b: b["models"]["a"]["metrics"].update(fid=[True]), "models.a.metrics.fid must be a number, got a boolean"),
    (lambda b: b["models"]["a"].pop("made_with"), "models.a.made_with: expected a table"),
    (lambda b: b["models"]["a"]["status"].update(ok="1"), "models.a.status.ok must be an integer, got a string"),
    (lambda b: b["models"]["a"]["status"].update(ok=-1), "models.a.status.ok must be at least 0"),
    (lambda b: b["models"]["a"]["status"].update(weird=1), "models.a.status: unknown status 'weird'"),
    (lambda b: b["models"]["a"]["metrics"].update(fidd=1.0), "models.a.metrics: unknown metric 'fidd'"),
    (lambda b: b.update(suite=None), "`suite` must be a plain name"),
    (lambda b: b.update(suite_version="1"), "`suite_version` must be an integer, got a string"),
    (lambda b: b.update(schema_version=True), "is not a genbench baseline"),
    (lambda b: b.update(models=[]), "`models`: expected a table"),
    (lambda b: b["models"].update(b=[]), "models.b: expected a table"),
])
def test_malformed_baselines_are_one_line_exit_2(tmp_path, results, good, mutate, message):
    mutate(good)
    _one_line_exit_2(_check(tmp_path, results, good), message)


@pytest.mark.parametrize("mutate, message", [
    (lambda r: r.pop("status"), "status must be one of ok, capped, diverged, failed"),
    (lambda r: r.update(status="done"), "status must be one of ok, capped, diverged, failed"),
    (lambda r: r.pop("suite"), "no suite name"),
    (lambda r: r["suite"].update(version="1"), "`suite.version` must be an integer, got a string"),
    (lambda r: r["suite"].pop("version"), "`suite.version` must be an integer, got nothing"),
    (lambda r: r["model"].update(name="../a"), "`model.name` must be a plain name"),
    (lambda r: r.update(seed=-1), "`seed` must be at least 0"),
    (lambda r: r.update(metrics=[1]), "metrics must be a JSON object"),
])
def test_malformed_run_records_are_one_line_exit_2(tmp_path, results, good, mutate, message):
    record = _record(seed=3)
    mutate(record)
    run_dir = results / "a" / "seed3"
    run_dir.mkdir(parents=True)
    (run_dir / "run.json").write_text(json.dumps(record))  # as a damaged or hand-edited file would be
    _one_line_exit_2(_check(tmp_path, results, good), message)


def test_baseline_save_refuses_unusable_results(tmp_path, results):
    write_run_record(results / "a" / "seed1", _record(seed=1, version=2))
    r = CliRunner().invoke(main, ["baseline", "save", str(results), str(tmp_path / "b.json")])
    _one_line_exit_2(r, "mixes versions 1, 2 of suite 'syn'")
    assert not (tmp_path / "b.json").exists()


_json = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=8,
)


@st.composite
def _baselines(draw):
    base = {"schema_version": 1, "suite": "syn", "suite_version": 1, "created": "x", "source": "x", "machine": {},
            "models": {"a": {"metrics": {"fid": 10.0, "is": 8.0}, "status": {"ok": 1, "diverged": 0, "failed": 0}}}}
    paths = [("suite",), ("suite_version",), ("models",), ("models", "a"), ("models", "a", "metrics"),
             ("models", "a", "status"), ("models", "a", "metrics", "fid"), ("models", "a", "status", "ok")]
    for path in draw(st.lists(st.sampled_from(paths), max_size=2)):
        node = base
        for key in path[:-1]:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node[path[-1]] = draw(_json)
    return base


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(baseline=_baselines())
def test_random_baselines_compare_or_give_one_line(baseline, results, tmp_path):
    path = tmp_path / "fuzz.json"
    path.write_text(json.dumps(baseline))
    try:
        comparisons, _ = compare(results, path)
    except InputError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    for c in comparisons:
        assert c.verdict in ("regressed", "improved", "held", "missing")
        assert c.baseline is None or math.isfinite(c.baseline)
