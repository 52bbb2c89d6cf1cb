"""A lens of your own: a small convolutional network, given as ``--lens examples/my_lens.py:RandomConvLens``.

Its weights are random but seeded, so every build is the same network: genbench keys the
lens's cached reference statistics by the SHA-256 of its weights, and refuses a lens whose
weights change from one build to the next. Random convolutional features are a known,
weak but usable feature space (Naeem et al. 2020 evaluate with randomly initialised
networks); a lens of your own trained weights is built the same way, loading them in
``__init__`` (see the "Your own lens" page of the docs).
"""

import torch
from torch import nn


class RandomConvLens(nn.Module):
    name = "randconv"  # metric keys get this suffix: fid_randconv, kid_randconv, ...

    def __init__(self) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(0)  # the same weights at every build
        self.net = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),   # 14x14
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 7x7
            nn.Flatten(), nn.Linear(32 * 7 * 7, 64),
        )
        with torch.no_grad():
            for p in self.parameters():
                if p.dim() > 1:  # He initialisation: features keep their scale through the ReLUs
                    p.copy_(torch.randn(p.shape, generator=generator) * (2.0 / p[0].numel()) ** 0.5)
                else:
                    p.zero_()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``[n,1,28,28]`` floats in [0, 1] -> ``[n,64]`` features."""
        return self.net(images)
