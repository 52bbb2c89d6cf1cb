"""The CI metric gate's suite and committed baseline: what `genbench check` in CI relies on."""

import json
import statistics

import pytest

from genbench.suite import load_suite
from genbench.verify.check import load_baseline
from tests.conftest import REPO

BASELINE = REPO / "results" / "baselines" / "gate.json"
LIKELIHOOD_MODELS = ("vae", "pixelcnn", "pixel-lstm")  # ranked by NLL (their primary metric)


@pytest.fixture(scope="module")
def baseline():
    return load_baseline(BASELINE)


def test_the_gate_runs_every_competitor_of_mnist_small():
    gate, small = load_suite("gate"), load_suite("mnist-small")
    assert {m.name for m in small.models} <= {m.name for m in gate.models}


def test_the_baseline_is_of_the_suite_as_it_is(baseline):
    """A suite edit without a refreshed baseline fails here, before CI's gate run refuses it."""
    suite = load_suite("gate")
    assert (baseline["suite"], baseline["suite_version"]) == ("gate", suite.version)
    assert set(baseline["models"]) == {m.name for m in suite.models}
    for name, entry in baseline["models"].items():
        assert entry["made_with"]["budget"] == suite.model(name).budget.to_dict(), name
        assert entry["made_with"]["eval"] == {k: getattr(suite.eval, k) for k in entry["made_with"]["eval"]}, name


def test_the_baseline_has_measured_spread(baseline):
    for name, entry in baseline["models"].items():
        assert len(entry["seeds"]) >= 3, name
        assert all(len(values) == len(entry["seeds"]) for values in entry["metrics"].values()), name


def test_every_competitor_ends_far_from_the_floor(baseline):
    """The gate can only see a bug that makes a model worse: every competitor must have learned."""
    models = baseline["models"]
    floor = models["independent-pixels"]["metrics"]
    floor_fid, floor_nll = statistics.fmean(floor["fid"]), statistics.fmean(floor["nll_bpd"])
    competitors = [n for n, e in models.items() if e["made_with"]["class"].split(".")[-1] not in
                   ("IndependentPixels", "RealData", "TrainCopy")]
    assert len(competitors) >= 7
    for name in competitors:
        metrics = models[name]["metrics"]
        assert max(metrics["fid"]) < floor_fid / 2, (name, metrics["fid"], floor_fid)
        if name in LIKELIHOOD_MODELS:
            assert max(metrics["nll_bpd"]) < floor_nll, (name, metrics["nll_bpd"], floor_nll)


def test_the_baseline_comes_from_a_clean_commit():
    raw = json.loads(BASELINE.read_text())
    hashes = raw["git_hash"] if isinstance(raw["git_hash"], list) else [raw["git_hash"]]
    assert hashes and all(h and not h.endswith("-dirty") for h in hashes)


def test_every_injected_bug_still_applies_to_the_code():
    """scripts/gate_mutations.py edits the code by exact text: a refactor that moves that text must update it."""
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location("gate_mutations", REPO / "scripts" / "gate_mutations.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    assert len(module.MUTATIONS) >= 8
    families = {"seed-gan": "gan", "sn-dcgan": "gan", "wgan-gp": "gan", "vae": "vae", "iddpm": "diffusion",
                "pixelcnn": "autoregressive", "pixel-lstm": "autoregressive", "glow": "flow"}
    assert {families[m] for mutation in module.MUTATIONS for m in mutation.models} == set(families.values())
    for mutation in module.MUTATIONS:
        text = (REPO / mutation.file).read_text()
        assert text.count(mutation.old) == 1, mutation.name
        assert mutation.new != mutation.old and set(mutation.models) <= set(families)
