"""genbench tune on Ray Tune and with Optuna's TPE: the same trials as the local executor, resume replays TPE."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from genbench.suite import parse_suite
from genbench.tune.plan import TRIALS_FILE, plan_tune
from genbench.tune.tuner import run_tune
from tests.conftest import DATA_ROOT

ray = pytest.importorskip("ray.tune", reason="genbench tune --executor ray needs: pip install -e '.[tune]'")
pytest.importorskip("optuna", reason="--search tpe needs: pip install -e '.[tune]'")
import ray as ray_core  # noqa: E402


@pytest.fixture(scope="module")
def ray_instance(tmp_path_factory):
    """One local Ray instance of 2 CPUs for the module (starting Ray costs seconds)."""
    env = {"GENBENCH_DATA": str(Path(DATA_ROOT).resolve()),
           "XDG_CACHE_HOME": str(tmp_path_factory.getbasetemp() / "xdg-cache"),
           "RAY_AIR_NEW_OUTPUT": "0"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    ray_core.init(num_cpus=2, num_gpus=0, include_dashboard=False, logging_level="WARNING", log_to_driver=False)
    yield
    ray_core.shutdown()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def _suite():
    return parse_suite({"name": "tr", "version": 1, "dataset": "mnist", "models": ["seed-gan", "vae"], "tiny": True,
                        "budget": {"steps": 2}, "eval": {"n_samples": 64, "nll_images": 32, "recon_images": 8}})


def _trials(out: Path, model: str) -> list[tuple]:
    rows = [json.loads(line) for line in (out / model / TRIALS_FILE).read_text().splitlines()]
    return sorted((r["trial"], r["config"], r["status"], r["score"], r["images"]) for r in rows)


@pytest.mark.parametrize(("search", "model"), [("random", "seed-gan"), ("tpe", "vae")])
def test_ray_tune_runs_the_same_trials_as_the_local_executor(ray_instance, tmp_path, search, model):
    local = run_tune(plan_tune(_suite(), [model], trials=2, search=search, seed=2, out=tmp_path / "local"))
    run_tune(plan_tune(_suite(), [model], trials=2, search=search, seed=2, out=tmp_path / "ray"), executor="ray")
    assert _trials(tmp_path / "ray", model) == _trials(tmp_path / "local", model)
    assert len({json.dumps(t["config"]) for t in local[model]}) == 2  # two different configurations
    assert (tmp_path / "ray" / "tr-tuned.toml").read_text().split("[model.")[1].splitlines()[2:] == \
        (tmp_path / "local" / "tr-tuned.toml").read_text().split("[model.")[1].splitlines()[2:]


def test_resumed_tpe_search_draws_what_an_uninterrupted_one_draws(tmp_path):
    run_tune(plan_tune(_suite(), ["vae"], trials=3, search="tpe", seed=4, out=tmp_path / "whole"))
    run_tune(plan_tune(_suite(), ["vae"], trials=2, search="tpe", seed=4, out=tmp_path / "parts"))
    run_tune(plan_tune(_suite(), ["vae"], trials=3, search="tpe", seed=4, out=tmp_path / "parts", resume=True))
    assert _trials(tmp_path / "parts", "vae") == _trials(tmp_path / "whole", "vae")
