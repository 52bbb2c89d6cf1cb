"""`genbench check` and `genbench baseline save` on synthetic run records."""

import json

import pytest
from click.testing import CliRunner

from genbench.cli import main
from genbench.errors import InputError
from genbench.results import write_run_record
from genbench.verify.check import compare, parse_tolerances, save_baseline


def _write(root, model, seed, fid=10.0, is_=8.0, ips_norm=1000.0, status="ok", suite="syn"):
    write_run_record(root / model / f"seed{seed}", {
        "schema_version": 1, "model": {"name": model}, "seed": seed, "status": status,
        "suite": {"name": suite, "version": 1}, "dataset": "mnist", "device": "cpu",
        "machine": {"processor": "cpu", "cpu_count": 2}, "budget": {"kind": "images", "achieved": {"images": 10}},
        # Raw throughput differs 3x between "machines"; only the normalised figure is compared.
        "metrics": {"fid": fid, "is": is_, "train_images_per_s": ips_norm * 3 * (seed + 1),
                    "train_images_per_s_norm": ips_norm},
    })


@pytest.fixture
def base(tmp_path):
    root = tmp_path / "base"
    _write(root, "a", 0)
    _write(root, "b", 0, fid=20.0)
    path = tmp_path / "baseline.json"
    save_baseline(root, path)
    return path


def _verdicts(comparisons):
    return {(c.model, c.metric): c.verdict for c in comparisons}


def test_baseline_contents(base):
    b = json.loads(base.read_text())
    assert b["suite"] == "syn"
    assert b["models"]["a"]["metrics"] == {"fid": 10.0, "is": 8.0, "train_images_per_s_norm": 1000.0}
    assert "train_images_per_s" not in b["models"]["a"]["metrics"]  # compared through its normalised figure


@pytest.mark.parametrize(
    "fid, is_, expect_fid, expect_is",
    [
        (12.0, 8.0, "regressed", "held"),   # higher FID is worse (default tolerance < 20%)
        (10.0, 6.0, "held", "regressed"),   # lower IS is worse
        (7.0, 9.5, "improved", "improved"),  # better in both directions is not a regression
        (10.2, 7.95, "held", "held"),        # inside tolerance
    ],
)
def test_directions(tmp_path, base, fid, is_, expect_fid, expect_is):
    now = tmp_path / "now"
    _write(now, "a", 0, fid=fid, is_=is_)
    _write(now, "b", 0, fid=20.0)
    comparisons, problems = compare(now, base)
    v = _verdicts(comparisons)
    assert not problems
    assert v[("a", "fid")] == expect_fid and v[("a", "is")] == expect_is


def test_tol_option_and_cli_exit_codes(tmp_path, base):
    now = tmp_path / "now"
    _write(now, "a", 0, fid=12.0)
    _write(now, "b", 0, fid=20.0)
    r = CliRunner().invoke(main, ["check", str(now), "--baseline", str(base)])
    assert r.exit_code == 1 and "regressed" in r.output
    r = CliRunner().invoke(main, ["check", str(now), "--baseline", str(base), "--tol", "fid=25%", "--json", "-"])
    assert r.exit_code == 0
    payload = json.loads(r.stdout)  # table and summary go to stderr with --json -
    assert payload["regressions"] == 0
    r = CliRunner().invoke(main, ["check", str(now), "--baseline", str(base), "--tol", "fid=1.5"])
    assert r.exit_code == 1  # absolute tolerance 1.5 < 2.0 worse


def test_speed_gates_only_when_asked(tmp_path, base):
    """Wall-clock speed is noise in one run: not compared by default; with --tol, on the normalised figure."""
    now = tmp_path / "now"
    _write(now, "a", 0, ips_norm=300.0)  # 70% slower on the normalised figure
    _write(now, "b", 0, fid=20.0, ips_norm=1000.0)
    v = _verdicts(compare(now, base)[0])
    assert ("a", "train_images_per_s_norm") not in v and v[("a", "fid")] == "held"
    r = CliRunner().invoke(main, ["check", str(now), "--baseline", str(base)])
    assert r.exit_code == 0, r.output
    v = _verdicts(compare(now, base, parse_tolerances("train_images_per_s=25%"))[0])
    assert v[("a", "train_images_per_s_norm")] == "regressed" and v[("b", "train_images_per_s_norm")] == "held"
    v = _verdicts(compare(now, base, parse_tolerances("train_images_per_s=80%"))[0])
    assert v[("a", "train_images_per_s_norm")] == "held"


def test_work_counts_gate_exactly(tmp_path):
    def write(root, params):
        write_run_record(root / "a" / "seed0", {
            "schema_version": 1, "model": {"name": "a"}, "seed": 0, "status": "ok",
            "suite": {"name": "syn", "version": 1},
            "metrics": {"fid": 10.0, "num_parameters": params, "train_flops_per_image": 5.0e6},
        })

    write(tmp_path / "base", 1000)
    save_baseline(tmp_path / "base", tmp_path / "b.json")
    write(tmp_path / "same", 1000)
    assert set(_verdicts(compare(tmp_path / "same", tmp_path / "b.json")[0]).values()) == {"held"}
    write(tmp_path / "more", 1001)  # one parameter more: exact comparison, no tolerance
    v = _verdicts(compare(tmp_path / "more", tmp_path / "b.json")[0])
    assert v[("a", "num_parameters")] == "work changed" and v[("a", "train_flops_per_image")] == "held"
    r = CliRunner().invoke(main, ["check", str(tmp_path / "more"), "--baseline", str(tmp_path / "b.json"),
                                  "--json", "-"])
    assert r.exit_code == 1 and json.loads(r.stdout)["work_changed"] == 1


def test_missing_model_is_unusable_input(tmp_path, base):
    now = tmp_path / "now"
    _write(now, "a", 0)
    r = CliRunner().invoke(main, ["check", str(now), "--baseline", str(base)])
    assert r.exit_code == 2 and "model 'b' is in the baseline but has no run" in r.output


def test_diverged_seed_is_a_regression(tmp_path, base):
    now = tmp_path / "now"
    _write(now, "a", 0, status="diverged")
    _write(now, "b", 0, fid=20.0)
    comparisons, _ = compare(now, base)
    assert _verdicts(comparisons)[("a", "status_ok")] == "regressed"


def test_bad_inputs(tmp_path, base):
    with pytest.raises(InputError, match="--tol expects"):
        parse_tolerances("fid=ten")
    with pytest.raises(InputError, match="no run records"):
        compare(tmp_path / "base" / "a", base)
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    r = CliRunner().invoke(main, ["check", str(tmp_path / "base"), "--baseline", str(bad)])
    assert r.exit_code == 2 and "is not a genbench baseline" in r.output
    r = CliRunner().invoke(main, ["check", str(tmp_path / "base"), "--baseline", str(base), "--tol", "fidd=1%"])
    assert r.exit_code == 2 and "unknown metric(s) fidd" in r.output
