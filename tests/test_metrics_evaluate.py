"""evaluate_model / evaluate_samples: capability-driven keys, null reasons, determinism, units."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import pytest
import torch

from genbench import Capability, Generator, to_unit
from genbench.data.datasets import load_split
from genbench.evaluate import EvalConfig, EvalResult, evaluate_model, evaluate_samples
from genbench.metrics import metric_specs
from genbench.metrics.likelihood import bits_per_dim, nll_summary

FAST = EvalConfig(nll_images=100, recon_images=50, fid_bootstrap_reps=20, kid_subsets=20)
DISTRIBUTION = ("fid", "fid_ci_low", "fid_ci_high", "kid", "kid_std", "is", "is_std",
                "precision", "recall", "density", "coverage", "confident_fraction", "copy_fraction",
                "classes_covered", "class_kl")


pytestmark = pytest.mark.usefixtures("single_thread")


@dataclass
class TableConfig:
    batch_size: int = 64


class TableModel(Generator):
    """Samples rows of a table of real images; uniform likelihood; exact reconstructions."""

    name = "table"
    Config = TableConfig
    capabilities = Capability.SAMPLE | Capability.LOG_LIKELIHOOD | Capability.RECONSTRUCT | Capability.COMPLETE
    likelihood_is_bound = True

    def __init__(self, config: TableConfig, images: torch.Tensor) -> None:
        super().__init__(config)
        self.register_buffer("table", images)
        self.sampled_in_eval_mode = None

    def train_step(self, batch, step):
        return {}

    def sample(self, n, generator):
        self.sampled_in_eval_mode = not self.training
        idx = torch.randint(0, len(self.table), (n,), generator=generator, device=self.table.device)
        return to_unit(self.table[idx])

    def log_likelihood(self, x):
        return torch.full((len(x),), -784 * math.log(256.0), dtype=torch.float64)  # uniform over 8-bit values

    def reconstruct(self, x):
        return to_unit(x)

    def complete(self, x, known_rows, generator):
        out = to_unit(x).clone()
        out[..., known_rows:, :] = 0.0
        return out


class SampleOnly(TableModel):
    name = "sample-only"
    capabilities = Capability.SAMPLE


@pytest.fixture(scope="module")
def table(data_root):
    return load_split("mnist", "train", data_root).images[:1000]


def _evaluate(model, data_root, seed=0, n=300) -> EvalResult:
    return evaluate_model(model, dataset="mnist", data_root=data_root, seed=seed, device=torch.device("cpu"),
                          config=replace(FAST, n_samples=n))


def test_full_capability_model(table, data_root):
    model = TableModel(TableConfig(), table)
    model.train()
    seen = []
    result = evaluate_model(model, dataset="mnist", data_root=data_root, seed=0, device=torch.device("cpu"),
                            config=replace(FAST, n_samples=300), progress=lambda d, c, t: seen.append((d, c, t)))
    m = result.metrics
    assert model.sampled_in_eval_mode
    assert result.samples.dtype == torch.uint8 and result.samples.shape == (300, 1, 28, 28)
    assert m["n_samples"] == 300 and m["sample_images_per_s"] > 0 and m["feature_images_per_s"] > 0
    assert m["nll_bpd"] == pytest.approx(8.0) and m["nll_is_bound"] is True
    assert m["nll_bpd_stderr"] == pytest.approx(0.0)
    assert m["psnr"] == 100.0 and m["mse"] == 0.0 and m["ssim"] == pytest.approx(1.0)
    test = load_split("mnist", "test", data_root).images[:200]
    assert m["completion_mse"] == pytest.approx((test[..., 14:, :].double() ** 2).mean().item())
    assert 0 < m["fid"] < 10 and m["precision"] > 0.8 and m["is"] > 6 and m["confident_fraction"] > 0.9
    assert m["copy_fraction"] == 1.0  # its samples are training images
    assert m["classes_covered"] == 10 and m["class_kl"] < 0.05
    assert m["fid_ci_low"] <= m["fid"] <= m["fid_ci_high"]
    # One sample call of 300 images: too few windows for an interval of the median sampling speed; fewer than
    # fid_inf's 640; about 30 samples per class, below what an intra-class FID needs; about 6 per k-means cell,
    # below the copy test's 20.
    assert set(result.null_reasons) == {"sample_images_per_s_ci_low", "sample_images_per_s_ci_high", "fid_inf",
                                        "fid_intra", "copy_ct", "copy_ct_p"}
    assert "have fewer than 50 samples" in result.null_reasons["fid_intra"]
    assert result.null_reasons["copy_ct"] == "no k-means cell of the training set holds 20 samples"
    assert result.extractor["name"] == "genbench-mnist"
    assert ("sampling", 300, 300) in seen and any(d == "likelihood" for d, _, _ in seen)
    for key in m:  # every produced key has registered metadata
        assert key in metric_specs(), key


def test_sample_only_model_gets_null_with_reasons(table, data_root):
    result = _evaluate(SampleOnly(TableConfig(), table), data_root)
    model_only = ("nll_bpd", "nll_is_bound", "nll_bpd_stderr", "psnr", "mse", "ssim",
                  "completion_psnr", "completion_mse")
    for key in model_only:
        assert result.metrics[key] is None
        assert "sample-only does not declare" in result.null_reasons[key]
    assert all(result.metrics[k] is not None for k in DISTRIBUTION)


def test_deterministic_for_a_seed(table, data_root):
    a = _evaluate(SampleOnly(TableConfig(), table), data_root, seed=5)
    b = _evaluate(SampleOnly(TableConfig(), table), data_root, seed=5)
    c = _evaluate(SampleOnly(TableConfig(), table), data_root, seed=6)
    assert torch.equal(a.samples, b.samples) and not torch.equal(a.samples, c.samples)
    for key in DISTRIBUTION:
        assert a.metrics[key] == b.metrics[key], key
    assert a.metrics["fid"] != c.metrics["fid"]


def test_evaluate_samples_equals_evaluate_model_on_the_same_images(table, data_root):
    from_model = _evaluate(SampleOnly(TableConfig(), table), data_root, seed=1)
    from_files = evaluate_samples(from_model.samples, dataset="mnist", data_root=data_root, seed=1, config=FAST)
    for key in DISTRIBUTION:
        assert from_files.metrics[key] == from_model.metrics[key], key


def test_bits_per_dim_units():
    nats = torch.tensor([784 * math.log(2.0), 2 * 784 * math.log(2.0)])
    assert bits_per_dim(nats).tolist() == pytest.approx([1.0, 2.0])
    summary = nll_summary(-nats)
    assert summary["nll_bpd"] == pytest.approx(1.5)
    assert summary["nll_bpd_stderr"] == pytest.approx(0.5)  # std 0.7071 / sqrt(2)
