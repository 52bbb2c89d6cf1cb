"""The generator protocol, checked for every registered generator at its tiny size."""

import io
import math

import pytest
import torch

from genbench import Capability
from genbench.config import make_config
from genbench.likelihood_contract import check_log_likelihood
from genbench.process import seed_everything
from genbench.protocol import RunContext, check_generator_class
from genbench.registry import generator_names, get_generator


def _build(name, seed=0):
    cls = get_generator(name)
    seed_everything(seed)
    model = cls(make_config(cls, cls.tiny_config))
    model.setup(RunContext("mnist"))  # as the harness does before training
    return model


def _batch(n=8, seed=0):
    from genbench.data.datasets import load_split

    return load_split("mnist", "test").images[seed * n:(seed + 1) * n].clone()


NAMES = generator_names()


def test_builtins_are_registered():
    assert "seed-gan" in NAMES


@pytest.mark.parametrize("name", NAMES)
class TestGeneratorContract:
    def test_class_follows_protocol(self, name):
        cls = get_generator(name)
        check_generator_class(cls)
        assert cls.__doc__ or __import__(cls.__module__).__doc__, "the model names its paper in a docstring"

    def test_train_step_returns_finite_floats(self, name):
        model = _build(name)
        model.train()
        batch = _batch(model.config.batch_size if model.config.batch_size <= 16 else 16)
        for step in range(2):
            losses = model.train_step(batch, step)
            assert losses and all(isinstance(v, float) and math.isfinite(v) for v in losses.values())

    def test_sample_shape_range_determinism(self, name):
        model = _build(name)
        model.eval()
        a = model.sample(5, torch.Generator().manual_seed(7))
        b = model.sample(5, torch.Generator().manual_seed(7))
        assert a.shape == (5, 1, 28, 28) and a.dtype == torch.float32
        assert a.min() >= 0.0 and a.max() <= 1.0
        assert torch.equal(a, b)

    def test_declared_capabilities_work(self, name):
        model = _build(name)
        model.eval()
        x = _batch(3)
        cls = type(model)
        if cls.has(Capability.LOG_LIKELIHOOD):
            # The harness's own rule: float [3], finite, at most 0 nats (a probability of 8-bit values is <= 1;
            # a bound is below it).
            check_log_likelihood(model.log_likelihood(x), 3, cls.__name__)
        if cls.has(Capability.RECONSTRUCT):
            r = model.reconstruct(x)
            assert r.shape == (3, 1, 28, 28) and r.min() >= 0 and r.max() <= 1
        if cls.has(Capability.COMPLETE):
            c = model.complete(x, 14, torch.Generator().manual_seed(0))
            assert c.shape == (3, 1, 28, 28)
            assert torch.equal((c[:, :, :14] * 255).round().to(torch.uint8), x[:, :, :14])

    def test_checkpoint_roundtrip_with_weights_only(self, name):
        model = _build(name)
        model.train()
        model.train_step(_batch(min(model.config.batch_size, 16)), 0)
        buf = io.BytesIO()
        torch.save(model.checkpoint_state(), buf)
        buf.seek(0)
        state = torch.load(buf, weights_only=True)
        other = _build(name, seed=1)
        other.load_checkpoint_state(state)
        for (k, v), (k2, v2) in zip(model.state_dict().items(), other.state_dict().items(), strict=True):
            assert k == k2 and torch.equal(v, v2)
        model.eval(), other.eval()
        assert torch.equal(model.sample(2, torch.Generator().manual_seed(1)),
                           other.sample(2, torch.Generator().manual_seed(1)))
