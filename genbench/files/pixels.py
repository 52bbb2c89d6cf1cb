"""Pixel canonicalisation: any gray, colour or 16-bit image, or a float or integer array, becomes
28x28 8-bit gray the way genbench's own samples are (PIL's ITU-R 601-2 luma, bilinear resize)."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from genbench.files.safe_open import BadFile
from genbench.protocol import quantize
from genbench.sample_contract import sample_problem

SIZE = 28

_ALPHA_MODES = {"RGBA", "RGBa", "LA", "La", "PA"}
_COLOUR_MODES = {"RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "P", "PA", "1"}
_16BIT_MODES = {"I;16", "I;16L", "I;16B", "I;16N"}


# -- pixel conversion -------------------------------------------------------------

def luma(rgb: Tensor) -> Tensor:
    """PIL's ITU-R 601-2 luma of ``[B,3,H,W] uint8`` -> ``[B,1,H,W] uint8``, bit-exact."""
    r, g, b = rgb.to(torch.int32).unbind(1)
    return ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16).to(torch.uint8).unsqueeze(1)


def resize_gray(a: np.ndarray) -> np.ndarray:
    """``[H,W] uint8`` -> ``[28,28] uint8`` with PIL's (antialiased) bilinear filter."""
    if a.shape == (SIZE, SIZE):
        return a
    return np.array(Image.fromarray(np.ascontiguousarray(a), mode="L").resize((SIZE, SIZE), Image.BILINEAR))


def to_canonical_batch(images: Tensor) -> Tensor:
    """``[B,C,H,W] uint8`` with C in {1, 3} -> ``[B,1,28,28] uint8``, as :func:`load_images` does."""
    if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"expected uint8 [B,1|3,H,W], got {images.dtype} {tuple(images.shape)}")
    gray = luma(images) if images.shape[1] == 3 else images
    if tuple(gray.shape[2:]) == (SIZE, SIZE):
        return gray
    device = gray.device
    resized = [torch.from_numpy(resize_gray(g[0].cpu().numpy())) for g in gray]
    return torch.stack(resized).unsqueeze(1).to(device)


def _image_to_gray(img: Image.Image, notes: set[str]) -> np.ndarray:
    mode = img.mode
    if mode == "L":
        return np.asarray(img)
    if mode in _16BIT_MODES:
        notes.add("16-bit")
        a16 = np.asarray(img).astype(np.uint32)
        return ((a16 * 255 + 32767) // 65535).astype(np.uint8)  # round(v * 255 / 65535)
    if mode in _COLOUR_MODES:
        notes.add(f"gray {mode}")  # said in a warning, as resizing is: a colour set is scored as gray
    if mode in _COLOUR_MODES or mode in _ALPHA_MODES:
        if mode in ("P", "PA"):
            img = img.convert("RGBA")
        if img.mode in _ALPHA_MODES:
            alpha = np.asarray(img.getchannel("A"))
            if alpha.min() < 255:
                notes.add("alpha")
        if img.mode in ("LA", "La"):
            return np.asarray(img.getchannel("L"))
        return np.asarray(img.convert("RGB").convert("L"))
    raise BadFile(f"unsupported image mode {mode!r}")


# -- arrays -------------------------------------------------------------------------

def _chunk_to_uint8(a: np.ndarray) -> np.ndarray:
    """Validated ``(k,H,W)`` rows of any accepted dtype -> uint8 (same shape)."""
    if a.dtype == np.uint8:
        return a
    if np.issubdtype(a.dtype, np.integer):
        lo, hi = int(a.min()), int(a.max())
        if lo < 0 or hi > 255:
            raise BadFile(f"integer values span [{lo}, {hi}], outside [0, 255]")
        return a.astype(np.uint8)
    problem = sample_problem(a)  # the rule and message sample() output gets
    if problem is not None:
        raise BadFile(f"float {problem}")
    return quantize(torch.from_numpy(a.astype(np.float32))).numpy()
