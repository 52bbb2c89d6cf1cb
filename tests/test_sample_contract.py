"""The sample contract: one rule for sample() before and after training and for `genbench eval` arrays."""

import random
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from torch import nn

from genbench import Capability, Generator
from genbench.files.images import load_images
from genbench.sample_contract import (
    FLOW_FIX,
    SAMPLE_TOLERANCE,
    SampleContractError,
    check_samples,
    precheck_sampling,
    range_problem,
)

TANH = "values in [-1.00, 1.00]; samples must be in [0, 1]: map tanh output with (x + 1) / 2"


def test_range_rule_and_messages():
    assert range_problem(0.0, 1.0) is None
    assert range_problem(-SAMPLE_TOLERANCE, 1 + SAMPLE_TOLERANCE) is None  # float rounding is not an error
    assert range_problem(-1.0, 1.0) == TANH
    assert range_problem(0.0, 255.0) == ("values in [0.00, 255.00]; samples must be in [0, 1]: "
                                         "divide 8-bit values by 255")
    # Just beyond the tolerance: enough decimals that the printed bound is visibly outside [0, 1].
    assert range_problem(0.0, 1.0021).startswith("values in [0.00, 1.002]")
    assert range_problem(-0.0015, 1.0).startswith("values in [-0.002, 1.00]")


def test_range_hint_tells_a_flow_from_a_tanh_gan():
    # A logit flow's inverse with alpha = 0.05 spans [-0.056, 1.056]; tanh never passes 1, however small its output.
    assert range_problem(-0.056, 1.056) == f"values in [-0.06, 1.06]; samples must be in [0, 1]: {FLOW_FIX}"
    assert range_problem(0.0, 1.02).endswith(FLOW_FIX)
    assert range_problem(-0.2, 0.2).endswith("map tanh output with (x + 1) / 2")
    assert range_problem(-0.5, 1.5).endswith("x.clamp(0, 1) after a flow's inverse logit transform")


def test_check_samples_names_shape_dtype_and_fix():
    with pytest.raises(SampleContractError) as e:
        check_samples(torch.zeros(2, 1, 64, 64), 2, "ExtLSGAN")
    assert str(e.value) == ("ExtLSGAN.sample(2) returned shape (2, 1, 64, 64); samples must be [n, 1, 28, 28]: "
                            "generate 28x28 images (the generator's output layers decide the size)")
    with pytest.raises(SampleContractError, match=r"returned dtype torch.uint8; .*divide 8-bit images by 255"):
        check_samples(torch.zeros(2, 1, 28, 28, dtype=torch.uint8), 2, "G")
    with pytest.raises(SampleContractError, match=r"add the channel dimension"):
        check_samples(torch.zeros(2, 28, 28), 2, "G")
    with pytest.raises(SampleContractError) as e:
        check_samples(torch.linspace(-1, 1, 2 * 784).view(2, 1, 28, 28), 2, "G")
    assert str(e.value) == f"G.sample(2) returned {TANH}"
    x = torch.full((2, 1, 28, 28), 1 + SAMPLE_TOLERANCE / 2)
    assert check_samples(x, 2, "G") is x


def test_eval_arrays_follow_the_same_rule(tmp_path):
    np.save(tmp_path / "ok.npy", np.linspace(-SAMPLE_TOLERANCE / 2, 1 + SAMPLE_TOLERANCE / 2, 2 * 784,
                                             dtype=np.float32).reshape(2, 28, 28))
    images = load_images(tmp_path / "ok.npy").images
    assert images.min() == 0 and images.max() == 255
    bad = tmp_path / "bad"
    bad.mkdir()
    np.save(bad / "tanh.npy", np.linspace(-1, 1, 2 * 784, dtype=np.float32).reshape(2, 28, 28))
    with pytest.raises(Exception) as e:
        load_images(bad)
    assert f"tanh.npy: float {TANH}" in str(e.value)


@dataclass
class _Cfg:
    batch_size: int = 4


class _BNModel(Generator):
    """Draws from every global RNG in sample() and has BatchNorm, one submodule kept in eval mode."""

    name = "bn-model"
    Config = _Cfg
    capabilities = Capability.SAMPLE

    def __init__(self, config):
        super().__init__(config)
        self.net = nn.Sequential(nn.Linear(8, 784), nn.BatchNorm1d(784), nn.Sigmoid())
        self.frozen = nn.Linear(2, 2).eval()
        self.modes_seen: list[bool] = []

    def train_step(self, batch, step):
        return {"loss": 0.0}

    def sample(self, n, generator):
        self.modes_seen.append(self.training)
        random.random(), np.random.rand(), torch.rand(1)  # a careless model draws from the global streams
        self.net[1].train()  # and even flips BatchNorm back to training mode
        return self.net(torch.randn(n, 8, generator=generator)).view(n, 1, 28, 28)


def test_precheck_changes_no_rng_stream_mode_or_buffer():
    torch.manual_seed(1)
    random.seed(1)
    np.random.seed(1)
    model = _BNModel(_Cfg()).train()
    model.frozen.eval()
    before = ({k: v.clone() for k, v in model.state_dict().items()}, torch.get_rng_state(), random.getstate(),
              np.random.get_state()[1].copy())
    precheck_sampling(model, seed=0)
    assert model.modes_seen == [False]  # sampled in eval mode
    assert model.training and model.net[1].training and not model.frozen.training  # each module's mode back
    for k, v in before[0].items():
        assert torch.equal(model.state_dict()[k], v), k  # BatchNorm running stats untouched
    assert torch.equal(torch.get_rng_state(), before[1])
    assert random.getstate() == before[2]
    assert np.array_equal(np.random.get_state()[1], before[3])


class _TanhModel(_BNModel):
    name = "tanh-model"

    def sample(self, n, generator):
        return torch.tanh(torch.randn(n, 1, 28, 28, generator=generator) * 3)


def test_precheck_refuses_tanh_range_in_one_line():
    with pytest.raises(SampleContractError) as e:
        precheck_sampling(_TanhModel(_Cfg()), seed=0)
    assert str(e.value).startswith("_TanhModel.sample(2) returned values in [-1.00, 1.00]; samples must be in [0, 1]")
    assert "\n" not in str(e.value)


def test_out_of_range_after_training_fails_evaluation_instead_of_clamping(data_root):
    from genbench.evaluate import EvalConfig, evaluate_model

    model = _TanhModel(_Cfg())
    with pytest.raises(SampleContractError, match=r"_TanhModel.sample\(16\) returned values in \[-1.00, 1.00\]"):
        evaluate_model(model, dataset="mnist", data_root=data_root, seed=0, device=torch.device("cpu"),
                       config=EvalConfig(n_samples=16))


@pytest.mark.parametrize("model", ["dcgan", "vae"])  # BatchNorm and a sampling decoder
def test_the_precheck_changes_no_number_of_a_run(tmp_path, data_root, monkeypatch, model):
    """A run with the pre-check ends in the very state of one without it: weights, optimizers, RNGs, log."""
    import genbench.run.task
    from genbench.run.plan import RunOptions, run_suite
    from genbench.suite import parse_suite
    from tests.conftest import stub_evaluator

    suite = parse_suite({"name": "pc", "version": 1, "dataset": "mnist", "models": [model], "tiny": True,
                         "budget": {"steps": 4}, "eval": {"n_samples": 16}})
    states, calls = [], []

    def counted(model, seed):
        calls.append(seed)
        precheck_sampling(model, seed)

    for checked in (True, False):
        monkeypatch.setattr(genbench.run.task, "precheck_sampling", counted if checked else lambda model, seed: None)
        out = tmp_path / str(checked)
        (rec,) = run_suite(suite, RunOptions(out=out, data_root=data_root, checkpoint_every_seconds=None),
                           evaluator=stub_evaluator, show_progress=False)
        assert rec.status == "ok"
        ckpt = torch.load(out / "pc" / model / "seed0" / "checkpoint.pt", map_location="cpu", weights_only=True)
        states.append((ckpt, rec.metrics["mean_pixel"]))
    (with_check, mean_with), (without, mean_without) = states
    assert calls == [0]  # the pre-check ran in the first run only
    assert mean_with == mean_without
    torch.testing.assert_close(with_check["state"], without["state"], rtol=0, atol=0)
    torch.testing.assert_close(with_check["rng"]["torch"], without["rng"]["torch"], rtol=0, atol=0)
    assert with_check["rng"]["python"] == without["rng"]["python"]
    assert with_check["rng"]["numpy"] == without["rng"]["numpy"]
    def untimed(log):
        return [{k: v for k, v in row.items() if k != "seconds"} for row in log]

    assert untimed(with_check["log"]) == untimed(without["log"])


class _DriftModel(_BNModel):
    """In range when built, out of range once trained: caught after training, never clamped."""

    name = "drift-model"

    def __init__(self, config):
        super().__init__(config)
        self.register_buffer("scale", torch.ones(()))

    def train_step(self, batch, step):
        self.scale.fill_(2.0)
        return {"loss": 0.0}

    def sample(self, n, generator):
        return torch.rand(n, 1, 28, 28, generator=generator) * self.scale


def test_a_run_whose_trained_samples_leave_the_range_fails_with_the_message(tmp_path, data_root):
    from genbench.run.plan import RunOptions, run_suite
    from genbench.suite import parse_suite

    suite = parse_suite({"name": "dr", "version": 1, "dataset": "mnist", "models": ["seed-gan"],
                         "budget": {"steps": 2}, "eval": {"n_samples": 16}})
    (rec,) = run_suite(suite, RunOptions(models=["drift-model"], extra_models=[_DriftModel], out=tmp_path,
                                         data_root=data_root), show_progress=False)
    assert rec.status == "failed"
    assert rec.error.startswith("_DriftModel.sample(16) returned values in [0.")
    assert rec.error.endswith("]; samples must be in [0, 1]: rescale the output to [0, 1]: torch.sigmoid for a "
                              "GAN, (x + 1) / 2 for tanh, x.clamp(0, 1) after a flow's inverse logit transform")
    assert rec.budget["achieved"]["steps"] == 2 and "fid" not in rec.metrics  # trained, then refused: no number
