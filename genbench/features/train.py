"""Deterministic training of the domain classifiers (train split only).

``train_extractor("mnist", seed=0)`` reproduces the committed weights' recipe: SGD with
Nesterov momentum and a one-cycle learning rate (Smith & Topin 2019) for a few
epochs, random shifts of up to 2 pixels (plus horizontal flips for Fashion-MNIST),
then a pass that re-estimates the BatchNorm statistics on the un-augmented train
split, so the feature standardization reflects the data rather than the last batches.

The test split is touched once, at the end, to report the accuracy; nothing is
selected on it. For a fixed seed, device, torch build and thread count the result is
bit-identical (all randomness comes from seeded generators; CPU kernels are
deterministic).
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from genbench.data.datasets import dataset_names, load_split
from genbench.errors import ConfigError
from genbench.features.network import FeatureNet, NetConfig
from genbench.files.atomic import atomic_write_bytes

ProgressFn = Callable[[str, int, int], None]


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 6  # MNIST converges in fewer (results/levers/README.md); 6 leave a margin. Fashion-MNIST: 10 (below)
    batch_size: int = 256
    max_lr: float = 0.1  # peak of the one-cycle schedule
    momentum: float = 0.9
    weight_decay: float = 5e-4
    max_shift: int = 2  # pixels; translation augmentation
    hflip: bool = False  # mirror images with p=0.5 (only meaningful for clothes, not digits)
    train_images: int | None = None  # use only the first N train images (quick checks); None: all 60,000
    net: NetConfig = field(default_factory=NetConfig)


# Where a dataset departs from the defaults: Fashion-MNIST is harder, and clothes are
# left-right symmetric (digits are not).
_RECIPE_CHANGES: dict[str, dict[str, object]] = {
    "fashion-mnist": {"epochs": 10, "hflip": True},
}
RECIPES: dict[str, TrainConfig] = {name: TrainConfig(**_RECIPE_CHANGES.get(name, {})) for name in dataset_names()}


@dataclass
class TrainedExtractor:
    """Weights and provenance of a freshly trained classifier."""

    dataset: str
    state_dict: dict[str, Tensor]
    meta: dict[str, object]

    def save(self, path: str | os.PathLike) -> str:
        """Write ``{"state_dict", "meta"}`` atomically (float32 tensors); return its SHA-256."""
        buffer = io.BytesIO()
        torch.save({"state_dict": self.state_dict, "meta": self.meta}, buffer)
        data = buffer.getvalue()
        atomic_write_bytes(path, data)
        return hashlib.sha256(data).hexdigest()


def _augment(x: Tensor, max_shift: int, hflip: bool, gen: torch.Generator) -> Tensor:
    """Random integer translations (zero fill) and optional mirroring of ``[B,1,28,28] uint8``."""
    b, _, h, w = x.shape
    if max_shift > 0:
        padded = F.pad(x, (max_shift,) * 4)
        oy = torch.randint(0, 2 * max_shift + 1, (b,), generator=gen)
        ox = torch.randint(0, 2 * max_shift + 1, (b,), generator=gen)
        rows = (oy[:, None] + torch.arange(h))[:, :, None]  # [B,h,1]
        cols = (ox[:, None] + torch.arange(w))[:, None, :]  # [B,1,w]
        x = padded[torch.arange(b)[:, None, None], 0, rows, cols].unsqueeze(1)
    if hflip:
        flip = torch.rand(b, generator=gen) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    return x


@torch.no_grad()
def _recalibrate_batchnorm(net: FeatureNet, images: Tensor, batch_size: int, device: torch.device) -> None:
    """Replace running BatchNorm statistics by their exact average over ``images``."""
    for m in net.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None  # cumulative moving average = plain mean over batches
    net.train()
    for i in range(0, len(images), batch_size):
        net(images[i : i + batch_size].to(device))
    for m in net.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.momentum = 0.1
    net.eval()


@torch.no_grad()
def classifier_accuracy(
    net: FeatureNet, images: Tensor, labels: Tensor, device: torch.device, batch_size: int = 1000
) -> float:
    """Top-1 accuracy of ``net`` (eval mode) on ``images [N,1,28,28] uint8``."""
    net.eval()
    correct = 0
    for i in range(0, len(images), batch_size):
        _, logits = net(images[i : i + batch_size].to(device))
        correct += int((logits.argmax(1).cpu() == labels[i : i + batch_size]).sum())
    return correct / len(images)


def train_extractor(
    dataset: str,
    data_root: str | os.PathLike | None = None,
    seed: int = 0,
    device: torch.device | str = "cpu",
    config: TrainConfig | None = None,
    progress: ProgressFn | None = None,
) -> TrainedExtractor:
    """Train the domain classifier of ``dataset`` on its train split; report test accuracy.

    ``progress(description, completed, total)`` is called after every step.
    """
    if dataset not in RECIPES:
        raise ConfigError(f"no feature-extractor recipe for {dataset!r}; valid: {', '.join(sorted(RECIPES))}")
    config = config or RECIPES[dataset]
    device = torch.device(device)
    train = load_split(dataset, "train", data_root)
    test = load_split(dataset, "test", data_root)
    train_images, train_labels = train.images[: config.train_images], train.labels[: config.train_images]

    start = time.perf_counter()
    # Weight init and dropout use the global RNG: fork it so callers' streams are untouched.
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        net = FeatureNet(config.net).to(device)
        data_gen = torch.Generator().manual_seed(seed + 1)  # shuffling and augmentation, on the CPU
        steps_per_epoch = math.ceil(len(train_images) / config.batch_size)
        total_steps = config.epochs * steps_per_epoch
        opt = torch.optim.SGD(
            net.parameters(), lr=config.max_lr, momentum=config.momentum, nesterov=True,
            weight_decay=config.weight_decay,
        )
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=config.max_lr, total_steps=total_steps)
        step = 0
        net.train()
        for _ in range(config.epochs):
            order = torch.randperm(len(train_images), generator=data_gen)
            for i in range(0, len(train_images), config.batch_size):
                idx = order[i : i + config.batch_size]
                x = _augment(train_images[idx], config.max_shift, config.hflip, data_gen).to(device)
                y = train_labels[idx].to(device)
                _, logits = net(x)
                loss = F.cross_entropy(logits, y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                step += 1
                if progress is not None:
                    progress(f"training {dataset} classifier", step, total_steps)
        _recalibrate_batchnorm(net, train_images, 1000, device)
    train_seconds = time.perf_counter() - start
    accuracy = classifier_accuracy(net, test.images, test.labels, device)

    state = {
        k: v.detach().to("cpu", torch.float32 if v.is_floating_point() else v.dtype).clone()
        for k, v in net.state_dict().items()
    }
    meta: dict[str, object] = {
        "dataset": dataset,
        "seed": seed,
        "test_accuracy": accuracy,
        "train_seconds": round(train_seconds, 1),
        "device": str(device),
        "torch_version": str(torch.__version__),
        "num_threads": torch.get_num_threads(),
        "net_config": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(config.net).items()},
        "recipe": {k: v for k, v in asdict(config).items() if k != "net"},
    }
    return TrainedExtractor(dataset, state, meta)
