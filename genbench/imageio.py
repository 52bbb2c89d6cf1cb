"""Robust loading of image folders and arrays into canonical ``[N,1,28,28] uint8``.

What is read
    A folder (not recursive; sub-folders and other extensions are ignored) or one
    file. Images: ``.png .jpg .jpeg .bmp`` (the format is checked, not just the
    name). Arrays: ``.npy``/``.npz`` of shape ``(N,H,W)`` or ``(N,1,H,W)``, read with
    ``allow_pickle=False``; an ``.npz`` must hold one array (or one named
    ``samples``/``images``). Files are taken in name order.

How pixels become canonical
    - 8-bit gray (``L``) is used as is. Colour (``RGB``, ``RGBA``, ``P``, ``CMYK``,
      ``YCbCr``, ``LA``, ``1``) becomes gray with PIL's ITU-R 601-2 luma,
      ``L = (19595 R + 38470 G + 7471 B + 2^15) >> 16``; an alpha channel is
      ignored (a warning counts files whose alpha is not fully opaque).
    - 16-bit gray (``I;16``) is scaled, not clipped: ``round(v * 255 / 65535)``.
    - Arrays: uint8 as is; other integers must lie in [0, 255]; floats must be finite
      and in [0, 1] (1e-6 slack) and are quantized like generated samples,
      ``round(x * 255)`` (:func:`genbench.protocol.quantize`).
    - Any other size is resized to 28x28 with PIL's bilinear filter (antialiased
      when shrinking; the aspect ratio is not kept) after the gray conversion, with
      a warning.

What is refused (``InputError`` naming the files, or skipped with ``skip_bad``)
    Missing/empty folders, empty or unreadable files, truncated images, unknown
    formats, images over ``pixel_limit`` pixels (decompression bombs), unsupported
    modes (``I``, ``F``, ...), symlink loops, files that vanish between listing and
    reading, object arrays, arrays of other shapes, NaN/inf or out-of-range values,
    and fewer than ``min_images`` images in all.

:func:`to_canonical_batch` applies the same conversion to ``[B,C,H,W] uint8`` tensors
(the batches torch-fidelity passes), so both tools see identical pixels.
"""

from __future__ import annotations

import errno
import io
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor

from genbench.errors import InputError
from genbench.protocol import quantize

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp")
ARRAY_EXTENSIONS = (".npy", ".npz")
PIL_FORMATS = ["PNG", "JPEG", "BMP"]
SIZE = 28
# Largest image accepted, in pixels: far above any sensible sample, far below what
# would exhaust memory when decoded (PIL's own hard limit is ~179 M pixels).
PIXEL_LIMIT = 4096 * 4096
FLOAT_SLACK = 1e-6  # floats in [-slack, 1 + slack] are accepted (then clamped)
MAX_LISTED = 5  # bad files named in one error line

_ALPHA_MODES = {"RGBA", "RGBa", "LA", "La", "PA"}
_COLOUR_MODES = {"RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "P", "PA", "1"}
_16BIT_MODES = {"I;16", "I;16L", "I;16B", "I;16N"}


class BadFile(Exception):
    """One input file cannot be used; the message is the reason."""


@dataclass
class LoadedImages:
    """Canonical images read from a folder or file, with what was skipped and why."""

    images: Tensor  # [N,1,28,28] uint8
    keys: list[str]  # per image: file stem, or "<file stem>[i]" for arrays
    source: Path
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file name, reason)
    warnings: list[str] = field(default_factory=list)
    single_array: bool = False  # the source is one array file (pairs then match by position)

    def __len__(self) -> int:
        return self.images.shape[0]


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
        a16 = np.asarray(img).astype(np.uint32)
        return ((a16 * 255 + 32767) // 65535).astype(np.uint8)  # round(v * 255 / 65535)
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


def _read_image(path: Path, pixel_limit: int, notes: set[str]) -> np.ndarray:
    data = path.read_bytes()
    if not data:
        raise BadFile("empty file (0 bytes)")
    with warnings.catch_warnings():
        # PIL warns between its limit and twice it; genbench refuses anything over pixel_limit.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            img = Image.open(io.BytesIO(data), formats=PIL_FORMATS)
        except Image.DecompressionBombError as exc:
            raise BadFile(f"decompression bomb refused ({exc})") from None
        except UnidentifiedImageError:
            raise BadFile("not a readable PNG/JPEG/BMP image") from None
        w, h = img.size
        if w * h > pixel_limit:
            raise BadFile(f"{w}x{h} pixels is over the limit of {pixel_limit} (decompression bomb?)")
        if w == 0 or h == 0:
            raise BadFile(f"image has no pixels ({w}x{h})")
        try:
            img.load()
        except OSError as exc:
            raise BadFile(f"corrupt or truncated image ({exc})") from None
        gray = _image_to_gray(img, notes)
    if gray.shape != (SIZE, SIZE):
        notes.add(f"resized {w}x{h}")
        gray = resize_gray(gray)
    return gray


def _array_to_uint8(a: np.ndarray) -> np.ndarray:
    """Validated ``(N,H,W)`` array of any accepted dtype -> uint8 (same shape)."""
    if a.dtype == np.uint8:
        return a
    if a.dtype == np.bool_ or not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
        raise BadFile(f"dtype {a.dtype} is not accepted (uint8, integers in [0,255] or floats in [0,1])")
    if np.issubdtype(a.dtype, np.integer):
        lo, hi = int(a.min()), int(a.max())
        if lo < 0 or hi > 255:
            raise BadFile(f"integer values span [{lo}, {hi}], outside [0, 255]")
        return a.astype(np.uint8)
    finite = np.isfinite(a)
    if not finite.all():
        bad = a[~finite]
        n_nan, n_inf = int(np.isnan(bad).sum()), int(np.isinf(bad).sum())
        raise BadFile(f"{bad.size} non-finite values (NaN: {n_nan}, inf: {n_inf})")
    lo, hi = float(a.min()), float(a.max())
    if lo < -FLOAT_SLACK or hi > 1 + FLOAT_SLACK:
        raise BadFile(f"float values span [{lo:.4g}, {hi:.4g}], outside [0, 1]")
    return quantize(torch.from_numpy(a.astype(np.float32))).numpy()


def _read_array(path: Path, pixel_limit: int, notes: set[str]) -> np.ndarray:
    if path.stat().st_size == 0:
        raise BadFile("empty file (0 bytes)")
    try:
        loaded = np.load(path, allow_pickle=False)
    except ValueError as exc:
        if "pickle" in str(exc):
            raise BadFile("holds Python objects (object dtype); only numeric arrays are read") from None
        raise BadFile(f"not a readable array ({exc})") from None
    except OSError as exc:
        if exc.errno is not None:  # a file-system error, described by the caller
            raise
        raise BadFile(f"not a readable array ({exc})") from None
    except Exception as exc:  # EOFError, zipfile.BadZipFile, ...: a damaged file
        raise BadFile(f"not a readable array ({type(exc).__name__}: {exc})") from None
    if isinstance(loaded, np.lib.npyio.NpzFile):
        with loaded:
            names = list(loaded.files)
            chosen = names[0] if len(names) == 1 else next((k for k in ("samples", "images") if k in names), None)
            if chosen is None:
                raise BadFile(f"npz holds {len(names)} arrays {names[:5]}; keep one, or name it 'samples'")
            try:
                a = loaded[chosen]
            except ValueError as exc:
                if "pickle" in str(exc):
                    raise BadFile(f"array {chosen!r} holds Python objects (object dtype); not read") from None
                raise BadFile(f"array {chosen!r} is not readable ({exc})") from None
            except Exception as exc:  # zip errors: a damaged npz
                raise BadFile(f"array {chosen!r} is not readable ({type(exc).__name__}: {exc})") from None
    else:
        a = loaded
    if a.dtype == object:
        raise BadFile("holds Python objects (object dtype)")
    if a.ndim == 4 and a.shape[1] == 1:
        a = a[:, 0]
    if a.ndim != 3:
        raise BadFile(f"array shape {a.shape} is not (N,H,W) or (N,1,H,W)")
    n, h, w = a.shape
    if n == 0 or h == 0 or w == 0:
        raise BadFile(f"array shape {a.shape} holds no pixels")
    if h * w > pixel_limit:
        raise BadFile(f"{w}x{h} pixels per image is over the limit of {pixel_limit}")
    a = _array_to_uint8(np.asarray(a))
    if (h, w) != (SIZE, SIZE):
        notes.add(f"resized {w}x{h}")
        a = np.stack([resize_gray(img) for img in a])
    return a


def _describe_os_error(exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "symlink loop"
    if exc.errno == errno.ENOENT:
        return "vanished while reading (or a broken symlink)"
    if exc.errno == errno.EISDIR:
        return "is a directory"
    if exc.errno == errno.EACCES:
        return "permission denied"
    return f"cannot read ({exc.strerror or exc})"


def _scan_folder(folder: Path) -> tuple[list[Path], int]:
    """Files with a supported extension in ``folder`` (sorted by name), and how many others."""
    try:
        with os.scandir(folder) as it:
            names = sorted(entry.name for entry in it)
    except OSError as exc:
        raise InputError(f"cannot list {folder}: {_describe_os_error(exc)}") from None
    chosen = [folder / n for n in names if n.lower().endswith(IMAGE_EXTENSIONS + ARRAY_EXTENSIONS)]
    return chosen, len(names) - len(chosen)


def _list_inputs(path: Path) -> tuple[list[Path], int]:
    try:
        os.stat(path)  # follows symlinks: reports loops and dangling links here
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            raise InputError(f"{path}: no such file or folder") from None
        raise InputError(f"{path}: {_describe_os_error(exc)}") from None
    if os.path.isdir(path):
        return _scan_folder(path)
    if not path.name.lower().endswith(IMAGE_EXTENSIONS + ARRAY_EXTENSIONS):
        raise InputError(f"{path}: not a folder nor a .png/.jpg/.jpeg/.bmp/.npy/.npz file")
    return [path], 0


def _summarize_bad(bad: list[tuple[str, str]]) -> str:
    shown = "; ".join(f"{name}: {reason}" for name, reason in bad[:MAX_LISTED])
    more = f"; and {len(bad) - MAX_LISTED} more" if len(bad) > MAX_LISTED else ""
    return shown + more


def load_images(
    path: str | os.PathLike,
    *,
    skip_bad: bool = False,
    pixel_limit: int = PIXEL_LIMIT,
    min_images: int = 2,
    what: str = "samples",
) -> LoadedImages:
    """Read a folder or one image/array file as canonical images (see the module docstring).

    Raises :class:`InputError` with a one-line message naming the offending files.
    With ``skip_bad`` unusable files are dropped and listed in ``warnings`` instead.
    ``what`` names the input in messages (``samples``, ``reference``).
    """
    source = Path(path)
    files, n_other = _list_inputs(source)
    if not files:
        other = f" ({n_other} other entries ignored)" if n_other else ""
        raise InputError(f"{what}: no .png/.jpg/.jpeg/.bmp/.npy/.npz files in {source}{other}")

    arrays: list[np.ndarray] = []
    keys: list[str] = []
    bad: list[tuple[str, str]] = []
    resized: dict[str, int] = {}
    alpha_files = 0
    lossy_files = 0
    for f in files:
        notes: set[str] = set()
        try:
            if f.name.lower().endswith(ARRAY_EXTENSIONS):
                a = _read_array(f, pixel_limit, notes)
                arrays.append(a)
                keys.extend(f"{f.stem}[{i}]" for i in range(len(a)))
            else:
                arrays.append(_read_image(f, pixel_limit, notes)[None])
                keys.append(f.stem)
                lossy_files += f.suffix.lower() in (".jpg", ".jpeg")
        except BadFile as exc:
            bad.append((f.name, str(exc)))
            continue
        except OSError as exc:
            bad.append((f.name, _describe_os_error(exc)))
            continue
        except MemoryError:
            bad.append((f.name, "too large to decode in memory"))
            continue
        for note in notes:
            if note.startswith("resized "):
                resized[note.removeprefix("resized ")] = resized.get(note.removeprefix("resized "), 0) + 1
        alpha_files += "alpha" in notes

    result_warnings: list[str] = []
    if bad:
        if not skip_bad:
            raise InputError(
                f"{what}: {len(bad)} unusable file{'s' if len(bad) > 1 else ''} in {source}: {_summarize_bad(bad)} "
                f"(use --skip-bad to leave them out)"
            )
        plural = "s" if len(bad) > 1 else ""
        result_warnings.append(f"{what}: skipped {len(bad)} unusable file{plural}: {_summarize_bad(bad)}")
    if resized:
        sizes = ", ".join(f"{k} ({v})" for k, v in sorted(resized.items()))
        result_warnings.append(
            f"{what}: resized {sum(resized.values())} file(s) to 28x28 with bilinear filtering "
            f"(aspect ratio not kept): {sizes}"
        )
    if alpha_files:
        result_warnings.append(f"{what}: ignored the alpha channel of {alpha_files} image(s) with transparency")
    if lossy_files:
        result_warnings.append(f"{what}: {lossy_files} JPEG file(s): lossy compression alters pixels and the metrics")

    n = sum(len(a) for a in arrays)
    if n < min_images:
        raise InputError(
            f"{what}: {n} usable image{'s' if n != 1 else ''} in {source}; at least {min_images} are needed"
        )
    images = torch.from_numpy(np.concatenate(arrays)).unsqueeze(1).contiguous()
    single_array = len(files) == 1 and files[0].name.lower().endswith(ARRAY_EXTENSIONS)
    return LoadedImages(images, keys, source, bad if skip_bad else [], result_warnings, single_array)


def match_pairs(
    samples: LoadedImages, reference: LoadedImages, *, skip_bad: bool = False
) -> tuple[Tensor, Tensor, list[str]]:
    """Pair images by key (file stem; position when both are single array files).

    Returns ``(samples [M,1,28,28], reference [M,1,28,28], warnings)``. Unmatched
    images raise :class:`InputError`, or are dropped with a warning under ``skip_bad``.
    """
    if samples.single_array and reference.single_array:
        if len(samples) != len(reference):
            msg = f"--reference: {len(samples)} samples but {len(reference)} reference images (arrays pair by position)"
            if not skip_bad:
                raise InputError(msg)
            m = min(len(samples), len(reference))
            return samples.images[:m], reference.images[:m], [msg + f"; scored the first {m}"]
        return samples.images, reference.images, []
    for loaded, label in ((samples, "samples"), (reference, "reference")):
        seen: set[str] = set()
        dups = sorted({k for k in loaded.keys if k in seen or seen.add(k)})
        if dups:
            names = ", ".join(dups[:MAX_LISTED])
            raise InputError(f"--reference: {label} has several files named {names} (pairs match by name)")
    ref_index = {k: i for i, k in enumerate(reference.keys)}
    sample_keys = set(samples.keys)
    missing = [k for k in samples.keys if k not in ref_index]
    extra = [k for k in reference.keys if k not in sample_keys]
    out_warnings: list[str] = []
    if missing or extra:
        msg = (
            f"--reference: {len(missing)} sample(s) without a reference of the same name"
            + (f" ({', '.join(missing[:MAX_LISTED])}{', ...' if len(missing) > MAX_LISTED else ''})" if missing else "")
            + f", {len(extra)} reference(s) without a sample"
            + (f" ({', '.join(extra[:MAX_LISTED])}{', ...' if len(extra) > MAX_LISTED else ''})" if extra else "")
        )
        if not skip_bad:
            raise InputError(msg + " (use --skip-bad to score only the matched pairs)")
        out_warnings.append(msg + "; scored the matched pairs only")
    pairs = [(i, ref_index[k]) for i, k in enumerate(samples.keys) if k in ref_index]
    if not pairs:
        raise InputError("--reference: no sample has a reference image of the same name")
    si = torch.tensor([p[0] for p in pairs])
    ri = torch.tensor([p[1] for p in pairs])
    return samples.images[si], reference.images[ri], out_warnings
