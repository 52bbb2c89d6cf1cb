"""Plug-ins written the way users bring them, run end to end through `genbench run --model file.py:Class`.

Each style comes with its typical mistake: the mistake must fail the run before training with the
one-line message that names the fix, and the fixed plug-in must run ok. Tiny networks, the smoke
suite and a tiny --budget keep each test to seconds.
"""

from __future__ import annotations

import csv
import json
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import genbench
from genbench.cli import main
from genbench.errors import ConfigError

BUDGET = "images=256"

TANH_GAN = '''
from dataclasses import dataclass

import torch
from torch import nn

import genbench


@dataclass
class Config:
    batch_size: int = 32
    latent_dim: int = 16
    lr: float = 2e-4


class TanhGAN(genbench.Generator):
    """An MLP GAN in the usual tutorial style: data scaled to [-1, 1], generator ending in tanh."""

    name = "tanh-gan"
    Config = Config

    def __init__(self, config):
        super().__init__(config)
        self.G = nn.Sequential(nn.Linear(config.latent_dim, 64), nn.ReLU(), nn.Linear(64, 784), nn.Tanh())
        self.D = nn.Sequential(nn.Linear(784, 64), nn.LeakyReLU(0.2), nn.Linear(64, 1))
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=config.lr, betas=(0.5, 0.999))
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=config.lr, betas=(0.5, 0.999))
        self.bce = nn.BCEWithLogitsLoss()

    def train_step(self, batch, step):
        real = genbench.to_signed(batch).view(len(batch), -1)
        z = torch.randn(len(batch), self.config.latent_dim, device=self.device)
        fake = self.G(z)
        ones, zeros = torch.ones(len(batch), 1), torch.zeros(len(batch), 1)
        loss_d = self.bce(self.D(real), ones) + self.bce(self.D(fake.detach()), zeros)
        self.opt_d.zero_grad()
        loss_d.backward()
        self.opt_d.step()
        loss_g = self.bce(self.D(fake), ones)
        self.opt_g.zero_grad()
        loss_g.backward()
        self.opt_g.step()
        return {"loss_d": loss_d.item(), "loss_g": loss_g.item()}

    @torch.no_grad()
    def sample(self, n, generator):
        z = torch.randn(n, self.config.latent_dim, generator=generator, device=self.device)
        return self.G(z).view(n, 1, 28, 28)  # the mistake: tanh output in [-1, 1]


class FixedTanhGAN(TanhGAN):
    name = "tanh-gan-fixed"

    @torch.no_grad()
    def sample(self, n, generator):
        return (super().sample(n, generator) + 1) / 2
'''

BN_SCHEDULE = '''
from dataclasses import dataclass

import torch
from torch import nn

import genbench


@dataclass
class Config:
    batch_size: int = 32
    latent_dim: int = 8
    lr: float = 1e-2
    size: int = 64  # the image size the model was written for on another dataset
    mode_log: str = ""  # file where each call writes whether the model was in training mode


class BNGenerator(genbench.Generator):
    """A moment-matching generator with BatchNorm and its own step-decayed learning rate."""

    name = "bn-gen"
    Config = Config

    def __init__(self, config):
        super().__init__(config)
        s = config.size
        self.net = nn.Sequential(nn.Linear(config.latent_dim, 32), nn.BatchNorm1d(32), nn.ReLU(),
                                 nn.Linear(32, s * s), nn.Sigmoid())
        self.opt = torch.optim.Adam(self.net.parameters(), lr=config.lr)
        self.schedule = torch.optim.lr_scheduler.StepLR(self.opt, step_size=2, gamma=0.5)

    def _log(self, what):
        if self.config.mode_log:
            with open(self.config.mode_log, "a") as f:
                f.write(f"{what} {self.training}\\n")

    def train_step(self, batch, step):
        self._log("train_step")
        x = genbench.to_unit(batch).view(len(batch), -1)
        fake = self.net(torch.randn(len(batch), self.config.latent_dim, device=self.device))
        loss = (fake.mean(0) - x.mean(0)).pow(2).mean() + (fake.std(0) - x.std(0)).pow(2).mean()
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        lr = self.opt.param_groups[0]["lr"]
        self.schedule.step()
        return {"loss": loss.item(), "lr": lr}

    @torch.no_grad()
    def sample(self, n, generator):
        self._log("sample")
        s = self.config.size
        return self.net(torch.randn(n, self.config.latent_dim, generator=generator, device=self.device)
                        ).view(n, 1, s, s)
'''

TENSOR_LIKELIHOOD = '''
import math
from dataclasses import dataclass

import torch
from torch import nn

import genbench


@dataclass
class Config:
    batch_size: int = 32
    lr: float = 0.1


class PixelCategorical(genbench.Generator):
    """Independent 256-way categorical per pixel, trained by gradient descent on the exact NLL.

    Returns its losses as tensors, still attached to the graph, as many training loops do.
    """

    name = "pixel-categorical"
    Config = Config
    capabilities = genbench.Capability.SAMPLE | genbench.Capability.LOG_LIKELIHOOD

    def __init__(self, config):
        super().__init__(config)
        self.logits = nn.Parameter(torch.zeros(784, 256))
        self.opt = torch.optim.Adam(self.parameters(), lr=config.lr)

    def log_likelihood(self, x):
        logp = torch.log_softmax(self.logits, dim=1)  # [784, 256]
        return logp.gather(1, x.reshape(len(x), 784).long().T).sum(0)

    def train_step(self, batch, step):
        nll = -self.log_likelihood(batch).mean()
        self.opt.zero_grad()
        nll.backward()
        self.opt.step()
        return {"nll": nll, "bits_per_dim": nll / (784 * math.log(2))}

    @torch.no_grad()
    def sample(self, n, generator):
        values = torch.multinomial(torch.softmax(self.logits, dim=1), n, replacement=True, generator=generator)
        return values.T.reshape(n, 1, 28, 28).float() / 255
'''


def _write(tmp_path: Path, name: str, source: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(source))
    return path


def _run(tmp_path: Path, data_root: str, models: str, specs: list[str], *extra: str):
    args = ["run", "--suite", "smoke", "--models", models, "--budget", BUDGET, "--out", str(tmp_path / "out"),
            "--data-root", data_root, "--device", "cpu", "--no-progress"]
    for spec in specs:
        args += ["--model", spec]
    return CliRunner().invoke(main, [*args, *extra])


def _record(tmp_path: Path, model: str) -> dict:
    return json.loads((tmp_path / "out" / "smoke" / model / "seed0" / "run.json").read_text())


def _run_dir(tmp_path: Path, model: str) -> Path:
    return tmp_path / "out" / "smoke" / model / "seed0"


def test_tanh_gan_range_mistake_fails_before_training_and_the_fix_runs_ok(tmp_path, data_root):
    f = _write(tmp_path, "tanh_gan.py", TANH_GAN)
    r = _run(tmp_path, data_root, "tanh-gan,tanh-gan-fixed", [f"{f}:TanhGAN", f"{f}:FixedTanhGAN"])
    assert r.exit_code == 1, r.output  # a failed run
    bad = _record(tmp_path, "tanh-gan")
    assert bad["status"] == "failed"
    assert bad["error"].startswith("TanhGAN.sample(2) returned values in [-")
    assert bad["error"].endswith("]; samples must be in [0, 1]: map tanh output with (x + 1) / 2")
    assert "\n" not in bad["error"] and not bad.get("traceback")
    assert bad["error"] in " ".join(r.stderr.split())  # the user sees it (rich wraps long lines)
    assert "2 run(s) in" in r.stdout and "run(s) in" not in r.stderr  # the summary table goes to stdout
    assert not (_run_dir(tmp_path, "tanh-gan") / "checkpoint.pt").exists()  # failed before any training step
    assert not (_run_dir(tmp_path, "tanh-gan") / "train_log.csv").exists()
    assert bad["budget"]["achieved"] is None and "fid" not in bad["metrics"]
    good = _record(tmp_path, "tanh-gan-fixed")
    assert good["status"] == "ok" and good["metrics"]["fid"] > 0
    assert good["budget"]["achieved"]["images"] == 256


def test_batchnorm_schedule_model_size_mistake_fails_before_training_and_the_fix_runs_ok(tmp_path, data_root):
    f = _write(tmp_path, "bn_gen.py", BN_SCHEDULE)
    r = _run(tmp_path, data_root, "bn-gen", [f"{f}:BNGenerator"])
    assert r.exit_code == 1, r.output
    bad = _record(tmp_path, "bn-gen")
    assert bad["error"] == ("BNGenerator.sample(2) returned shape (2, 1, 64, 64); samples must be [n, 1, 28, 28]: "
                            "generate 28x28 images (the generator's output layers decide the size)")
    assert not (_run_dir(tmp_path, "bn-gen") / "checkpoint.pt").exists()

    log = tmp_path / "modes.txt"
    r = _run(tmp_path, data_root, "bn-gen", [f"{f}:BNGenerator"], "--set", "bn-gen.size=28",
             "--set", f"bn-gen.mode_log={log}", "--overwrite")
    assert r.exit_code == 0, r.output
    assert _record(tmp_path, "bn-gen")["status"] == "ok"
    calls = [line.split() for line in log.read_text().splitlines()]
    steps = 256 // 32
    # The pre-check samples in eval mode, training runs in train mode (the FLOP count's steps on a copy
    # too), evaluation samples in eval mode.
    evaluation = [c[0] for c in calls].index("sample", 1)
    assert calls[0] == ["sample", "False"]
    assert evaluation - 1 >= steps and all(c == ["train_step", "True"] for c in calls[1:evaluation])
    assert all(c == ["sample", "False"] for c in calls[evaluation:])
    with open(_run_dir(tmp_path, "bn-gen") / "train_log.csv") as fh:
        lrs = [float(row["lr"]) for row in csv.DictReader(fh)]
    assert lrs == [1e-2 * 0.5 ** (s // 2) for s in range(steps)][-len(lrs):]  # the model's own schedule ran


def test_likelihood_model_with_tensor_losses_runs_ok_and_loads_back(tmp_path, data_root):
    f = _write(tmp_path, "pixel_categorical.py", TENSOR_LIKELIHOOD)
    with warnings.catch_warnings():
        # PyTorch's warning on float() of a tensor that requires grad; as an error it would fail the run.
        warnings.filterwarnings("error", message=".*requires_grad.*")
        r = _run(tmp_path, data_root, "pixel-categorical", [f"{f}:PixelCategorical"])
    assert r.exit_code == 0, r.output
    rec = _record(tmp_path, "pixel-categorical")
    assert rec["status"] == "ok" and not any("requires_grad" in w for w in rec["warnings"])
    assert 0 < rec["metrics"]["nll_bpd"] < 8 and rec["metrics"]["nll_is_bound"] is False
    run_dir = _run_dir(tmp_path, "pixel-categorical")

    with pytest.raises(ConfigError, match=r"PixelCategorical, from a --model file.*model_file="):
        genbench.load_run(run_dir)
    model = genbench.load_run(run_dir, model_file=f)
    assert type(model).__name__ == "PixelCategorical" and not model.training
    ckpt = torch.load(run_dir / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert all(torch.equal(v, ckpt["state"]["model"][k]) for k, v in model.state_dict().items())
    # The run scored sample(500) drawn from a generator seeded with the run's seed: loading reproduces them.
    n = rec["metrics"]["n_samples"]
    samples = genbench.quantize(model.sample(n, torch.Generator().manual_seed(rec["seed"])))
    scored = np.load(run_dir / "samples" / "samples.npz")["samples"]
    assert np.array_equal(samples.numpy(), scored)
