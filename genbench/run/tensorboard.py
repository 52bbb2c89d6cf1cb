"""Optional TensorBoard logging of a run (``genbench run --tensorboard DIR``).

Each run writes its own event files under ``DIR/<suite>/<model>/seed<k>/``: every
logged training step's losses and training images/s as scalars (tag ``train/<loss>``,
``speed/train_images_per_s``), the final metrics (``eval/<key>``) at the last step, and
the final 8x8 sample grid. A resumed run drops the events after its checkpoint's step
(``purge_step``), so the curves show one history. Needs the ``tensorboard`` extra.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import torch

from genbench.errors import ConfigError


def check_available() -> None:
    """One-line error when the extra is missing (called before any run starts)."""
    try:
        import tensorboard  # noqa: F401
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except ImportError:
        raise ConfigError(
            "--tensorboard needs TensorBoard, which is not installed: pip install -e '.[tensorboard]'") from None


class RunLogger:
    """Writes one run's scalars and sample grid; every method is cheap to call at log steps."""

    def __init__(self, log_dir: str | os.PathLike, purge_step: int | None = None) -> None:
        from torch.utils.tensorboard import SummaryWriter

        Path(log_dir).mkdir(parents=True, exist_ok=True)
        self.writer = SummaryWriter(log_dir=str(log_dir), purge_step=purge_step)
        self.last_step = 0

    def train(self, step: int, losses: dict[str, float], images_per_s: float) -> None:
        for name, value in losses.items():
            if math.isfinite(value):
                self.writer.add_scalar(f"train/{name}", value, step)
        if images_per_s > 0:
            self.writer.add_scalar("speed/train_images_per_s", images_per_s, step)
        self.last_step = step

    def final(self, metrics: dict[str, Any], samples_u8: torch.Tensor | None) -> None:
        for key, value in metrics.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                self.writer.add_scalar(f"eval/{key}", value, self.last_step)
        if samples_u8 is not None and len(samples_u8):
            import torchvision.utils as vutils

            grid = vutils.make_grid(samples_u8[:64].float() / 255.0, nrow=8, padding=2, pad_value=1.0)
            self.writer.add_image("samples", grid, self.last_step)

    def close(self) -> None:
        self.writer.flush()
        self.writer.close()
