"""Numerical faults give a defined result (a number, null with a reason, or a clear error)."""

from dataclasses import dataclass

import numpy as np
import pytest
import torch

from genbench import Capability, Generator
from genbench.evaluate import EvalConfig, evaluate_model, evaluate_samples
from genbench.metrics.fid import fid_from_features


@dataclass
class _Cfg:
    batch_size: int = 8


class NaNSampler(Generator):
    name = "nan-sampler"
    Config = _Cfg
    capabilities = Capability.SAMPLE

    def __init__(self, config):
        super().__init__(config)
        self.w = torch.nn.Parameter(torch.zeros(1))

    def train_step(self, batch, step):
        return {"loss": 0.0}

    def sample(self, n, generator):
        x = torch.rand(n, 1, 28, 28, generator=generator)
        x[0, 0, 0, 0] = float("nan")
        return x


def test_nan_samples_are_a_clear_error(data_root):
    with pytest.raises(ValueError, match=r"NaNSampler.sample\(16\) returned 1 non-finite values \(NaN: 1, inf: 0\)"):
        evaluate_model(NaNSampler(_Cfg()), dataset="mnist", data_root=data_root, seed=0,
                       device=torch.device("cpu"), config=EvalConfig(n_samples=16))


def test_nan_sampler_run_is_recorded_as_failed(tmp_path, data_root):
    from genbench.run.plan import RunOptions, run_suite
    from genbench.suite import parse_suite

    suite = parse_suite({"name": "nf", "version": 1, "dataset": "mnist", "models": ["seed-gan"], "tiny": True,
                         "budget": {"steps": 2}, "eval": {"n_samples": 16}})
    recs = run_suite(suite, RunOptions(models=["seed-gan"], extra_models=[NaNSampler], out=tmp_path,
                                       data_root=data_root), show_progress=False)
    bad = next(r for r in recs if r.model_name == "nan-sampler")
    assert bad.status == "failed" and "non-finite" in bad.error
    assert "fid" not in bad.metrics  # no silent number


def test_identical_samples_singular_covariance_gives_a_finite_fid(data_root):
    from genbench.data.datasets import load_split

    digit = load_split("mnist", "test", data_root).images[:1]
    m = evaluate_samples(digit.repeat(64, 1, 1, 1), dataset="mnist", data_root=data_root).metrics
    assert np.isfinite(m["fid"]) and m["fid"] > 0 and isinstance(m["fid"], float)
    assert m["recall"] < 0.05 and m["coverage"] < 0.05


def test_fewer_samples_than_kid_subset_size(data_root):
    from genbench.data.datasets import load_split

    x = load_split("mnist", "test", data_root).images[:50]
    m = evaluate_samples(x, dataset="mnist", data_root=data_root).metrics
    assert m["n_samples"] == 50 and np.isfinite(m["kid"]) and np.isfinite(m["kid_std"])


def test_fid_never_returns_a_complex_or_nan_number():
    # A rank-deficient, badly scaled covariance pair where sqrtm picks up imaginary parts.
    g = torch.Generator().manual_seed(0)
    gen = torch.randn(5, 64, generator=g) * 1e3  # 5 samples in 64 dims: singular covariance
    ref = torch.randn(200, 64, generator=g)
    mu, sigma = ref.double().mean(0).numpy(), np.cov(ref.double().numpy(), rowvar=False)
    try:
        fid = fid_from_features(gen, mu, sigma)
    except ValueError as exc:  # torch-fidelity refuses a large imaginary component: a clear error
        assert "Imaginary" in str(exc)
    else:
        assert isinstance(fid, float) and np.isfinite(fid)
