"""Determinism, checkpoint/resume and divergence handling of the training harness."""

import pytest
import torch

from genbench.budget import Budget
from genbench.config import make_config
from genbench.errors import CheckpointError
from genbench.process import seed_everything
from genbench.registry import get_generator
from genbench.run.train import CHECKPOINT_NAME, train
from tests.conftest import DummyConfig, DummyGenerator


def _images(n=512):
    g = torch.Generator().manual_seed(1)
    return torch.randint(0, 256, (n, 1, 28, 28), dtype=torch.uint8, generator=g)


def _seed_gan(seed=0):
    cls = get_generator("seed-gan")
    seed_everything(seed)
    return cls(make_config(cls, cls.tiny_config))


def _final_state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_same_seed_same_losses_and_samples():
    runs = []
    for _ in range(2):
        m = _seed_gan()
        r = train(m, _images(), Budget(steps=20), seed=0, log_every=1)
        samples = m.sample(8, torch.Generator().manual_seed(3))
        runs.append(([(row["loss_d"], row["loss_g"]) for row in r.log], samples))
    assert runs[0][0] == runs[1][0]
    assert torch.equal(runs[0][1], runs[1][1])


def test_different_seed_differs():
    m0, m1 = _seed_gan(0), _seed_gan(1)
    r0 = train(m0, _images(), Budget(steps=5), seed=0, log_every=1)
    r1 = train(m1, _images(), Budget(steps=5), seed=1, log_every=1)
    assert [x["loss_d"] for x in r0.log] != [x["loss_d"] for x in r1.log]


class _Interrupt(Exception):
    pass


def test_resume_equals_uninterrupted(tmp_path):
    budget = Budget(steps=23)
    full = _seed_gan()
    r_full = train(full, _images(), budget, seed=0, log_every=1)

    run_dir = tmp_path / "run"

    def kill_at_17(tracker, losses, ips):
        if tracker.steps == 17:
            raise _Interrupt

    first = _seed_gan()
    with pytest.raises(_Interrupt):
        train(first, _images(), budget, seed=0, run_dir=run_dir, checkpoint_every_steps=5,
              checkpoint_every_seconds=None, log_every=1, progress=kill_at_17)
    assert (run_dir / CHECKPOINT_NAME).exists()

    resumed = _seed_gan()
    r_res = train(resumed, _images(), budget, seed=0, run_dir=run_dir, resume=True,
                  checkpoint_every_steps=5, checkpoint_every_seconds=None, log_every=1)
    assert r_res.resumed_from_step == 15
    assert r_res.achieved["steps"] == 23
    assert [(x["loss_d"], x["loss_g"]) for x in r_res.log] == [(x["loss_d"], x["loss_g"]) for x in r_full.log]
    a, b = _final_state(full), _final_state(resumed)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    for name, opt in full.optimizers().items():
        sa, sb = opt.state_dict()["state"], resumed.optimizers()[name].state_dict()["state"]
        assert all(torch.equal(sa[i]["exp_avg"], sb[i]["exp_avg"]) for i in sa)
    g = torch.Generator().manual_seed(0)
    assert torch.equal(full.sample(4, g), resumed.sample(4, torch.Generator().manual_seed(0)))


def test_resume_rejects_other_config(tmp_path):
    m = _seed_gan()
    train(m, _images(), Budget(steps=3), seed=0, run_dir=tmp_path)
    cls = get_generator("seed-gan")
    other = cls(make_config(cls, {**cls.tiny_config, "lr": 1e-3}))
    with pytest.raises(CheckpointError, match="settings differ: lr"):
        train(other, _images(), Budget(steps=5), seed=0, run_dir=tmp_path, resume=True)
    with pytest.raises(CheckpointError, match="seed mismatch"):
        train(_seed_gan(), _images(), Budget(steps=5), seed=1, run_dir=tmp_path, resume=True)


def test_corrupt_checkpoint_is_a_clear_error(tmp_path):
    (tmp_path / CHECKPOINT_NAME).write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot load checkpoint"):
        train(_seed_gan(), _images(), Budget(steps=2), seed=0, run_dir=tmp_path, resume=True)


def test_nan_loss_stops_with_diverged():
    m = DummyGenerator(DummyConfig(batch_size=8, diverge_at=4))
    r = train(m, _images(), Budget(steps=50), seed=0)
    assert r.status == "diverged"
    assert r.achieved["steps"] == 5
    assert "non-finite loss (loss) at step 5" in r.error


def test_throughput_and_memory_recorded():
    r = train(_seed_gan(), _images(), Budget(steps=10), seed=0)
    assert r.train_images_per_s > 0 and r.peak_memory_mb > 0
    assert r.num_parameters == sum(p.numel() for p in _seed_gan().parameters())


class _TensorLossGenerator(DummyGenerator):
    """Returns its losses as tensors, one still attached to the graph, as many user models do."""

    name = "tensor-loss"

    def train_step(self, batch, step):
        loss = ((torch.sigmoid(self.logits) - batch.float() / 255) ** 2).mean()
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        return {"loss": loss, "scale": self.noise_scale.abs() * 2}


def test_tensor_losses_are_read_once_without_a_warning():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # PyTorch's "Converting a tensor with requires_grad=True" would raise
        r = train(_TensorLossGenerator(DummyConfig()), _images(), Budget(steps=3), seed=0, log_every=1)
    assert r.status == "ok"
    assert all(type(row["loss"]) is float and type(row["scale"]) is float for row in r.log)
    assert r.log[0]["scale"] == pytest.approx(0.2)


def test_loss_that_is_not_a_number_is_refused_in_one_line():
    from genbench.run.train import loss_floats

    model = DummyGenerator(DummyConfig())
    with pytest.raises(TypeError, match=r"^DummyGenerator.train_step returned loss 'loss' with shape \(4,\); "
                                        r"return one number per loss \(e.g. loss.mean\(\)\)$"):
        loss_floats(model, {"loss": torch.zeros(4)})
    with pytest.raises(TypeError, match=r"returned loss 'loss' = None; losses must be numbers or one-element"):
        loss_floats(model, {"loss": None})
