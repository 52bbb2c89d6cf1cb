"""Shared fixtures: the data root, a tiny dummy generator and a stub evaluator."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from torch import nn

from genbench import Capability, Generator, to_unit
from genbench.data.datasets import resolve_data_root

REPO = Path(__file__).resolve().parents[1]
# Where the tests read MNIST: $GENBENCH_DATA, else genbench's own default (the user cache, where
# the first test that needs it downloads it). Read now, before the fixture below moves the cache.
DATA_ROOT = str(resolve_data_root())


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    # Statistics caches go to a per-session temp dir, never the user's ~/.cache.
    cache = tmp_path_factory.getbasetemp() / "xdg-cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.setenv("GENBENCH_DATA", str(Path(DATA_ROOT).resolve()))


@pytest.fixture(autouse=True)
def _plugin_registries_restored():
    """A --metric or --lens plug-in registers for the rest of the process, as it should in a real run;
    in tests one test's plug-ins (e.g. a CLI invocation's) must not outlive it."""
    from genbench.features.user_lens import _EXTRACTORS, _LENSES
    from genbench.metrics.group import _GROUPS
    from genbench.metrics.spec import _METRICS
    from genbench.metrics.user_metric import _USER_METRICS

    registries = (_METRICS, _GROUPS, _USER_METRICS, _LENSES, _EXTRACTORS)
    saved = [dict(r) for r in registries]
    yield
    for registry, before in zip(registries, saved, strict=True):
        registry.clear()
        registry.update(before)


@pytest.fixture(scope="module")
def single_thread():
    """One torch thread for the module: metric tests run many small ops, which extra threads only stall."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def data_root() -> str:
    return str(Path(DATA_ROOT).resolve())


@dataclass
class DummyConfig:
    batch_size: int = 16
    lr: float = 1e-2
    diverge_at: int = -1  # step at which the loss becomes NaN (-1: never)


class DummyGenerator(Generator):
    """A per-pixel Bernoulli-ish model: learns the mean image. For harness tests."""

    name = "dummy"
    Config = DummyConfig
    capabilities = Capability.SAMPLE
    tiny_config = {}

    def __init__(self, config: DummyConfig) -> None:
        super().__init__(config)
        self.logits = nn.Parameter(torch.zeros(1, 1, 28, 28))
        self.noise_scale = nn.Parameter(torch.tensor(0.1))
        self.opt = torch.optim.Adam(self.parameters(), lr=config.lr)

    def train_step(self, batch, step):
        x = to_unit(batch)
        jitter = torch.randn_like(x) * 0.01  # consumes the global RNG, as real models do
        loss = ((torch.sigmoid(self.logits) - x + jitter) ** 2).mean() + self.noise_scale.abs() * 1e-3
        if self.config.diverge_at >= 0 and step >= self.config.diverge_at:
            loss = loss * float("nan")
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        return {"loss": loss.item()}

    @torch.no_grad()
    def sample(self, n, generator):
        base = torch.sigmoid(self.logits).expand(n, 1, 28, 28)
        noise = torch.rand(n, 1, 28, 28, generator=generator, device=self.device)
        return (base + (noise - 0.5) * self.noise_scale.abs()).clamp(0, 1)


@dataclass
class SlowConfig(DummyConfig):
    step_seconds: float = 0.02  # wall time added to every step: a window for tests to interrupt training


class SlowDummyGenerator(DummyGenerator):
    """:class:`DummyGenerator` whose steps take a while; sleeping changes no number."""

    name = "slow-dummy"
    Config = SlowConfig

    def train_step(self, batch, step):
        import time

        time.sleep(self.config.step_seconds)
        return super().train_step(batch, step)


@dataclass
class TracedConfig(SlowConfig):
    trace_dir: str = ""  # where each run appends its (pid, step start, step end) wall times


class TracedDummyGenerator(SlowDummyGenerator):
    """:class:`SlowDummyGenerator` that logs when each of its steps ran, to check how many runs overlap."""

    name = "traced-dummy"
    Config = TracedConfig

    def train_step(self, batch, step):
        import os
        import time

        start = time.time()
        out = super().train_step(batch, step)
        with open(os.path.join(self.config.trace_dir, f"{os.getpid()}.txt"), "a") as fh:
            fh.write(f"{start} {time.time()}\n")
        return out


@dataclass
class StubEval:
    metrics: dict
    null_reasons: dict
    samples: torch.Tensor
    timings: dict
    extractor: dict


def stub_evaluator(model, *, dataset, data_root, seed, device, progress=None, features="genbench", config):
    """Samples and a pixel-mean 'metric': deterministic, no feature extractor needed."""
    from genbench.protocol import quantize

    model.eval()
    g = torch.Generator(device=device).manual_seed(seed)
    samples = quantize(model.sample(config.n_samples, g))
    return StubEval({"mean_pixel": samples.float().mean().item(), "sample_images_per_s": 1.0}, {}, samples, {}, {})
