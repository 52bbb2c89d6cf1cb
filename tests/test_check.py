"""`genbench check` and `genbench baseline save` on synthetic run records."""

import json
import os
from pathlib import Path
from xml.etree import ElementTree

import pytest
from click.testing import CliRunner

from genbench.cli import main
from genbench.errors import InputError
from genbench.results import write_run_record
from genbench.verify.check import compare, parse_tolerances, save_baseline


def _write(root, model, seed, fid=10.0, is_=8.0, ips_norm=1000.0, status="ok", suite="syn", images=10,
           extra=None, bound=None):
    write_run_record(root / model / f"seed{seed}", {
        "schema_version": 1, "model": {"name": model, "config": {"lr": 1e-3}, "likelihood_is_bound": bound},
        "seed": seed, "status": status,
        "suite": {"name": suite, "version": 1}, "dataset": "mnist", "device": "cpu",
        "machine": {"processor": "cpu", "cpu_count": 2},
        "budget": {"asked": {"images": images}, "kind": "images", "achieved": {"images": images}},
        # Raw throughput differs 3x between "machines"; only the normalised figure is compared.
        "metrics": {"fid": fid, "is": is_, "train_images_per_s": ips_norm * 3 * (seed + 1),
                    "train_images_per_s_norm": ips_norm, **(extra or {})},
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
    # One value per ok seed, and what the runs were made with.
    assert b["models"]["a"]["metrics"] == {"fid": [10.0], "is": [8.0], "train_images_per_s_norm": [1000.0]}
    assert b["models"]["a"]["seeds"] == [0]
    assert b["models"]["a"]["made_with"]["budget"] == {"images": 10}
    assert b["models"]["a"]["made_with"]["config"] == {"lr": 1e-3}
    assert "train_images_per_s" not in b["models"]["a"]["metrics"]  # compared through its normalised figure


@pytest.mark.parametrize(
    "fid, is_, expect_fid, expect_is",
    [
        (12.0, 8.0, "regressed", "held"),   # higher FID is worse (one seed: the distance floor, 5%)
        (10.0, 6.0, "held", "regressed"),   # lower IS is worse
        (7.0, 9.5, "improved", "improved"),  # better beyond tolerance in both directions: flagged, not a regression
        (10.4, 7.65, "held", "held"),        # inside the floors
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


def test_an_unexplained_improvement_fails_and_says_so(tmp_path, base):
    now = tmp_path / "now"
    _write(now, "a", 0, fid=5.0)  # FID halved: a leak or a bug as likely as a real gain
    _write(now, "b", 0, fid=20.0)
    r = CliRunner().invoke(main, ["check", str(now), "--baseline", str(base), "--json", "-"])
    assert r.exit_code == 1
    payload = json.loads(r.stdout)
    assert payload["improvements"] == 1 and payload["regressions"] == 0 and payload["failed_models"] == ["a"]
    assert "improved beyond tolerance" in r.stderr and "refreshed on purpose" in r.stderr


def _seeds_baseline(tmp_path, fids, extra=None):
    root = tmp_path / "seeds"
    for seed, fid in enumerate(fids):
        _write(root, "a", seed, fid=fid, extra={k: v[seed] for k, v in (extra or {}).items()})
    path = tmp_path / "seeds.json"
    save_baseline(root, path)
    return path


def test_bands_are_the_prediction_interval_of_the_seeds(tmp_path):
    # Five seeds: mean 10, sd sqrt(0.625); t(0.995, 4) = 4.604095 (tables); sqrt(1 + 1/5).
    base = _seeds_baseline(tmp_path, [10.0, 11.0, 9.0, 10.5, 9.5])
    half = 4.604095 * 0.625 ** 0.5 * 1.2 ** 0.5
    for fid, verdict in ((10.0 + half - 0.01, "held"), (10.0 + half + 0.01, "regressed"),
                         (10.0 - half - 0.01, "improved")):
        now = tmp_path / f"now{fid}"
        _write(now, "a", 0, fid=fid)
        (c,) = [c for c in compare(now, base)[0] if c.metric == "fid"]
        assert c.verdict == verdict and c.seeds == 5
        assert c.high == pytest.approx(10.0 + half, rel=1e-6) and c.low == pytest.approx(10.0 - half, rel=1e-6)
        assert "99% PI of 5 seeds" in c.tolerance


def test_seeds_that_agree_leave_the_floor(tmp_path):
    base = _seeds_baseline(tmp_path, [10.0, 10.0, 10.0])
    now = tmp_path / "now"
    _write(now, "a", 0, fid=10.45)  # inside 5% of 10: a zero spread never makes a zero tolerance
    (c,) = [c for c in compare(now, base)[0] if c.metric == "fid"]
    assert c.verdict == "held" and "floor 5%" in c.tolerance


def test_fractions_near_zero_get_an_absolute_tolerance(tmp_path):
    """A recall of 0.0015 that reads 0.007 is +367% but 0.0055 in absolute terms: held; 0.05 is beyond it."""
    base = _seeds_baseline(tmp_path, [10.0], extra={"recall": [0.0015]})
    for recall, verdict in ((0.007, "held"), (0.05, "improved")):
        now = tmp_path / f"now{recall}"
        _write(now, "a", 0, extra={"recall": recall})
        (c,) = [c for c in compare(now, base)[0] if c.metric == "recall"]
        assert (c.verdict, c.kind) == (verdict, "fraction")


def test_uncertainty_estimates_are_not_gated(tmp_path):
    base = _seeds_baseline(tmp_path, [10.0], extra={"kid_std": [0.01], "fid_ci_high": [11.0]})
    now = tmp_path / "now"
    _write(now, "a", 0, extra={"kid_std": 0.5, "fid_ci_high": 30.0})
    metrics = {c.metric for c in compare(now, base)[0]}
    assert "fid" in metrics and not metrics & {"kid_std", "fid_ci_high"}


def test_models_checks_a_subset(tmp_path, base):
    now = tmp_path / "now"
    _write(now, "a", 0)
    r = CliRunner().invoke(main, ["check", str(now), "--baseline", str(base), "--models", "a"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, ["check", str(now), "--baseline", str(base), "--models", "a,c"])
    assert r.exit_code == 2 and r.output.count("\n") == 1
    assert "--models: 'c' not in the baseline; its models: a, b" in r.output


@pytest.mark.parametrize("changes, what", [
    ({"images": 5}, "another budget than the baseline: images 10 -> 5"),
    ({"bound": True}, "another likelihood_is_bound than the baseline: None -> True"),
])
def test_results_made_otherwise_are_refused(tmp_path, base, changes, what):
    now = tmp_path / "now"
    _write(now, "a", 0, **changes)
    _write(now, "b", 0, fid=20.0)
    r = CliRunner().invoke(main, ["check", str(now), "--baseline", str(base)])
    assert r.exit_code == 2 and r.output.count("\n") == 1, r.output
    assert f"a seed 0 was made with {what}" in r.output and "refresh the baseline on purpose" in r.output


def test_baseline_save_refuses_seeds_made_differently(tmp_path):
    root = tmp_path / "mixed"
    _write(root, "a", 0, images=10)
    _write(root, "a", 1, images=20)
    r = CliRunner().invoke(main, ["baseline", "save", str(root), str(tmp_path / "b.json")])
    assert r.exit_code == 2 and "a's runs in" in r.output and "made with different settings" in r.output


CROSS_MACHINE = Path(os.environ.get("GENBENCH_DATA", "../shared/data")).parent / "cross-machine"


@pytest.mark.skipif(not (CROSS_MACHINE / "smoke-intel-xeon-7b09c96").is_dir(),
                    reason="../shared/cross-machine (records made on another processor) is not here")
def test_unchanged_code_on_another_processor_passes_the_gate():
    """Smoke records of commit 7b09c96 made on an Intel Xeon, checked against the baseline made on an AMD EPYC."""
    r = CliRunner().invoke(main, ["check", str(CROSS_MACHINE / "smoke-intel-xeon-7b09c96"),
                                  "--baseline", "results/baselines/smoke.json", "--json", "-"])
    assert r.exit_code == 0, r.output
    payload = json.loads(r.stdout)
    assert payload["regressions"] == payload["improvements"] == payload["work_changed"] == 0
    assert len(payload["comparisons"]) > 200


def test_ci_reports_junit_summary_and_benchmark_json(tmp_path, base, monkeypatch):
    now = tmp_path / "now"
    _write(now, "a", 0, fid=12.0)  # regressed: 20% worse, beyond the 5% floor
    _write(now, "b", 0, fid=20.0)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    files = {name: tmp_path / name for name in ("check.xml", "check.md", "bigger.json", "smaller.json")}
    r = CliRunner().invoke(main, ["check", str(now), "--baseline", str(base), "--junit-xml", str(files["check.xml"]),
                                  "--summary", str(files["check.md"]), "--bench-bigger", str(files["bigger.json"]),
                                  "--bench-smaller", str(files["smaller.json"])])
    assert r.exit_code == 1, r.output
    root = ElementTree.parse(files["check.xml"]).getroot()  # well-formed, or this raises
    assert root.tag == "testsuites"
    (suite,) = root.findall("testsuite")
    cases = {(c.get("classname"), c.get("name")): c for c in suite.iter("testcase")}
    assert set(cases) == {("now.a", "fid"), ("now.a", "is"), ("now.b", "fid"), ("now.b", "is")}
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("4", "1", "0")
    failure = cases[("now.a", "fid")].find("failure")
    assert failure.get("type") == "regressed" and failure.get("message").startswith("a fid: regressed (baseline 10")
    assert all(c.find("failure") is None for key, c in cases.items() if key != ("now.a", "fid"))
    props = {p.get("name"): p.get("value") for p in cases[("now.a", "fid")].iter("property")}
    assert props["baseline"] == "10.0" and props["value"] == "12.0"
    summary = files["check.md"].read_text()
    assert summary.splitlines()[2:4] == ["| model | metric | baseline | now | tolerance | verdict |",
                                         "| --- | --- | --- | --- | --- | --- |"]
    assert "| a | fid | 10 | 12 | ±0.5 (floor 5%) | regressed |" in summary
    assert "1 regressed, 0 improved beyond tolerance, 0 work changed, 3 held" in summary
    # FID is better smaller, IS bigger; each goes to its own github-action-benchmark file.
    assert json.loads(files["smaller.json"].read_text()) == [
        {"name": "a fid", "unit": "", "value": 12.0}, {"name": "b fid", "unit": "", "value": 20.0}]
    assert [e["name"] for e in json.loads(files["bigger.json"].read_text())] == ["a is", "b is"]
    # Under GitHub Actions the summary is appended to the job's page without --summary.
    page = tmp_path / "step.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(page))
    CliRunner().invoke(main, ["check", str(now), "--baseline", str(base)])
    CliRunner().invoke(main, ["check", str(now), "--baseline", str(base)])
    assert page.read_text() == 2 * (summary + "\n")


def test_junit_xml_stays_well_formed_with_hostile_names():
    from genbench.verify import ci

    cases = [ci.Case("m<&>\x1b\x00", "fid\"]]>", "regressed", failed=True, detail="a | b"),
             ci.Case("m", "is", "missing", failed=True, error=True)]
    root = ElementTree.fromstring(ci.junit_xml("s", cases, 1.5))
    suite = root.find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("2", "1", "1")
    first = next(suite.iter("testcase"))
    assert first.get("classname") == "s.m<&>\\x1b\\x00" and first.get("name") == 'fid"]]>'
    # A cell stays one line (a newline is shown escaped) and its '|' does not end it.
    assert ci.markdown("t", ["a"], [["x | y\nz"]], []).splitlines()[-1] == "| x \\| y\\nz |"


def test_a_plug_in_class_is_the_same_class_from_any_folder_or_process(tmp_path):
    """A --model file's module name carries a digest of its path; check compares the class without it."""
    import subprocess
    import sys

    from genbench.registry import class_identity

    def write(root, module):
        write_run_record(root / "mine" / "seed0", {
            "schema_version": 1, "model": {"name": "mine", "class": f"{module}.MyGAN"}, "seed": 0, "status": "ok",
            "suite": {"name": "syn", "version": 1}, "metrics": {"fid": 10.0}})

    write(tmp_path / "base", "genbench_user_my_gan_5409485084910653894")  # an older, per-process suffix
    save_baseline(tmp_path / "base", tmp_path / "b.json")
    write(tmp_path / "now", "genbench_user_my_gan_0123abcd0123abcd")
    assert _verdicts(compare(tmp_path / "now", tmp_path / "b.json")[0]) == {("mine", "fid"): "held"}
    write(tmp_path / "other", "genbench_user_other_0123abcd0123abcd")  # another file: another class
    with pytest.raises(InputError, match="made with another class than the baseline"):
        compare(tmp_path / "other", tmp_path / "b.json")
    assert class_identity("genbench_baselines.dcgan.DCGAN") == "genbench_baselines.dcgan.DCGAN"
    # The module name of one file is the same in every process (Python salts str hashes per process).
    code = ("from genbench.registry import load_generator_from_file as f; "
            "print(f('examples/my_gan.py:MyGAN').__module__)")
    names = {subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).parents[1], capture_output=True,
                            text=True, check=True).stdout for _ in range(2)}
    assert len(names) == 1 and names.pop().startswith("genbench_user_my_gan_")
