"""Datasets: MNIST and Fashion-MNIST as uint8 tensors, and data-root resolution.

Every dataset is returned as canonical images ``[N,1,28,28] uint8`` plus labels
``[N] int64``. Files are read in torchvision's layout (``<root>/MNIST/raw/*-ubyte``),
so a folder prepared by torchvision works as is and a read-only folder is never
written to. torchvision downloads missing files; reading them needs only numpy
(:func:`read_idx`), because importing torchvision costs seconds (it imports
``torch._dynamo``) that ``genbench eval`` would otherwise pay on every start.

:data:`_DATASETS` is the one list of datasets: the CLI choices, the domain feature
extractors and their training recipes are derived from it.
"""

from __future__ import annotations

import math
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from genbench.errors import DataError

ENV_DATA_ROOT = "GENBENCH_DATA"

# dataset name -> (torchvision class name, folder name in torchvision's layout)
_DATASETS: dict[str, tuple[str, str]] = {
    "mnist": ("MNIST", "MNIST"),
    "fashion-mnist": ("FashionMNIST", "FashionMNIST"),
}
_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
SPLIT_SIZES = {"train": 60_000, "test": 10_000}
IDX_UINT8 = 0x08  # IDX type code of unsigned bytes, the only one MNIST-style files use


@dataclass(frozen=True)
class Split:
    """One split of a dataset: ``images`` [N,1,28,28] uint8, ``labels`` [N] int64."""

    dataset: str
    split: str
    images: Tensor
    labels: Tensor

    def __len__(self) -> int:
        return self.images.shape[0]


def dataset_names() -> list[str]:
    """Names of the supported datasets (``mnist``, ``fashion-mnist``), sorted."""
    return sorted(_DATASETS)


def default_cache_root() -> Path:
    """Per-user cache folder (XDG_CACHE_HOME or ~/.cache) for data and statistics."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "genbench"


def resolve_data_root(data_root: str | os.PathLike | None = None) -> Path:
    """``data_root`` argument > ``$GENBENCH_DATA`` > ``<user cache>/data``."""
    if data_root:
        return Path(data_root).expanduser()
    env = os.environ.get(ENV_DATA_ROOT)
    if env:
        return Path(env).expanduser()
    return default_cache_root() / "data"


def _check_name(dataset: str, split: str) -> None:
    if dataset not in _DATASETS:
        raise DataError(f"unknown dataset {dataset!r}; valid: {', '.join(dataset_names())}")
    if split not in _FILES:
        raise DataError(f"unknown split {split!r}; valid: {', '.join(sorted(_FILES))}")


def _raw_paths(root: Path, dataset: str, split: str) -> list[Path]:
    folder = root / _DATASETS[dataset][1] / "raw"
    return [folder / name for name in _FILES[split]]


def _download(root: Path, dataset: str) -> None:
    import torchvision.datasets as tvd

    cls = getattr(tvd, _DATASETS[dataset][0])
    # torchvision downloads both splits and extracts them into <root>/<Class>/raw.
    cls(root=str(root), train=True, download=True)
    cls(root=str(root), train=False, download=True)


def _missing_message(root: Path, dataset: str, split: str, missing: list[Path], reason: str) -> str:
    names = ", ".join(p.name for p in missing)
    return (
        f"{dataset} ({split}) not found in {root / _DATASETS[dataset][1] / 'raw'} "
        f"(missing: {names}) and the download failed ({reason}). "
        f"Put the IDX files there, or point genbench at a folder that has them with "
        f"--data-root DIR or {ENV_DATA_ROOT}=DIR (torchvision's layout: DIR/{_DATASETS[dataset][1]}/raw/)."
    )


def load_split(
    dataset: str, split: str = "train", data_root: str | os.PathLike | None = None, download: bool = True
) -> Split:
    """Load one split as uint8 images; downloads through torchvision if the files are missing.

    Raises :class:`DataError` with the files expected, the folder searched and the
    variable to set when the data is neither on disk nor downloadable.
    """
    _check_name(dataset, split)
    root = resolve_data_root(data_root)
    paths = _raw_paths(root, dataset, split)
    missing = [p for p in paths if not p.is_file()]
    if missing:
        if not download:
            raise DataError(_missing_message(root, dataset, split, missing, "download disabled"))
        try:
            root.mkdir(parents=True, exist_ok=True)
            _download(root, dataset)
        except Exception as exc:  # network, permissions, checksum: all end in the same advice
            reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".strip(": ")
            raise DataError(_missing_message(root, dataset, split, missing, reason)) from None
        missing = [p for p in paths if not p.is_file()]
        if missing:
            raise DataError(_missing_message(root, dataset, split, missing, "files absent after download"))
    return _read(dataset, split, paths)


def read_idx(path: str | os.PathLike, ndim: int) -> np.ndarray:
    """An IDX file of unsigned bytes (LeCun's MNIST format) with ``ndim`` dimensions, as uint8.

    Layout: two zero bytes, the type code ``0x08``, ``ndim``, then ``ndim`` big-endian
    uint32 sizes and the data. Raises ``ValueError`` on any other header or a data
    length that does not match the sizes.
    """
    with open(path, "rb") as fh:
        magic = fh.read(4)
        if len(magic) != 4 or magic[:2] != b"\0\0" or magic[2] != IDX_UINT8 or magic[3] != ndim:
            raise ValueError(f"not an IDX file of {ndim}-d unsigned bytes (header {magic.hex() or 'empty'})")
        sizes_raw = fh.read(4 * ndim)
        if len(sizes_raw) != 4 * ndim:
            raise ValueError("IDX header is truncated")
        sizes = struct.unpack(f">{ndim}I", sizes_raw)
        data = np.fromfile(fh, dtype=np.uint8)
    if data.size != math.prod(sizes):
        raise ValueError(f"IDX header declares {sizes} ({math.prod(sizes)} bytes) but {data.size} bytes follow")
    return data.reshape(sizes)


_CACHE: dict[tuple[str, str, str], Split] = {}


def _read(dataset: str, split: str, paths: list[Path]) -> Split:
    key = (dataset, split, str(paths[0].resolve()))
    if key in _CACHE:
        return _CACHE[key]
    try:
        images = torch.from_numpy(read_idx(paths[0], 3))
        labels = torch.from_numpy(read_idx(paths[1], 1))
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read {dataset} ({split}) from {paths[0].parent}: {exc}") from None
    expected = SPLIT_SIZES[split]
    if images.shape != (expected, 28, 28) or labels.shape != (expected,):
        raise DataError(
            f"{paths[0]} holds {tuple(images.shape)} images and {tuple(labels.shape)} labels; "
            f"expected ({expected}, 28, 28) and ({expected},)"
        )
    out = Split(dataset, split, images.unsqueeze(1).contiguous(), labels.long())
    _CACHE[key] = out
    return out
