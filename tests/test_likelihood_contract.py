"""The likelihood contract: log_likelihood's shape, dtype, finiteness and sign at the door and at evaluation,
the plausible range of bits/dim, and the optional `generator` for its noise."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from torch import nn

from genbench import Capability, Generator
from genbench.likelihood_contract import (
    UNIT_CUBE_NATS,
    LikelihoodContractError,
    bpd_mark,
    call_log_likelihood,
    check_log_likelihood,
    implausible_bpd,
    precheck_likelihood,
    takes_generator,
)

UNIFORM_NATS = 784 * math.log(256.0)  # -log P of any image under the uniform distribution over 8-bit values
NEGATIVE_NLL_FIX = ("a negative NLL, which 8-bit images cannot have: a density of pixels in [0, 1] must subtract "
                    "784·ln 256 = 4347.4 nats per image to be a likelihood of their 8-bit values, and set "
                    "likelihood_is_bound = True under uniform dequantization")


def _problem(ll, n=2):
    with pytest.raises(LikelihoodContractError) as e:
        check_log_likelihood(ll, n, "Flow")
    assert "\n" not in str(e.value)
    return str(e.value)


def test_each_mistake_is_named_with_its_fix():
    assert _problem(torch.tensor(-900.0)) == (
        "Flow.log_likelihood(x) returned a scalar (shape ()); log_likelihood must return [2], one log-likelihood in "
        "nats per image: keep the batch dimension (return log_px, not log_px.mean() or log_px.sum())")
    assert _problem(-900.0).startswith("Flow.log_likelihood(x) returned a Python float; log_likelihood must return [2]")
    assert _problem(torch.full((2, 784), -1.0)).endswith("sum each image's pixels, e.g. log_px.flatten(1).sum(1)")
    assert _problem(torch.full((2, 1), -900.0)).endswith("drop the trailing dimensions with log_px.view(-1)")
    assert _problem(torch.full((3,), -900.0)).endswith("return one value per image of x")
    assert _problem(torch.full((2,), -900, dtype=torch.int64)).startswith(
        "Flow.log_likelihood(x) returned dtype torch.int64; log-likelihoods must be float")
    assert _problem(torch.tensor([-900.0, float("nan")])).startswith(
        "Flow.log_likelihood(x) returned 1 non-finite values (NaN: 1, inf: 0) for 2 images")
    # A continuous density of pixels in [0, 1], 2 bits/dim above the 8-bit scale: positive "log-likelihoods".
    continuous = torch.tensor([-900.0, 2 * 784 * math.log(2)])
    assert _problem(continuous) == ("Flow.log_likelihood(x) returned +1086.9 nats for a test image (nll_bpd -2.00), "
                                    + NEGATIVE_NLL_FIX)
    # The fix the message names makes the same values valid.
    fixed = continuous - UNIT_CUBE_NATS
    assert check_log_likelihood(fixed, 2, "Flow") is fixed
    # 0 nats is a probability of 1, allowed. Evaluation lets non-finite values through to be counted; the sign holds.
    check_log_likelihood(torch.zeros(2, dtype=torch.float64), 2, "Flow")
    check_log_likelihood(torch.tensor([-900.0, float("-inf")]), 2, "Flow", finite=False)
    with pytest.raises(LikelihoodContractError, match="a negative NLL"):
        check_log_likelihood(torch.tensor([5.0, float("nan")]), 2, "Flow", finite=False)


def test_the_plausible_range_and_the_unit_mistakes_it_names():
    per_dimension = -UNIFORM_NATS / 784  # a uniform model's mean over pixels, returned as if per image
    bpd = -per_dimension / (784 * math.log(2))
    assert bpd == pytest.approx(8 / 784)
    assert "likely nats per dimension" in implausible_bpd(bpd) and bpd_mark(bpd) == "< 0.5: nats per dimension?"
    in_bits = 8 / math.log(2)  # the uniform model's bits per image, read as nats
    assert "likely bits instead of nats" in implausible_bpd(in_bits)
    assert bpd_mark(in_bits) == "> 8: bits instead of nats?"
    for fine in (0.5, 1.05, 7.99, 8.0, 8.0 + 1e-12):  # the uniform model's 8, even divided out in float, is fine
        assert implausible_bpd(fine) is None and bpd_mark(fine) is None
    assert implausible_bpd(None) is None and implausible_bpd(float("nan")) is None


@dataclass
class _Cfg:
    batch_size: int = 4


class _BNLikelihood(Generator):
    """A careless likelihood: draws from every global RNG and flips its BatchNorm back to training mode."""

    name = "bn-likelihood"
    Config = _Cfg
    capabilities = Capability.SAMPLE | Capability.LOG_LIKELIHOOD

    def __init__(self, config, shift=0.0):
        super().__init__(config)
        self.net = nn.Sequential(nn.Linear(784, 8), nn.BatchNorm1d(8))
        self.shift = shift
        self.modes_seen: list[bool] = []

    def train_step(self, batch, step):
        return {"loss": 0.0}

    def sample(self, n, generator):
        return torch.rand(n, 1, 28, 28, generator=generator)

    def log_likelihood(self, x):
        self.modes_seen.append(self.training)
        random.random(), np.random.rand(), torch.rand(1)
        self.net.train()
        h = self.net(x.float().flatten(1) / 255)
        return -UNIFORM_NATS + self.shift + 0 * h.sum(1)


def test_precheck_changes_no_rng_stream_mode_or_buffer(data_root):
    from genbench.data.datasets import load_split

    images = load_split("mnist", "test", data_root).images[:2]
    torch.manual_seed(1)
    model = _BNLikelihood(_Cfg()).train()
    before = ({k: v.clone() for k, v in model.state_dict().items()}, torch.get_rng_state(), random.getstate(),
              np.random.get_state()[1].copy())
    precheck_likelihood(model, images, seed=0)
    assert model.modes_seen == [False] and model.training and model.net[1].training
    for k, v in before[0].items():
        assert torch.equal(model.state_dict()[k], v), k
    assert torch.equal(torch.get_rng_state(), before[1])
    assert random.getstate() == before[2] and np.array_equal(np.random.get_state()[1], before[3])
    with pytest.raises(LikelihoodContractError, match=r"^_BNLikelihood.log_likelihood\(x\) returned \+\d"):
        precheck_likelihood(_BNLikelihood(_Cfg(), shift=UNIFORM_NATS + 10), images, seed=0)


class _WithGenerator(_BNLikelihood):
    def log_likelihood(self, x, generator=None):
        return -UNIFORM_NATS - torch.rand(len(x), generator=generator, dtype=torch.float64)


class _KeywordsOnly(_BNLikelihood):
    def log_likelihood(self, x, **options):
        return -UNIFORM_NATS - torch.zeros(len(x), dtype=torch.float64)


def test_a_generator_is_passed_only_where_log_likelihood_takes_one():
    assert takes_generator(_WithGenerator(_Cfg())) and not takes_generator(_BNLikelihood(_Cfg()))
    assert not takes_generator(_KeywordsOnly(_Cfg()))  # **kwargs is not a promise to take a generator
    x = torch.zeros(3, 1, 28, 28, dtype=torch.uint8)
    model = _WithGenerator(_Cfg())
    state = torch.get_rng_state()
    a = call_log_likelihood(model, x, torch.Generator().manual_seed(5))
    assert torch.equal(torch.get_rng_state(), state)  # its noise came from the generator, not the global stream
    assert torch.equal(a, call_log_likelihood(model, x, torch.Generator().manual_seed(5)))
    assert not torch.equal(a, call_log_likelihood(model, x, torch.Generator().manual_seed(6)))
    call_log_likelihood(_KeywordsOnly(_Cfg()), x, torch.Generator())  # called as log_likelihood(x)


def test_the_vae_bound_is_the_same_with_the_generator_as_with_the_seeded_global_stream(data_root):
    """Passing a generator keeps the committed vae numbers: on the CPU, a generator seeded with the run's seed
    draws what torch's global stream seeded with it drew before."""
    from genbench.config import make_config
    from genbench.data.datasets import load_split
    from genbench.evaluate import log_likelihoods
    from genbench.process import seed_everything
    from genbench.registry import get_generator

    cls = get_generator("vae")
    assert takes_generator(cls(make_config(cls, cls.tiny_config)))
    seed_everything(0)
    model = cls(make_config(cls, {**cls.tiny_config, "iwae_k": 8, "batch_size": 16})).eval()
    images = load_split("mnist", "test", data_root).images[:40]
    seed_everything(3)
    with torch.no_grad():
        before = torch.cat([model.log_likelihood(images[i:i + 16]).double() for i in range(0, 40, 16)])
    seed_everything(5)  # log_likelihoods seeds the global stream itself
    now = log_likelihoods(model, images, 3, "cpu")
    assert torch.equal(now, before)


def test_the_door_check_changes_no_number_of_a_run(tmp_path, data_root, monkeypatch):
    """A run with the likelihood check ends in the very state of one without it: weights, BatchNorm statistics
    (which the careless model's log_likelihood updates), optimizers, RNGs, log."""
    import genbench.run.task
    from genbench.run.plan import RunOptions, run_suite
    from genbench.suite import parse_suite
    from tests.conftest import stub_evaluator

    suite = parse_suite({"name": "lc", "version": 1, "dataset": "mnist", "models": ["seed-gan"],
                         "budget": {"steps": 3}, "eval": {"n_samples": 16}})
    states, calls = [], []

    def counted(model, images, seed):
        calls.append((tuple(images.shape), seed))
        precheck_likelihood(model, images, seed)

    for checked in (True, False):
        monkeypatch.setattr(genbench.run.task, "precheck_likelihood",
                            counted if checked else lambda model, images, seed: None)
        out = tmp_path / str(checked)
        (rec,) = run_suite(suite, RunOptions(models=["bn-likelihood"], extra_models=[_BNLikelihood], out=out,
                                             data_root=data_root, checkpoint_every_seconds=None),
                           evaluator=stub_evaluator, show_progress=False)
        assert rec.status == "ok"
        ckpt = torch.load(out / "lc" / "bn-likelihood" / "seed0" / "checkpoint.pt", map_location="cpu",
                          weights_only=True)
        states.append(ckpt)
    with_check, without = states
    assert calls == [((2, 1, 28, 28), 0)]  # two test images, in the first run only
    torch.testing.assert_close(with_check["state"], without["state"], rtol=0, atol=0)
    torch.testing.assert_close(with_check["rng"]["torch"], without["rng"]["torch"], rtol=0, atol=0)
    assert with_check["rng"]["python"] == without["rng"]["python"]
    assert with_check["rng"]["numpy"] == without["rng"]["numpy"]
