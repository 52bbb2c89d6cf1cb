"""The one place where a ``--device`` choice is checked and becomes a device (for torch, Ray and speed)."""

from __future__ import annotations

import torch

from genbench.errors import ConfigError

DEVICE_CHOICES = ["auto", "cpu", "cuda"]  # what the CLI offers; resolve_device also takes cuda:N


def resolve_device_name(name: str, *, has_gpu: bool, lacking: str = "torch sees no CUDA device",
                        auto_allowed: bool = True) -> str:
    """``auto`` -> ``cuda`` if ``has_gpu`` else ``cpu``; ``cuda`` (or ``cuda:N``) without a GPU is an error.

    ``lacking`` says who has no GPU (torch here, a Ray cluster); ``auto_allowed=False``
    leaves ``auto`` out of the fix the message offers (``genbench speed`` names one device).
    """
    fix = "use --device cpu or auto" if auto_allowed else "use --device cpu"
    if name == "auto" and auto_allowed:
        return "cuda" if has_gpu else "cpu"
    if name.startswith("cuda") and not has_gpu:
        raise ConfigError(f"--device cuda was asked for but {lacking}; {fix}")
    if name != "cpu" and not name.startswith("cuda"):
        valid = "auto, cpu, cuda, cuda:N" if auto_allowed else "cpu, cuda, cuda:N"
        raise ConfigError(f"unknown device {name!r}; valid: {valid}")
    return name


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` -> cuda if available else cpu; ``cuda`` without a GPU is an error."""
    return torch.device(resolve_device_name(str(device), has_gpu=torch.cuda.is_available()))
