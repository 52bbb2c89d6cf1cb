"""The image transformations of ``genbench sanity``: each maps ``[n,1,28,28] uint8`` to the same shape.

Pixel operations are scipy.ndimage's; every random choice comes from the ``numpy.random.Generator``
the caller passes, so a set depends only on its seed. Results are rounded to the nearest gray level
and clipped to 0..255, as a sample of a model is.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage
from torch import Tensor

# The 3x3 cross: one pixel of growth (dilation) or loss (erosion) in each of the four directions.
CROSS = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], dtype=bool)


def _to_u8(x: np.ndarray) -> Tensor:
    return torch.from_numpy(np.clip(np.rint(x), 0, 255).astype(np.uint8))


def _per_image(images: Tensor, op) -> Tensor:
    """``op`` applied to each ``[28,28]`` float64 image, in order."""
    x = images[:, 0].numpy().astype(np.float64)
    return _to_u8(np.stack([op(img, i) for i, img in enumerate(x)]))[:, None].contiguous()


def blur(images: Tensor, sigma: float) -> Tensor:
    """Gaussian blur of standard deviation ``sigma`` pixels (0: the images unchanged); the border is black,
    as the digits' background is."""
    if sigma == 0:
        return images.clone()
    x = images.numpy().astype(np.float64)
    return _to_u8(ndimage.gaussian_filter(x, sigma=(0, 0, sigma, sigma), mode="constant", cval=0.0))


def add_noise(images: Tensor, sigma: float, rng: np.random.Generator) -> Tensor:
    """Additive Gaussian noise of ``sigma`` gray levels, independent per pixel."""
    x = images.numpy().astype(np.float64)
    return _to_u8(x + rng.normal(0.0, sigma, size=x.shape)) if sigma > 0 else images.clone()


def shift(images: Tensor, max_shift: int, rng: np.random.Generator) -> Tensor:
    """Each image moved by its own whole-pixel offset ``(dy, dx)``, each uniform in ``-max_shift..max_shift``;
    whole pixels keep every gray level as it was (no interpolation), the uncovered border is black."""
    offsets = rng.integers(-max_shift, max_shift + 1, size=(len(images), 2))
    return _per_image(images, lambda img, i: ndimage.shift(img, offsets[i], order=0, mode="constant", cval=0.0))


def rotate(images: Tensor, max_degrees: float, rng: np.random.Generator) -> Tensor:
    """Each image rotated about its centre by its own angle, uniform in ``[-max_degrees, max_degrees]``
    (bilinear interpolation, the size kept)."""
    if max_degrees == 0:
        return images.clone()
    angles = rng.uniform(-max_degrees, max_degrees, size=len(images))
    return _per_image(images, lambda img, i: ndimage.rotate(img, angles[i], reshape=False, order=1, mode="constant",
                                                            cval=0.0))


def thickness(images: Tensor, fraction: float, rng: np.random.Generator) -> Tensor:
    """A share ``fraction`` of the images (chosen at random) get strokes one pixel thicker (gray dilation with
    the 3x3 cross) or thinner (gray erosion), half each; the others are unchanged."""
    n = len(images)
    changed = rng.permutation(n)[: round(fraction * n)]
    thicker = rng.random(n) < 0.5
    op = np.zeros(n, dtype=np.int8)  # 0 unchanged, 1 dilated, -1 eroded
    op[changed] = np.where(thicker[changed], 1, -1)

    def one(img: np.ndarray, i: int) -> np.ndarray:
        if op[i] == 1:
            return ndimage.grey_dilation(img, footprint=CROSS, mode="constant", cval=0.0)
        if op[i] == -1:
            return ndimage.grey_erosion(img, footprint=CROSS, mode="constant", cval=0.0)
        return img

    return _per_image(images, one)


def contrast(images: Tensor, scale: float) -> Tensor:
    """Ink scaled by ``scale`` (``round(scale * x)``): fainter strokes on the same black background."""
    return _to_u8(images.numpy().astype(np.float64) * scale) if scale != 1 else images.clone()
