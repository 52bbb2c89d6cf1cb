"""A second, self-supervised lens: a SimCLR encoder per dataset, behind ``fid_ssl``.

Why a second lens. The domain classifier (:mod:`.network`) is trained to ignore the
style within a class, which is what a generator gets wrong, and it was never shown
anything off the digit manifold, so faint speckle on the background throws its
features far away while a reader barely notices it. Stein et al. (NeurIPS 2023,
"Exposing flaws of generative model evaluation metrics") found that self-supervised
features rank generators more like people do than supervised ones.

Why SimCLR (Chen et al. 2020, NT-Xent loss). A contrastive objective learns exactly
the invariances its augmentations name, and nothing else is asked of the network:
two views of one image must be nearer each other than to any other image of the
batch. That makes "what a reader ignores" a list we write down, instead of a
by-product of label noise. It needs no labels (train split images only), no
decoder (unlike an autoencoder, it is not pushed to spend capacity on every pixel,
background speckle included), no momentum encoder or queue (unlike MoCo/BYOL), and
it trains in minutes on a CPU at this image size.

The augmentations are digit-safe: no flips (a mirrored 2 is not a 2; Fashion-MNIST,
whose clothes are left-right symmetric, gets them), no large rotations (a 6 must
stay apart from a 9). Each view gets

- a small random affine map: rotation within ``+-max_rotation`` degrees, scale in
  ``1 +- max_scale``, shift within ``+-max_shift`` pixels (bilinear, zero fill);
- with probability ``noise_prob``, faint uniform background noise: every background
  pixel (value 0 after the affine map) becomes a uniform integer in ``[0, a]``, with
  the amplitude ``a`` uniform in ``[0, max_noise]`` per image (:func:`background_noise`).

No blur and no contrast jitter: blur is one of the known answers the lens must see
(real < blur sigma 1 < blur sigma 2 < noise), so it must not be taught to ignore it.

The network is the classifier's body (three stride-2 convolutions) with a 128-d
encoder output taken before its ReLU, after a BatchNorm1d, as for the classifier:
roughly standardized features for the Fréchet distance. The projection head
(128 -> 128 -> 64) is used by the loss only; its output is not a feature (Chen et
al. show the layer before the head keeps more information). After training, the
BatchNorm statistics are re-estimated on the un-augmented train split.

For a fixed seed, torch build and thread count the weights are bit-identical on
the CPU (all randomness comes from seeded generators; CPU kernels are deterministic).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genbench.data.datasets import dataset_names, load_split
from genbench.errors import ConfigError, GenbenchError
from genbench.features.extractor import WEIGHTS_DIR, Extractor, file_sha256
from genbench.features.network import _conv_block, preprocess
from genbench.features.train import TrainedExtractor, _recalibrate_batchnorm

ProgressFn = Callable[[str, int, int], None]

SSL_PREFIX = "genbench-ssl-"
SSL_DATASETS = tuple(dataset_names())

# SHA-256 of the committed weights (genbench/features/weights/ssl-<dataset>.pt). A file whose hash differs
# is refused: fid_ssl values are only comparable between runs that used these exact weights.
SSL_WEIGHTS_SHA256: dict[str, str] = {
    "mnist": "86d470dea8951aceac29243ae9d5871b2a49b08394af6686178ed1ef3117b97d",
    "fashion-mnist": "232922cb542f2918c2351c83ebe16c3ec2ec329dc708f6130730e4d66f434f11",
}


@dataclass(frozen=True)
class SSLNetConfig:
    channels: tuple[int, int, int] = (16, 32, 64)  # 28 -> 14 -> 7 -> 4 pixels; half the classifier's widths,
    # a quarter of its multiply-adds: SimCLR's two views per image make training the cost that matters on a CPU
    feature_dim: int = 128  # encoder output = the feature of fid_ssl; >= 64 so FD's covariance is informative
    projection_dim: int = 64  # NT-Xent acts here (Chen et al. 2020: a head in front of the loss)


class SSLNet(nn.Module):
    """SimCLR encoder ``[B,1,28,28] uint8 -> (features [B,128], empty [B,0])``.

    The second output keeps :class:`~genbench.features.extractor.Extractor`'s
    ``(features, logits)`` interface: this lens has no classes, hence no logits.
    In eval mode every operation acts on one image at a time, so features do not
    depend on the batch size.
    """

    def __init__(self, config: SSLNetConfig = SSLNetConfig()) -> None:
        super().__init__()
        self.config = config
        c1, c2, c3 = config.channels
        self.body = nn.Sequential(
            _conv_block(1, c1, 5), _conv_block(c1, c2, 3), _conv_block(c2, c3, 3), nn.Flatten(),
        )
        self.fc = nn.Linear(c3 * 4 * 4, config.feature_dim, bias=False)
        self.fc_norm = nn.BatchNorm1d(config.feature_dim)
        self.head = nn.Sequential(
            nn.ReLU(),
            nn.Linear(config.feature_dim, config.feature_dim, bias=False),
            nn.BatchNorm1d(config.feature_dim),
            nn.ReLU(),
            nn.Linear(config.feature_dim, config.projection_dim),
        )

    def encode(self, images: Tensor) -> Tensor:
        """``[B,1,28,28] uint8`` -> encoder features ``[B,feature_dim]`` float32."""
        return self.fc_norm(self.fc(self.body(preprocess(images))))

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        features = self.encode(images)
        return features, features.new_zeros((len(features), 0))


@dataclass(frozen=True)
class SSLTrainConfig:
    epochs: int = 10
    batch_size: int = 256  # 512 views: 510 negatives per positive pair
    max_lr: float = 2e-3  # peak of Adam's one-cycle schedule
    weight_decay: float = 1e-5
    temperature: float = 0.2  # NT-Xent's tau; SimCLR's small-batch optimum is 0.1-0.5
    max_rotation: float = 10.0  # degrees
    max_scale: float = 0.1  # scale in [0.9, 1.1]
    max_shift: float = 3.0  # pixels
    hflip: bool = False  # only for clothes
    noise_prob: float = 0.5  # share of views with background noise
    max_noise: int = 48  # gray levels; a little above the 40 a reader still ignores
    train_images: int | None = None  # first N train images only (quick checks); None: all 60,000
    net: SSLNetConfig = field(default_factory=SSLNetConfig)


_RECIPE_CHANGES: dict[str, dict[str, object]] = {"fashion-mnist": {"hflip": True}}
SSL_RECIPES: dict[str, SSLTrainConfig] = {
    name: SSLTrainConfig(**_RECIPE_CHANGES.get(name, {})) for name in SSL_DATASETS
}


def background_noise(images: Tensor, max_level: Tensor | int, gen: torch.Generator) -> Tensor:
    """Replace every zero pixel of ``images [B,1,28,28] uint8`` by a uniform integer in ``[0, max_level]``.

    ``max_level``: an int, or a ``[B]`` integer tensor (one amplitude per image). Stroke pixels are
    untouched; the result is uint8 (never above ``max_level`` where the image was 0).
    """
    if images.dtype != torch.uint8:
        raise TypeError(f"expected uint8 images, got {images.dtype}")
    b = len(images)
    level = torch.as_tensor(max_level, dtype=torch.float32).expand(b).reshape(b, 1, 1, 1)
    u = torch.rand(images.shape, generator=gen)
    noise = torch.floor(u * (level + 1)).clamp_(max=255).to(torch.uint8)
    return torch.where(images == 0, noise, images)


def augment_views(x: Tensor, config: SSLTrainConfig, gen: torch.Generator) -> Tensor:
    """One random view of each image of ``x [B,1,28,28] uint8`` (affine map, flips, background noise)."""
    b = len(x)
    angle = (torch.rand(b, generator=gen) * 2 - 1) * math.radians(config.max_rotation)
    scale = 1 + (torch.rand(b, generator=gen) * 2 - 1) * config.max_scale
    shift = (torch.rand(b, 2, generator=gen) * 2 - 1) * config.max_shift * 2 / x.shape[-1]  # normalized units
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    y = F.grid_sample(x.float(), grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    y = y.round_().clamp_(0, 255).to(torch.uint8)
    if config.hflip:
        flip = torch.rand(b, generator=gen) < 0.5
        y = torch.where(flip[:, None, None, None], y.flip(-1), y)
    if config.noise_prob > 0 and config.max_noise > 0:
        apply = torch.rand(b, generator=gen) < config.noise_prob
        level = torch.floor(torch.rand(b, generator=gen) * (config.max_noise + 1)) * apply
        y = background_noise(y, level, gen)
    return y


def nt_xent(z1: Tensor, z2: Tensor, temperature: float) -> Tensor:
    """SimCLR's normalized-temperature cross entropy of paired projections ``[B,P]`` (mean over 2B views)."""
    b = len(z1)
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    sim = (z @ z.T / temperature).masked_fill(torch.eye(2 * b, dtype=torch.bool, device=z.device), float("-inf"))
    targets = torch.cat([torch.arange(b, 2 * b), torch.arange(0, b)]).to(z.device)
    return F.cross_entropy(sim, targets)


@torch.no_grad()
def encode_all(net: SSLNet, images: Tensor, device: torch.device, batch_size: int = 1000) -> Tensor:
    """Eval-mode encoder features ``[N,feature_dim]`` of ``images [N,1,28,28] uint8``, on the CPU."""
    net.eval()
    return torch.cat([net.encode(images[i : i + batch_size].to(device)).cpu() for i in range(0, len(images),
                                                                                           batch_size)])


def linear_probe_accuracy(
    train_features: Tensor, train_labels: Tensor, test_features: Tensor, test_labels: Tensor,
    steps: int = 100, weight_decay: float = 1e-4,
) -> float:
    """Test accuracy of a multinomial logistic regression on frozen features (full-batch L-BFGS).

    Features are standardized with the train split's mean and std; the weights start at
    zero, so the result is deterministic. ``weight_decay`` is an L2 penalty on the weights.
    """
    mean, std = train_features.mean(0), train_features.std(0).clamp_min(1e-6)
    xtr, xte = (train_features - mean) / std, (test_features - mean) / std
    classes = int(train_labels.max()) + 1
    w = torch.zeros(xtr.shape[1], classes, requires_grad=True)
    b = torch.zeros(classes, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1, max_iter=steps, history_size=20, line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(xtr @ w + b, train_labels) + weight_decay * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        return float(((xte @ w + b).argmax(1) == test_labels).double().mean())


def train_ssl_extractor(
    dataset: str,
    data_root: str | os.PathLike | None = None,
    seed: int = 0,
    device: torch.device | str = "cpu",
    config: SSLTrainConfig | None = None,
    progress: ProgressFn | None = None,
) -> TrainedExtractor:
    """Train the SimCLR encoder of ``dataset`` on its train split (images only, no labels).

    The labels and the test split are used once, at the end, for the linear-probe
    accuracy recorded in the metadata (a logistic regression fitted on the training
    images' frozen features, scored on the test split); nothing is selected on them.
    """
    if dataset not in SSL_RECIPES:
        raise ConfigError(f"no SSL recipe for {dataset!r}; valid: {', '.join(sorted(SSL_RECIPES))}")
    config = config or SSL_RECIPES[dataset]
    device = torch.device(device)
    train = load_split(dataset, "train", data_root)
    test = load_split(dataset, "test", data_root)
    images = train.images[: config.train_images]

    start = time.perf_counter()
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        net = SSLNet(config.net).to(device)
        data_gen = torch.Generator().manual_seed(seed + 1)
        steps_per_epoch = len(images) // config.batch_size  # drop the last partial batch: NT-Xent wants a full one
        if steps_per_epoch < 1:
            raise ConfigError(f"{len(images)} train images are fewer than one batch of {config.batch_size}")
        total = config.epochs * steps_per_epoch
        opt = torch.optim.AdamW(net.parameters(), lr=config.max_lr, weight_decay=config.weight_decay)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=config.max_lr, total_steps=total)
        step = 0
        net.train()
        losses: list[float] = []
        for _ in range(config.epochs):
            order = torch.randperm(len(images), generator=data_gen)
            for i in range(steps_per_epoch):
                batch = images[order[i * config.batch_size : (i + 1) * config.batch_size]]
                views = torch.cat([augment_views(batch, config, data_gen), augment_views(batch, config, data_gen)])
                z = net.head(net.encode(views.to(device)))
                loss = nt_xent(z[: len(batch)], z[len(batch) :], config.temperature)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                losses.append(loss.item())
                step += 1
                if progress is not None:
                    progress(f"training {dataset} SSL encoder", step, total)
        _recalibrate_batchnorm(net, images, 1000, device)
    train_seconds = time.perf_counter() - start
    probe = linear_probe_accuracy(  # on the images it was trained on (all 60,000 unless train_images is set)
        encode_all(net, images, device), train.labels[: len(images)], encode_all(net, test.images, device), test.labels
    )
    state = {
        k: v.detach().to("cpu", torch.float32 if v.is_floating_point() else v.dtype).clone()
        for k, v in net.state_dict().items()
    }
    meta: dict[str, object] = {
        "dataset": dataset,
        "kind": "ssl",
        "objective": "SimCLR NT-Xent",
        "seed": seed,
        "linear_probe_accuracy": probe,
        "final_loss": sum(losses[-steps_per_epoch:]) / min(len(losses), steps_per_epoch),
        "train_seconds": round(train_seconds, 1),
        "device": str(device),
        "torch_version": str(torch.__version__),
        "num_threads": torch.get_num_threads(),
        "net_config": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(config.net).items()},
        "recipe": {k: v for k, v in asdict(config).items() if k != "net"},
    }
    return TrainedExtractor(dataset, state, meta)


# ---- loading the committed weights ----------------------------------------------------------------------------


def ssl_extractor_name(dataset: str) -> str:
    """``"mnist"`` or ``"genbench-ssl-mnist"`` -> ``"genbench-ssl-mnist"``; validates the dataset."""
    name = dataset.removeprefix(SSL_PREFIX)
    if name not in SSL_DATASETS:
        raise GenbenchError(
            f"no genbench SSL feature extractor for {dataset!r}; valid: "
            + ", ".join(SSL_PREFIX + d for d in SSL_DATASETS)
        )
    return SSL_PREFIX + name


def ssl_weights_path(dataset: str) -> Path:
    """Path of the committed SSL weights of ``dataset``."""
    return WEIGHTS_DIR / f"ssl-{ssl_extractor_name(dataset).removeprefix(SSL_PREFIX)}.pt"


def verified_ssl_sha256(dataset: str, path: Path | None = None) -> str:
    """SHA-256 of the SSL weights file, refused unless it equals the recorded one."""
    dataset = ssl_extractor_name(dataset).removeprefix(SSL_PREFIX)
    path = path or ssl_weights_path(dataset)
    retrain = f"genbench features train --kind ssl --dataset {dataset} --out {path}"
    if not path.is_file():
        raise GenbenchError(f"SSL weights of {dataset} are missing ({path}); reinstall genbench or run `{retrain}`")
    sha = file_sha256(path)
    expected = SSL_WEIGHTS_SHA256.get(dataset)
    if sha != expected:
        raise GenbenchError(
            f"SSL weights {path} have SHA-256 {sha[:16]}..., not the recorded {str(expected)[:16]}...; "
            f"reinstall genbench (fid_ssl is only comparable with the committed weights)"
        )
    return sha


def build_ssl_net(dataset: str, path: Path | None = None) -> SSLNet:
    """The committed SSL encoder of ``dataset`` (hash verified), in eval mode, on the CPU."""
    path = path or ssl_weights_path(dataset)
    verified_ssl_sha256(dataset, path)
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        cfg = blob["meta"].get("net_config", {})
        with torch.random.fork_rng(devices=[]):  # the random init is overwritten: leave the global RNG alone
            net = SSLNet(SSLNetConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in cfg.items()}))
        net.load_state_dict(blob["state_dict"])
    except Exception as exc:
        raise GenbenchError(f"cannot load SSL weights {path}: {type(exc).__name__}: {exc}") from None
    net.requires_grad_(False)
    return net.eval()


_LOADED: dict[tuple[str, str], Extractor] = {}


def load_ssl_extractor(dataset: str, device: torch.device | str = "cpu") -> Extractor:
    """The SSL lens of ``dataset`` as an :class:`Extractor` (features only; its logits are ``[N,0]``)."""
    device = torch.device(device)
    name = ssl_extractor_name(dataset)
    key = (name, str(device))
    if key not in _LOADED:
        net = build_ssl_net(dataset).to(device)
        _LOADED[key] = Extractor(name, verified_ssl_sha256(dataset), net, device, False)
    return _LOADED[key]
