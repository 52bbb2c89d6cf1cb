"""genbench tune: search spaces, equal budgets, validation-only selection, outputs, faults and resume.

The local executor and random search need neither Ray nor Optuna; the Ray Tune and TPE
tests are in tests/test_tune_ray.py.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

import genbench.tune.tuner as tune_mod
from genbench.cli import main
from genbench.config import make_config
from genbench.data.datasets import load_split
from genbench.errors import ConfigError, DataError
from genbench.registry import get_generator, load_generator_from_file
from genbench.results import git_hash
from genbench.search_space import Choice, LogUniform, Uniform, sample_config, validate_search_space
from genbench.suite import load_suite, parse_suite, suite_names
from genbench.tune.plan import TRIALS_FILE, plan_tune
from genbench.tune.tuned import best_trial, expected_best_curve, tuned_suite_path
from genbench.tune.tuner import run_tune
from tests.conftest import DATA_ROOT, DummyConfig, DummyGenerator


@dataclass
class FlakyConfig(DummyConfig):
    fail: bool = False  # train_step raises: a configuration that crashes


class FlakyGenerator(DummyGenerator):
    """The dummy with a searchable divergence step and crash switch."""

    name = "flaky"
    Config = FlakyConfig
    search_space = {"lr": LogUniform(1e-3, 1e-1), "diverge_at": Choice((-1, 0)), "fail": Choice((False, True))}

    def train_step(self, batch, step):
        if self.config.fail:
            raise RuntimeError("broken on purpose")
        return super().train_step(batch, step)


def _suite(**model_tables):
    return parse_suite({"name": "tt", "version": 1, "dataset": "mnist", "models": ["seed-gan", "vae"], "tiny": True,
                        "budget": {"images": 4096}, "eval": {"n_samples": 64, "nll_images": 32, "recon_images": 8},
                        "model": model_tables})


def _read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# -- search spaces ------------------------------------------------------------------------------

def test_search_space_unknown_field_lists_the_valid_ones():
    with pytest.raises(ConfigError) as err:
        validate_search_space(get_generator("seed-gan"), {"learning_rate": LogUniform(1e-4, 1e-2)}, where="s")
    assert str(err.value) == ("s.learning_rate: seed-gan has no setting 'learning_rate'; valid: batch_size, beta1, "
                              "beta2, d_hidden, g_hidden, latent_dim, lr")


@pytest.mark.parametrize(("space", "message"), [
    ({"batch_size": Uniform(8.0, 64.0)}, "s.batch_size: seed-gan.batch_size must be an integer"),
    ({"lr": LogUniform(0.0, 1e-2)}, "s.lr: a log-uniform range needs low > 0, got 0.0"),
    ({"lr": Uniform(1e-2, 1e-3)}, "s.lr: low must be below high, got [0.01, 0.001]"),
    ({"beta1": Choice(())}, "s.beta1: a choice needs at least one value"),
    ({"lr": Uniform(-1.0, 1e-3)}, "s.lr: seed-gan.lr must be > 0"),
])
def test_bad_search_space_is_one_line_error(space, message):
    with pytest.raises(ConfigError) as err:
        validate_search_space(get_generator("seed-gan"), space, where="s")
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_declared_spaces_are_valid_and_reference_rows_have_none():
    for name in ("seed-gan", "dcgan", "sn-dcgan", "wgan-gp", "vae", "ddpm", "iddpm", "pixelcnn", "pixel-lstm"):
        cls = get_generator(name)
        assert "lr" in cls.search_space, name
        validate_search_space(cls, cls.search_space, cls.tiny_config)
    assert "n_critic" in get_generator("wgan-gp").search_space
    for name in ("independent-pixels", "real-data", "train-copy"):
        assert get_generator(name).search_space == {}


def test_list_shows_each_generators_metric_and_search_space():
    result = CliRunner().invoke(main, ["list"], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if line.startswith("│ wgan-gp "))
    assert ("fid: lr log-uniform[1e-05, 0.01], beta1 uniform[0, 0.9], n_critic choice{1, 2, 5}, "
            "gp_lambda log-uniform[1, 100], batch_size choice{32, 64, 128}") in row
    cells = next(line for line in result.output.splitlines() if line.startswith("│ real-data ")).split("│")
    assert cells[4].strip() == "—"  # the tune column: reference rows have no search space


def test_random_trial_values_depend_on_seed_and_index_only():
    space = get_generator("wgan-gp").search_space
    a = [sample_config(space, 3, i) for i in range(5)]
    assert a == [sample_config(space, 3, i) for i in range(5)]
    assert a[4] == sample_config(space, 3, 4)  # not on what was drawn before
    assert a != [sample_config(space, 4, i) for i in range(5)]
    for values in a:
        assert 1e-5 <= values["lr"] <= 1e-2 and 0.0 <= values["beta1"] <= 0.9 and values["n_critic"] in (1, 2, 5)
        make_config(get_generator("wgan-gp"), values, text=False)


def test_suite_file_overrides_a_search_space_and_old_suites_stay_valid():
    suite = _suite(vae={"search_space": {"lr": {"log_uniform": [1e-3, 2e-3]}, "batch_size": {"choice": [16, 32]}}})
    assert suite.model("vae").search_space == {"lr": LogUniform(1e-3, 2e-3), "batch_size": Choice((16, 32))}
    plan = plan_tune(suite, ["vae", "seed-gan"], trials=2, out="unused")
    assert plan.tasks[0].space == suite.model("vae").search_space
    assert plan.tasks[1].space == get_generator("seed-gan").search_space
    for name in suite_names():
        assert all(m.search_space is None for m in load_suite(name).models)
    with pytest.raises(ConfigError) as err:
        _suite(vae={"search_space": {"lr": {"normal": [0, 1]}}})
    assert str(err.value).startswith("<suite> [model.vae] search_space.lr must be one of { uniform = [LOW, HIGH] }")
    with pytest.raises(ConfigError) as err:
        _suite(vae={"search_space": {"beta1": {"uniform": [0.0, 0.9]}}})
    assert "vae has no setting 'beta1'; valid: batch_size, channels, hidden" in str(err.value)


def test_plugin_declares_a_search_space(tmp_path):
    good = tmp_path / "good.py"
    good.write_text(
        "from tests.conftest import DummyGenerator\nfrom genbench.search_space import LogUniform\n"
        "class Mine(DummyGenerator):\n    name = 'mine'\n    search_space = {'lr': LogUniform(1e-3, 1e-1)}\n")
    assert load_generator_from_file(f"{good}:Mine").search_space == {"lr": LogUniform(1e-3, 1e-1)}
    bad = tmp_path / "bad.py"
    bad.write_text(good.read_text().replace("'lr'", "'rate'").replace("'mine'", "'mine2'"))
    with pytest.raises(ConfigError) as err:
        load_generator_from_file(f"{bad}:Mine")
    assert str(err.value) == ("--model: Mine.search_space.rate: mine2 has no setting 'rate'; "
                              "valid: batch_size, diverge_at, lr")


# -- input refused before anything starts ---------------------------------------------------------

@pytest.mark.parametrize(("args", "message"), [
    (["--budget", "seconds=60"], "Error: --budget for tuning needs images=N or steps=N: a budget of seconds "
                                 "alone gives faster machines more work (unequal effort)"),
    (["--budget", "steps=2", "--models", "real-data"], "Error: real-data is a reference row (ceiling), not a "
                                                       "competitor: it is not tuned"),
    (["--budget", "steps=0"], "Error: budget steps must be at least 1"),
])
def test_bad_input_is_one_line_before_anything_runs(tmp_path, args, message):
    argv = ["tune", "--suite", "smoke", "--trials", "2", "--out", str(tmp_path / "o"), *args]
    if "--models" not in args:
        argv += ["--models", "seed-gan"]
    result = CliRunner().invoke(main, argv)
    assert result.exit_code == 2, result.output
    assert result.output.startswith(message) and result.output.count("\n") == 1
    assert not (tmp_path / "o").exists()


# -- a whole tune with the test split unreadable --------------------------------------------------

@pytest.fixture
def no_test_split(tmp_path, monkeypatch):
    """A copy of the data whose test files are unreadable (mode 000, and garbage for root, who reads anyway)."""
    raw = tmp_path / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    src = Path(DATA_ROOT) / "MNIST" / "raw"
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"):
        shutil.copy(src / name, raw / name)
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (raw / name).write_bytes(b"not an idx file")
        os.chmod(raw / name, 0)
    root = str(tmp_path / "data")
    monkeypatch.setenv("GENBENCH_DATA", root)
    with pytest.raises(DataError):
        load_split("mnist", "test", root, download=False)
    yield root
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        os.chmod(raw / name, 0o600)


def test_tune_completes_without_the_test_split_and_writes_its_outputs(no_test_split, tmp_path):
    result = CliRunner().invoke(main, ["tune", "--suite", "smoke", "--models", "seed-gan,vae", "--trials", "3",
                                       "--budget", "steps=2", "--out", str(tmp_path / "tune"), "--seed", "1"])
    assert result.exit_code == 0, result.output
    out = tmp_path / "tune" / "smoke-tune"  # OUT/SUITE-tune, as a run goes to OUT/SUITE
    for model, metric in (("seed-gan", "fid"), ("vae", "nll_bpd")):
        trials = _read(out / model / TRIALS_FILE)
        assert [t["trial"] for t in trials] == [0, 1, 2]
        assert all(t["status"] == "ok" and t["steps"] == 2 and t["metric"] == metric for t in trials)
        assert [t["config"] for t in trials] == [sample_config(get_generator(model).search_space, 1, i)
                                                 for i in range(3)]
        assert all(t["images"] == 2 * t["config"]["batch_size"] for t in trials)  # the same work: 2 steps each
        assert all(t["git_hash"] == git_hash() for t in trials)  # each trial names the code that made it
        assert (out / model / "expected_best.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert len((out / model / "expected_best.csv").read_text().splitlines()) == 4
    # The tuned suite parses back as a suite whose settings build each model's best trial's config.
    tuned = load_suite(str(out / "smoke-tuned.toml"))
    assert tuned.name == "smoke-tuned" and [m.name for m in tuned.models] == ["seed-gan", "vae"]
    smoke = load_suite("smoke")
    assert tuned.default_budget == smoke.default_budget and tuned.eval == smoke.eval
    for entry in tuned.models:
        cls = get_generator(entry.name)
        best = best_trial(_read(out / entry.name / TRIALS_FILE))
        assert make_config(cls, {**cls.tiny_config, **entry.settings}, text=False) == \
            make_config(cls, {**cls.tiny_config, **best["config"]}, text=False)
    text = (out / "smoke-tuned.toml").read_text()
    assert f"# tuned: {(out / 'vae' / TRIALS_FILE).as_posix()}, K = 3, per-trial budget steps=2, search random, " \
           f"seed 1; best trial" in text
    assert f"# Code revision(s) of the trials: {git_hash()}.\n" in text


# -- faults, resume, Ctrl-C -----------------------------------------------------------------------

def _flaky_plan(out, trials, **kw):
    return plan_tune(_suite(), ["flaky"], trials=trials, budget="steps=3", out=out, extra_models=[FlakyGenerator],
                     seed=5, **kw)


def test_failed_and_diverged_trials_are_recorded_and_count(tmp_path):
    results = run_tune(_flaky_plan(tmp_path, 8))
    trials = results["flaky"]
    assert len(trials) == 8 == len(_read(tmp_path / "flaky" / TRIALS_FILE))
    by_status = {s: [t for t in trials if t["status"] == s] for s in ("ok", "diverged", "failed")}
    assert all(by_status.values()), [t["status"] for t in trials]  # seed 5 draws all three outcomes in 8
    assert all(t["score"] is None for t in by_status["diverged"] + by_status["failed"])
    assert all(t["error"] == "RuntimeError: broken on purpose" for t in by_status["failed"])
    assert all(t["config"]["fail"] for t in by_status["failed"])
    best = best_trial(trials)
    assert best["status"] == "ok" and best["score"] == min(t["score"] for t in by_status["ok"])
    assert "flaky" in (tmp_path / "tt-tuned.toml").read_text()


def test_expected_best_curve_matches_its_known_answer():
    # Two trials scoring 1 and 2: the best of k draws is 2 only if all k draws are 2, so E = 1 + 0.5**k.
    rows = expected_best_curve([2.0, 1.0], seed=0, reps=20000)
    assert [r["k"] for r in rows] == [1, 2]
    for r in rows:
        assert r["mean"] == pytest.approx(1 + 0.5 ** r["k"], abs=0.02)
        assert r["low"] == 1.0 and r["high"] == 2.0
    failed = expected_best_curve([None, 1.0, 3.0], seed=0)
    assert failed[0]["mean"] == float("inf")  # a resample of failed trials only has no best
    assert expected_best_curve([None, 1.0, 3.0], seed=0) == failed  # seeded


def test_resume_runs_only_the_missing_trials(tmp_path, monkeypatch):
    run_tune(_flaky_plan(tmp_path, 2))
    # As a tune written before trials recorded their code revision left them.
    log = tmp_path / "flaky" / TRIALS_FILE
    old = [json.loads(line) for line in log.read_text().splitlines()]
    log.write_text("".join(json.dumps({k: v for k, v in r.items() if k != "git_hash"}) + "\n" for r in old))
    first = log.read_text()
    with pytest.raises(ConfigError) as err:
        _flaky_plan(tmp_path, 3)
    assert str(err.value) == (f"{tmp_path / 'flaky' / TRIALS_FILE} already holds trials: continue them with "
                              f"--resume, start over with --overwrite, or choose another --out")
    ran = []
    real = tune_mod.run_trial
    monkeypatch.setattr(tune_mod, "run_trial", lambda task, i, v: ran.append(i) or real(task, i, v))
    run_tune(_flaky_plan(tmp_path, 4, resume=True))
    assert ran == [2, 3]
    text = (tmp_path / "flaky" / TRIALS_FILE).read_text()
    assert text.startswith(first) and len(text.splitlines()) == 4
    header = (tmp_path / "tt-tuned.toml").read_text()
    assert f"# Code revision(s) of the trials: {git_hash()}, not recorded.\n" in header
    with pytest.raises(ConfigError) as err:
        plan_tune(_suite(), ["flaky"], trials=4, budget="steps=4", out=tmp_path, extra_models=[FlakyGenerator],
                  seed=5, resume=True)
    assert str(err.value) == (f"--resume: {tmp_path / 'flaky'} was tuned with other budget; "
                              f"rerun with the same options or choose another --out")


def test_ctrl_c_keeps_finished_trials_and_says_how_to_resume(tmp_path, monkeypatch):
    plugin = tmp_path / "flaky_plugin.py"
    plugin.write_text("from tests.test_tune import FlakyGenerator\n")
    real = tune_mod.run_trial

    def interrupted(task, index, values):
        if index == 1:
            raise KeyboardInterrupt
        return real(task, index, values)

    monkeypatch.setattr(tune_mod, "run_trial", interrupted)
    # Threads named: their default is this process's torch thread count, which earlier tests in the same
    # process may have changed (a user's every command is a fresh process).
    argv = ["tune", "--suite", "smoke", "--models", "flaky", "--model", f"{plugin}:FlakyGenerator", "--trials", "3",
            "--budget", "steps=2", "--cpus-per-run", "1", "--out", str(tmp_path / "o")]
    out = tmp_path / "o" / "smoke-tune"
    result = CliRunner().invoke(main, argv)
    assert result.exit_code == 130, result.output
    assert result.output.splitlines()[-1] == (f"Interrupted: finished trials are kept in {out}; continue with the "
                                              f"same command and --resume.")
    assert [t["trial"] for t in _read(out / "flaky" / TRIALS_FILE)] == [0]
    monkeypatch.setattr(tune_mod, "run_trial", real)
    result = CliRunner().invoke(main, [*argv, "--resume"])
    assert result.exit_code == 0, result.output
    assert [t["trial"] for t in _read(out / "flaky" / TRIALS_FILE)] == [0, 1, 2]
    assert tuned_suite_path(plan_tune("smoke", ["flaky"], trials=3, budget="steps=2", out=out,
                                      extra_models=[FlakyGenerator], resume=True)).exists()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))


def test_tune_uses_the_suites_own_budget_and_its_seconds_guard(tmp_path):
    """Every built-in suite has a seconds guard beside its work budget; tune takes such a budget, says which,
    and records a trial the guard stops before its work as capped (unscored, never selected)."""
    suite = tmp_path / "guarded.toml"
    suite.write_text('name = "guarded"\nversion = 1\ndataset = "mnist"\nmodels = ["seed-gan"]\ntiny = true\n'
                     '[budget]\nsteps = 2\nseconds = 600\n[eval]\nn_samples = 64\n')
    plugin = tmp_path / "flaky_plugin.py"
    plugin.write_text("from tests.test_tune import FlakyGenerator\n")
    argv = ["tune", "--suite", str(suite), "--models", "flaky", "--model", f"{plugin}:FlakyGenerator",
            "--trials", "4", "--seed", "5", "--cpus-per-run", "1", "--out", str(tmp_path / "o")]
    result = CliRunner().invoke(main, argv)
    assert result.exit_code == 0, result.output
    assert (f"per-trial budget: steps=2, seconds cap 600 (suite guarded's default budget, the same for every "
            f"model); 1 thread(s) per trial; trials in {tmp_path / 'o' / 'guarded-tune'}") in \
        " ".join(result.output.split())
    trials = _read(tmp_path / "o" / "guarded-tune" / "flaky" / TRIALS_FILE)
    ok = [t for t in trials if t["status"] == "ok"]
    assert ok and all(t["steps"] == 2 for t in ok)  # the guard, far above, never cut a trial short
    assert "capped" not in {t["status"] for t in trials}
    # A guard far below the work: the first step passes it, so the trial stops there, capped.
    result = CliRunner().invoke(main, [*argv[:-2], "--out", str(tmp_path / "c"), "--budget",
                                       "steps=100000,seconds=0.000001", "--cpus-per-run", "1"])
    assert result.exit_code == 0, result.output
    trials = _read(tmp_path / "c" / "guarded-tune" / "flaky" / TRIALS_FILE)
    capped = [t for t in trials if t["status"] == "capped"]
    assert capped and all(t["score"] is None and t["steps"] < 100000 for t in capped)
    assert all(t["error"].startswith("stopped by the seconds cap (1e-06 s) after ") for t in capped)
    assert best_trial(trials) is None or best_trial(trials)["status"] == "ok"
