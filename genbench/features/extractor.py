"""Loading feature extractors and running them over uint8 images.

Two kinds of extractor share one interface (:class:`Extractor`):

- ``genbench-<dataset>``: the project's domain classifier (:mod:`.network`), weights
  committed in ``genbench/features/weights/<dataset>.pt``;
- ``inception-v3-compat``: torch-fidelity's TF-compatible InceptionV3, only when its
  weights file is on disk (``--inception-weights PATH`` or torch-fidelity's cache).
  genbench never downloads it and never substitutes another network for it.

Both map ``[B,1,28,28] uint8`` to ``(features [B,D], logits [B,C])`` float32.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import torch
from torch import Tensor, nn

from genbench.data.datasets import dataset_names
from genbench.errors import GenbenchError
from genbench.features.network import FeatureNet, NetConfig

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
DOMAIN_DATASETS = tuple(dataset_names())  # one domain classifier per dataset
PREFIX = "genbench-"
INCEPTION = "inception-v3-compat"

ProgressFn = Callable[[str, int, int], None]


def extractor_name(dataset_or_name: str) -> str:
    """``"mnist"`` or ``"genbench-mnist"`` -> ``"genbench-mnist"``; validates the dataset."""
    dataset = dataset_or_name.removeprefix(PREFIX)
    if dataset not in DOMAIN_DATASETS:
        raise GenbenchError(
            f"no genbench feature extractor for {dataset_or_name!r}; valid: "
            + ", ".join(PREFIX + d for d in DOMAIN_DATASETS)
        )
    return PREFIX + dataset


def weights_path(dataset_or_name: str) -> Path:
    """Path of the committed weights of a domain classifier."""
    return WEIGHTS_DIR / f"{extractor_name(dataset_or_name).removeprefix(PREFIX)}.pt"


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@cache
def _cached_sha256(path: str, mtime_ns: int, size: int) -> str:
    return _sha256_file(Path(path))


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 hex digest of a file (memoized while the file is unchanged)."""
    st = os.stat(path)
    return _cached_sha256(str(Path(path).resolve()), st.st_mtime_ns, st.st_size)


def extractor_sha256(name: str) -> str:
    """SHA-256 of the weights file of ``name`` (``mnist``/``genbench-mnist``/...)."""
    path = weights_path(name)
    if not path.is_file():
        raise GenbenchError(
            f"weights of {extractor_name(name)} are missing ({path}); reinstall genbench or "
            f"train them with `genbench features train --dataset {name.removeprefix(PREFIX)} --out {path}`"
        )
    return file_sha256(path)


def load_weights(name: str) -> tuple[dict[str, Tensor], dict[str, object]]:
    """``(state_dict, meta)`` of a domain classifier, loaded with ``weights_only=True``."""
    path = weights_path(name)
    extractor_sha256(name)  # raises the "missing" message
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        return blob["state_dict"], blob["meta"]
    except Exception as exc:
        raise GenbenchError(f"cannot load feature-extractor weights {path}: {type(exc).__name__}: {exc}") from None


def build_domain_net(name: str) -> FeatureNet:
    """The domain classifier of ``name`` with its committed weights, in eval mode, on the CPU."""
    state, meta = load_weights(name)
    cfg = meta.get("net_config", {})
    with torch.random.fork_rng(devices=[]):  # the random init is overwritten: leave the global RNG as it was
        net = FeatureNet(NetConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in cfg.items()}))
    net.load_state_dict(state)
    net.requires_grad_(False)
    return net.eval()


@dataclass
class Features:
    """Output of one extraction pass, on the CPU."""

    features: Tensor  # [N,D] float32, FID/KID/precision/recall/density/coverage
    logits: Tensor  # [N,C] float32, Inception Score and confident_fraction
    seconds: float  # wall-clock time of the pass

    @property
    def images_per_s(self) -> float:
        return len(self.features) / self.seconds if self.seconds > 0 else float("inf")


class _InceptionAdapter(nn.Module):
    """Canonical gray images -> torch-fidelity's InceptionV3 ('2048', 'logits_unbiased')."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        # Gray -> RGB by channel replication, exactly what PIL's L->RGB does for a PNG.
        features, logits = self.inner(images.expand(-1, 3, -1, -1).contiguous())
        return features, logits


@dataclass
class Extractor:
    """A loaded feature network on a device, with its identity for result records."""

    name: str
    sha256: str
    module: nn.Module
    device: torch.device
    is_domain_classifier: bool  # logits are over the dataset's own classes

    @property
    def info(self) -> dict[str, str]:
        return {"name": self.name, "sha256": self.sha256}

    @torch.no_grad()
    def extract(self, images: Tensor, batch_size: int = 500, progress: ProgressFn | None = None) -> Features:
        """Features and logits of ``images [N,1,28,28] uint8`` (any N >= 0)."""
        if images.dtype != torch.uint8 or images.dim() != 4 or tuple(images.shape[1:]) != (1, 28, 28):
            raise ValueError(f"expected uint8 [N,1,28,28], got {images.dtype} {tuple(images.shape)}")
        start = time.perf_counter()
        feats, logits = [], []
        n = len(images)
        for i in range(0, n, batch_size):
            f, lg = self.module(images[i : i + batch_size].to(self.device))
            feats.append(f.float().cpu())
            logits.append(lg.float().cpu())
            if progress is not None:
                progress("extracting features", min(i + batch_size, n), n)
        seconds = time.perf_counter() - start
        if not feats:
            probe_f, probe_l = self.module(torch.zeros(1, 1, 28, 28, dtype=torch.uint8, device=self.device))
            empty_f = probe_f.new_zeros((0, probe_f.shape[1])).cpu()
            return Features(empty_f, probe_l.new_zeros((0, probe_l.shape[1])).cpu(), seconds)
        return Features(torch.cat(feats), torch.cat(logits), seconds)


_LOADED: dict[tuple[str, str, str], Extractor] = {}


def inception_weights_file(path: str | os.PathLike | None = None) -> Path:
    """Where torch-fidelity's InceptionV3 weights are; GenbenchError when they are not on disk."""
    from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3

    if path is not None:
        p = Path(path).expanduser()
        if not p.is_file():
            raise GenbenchError(f"--inception-weights: no such file {p}")
        return p
    p = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(URL_INCEPTION_V3)
    if not p.is_file():
        raise GenbenchError(
            f"Inception features need torch-fidelity's InceptionV3 weights, which are not on this machine "
            f"(looked in {p}); genbench does not substitute another network. Download {URL_INCEPTION_V3} "
            f"on a connected machine and pass --inception-weights PATH (or put it at {p}), "
            f"or use --features genbench"
        )
    return p


def load_extractor(
    features: str, dataset: str, device: torch.device | str = "cpu", inception_weights: str | os.PathLike | None = None
) -> Extractor:
    """``features="genbench"`` (the dataset's classifier) or ``"inception"``, on ``device``."""
    device = torch.device(device)
    if features == "genbench":
        name = extractor_name(dataset)
        key = (name, str(device), "")
        if key not in _LOADED:
            net = build_domain_net(name).to(device)
            _LOADED[key] = Extractor(name, extractor_sha256(name), net, device, True)
        return _LOADED[key]
    if features == "inception":
        path = inception_weights_file(inception_weights)
        key = (INCEPTION, str(device), str(path.resolve()))
        if key not in _LOADED:
            from torch_fidelity.feature_extractor_inceptionv3 import (
                FeatureExtractorInceptionV3,
            )

            try:
                inner = FeatureExtractorInceptionV3(
                    INCEPTION, ["2048", "logits_unbiased"], feature_extractor_weights_path=str(path)
                )
            except Exception as exc:
                reason = f"{type(exc).__name__}: {exc}"
                raise GenbenchError(f"cannot load InceptionV3 weights from {path}: {reason}") from None
            module = _InceptionAdapter(inner).to(device).eval()
            _LOADED[key] = Extractor(INCEPTION, file_sha256(path), module, device, False)
        return _LOADED[key]
    raise GenbenchError(f"unknown feature space {features!r}; valid: genbench, inception")
