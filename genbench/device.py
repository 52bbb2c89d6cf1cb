"""The one place where a ``--device`` choice becomes a ``torch.device``."""

from __future__ import annotations

import torch

from genbench.errors import ConfigError

DEVICE_CHOICES = ["auto", "cpu", "cuda"]  # what the CLI offers; resolve_device also takes cuda:N


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` -> cuda if available else cpu; ``cuda`` without a GPU is an error."""
    name = str(device)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("--device cuda was asked for but torch sees no CUDA device; use --device cpu or auto")
    if name != "cpu" and not name.startswith("cuda"):
        raise ConfigError(f"unknown device {name!r}; valid: auto, cpu, cuda, cuda:N")
    return torch.device(name)
