"""Suites, run records and the runner end to end (with a stub evaluator for speed)."""

import json
import re

import pytest
import torch

import genbench
from genbench.errors import ConfigError
from genbench.run.plan import RunOptions, run_suite
from genbench.suite import load_suite, parse_suite, suite_names
from tests.conftest import DummyGenerator, stub_evaluator

TINY_SUITE = {
    "name": "t", "version": 3, "dataset": "mnist", "models": ["seed-gan"], "tiny": True,
    "budget": {"steps": 6}, "eval": {"n_samples": 16},
}


def _run(tmp_path, **kw):
    kw.setdefault("suite", parse_suite(TINY_SUITE))
    return run_suite(kw.pop("suite"), RunOptions(out=tmp_path, checkpoint_every_seconds=None, **kw),
                     evaluator=stub_evaluator, show_progress=False)


def _strip_timing(rec):
    """The record without what legitimately differs between equal runs: timings, host, executor, a busy machine."""
    from genbench.metrics import metric_specs

    specs = metric_specs()
    rec = rec.to_json()
    for key in ("created", "timings", "git_hash", "calibration_flops_per_s", "executor"):
        rec.pop(key, None)
    for key in list(rec["metrics"]):
        if key in specs and specs[key].group == "speed":
            rec["metrics"].pop(key)
    rec["null_reasons"] = {k: v for k, v in rec.get("null_reasons", {}).items()
                           if not (k in specs and specs[k].group == "speed")}  # e.g. too few timing windows
    rec["budget"]["achieved"].pop("seconds")
    # Whether the machine was busy when a run started is a fact about the machine, like its load average.
    rec["warnings"] = [w for w in rec["warnings"] if not w.startswith("the machine was busy")]
    return rec


def test_builtin_suites_load():
    assert {"smoke", "mnist-small"} <= set(suite_names())
    for name in suite_names():
        s = load_suite(name)
        assert s.models and s.version >= 1


def test_suite_rejects_unknown_keys():
    with pytest.raises(ConfigError, match=r"unknown key\(s\) epochs; valid: .*budget"):
        parse_suite({**TINY_SUITE, "epochs": 3})
    with pytest.raises(ConfigError, match=r"\[model.seed-gan\]: unknown key\(s\) lr"):
        parse_suite({**TINY_SUITE, "model": {"seed-gan": {"lr": 1}}})
    with pytest.raises(ConfigError, match=r"unknown suite 'nope'; valid: .*smoke"):
        load_suite("nope")


def test_run_writes_record_grid_log_and_leaderboard(tmp_path):
    (_,) = _run(tmp_path)
    run_dir = tmp_path / "t" / "seed-gan" / "seed0"
    for name in ("run.json", "train_log.csv", "samples.png", "checkpoint.pt"):
        assert (run_dir / name).is_file(), name
    on_disk = json.loads((run_dir / "run.json").read_text())
    assert on_disk["status"] == "ok" and on_disk["suite"] == {"name": "t", "version": 3, "source": "<suite>"}
    assert on_disk["budget"]["asked"] == {"steps": 6, "images": None, "seconds": None}
    assert on_disk["budget"]["achieved"]["steps"] == 6
    assert on_disk["model"]["config"]["g_hidden"] == [16, 16]
    for key in ("genbench_version", "torch_version", "machine", "device", "seed", "metric_meta"):
        assert key in on_disk
    assert on_disk["metrics"]["train_images_per_s"] > 0
    assert "seed-gan" in (tmp_path / "t" / "leaderboard.md").read_text()


def test_same_seed_gives_identical_records(tmp_path):
    (a,) = _run(tmp_path / "a")
    (b,) = _run(tmp_path / "b")
    assert _strip_timing(a) == _strip_timing(b)
    (c,) = _run(tmp_path / "c", seeds=[1])
    assert _strip_timing(a)["metrics"] != _strip_timing(c)["metrics"]


def test_existing_results_are_not_overwritten(tmp_path):
    _run(tmp_path)
    with pytest.raises(ConfigError, match="already holds a finished run; pass --resume"):
        _run(tmp_path)
    (rec,) = _run(tmp_path, resume=True)  # finished run is kept, not redone
    assert rec.status == "ok"
    (rec2,) = _run(tmp_path, overwrite=True)
    assert rec2.created >= rec.created


def test_diverging_model_gets_status_diverged(tmp_path):
    recs = _run(tmp_path, models=["seed-gan"], extra_models=[DummyGenerator],
                set_overrides={"dummy": {"diverge_at": "2", "batch_size": "8"}})
    by_name = {r.model_name: r for r in recs}
    assert by_name["dummy"].status == "diverged"
    assert "non-finite loss" in by_name["dummy"].error
    assert by_name["seed-gan"].status == "ok"
    md = (tmp_path / "t" / "leaderboard.md").read_text()
    assert "| dummy | 0/0/1/0 |" in md


def test_set_overrides_validated(tmp_path):
    with pytest.raises(ConfigError, match=r"seed-gan has no setting 'lrr'; valid: .*lr"):
        _run(tmp_path, set_overrides={"seed-gan": {"lrr": "1"}})
    with pytest.raises(ConfigError, match="cannot convert 'fast' to float"):
        _run(tmp_path, set_overrides={"seed-gan": {"lr": "fast"}})
    with pytest.raises(ConfigError, match="'dcgan2' is not a model of this run"):
        _run(tmp_path, set_overrides={"dcgan2": {"lr": "1"}})


def test_efficiency_figures(tmp_path):
    from genbench.run.efficiency import calibrate_flops

    (rec,) = _run(tmp_path)
    m = rec.metrics
    # seed-gan tiny: G 100-16-16-784, D 784-16-16-1. Per image, one step runs G forward, D forward
    # three times (real, fake.detach(), fake), D backward three times (weight grads always; input grads
    # except into detached/data inputs) and G backward: 3 G-fwd + 9 D-fwd matmul FLOPs minus the input
    # grads never computed (D's first layer twice, G's first layer once).
    g_fwd = 2 * (100 * 16 + 16 * 16 + 16 * 784)
    d_fwd = 2 * (784 * 16 + 16 * 16 + 16 * 1)
    assert m["train_flops_per_image"] == 3 * g_fwd + 9 * d_fwd - 4 * 784 * 16 - 2 * 100 * 16
    assert m["train_flops_per_s"] == pytest.approx(m["train_flops_per_image"] * m["train_images_per_s"])
    assert 0 < m["flops_utilization"] < 1.5
    assert rec.calibration_flops_per_s == calibrate_flops("cpu", threads=torch.get_num_threads()) > 1e8


def test_a_finished_run_folder_loads_back_as_its_trained_model(tmp_path):
    from genbench.errors import CheckpointError
    from genbench.run.train import CHECKPOINT_NAME, load_trained_run

    _run(tmp_path)
    run_dir = tmp_path / "t" / "seed-gan" / "seed0"
    model, record = load_trained_run(run_dir)
    assert model.name == "seed-gan" and record.seed == 0 and not model.training
    public = genbench.load_run(run_dir)  # the documented entry point: a registered model needs no file
    assert type(public) is type(model) and not public.training
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in public.state_dict().items())
    saved = torch.load(run_dir / CHECKPOINT_NAME, weights_only=True)["state"]["model"]
    loaded = model.state_dict()
    assert saved.keys() == loaded.keys()
    assert all(torch.equal(saved[k], loaded[k]) for k in saved)
    fresh = type(model)(model.config).state_dict()  # not merely a fresh init: training moved the weights
    assert not all(torch.equal(fresh[k], loaded[k]) for k in saved)
    # The checkpoint must belong to the record: another seed's record is refused, not silently loaded.
    rec = json.loads((run_dir / "run.json").read_text())
    rec["seed"] = 1
    (run_dir / "run.json").write_text(json.dumps(rec))
    with pytest.raises(CheckpointError, match="seed mismatch"):
        load_trained_run(run_dir)


@pytest.mark.parametrize(("options", "message"), [
    ({"resume": True, "overwrite": True}, "--resume and --overwrite exclude each other"),
    ({"executor": "slurm"}, "unknown executor 'slurm'; valid: local, ray"),
    ({"ray_address": "auto"}, "--ray-address needs --executor ray"),
    ({"cpus_per_run": 0}, "--cpus-per-run must be a whole number >= 1, got 0"),
    ({"cpus_per_run": 1.5}, "--cpus-per-run must be a whole number >= 1, got 1.5"),
    ({"gpus_per_run": -1}, "--gpus-per-run must be >= 0, got -1"),
    ({"checkpoint_every_steps": 0}, "checkpoint_every_steps must be a whole number >= 1 or None, got 0"),
    ({"seeds": [0, 0]}, "seeds"),
    ({"budget": "images=ten"}, "images"),
    ({"models": "vae"}, "models must be a list, got"),
])
def test_run_options_refuse_bad_values_in_one_line_when_built(options, message):
    from genbench.run.options import RunOptions

    with pytest.raises(ConfigError, match=re.escape(message)) as info:
        RunOptions(**options)
    assert "\n" not in str(info.value)


def test_run_options_keep_one_form_and_each_spec_carries_them_as_its_run_uses_them(tmp_path, monkeypatch):
    from genbench.run.options import RunOptions
    from genbench.run.plan import plan_runs

    monkeypatch.chdir(tmp_path)
    options = RunOptions(models=["vae"], seeds=[1, 0], budget="steps=3", out="o", data_root="d",
                         extra_models=[DummyGenerator])
    assert options.models == ("vae",) and options.seeds == (1, 0) and options.budget == {"steps": 3}
    assert options.extra_models == (DummyGenerator,)
    specs = plan_runs(parse_suite(TINY_SUITE), options, device="cpu", threads=2)
    assert [(s.model, s.seed) for s in specs] == [("vae", 1), ("vae", 0), ("dummy", 1), ("dummy", 0)]
    for spec in specs:
        assert spec.out == str(tmp_path / "o") and spec.data_root == str(tmp_path / "d")
        assert spec.device == "cpu" and spec.threads == 2
        assert spec.options.checkpoint_every_seconds == RunOptions.checkpoint_every_seconds == 60.0
        assert spec.options.extra_models == () and spec.options.models is None  # the plan has applied them
