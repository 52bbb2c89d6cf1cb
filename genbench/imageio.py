"""Robust loading of image folders and arrays into canonical ``[N,1,28,28] uint8``.

What is read
    A folder (not recursive; sub-folders and other extensions are ignored) or one
    file. Images: ``.png .jpg .jpeg .bmp`` (the format is checked, not just the
    name). Arrays: ``.npy``/``.npz`` of shape ``(N,H,W)`` or ``(N,1,H,W)``, read with
    no unpickling; an ``.npz`` must hold one array (or one named ``samples``/``images``).
    Files are taken in name order. PNGs of 8-bit gray or RGB are decoded by libspng
    (``pyspng``), every other image by PIL; both give the same pixels.

Limits (each a keyword of :func:`load_images`; a file over one is an unusable file)
    - Only regular files are opened (a symlink to one is fine): a FIFO, a device
      (e.g. a link to ``/dev/zero``), a socket or a folder named ``x.png`` is refused
      unread.
    - Size: an image file holds at most ``FILE_LIMIT_BYTES`` (128 MiB), an array file
      at most ``ARRAY_LIMIT_BYTES`` (2 GiB), and an array's declared data (its header's
      shape times its item size) at most ``ARRAY_LIMIT_BYTES``; images hold at most
      ``PIXEL_LIMIT`` pixels (decompression bombs).
    - Time: reading and decoding one file takes at most ``READ_TIMEOUT_S`` (30 s); a
      read that hangs (a stalled network mount) is abandoned on a daemon thread.
    - Memory grows with the images used, not with a file's decompressed size:
      ``.npy`` files are memory-mapped, ``.npz`` members are streamed, and with
      ``max_images`` only the leading rows of an array are read and converted.

How pixels become canonical
    - 8-bit gray (``L``) is used as is. Colour (``RGB``, ``RGBA``, ``P``, ``CMYK``,
      ``YCbCr``, ``LA``, ``1``) becomes gray with PIL's ITU-R 601-2 luma,
      ``L = (19595 R + 38470 G + 7471 B + 2^15) >> 16``; an alpha channel is
      ignored (a warning counts files whose alpha is not fully opaque).
    - 16-bit gray (``I;16``) is scaled, not clipped: ``round(v * 255 / 65535)``.
    - Arrays: uint8 as is; other integers must lie in [0, 255]; floats must be finite
      and in [0, 1] (``SAMPLE_TOLERANCE`` slack, the rule and message ``sample()`` output
      gets: :mod:`genbench.sample_contract`) and are quantized like generated samples,
      ``round(x * 255)`` (:func:`genbench.protocol.quantize`). Only the rows used are
      checked.
    - Any other size is resized to 28x28 with PIL's bilinear filter (antialiased
      when shrinking; the aspect ratio is not kept) after the gray conversion, with
      a warning.

What is refused (``InputError`` naming the files, or skipped with ``skip_bad``)
    Missing/empty folders, files that are not regular files, files over a limit,
    empty or unreadable files, truncated images, unknown formats, unsupported modes
    (``I``, ``F``, ...), symlink loops, files that vanish between listing and
    reading, object arrays, arrays of other shapes or dtypes, NaN/inf or
    out-of-range values, and fewer than ``min_images`` images in all.

:func:`to_canonical_batch` applies the same conversion to ``[B,C,H,W] uint8`` tensors
(the batches torch-fidelity passes), so both tools see identical pixels.
"""

from __future__ import annotations

import errno
import io
import math
import os
import stat
import struct
import threading
import time
import warnings
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor

from genbench.errors import InputError

try:  # optional speed-up (a compiled wheel that not every platform has); PIL decodes the same pixels
    import pyspng
except ImportError:
    pyspng = None
from genbench.protocol import quantize
from genbench.sample_contract import sample_problem

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp")
ARRAY_EXTENSIONS = (".npy", ".npz")
PIL_FORMATS = ["PNG", "JPEG", "BMP"]
SIZE = 28
# Largest image accepted, in pixels: far above any sensible sample, far below what
# would exhaust memory when decoded (PIL's own hard limit is ~179 M pixels).
PIXEL_LIMIT = 4096 * 4096
# Largest image file: a 4096x4096 RGBA BMP is 64 MiB; compressed formats are smaller.
FILE_LIMIT_BYTES = 128 * 2**20
# Largest array file and largest declared array: 50,000 float64 28x28 images are 314 MB.
ARRAY_LIMIT_BYTES = 2 * 2**30
READ_TIMEOUT_S = 30.0  # per file, reading and decoding
READ_THREADS = 2  # files in flight: one can wait on the disk while another decodes
ARRAY_CHUNK_BYTES = 32 * 2**20  # rows of an array are converted this many input bytes at a time
MAX_LISTED = 5  # bad files named in one error line

_ALPHA_MODES = {"RGBA", "RGBa", "LA", "La", "PA"}
_COLOUR_MODES = {"RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "P", "PA", "1"}
_16BIT_MODES = {"I;16", "I;16L", "I;16B", "I;16N"}
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_GRAY, _PNG_RGB = 0, 2  # IHDR colour types that libspng decodes here (at 8 bits)
# What a damaged array file raises inside numpy's header parser or zipfile/zlib/bz2/lzma.
_ARRAY_FORMAT_ERRORS = (ValueError, EOFError, KeyError, NotImplementedError, RuntimeError, OverflowError,
                        struct.error, zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error)


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


# -- opening files ------------------------------------------------------------------

def _file_kind(mode: int) -> str:
    for test, kind in ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a directory")):
        if test(mode):
            return kind
    return "not a regular file"


def _check_regular(st: os.stat_result, limit_bytes: int) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise BadFile(f"is {_file_kind(st.st_mode)}, not a regular file: not read")
    if st.st_size > limit_bytes:
        raise BadFile(f"{st.st_size} bytes is over the per-file limit of {limit_bytes} bytes")


def _open_regular(path: Path, limit_bytes: int) -> BinaryIO:
    """Open a regular file (symlinks followed) of at most ``limit_bytes`` for reading.

    The path is checked before opening, so a device is never opened, and the open file
    again, so what is read is what was checked. ``O_NONBLOCK`` keeps a FIFO swapped in
    between the two from blocking the open.
    """
    _check_regular(os.stat(path), limit_bytes)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        _check_regular(os.fstat(fd), limit_bytes)
    except BaseException:
        os.close(fd)
        raise
    return open(fd, "rb")


def _read_exact(stream: BinaryIO, n: int) -> bytes:
    """``n`` bytes, fewer only at the end of the stream."""
    parts, got = [], 0
    while got < n:
        part = stream.read(n - got)
        if not part:
            break
        parts.append(part)
        got += len(part)
    return b"".join(parts)


# -- images -------------------------------------------------------------------------

def _png_header(data: bytes) -> tuple[int, int, int, int, int] | None:
    """``(width, height, bit depth, colour type, interlace)`` from a PNG's IHDR, or None if not a PNG."""
    if len(data) < 33 or data[:8] != _PNG_SIGNATURE or data[12:16] != b"IHDR":
        return None
    width, height, depth, colour, _compression, _filter, interlace = struct.unpack(">IIBBBBB", data[16:29])
    return width, height, depth, colour, interlace


def _check_pixels(width: int, height: int, pixel_limit: int) -> None:
    if width * height > pixel_limit:
        raise BadFile(f"{width}x{height} pixels is over the limit of {pixel_limit} (decompression bomb?)")
    if width == 0 or height == 0:
        raise BadFile(f"image has no pixels ({width}x{height})")


def _decode_png_fast(data: bytes, pixel_limit: int) -> np.ndarray | None:
    """8-bit gray or RGB PNG -> ``[H,W] uint8`` gray with libspng; None for PIL to decode instead.

    libspng is faster than PIL on small images (``results/speed/README.md``) and returns the same samples
    (no gamma, no transparency applied); RGB becomes gray by :func:`luma`, PIL's own
    formula. Anything it does not decode (other modes, damage) goes to PIL, whose
    verdict then stands.
    """
    header = _png_header(data)
    if pyspng is None or header is None or header[2] != 8 or header[3] not in (_PNG_GRAY, _PNG_RGB):
        return None
    width, height = header[:2]
    _check_pixels(width, height, pixel_limit)
    colour = header[3] == _PNG_RGB
    try:
        pixels = pyspng.load(data, "RGB" if colour else "L")
    except (RuntimeError, ValueError):
        return None
    if pixels.dtype != np.uint8 or pixels.shape != ((height, width, 3) if colour else (height, width)):
        return None
    if colour:
        return luma(torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1)))[None])[0, 0].numpy()
    return pixels


def _decode_pil(data: bytes, pixel_limit: int, notes: set[str]) -> np.ndarray:
    # DecompressionBombWarning is turned into an error by load_images (a process-wide filter).
    try:
        img = Image.open(io.BytesIO(data), formats=PIL_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise BadFile(f"decompression bomb refused ({exc})") from None
    except UnidentifiedImageError:
        raise BadFile("not a readable PNG/JPEG/BMP image") from None
    _check_pixels(*img.size, pixel_limit)
    try:
        img.load()
    except OSError as exc:
        raise BadFile(f"corrupt or truncated image ({exc})") from None
    return _image_to_gray(img, notes)


def _read_image(path: Path, pixel_limit: int, file_limit: int, notes: set[str]) -> np.ndarray:
    with _open_regular(path, file_limit) as fh:
        data = fh.read(file_limit + 1)
    if len(data) > file_limit:
        raise BadFile(f"grew past the per-file limit of {file_limit} bytes while being read")
    if not data:
        raise BadFile("empty file (0 bytes)")
    gray = _decode_png_fast(data, pixel_limit)
    if gray is None:
        gray = _decode_pil(data, pixel_limit, notes)
    if gray.shape != (SIZE, SIZE):
        notes.add(f"resized {gray.shape[1]}x{gray.shape[0]}")
        gray = resize_gray(gray)
    return gray


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


@dataclass(frozen=True)
class _ArrayLayout:
    """What an array's header declares, validated before any data is read."""

    n: int
    height: int
    width: int
    dtype: np.dtype
    fortran: bool
    nbytes: int

    @property
    def row_bytes(self) -> int:
        return self.height * self.width * self.dtype.itemsize


def _array_layout(stream: BinaryIO, pixel_limit: int, array_limit: int, what: str = "") -> _ArrayLayout:
    """Parse and check a ``.npy`` header (``what`` names an npz member in messages)."""
    version = np.lib.format.read_magic(stream)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
    elif version == (2, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
    else:
        raise BadFile(f"{what}npy format version {version} is not read (1.0 and 2.0 are)")
    if dtype.hasobject:
        raise BadFile(f"{what}holds Python objects (object dtype); only numeric arrays are read")
    if len(shape) == 4 and shape[1] == 1:
        shape = (shape[0], shape[2], shape[3])
    if len(shape) != 3:
        raise BadFile(f"{what}array shape {shape} is not (N,H,W) or (N,1,H,W)")
    n, h, w = shape
    if n == 0 or h == 0 or w == 0:
        raise BadFile(f"{what}array shape {shape} holds no pixels")
    if h * w > pixel_limit:
        raise BadFile(f"{what}{w}x{h} pixels per image is over the limit of {pixel_limit}")
    if dtype == np.bool_ or not (np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.floating)):
        raise BadFile(f"{what}dtype {dtype} is not accepted (uint8, integers in [0,255] or floats in [0,1])")
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes > array_limit:
        raise BadFile(f"{what}declares {shape} {dtype} ({nbytes} bytes), over the limit of {array_limit} bytes")
    return _ArrayLayout(n, h, w, dtype, fortran, nbytes)


def _convert_rows(rows: Callable[[int, int], np.ndarray], layout: _ArrayLayout, count: int,
                  notes: set[str]) -> np.ndarray:
    """uint8 ``[count,28,28]`` from ``rows(start, stop) -> [k,H,W]``, converted a bounded chunk at a time."""
    out = np.empty((count, SIZE, SIZE), np.uint8)
    step = max(1, ARRAY_CHUNK_BYTES // layout.row_bytes)
    for start in range(0, count, step):
        stop = min(start + step, count)
        chunk = _chunk_to_uint8(np.asarray(rows(start, stop)))
        if (layout.height, layout.width) != (SIZE, SIZE):
            chunk = np.stack([resize_gray(img) for img in chunk])
        out[start:stop] = chunk
    if (layout.height, layout.width) != (SIZE, SIZE):
        notes.add(f"resized {layout.width}x{layout.height}")
    return out


def _read_npy(fh: BinaryIO, pixel_limit: int, array_limit: int, max_rows: int | None,
              notes: set[str]) -> np.ndarray:
    layout = _array_layout(fh, pixel_limit, array_limit)
    offset = fh.tell()
    size = os.fstat(fh.fileno()).st_size
    if offset + layout.nbytes > size:
        raise BadFile(f"truncated: the header declares {layout.nbytes} bytes of data, {size - offset} follow")
    shape = (layout.n, layout.height, layout.width)
    data = np.memmap(fh, dtype=layout.dtype, mode="r", offset=offset, shape=shape,
                     order="F" if layout.fortran else "C")
    count = layout.n if max_rows is None else min(layout.n, max_rows)
    return _convert_rows(lambda a, b: data[a:b], layout, count, notes)


def _read_npz(fh: BinaryIO, pixel_limit: int, array_limit: int, max_rows: int | None,
              notes: set[str]) -> np.ndarray:
    with zipfile.ZipFile(fh) as zf:
        members = {name.removesuffix(".npy"): name for name in zf.namelist()}
        names = list(members)
        chosen = names[0] if len(names) == 1 else next((k for k in ("samples", "images") if k in names), None)
        if chosen is None:
            raise BadFile(f"npz holds {len(names)} arrays {names[:5]}; keep one, or name it 'samples'")
        what = f"array {chosen!r} "
        info = zf.getinfo(members[chosen])
        if info.file_size > array_limit + 2**20:  # + room for the .npy header
            raise BadFile(f"{what}unpacks to {info.file_size} bytes, over the limit of {array_limit} bytes")
        with zf.open(info) as member:
            layout = _array_layout(member, pixel_limit, array_limit, what)
            count = layout.n if max_rows is None else min(layout.n, max_rows)
            shape = (layout.n, layout.height, layout.width)
            if layout.fortran:  # leading rows are not contiguous: the whole array (within the limit)
                body = _read_exact(member, layout.nbytes)
                if len(body) < layout.nbytes:
                    raise BadFile(f"{what}is truncated")
                whole = np.frombuffer(body, layout.dtype).reshape(shape, order="F")
                return _convert_rows(lambda a, b: whole[a:b], layout, count, notes)

            def rows(start: int, stop: int) -> np.ndarray:
                body = _read_exact(member, (stop - start) * layout.row_bytes)  # rows arrive in order
                if len(body) < (stop - start) * layout.row_bytes:
                    raise BadFile(f"{what}is truncated")
                return np.frombuffer(body, layout.dtype).reshape(stop - start, layout.height, layout.width)

            return _convert_rows(rows, layout, count, notes)


def _read_array(path: Path, pixel_limit: int, array_limit: int, max_rows: int | None,
                notes: set[str]) -> np.ndarray:
    with _open_regular(path, array_limit) as fh:
        if os.fstat(fh.fileno()).st_size == 0:
            raise BadFile("empty file (0 bytes)")
        reader = _read_npz if path.name.lower().endswith(".npz") else _read_npy
        try:
            return reader(fh, pixel_limit, array_limit, max_rows, notes)
        except OSError as exc:
            if exc.errno is not None:  # a file-system error, described by the caller
                raise
            raise BadFile(f"not a readable array ({exc})") from None
        except _ARRAY_FORMAT_ERRORS as exc:
            raise BadFile(f"not a readable array ({type(exc).__name__}: {exc})") from None


# -- reading many files -------------------------------------------------------------

class _Reader:
    """Runs ``jobs`` in order on daemon threads, each within ``timeout`` seconds.

    The caller sleeps until every job is done, or until the finished prefix holds
    ``limit`` items (``size(value)`` per successful job): waking it for each of
    thousands of small files would cost more than decoding them. It wakes at least
    once a second to abandon a job that is over time: such a read (a stalled network
    mount) cannot be interrupted, so its thread is left behind, as a daemon that
    cannot keep the process alive, and a fresh thread takes over the remaining jobs.
    """

    def __init__(self, jobs: list[Callable[[], object]], *, threads: int, timeout: float,
                 size: Callable[[object], int], limit: int | None) -> None:
        self._jobs = jobs
        self._threads = max(1, min(threads, len(jobs)))
        self._timeout = timeout
        self._size = size
        self._limit = limit
        self._outcomes: list[tuple[bool, object] | None] = [None] * len(jobs)
        self._started: dict[int, float] = {}  # job in progress -> when it started
        self._next = 0
        self._prefix = 0  # jobs 0..prefix-1 have outcomes
        self._prefix_items = 0
        self._stop = False
        self._cond = threading.Condition()

    def _spawn(self) -> None:
        threading.Thread(target=self._work, daemon=True, name="genbench-reader").start()

    def _take(self) -> int | None:
        with self._cond:
            if self._stop or self._next == len(self._jobs):
                return None
            i, self._next = self._next, self._next + 1
            self._started[i] = time.monotonic()
            return i

    def _work(self) -> None:
        while (i := self._take()) is not None:
            try:
                outcome = (True, self._jobs[i]())
            except BaseException as exc:  # handed to the caller, who decides
                outcome = (False, exc)
            with self._cond:
                if self._started.pop(i, None) is not None:  # else it was abandoned as over time
                    self._outcomes[i] = outcome
                    self._advance()

    def _advance(self) -> None:  # holding the lock
        # Once stopped the prefix is final: a job finishing later must not extend it.
        while not self._stop and self._prefix < len(self._jobs) and self._outcomes[self._prefix] is not None:
            ok, value = self._outcomes[self._prefix]
            self._prefix += 1
            self._prefix_items += self._size(value) if ok else 0
            if self._limit is not None and self._prefix_items >= self._limit:
                self._stop = True
                break
        if self._stop or self._prefix == len(self._jobs):
            self._cond.notify_all()

    def run(self) -> list[tuple[bool, object]]:
        """``(ok, value or exception)`` per job, in order, up to the job that reached ``limit``.

        A job over time gives ``(False, TimeoutError)``.
        """
        for _ in range(self._threads):
            self._spawn()
        with self._cond:
            while not (self._stop or self._prefix == len(self._jobs)):
                now = time.monotonic()
                late = [i for i, started in self._started.items() if now - started > self._timeout]
                for i in late:
                    del self._started[i]
                    self._outcomes[i] = (False, TimeoutError(f"no result after {self._timeout:g} s (read timeout)"))
                    self._spawn()  # the stuck thread keeps its file; the others go on
                if late:
                    self._advance()
                    continue
                oldest = min(self._started.values(), default=now)
                self._cond.wait(min(1.0, max(0.01, oldest + self._timeout - now)))
            self._stop = True
            return self._outcomes[: self._prefix]


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


def _failure_reason(exc: object) -> str:
    """Why a file is unusable; anything that is not about the file is re-raised."""
    if isinstance(exc, (BadFile, TimeoutError)):
        return str(exc)
    if isinstance(exc, OSError):
        return _describe_os_error(exc)
    if isinstance(exc, MemoryError):
        return "too large to decode in memory"
    raise exc


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


def _is_array(path: Path) -> bool:
    return path.name.lower().endswith(ARRAY_EXTENSIONS)


def load_images(
    path: str | os.PathLike,
    *,
    skip_bad: bool = False,
    pixel_limit: int = PIXEL_LIMIT,
    min_images: int = 2,
    what: str = "samples",
    max_images: int | None = None,
    file_limit: int = FILE_LIMIT_BYTES,
    array_limit: int = ARRAY_LIMIT_BYTES,
    read_timeout: float = READ_TIMEOUT_S,
    threads: int = READ_THREADS,
) -> LoadedImages:
    """Read a folder or one image/array file as canonical images (see the module docstring).

    ``max_images``: stop after the first N images in name order (files after them are
    not opened, arrays are read only as far as needed). Raises :class:`InputError` with
    a one-line message naming the offending files. With ``skip_bad`` unusable files are
    dropped and listed in ``warnings`` instead. ``what`` names the input in messages
    (``samples``, ``reference``).
    """
    source = Path(path)
    files, n_other = _list_inputs(source)
    if not files:
        other = f" ({n_other} other entries ignored)" if n_other else ""
        raise InputError(f"{what}: no .png/.jpg/.jpeg/.bmp/.npy/.npz files in {source}{other}")

    def read(f: Path) -> tuple[np.ndarray, set[str]]:
        notes: set[str] = set()
        if _is_array(f):
            return _read_array(f, pixel_limit, array_limit, max_images, notes), notes
        return _read_image(f, pixel_limit, file_limit, notes)[None], notes

    arrays: list[np.ndarray] = []
    keys: list[str] = []
    bad: list[tuple[str, str]] = []
    resized: dict[str, int] = {}
    alpha_files = 0
    lossy_files = 0
    n = 0
    with warnings.catch_warnings():
        # PIL warns between its limit and twice it; genbench refuses anything over pixel_limit.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        reader = _Reader([lambda f=f: read(f) for f in files], threads=threads, timeout=read_timeout,
                         size=lambda value: len(value[0]), limit=max_images)
        for f, (ok, value) in zip(files, reader.run(), strict=False):
            if not ok:
                bad.append((f.name, _failure_reason(value)))
                continue
            a, notes = value
            arrays.append(a)
            if _is_array(f):
                keys.extend(f"{f.stem}[{i}]" for i in range(len(a)))
            else:
                keys.append(f.stem)
            lossy_files += f.suffix.lower() in (".jpg", ".jpeg")
            for note in notes:
                if note.startswith("resized "):
                    resized[note.removeprefix("resized ")] = resized.get(note.removeprefix("resized "), 0) + 1
            alpha_files += "alpha" in notes
            n += len(a)

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

    n = min(n, max_images) if max_images is not None else n
    if n < min_images:
        raise InputError(
            f"{what}: {n} usable image{'s' if n != 1 else ''} in {source}; at least {min_images} are needed"
        )
    images = torch.from_numpy(np.concatenate(arrays)[:n]).unsqueeze(1).contiguous()
    single_array = len(files) == 1 and _is_array(files[0])
    return LoadedImages(images, keys[:n], source, bad if skip_bad else [], result_warnings, single_array)


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
