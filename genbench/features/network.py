"""The domain classifier whose penultimate layer is genbench's feature space.

ImageNet's InceptionV3 knows little about 28x28 gray digits and clothes, so FID,
KID and the Inception Score are computed in the space of a classifier trained on
the dataset itself: its penultimate layer plays the role of Inception's pool3
features in FID (Heusel et al. 2017) and its logits that of Inception's in the
Inception Score (Salimans et al. 2016). The network is a small CNN built for CPU
throughput: three strided convolutions instead of convolutions plus pooling
(about 2.5 M multiply-adds per image).

Inputs are canonical images ``[B,1,28,28] uint8``. The forward pass returns

- ``features`` ``[B,128]`` float32: the penultimate layer, taken *before* its ReLU
  (after a BatchNorm1d), so no unit is dead and the features are roughly
  standardized, which suits FID's Gaussian model and KID's polynomial kernel;
- ``logits`` ``[B,10]`` float32: class scores, used by the Inception Score and
  ``confident_fraction``.

In eval mode every operation acts on one image at a time (BatchNorm uses its running
statistics, dropout is off), so features do not depend on the batch size.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn


@dataclass(frozen=True)
class NetConfig:
    channels: tuple[int, int, int] = (32, 64, 128)  # 28 -> 14 -> 7 -> 4 pixels, one stride-2 conv each
    feature_dim: int = 128  # penultimate width; >= 64 so FID's covariance is informative
    num_classes: int = 10
    dropout: float = 0.3  # on the ReLU'd features during training only


def _conv_block(c_in: int, c_out: int, kernel: int) -> nn.Sequential:
    # bias=False: the BatchNorm that follows has its own shift.
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, stride=2, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


def preprocess(images: Tensor) -> Tensor:
    """``[B,1,28,28] uint8`` -> float32 in [-1, 1] (fixed scaling, no dataset statistics)."""
    if images.dtype != torch.uint8:
        raise TypeError(f"expected uint8 images, got {images.dtype}")
    return images.float().div_(127.5).sub_(1.0)


class FeatureNet(nn.Module):
    """Domain classifier ``[B,1,28,28] uint8 -> (features [B,128], logits [B,10])``."""

    def __init__(self, config: NetConfig = NetConfig()) -> None:
        super().__init__()
        self.config = config
        c1, c2, c3 = config.channels
        self.body = nn.Sequential(
            _conv_block(1, c1, 5),  # 28 -> 14
            _conv_block(c1, c2, 3),  # 14 -> 7
            _conv_block(c2, c3, 3),  # 7 -> 4
            nn.Flatten(),
        )
        self.fc = nn.Linear(c3 * 4 * 4, config.feature_dim, bias=False)
        self.fc_norm = nn.BatchNorm1d(config.feature_dim)
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.feature_dim, config.num_classes)

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        features = self.fc_norm(self.fc(self.body(preprocess(images))))
        logits = self.head(self.dropout(torch.relu(features)))
        return features, logits
