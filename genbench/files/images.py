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
      when shrinking; the aspect ratio is not kept) after the gray conversion; a
      32x32 set is shrunk, not cropped, which its warning names.
    - Every conversion (colour, 16-bit, float, size) is named in ``warnings`` with the
      number of files it concerned; 8-bit gray 28x28 input gets no word.

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
import os
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from genbench.errors import InputError
from genbench.files.decode import PIXEL_LIMIT, _read_array, _read_image
from genbench.files.safe_open import ARRAY_LIMIT_BYTES, FILE_LIMIT_BYTES, BadFile

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp")
ARRAY_EXTENSIONS = (".npy", ".npz")
READ_TIMEOUT_S = 30.0  # per file, reading and decoding
# One reader thread: with the files in the page cache (samples just written), reading and
# decoding a small PNG is about as short as handing the GIL to another thread, so a second
# thread reads slower; from a cold cache a second one is faster (both in
# results/speed/README.md). The thread exists for the time limit.
READ_THREADS = 1
MAX_LISTED = 5  # bad files named in one error line


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


# -- reading many files -------------------------------------------------------------

class _Reader:
    """Runs ``job(item)`` for each of ``items`` in order on daemon threads, each within ``timeout`` seconds.

    The caller sleeps until every job is done, or until the finished prefix holds
    ``limit`` items (``size(value)`` per successful job): waking it for each of
    thousands of small files would cost more than decoding them. It wakes at least
    once a second to abandon a job that is over time: such a read (a stalled network
    mount) cannot be interrupted, so its thread is left behind, as a daemon that
    cannot keep the process alive, and a fresh thread takes over the remaining jobs.
    """

    def __init__(self, job: Callable[[str], object], items: list[str], *, threads: int, timeout: float,
                 size: Callable[[object], int], limit: int | None) -> None:
        self._job = job
        self._items = items
        self._threads = max(1, min(threads, len(items)))
        self._timeout = timeout
        self._size = size
        self._limit = limit
        self._outcomes: list[tuple[bool, object] | None] = [None] * len(items)
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
            if self._stop or self._next == len(self._items):
                return None
            i, self._next = self._next, self._next + 1
            self._started[i] = time.monotonic()
            return i

    def _work(self) -> None:
        while (i := self._take()) is not None:
            try:
                outcome = (True, self._job(self._items[i]))
            except BaseException as exc:  # handed to the caller, who decides
                outcome = (False, exc)
            with self._cond:
                if self._started.pop(i, None) is not None:  # else it was abandoned as over time
                    self._outcomes[i] = outcome
                    self._advance()

    def _advance(self) -> None:  # holding the lock
        # Once stopped the prefix is final: a job finishing later must not extend it.
        while not self._stop and self._prefix < len(self._items) and self._outcomes[self._prefix] is not None:
            ok, value = self._outcomes[self._prefix]
            self._prefix += 1
            self._prefix_items += self._size(value) if ok else 0
            if self._limit is not None and self._prefix_items >= self._limit:
                self._stop = True
                break
        if self._stop or self._prefix == len(self._items):
            self._cond.notify_all()

    def run(self) -> list[tuple[bool, object]]:
        """``(ok, value or exception)`` per job, in order, up to the job that reached ``limit``.

        A job over time gives ``(False, TimeoutError)``.
        """
        for _ in range(self._threads):
            self._spawn()
        with self._cond:
            while not (self._stop or self._prefix == len(self._items)):
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


def _scan_folder(folder: Path) -> tuple[list[str], int]:
    """Paths of the files with a supported extension in ``folder`` (sorted by name), and how many others.

    Paths are strings: a pathlib object per file costs more than reading a small PNG.
    """
    try:
        with os.scandir(folder) as it:
            names = sorted(entry.name for entry in it)
    except OSError as exc:
        raise InputError(f"cannot list {folder}: {_describe_os_error(exc)}") from None
    base = os.fspath(folder)
    chosen = [os.path.join(base, n) for n in names if n.lower().endswith(IMAGE_EXTENSIONS + ARRAY_EXTENSIONS)]
    return chosen, len(names) - len(chosen)


def _list_inputs(path: Path) -> tuple[list[str], int]:
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
    return [os.fspath(path)], 0


def _summarize_bad(bad: list[tuple[str, str]]) -> str:
    shown = "; ".join(f"{name}: {reason}" for name, reason in bad[:MAX_LISTED])
    more = f"; and {len(bad) - MAX_LISTED} more" if len(bad) > MAX_LISTED else ""
    return shown + more


def _stem_suffix(name: str) -> tuple[str, str]:
    """``(PurePath(name).stem, PurePath(name).suffix)``, without building a path object."""
    i = name.rfind(".")
    return (name[:i], name[i:]) if 0 < i < len(name) - 1 else (name, "")


def _is_array(path: str) -> bool:
    return path.lower().endswith(ARRAY_EXTENSIONS)


def _conversion(note: str, count: int) -> str:
    """One kind of pixel conversion :func:`load_images` made, in words, with its file count."""
    if note == "16-bit":
        return f"16-bit gray scaled to 8-bit, round(v * 255 / 65535) ({count})"
    if note == "float":
        return f"float arrays quantized, round(x * 255) ({count})"
    mode = note.removeprefix("gray ")
    if mode == "1":
        return f"1-bit images to 0/255 ({count})"
    return f"{mode} to gray by ITU-R 601-2 luma ({count})"


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

    def read(f: str) -> tuple[np.ndarray, set[str]]:
        notes: set[str] = set()
        if _is_array(f):
            return _read_array(Path(f), pixel_limit, array_limit, max_images, notes), notes
        return _read_image(f, pixel_limit, file_limit, notes)[None], notes

    arrays: list[np.ndarray] = []
    keys: list[str] = []
    bad: list[tuple[str, str]] = []
    resized: dict[str, int] = {}
    converted: dict[str, int] = {}
    alpha_files = 0
    lossy_files = 0
    n = 0
    with warnings.catch_warnings():
        # PIL warns between its limit and twice it; genbench refuses anything over pixel_limit.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        reader = _Reader(read, files, threads=threads, timeout=read_timeout,
                         size=lambda value: len(value[0]), limit=max_images)
        for f, (ok, value) in zip(files, reader.run(), strict=False):
            name = os.path.basename(f)
            if not ok:
                bad.append((name, _failure_reason(value)))
                continue
            a, notes = value
            arrays.append(a)
            stem, suffix = _stem_suffix(name)
            if _is_array(f):
                keys.extend(f"{stem}[{i}]" for i in range(len(a)))
            else:
                keys.append(stem)
            lossy_files += suffix.lower() in (".jpg", ".jpeg")
            for note in notes:
                if note.startswith("resized "):
                    resized[note.removeprefix("resized ")] = resized.get(note.removeprefix("resized "), 0) + 1
                elif note in ("16-bit", "float") or note.startswith("gray "):
                    converted[note] = converted.get(note, 0) + 1
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
    if converted:
        result_warnings.append(f"{what}: converted {sum(converted.values())} file(s) to 8-bit gray: "
                               + "; ".join(_conversion(k, v) for k, v in sorted(converted.items())))
    if resized:
        sizes = ", ".join(f"{k} ({v})" for k, v in sorted(resized.items()))
        padded = ("; 32x32 is shrunk, not cropped: a 28x28 set padded to 32x32 (as for LeNet) gets smaller "
                  "digits than the reference, so crop its 2-pixel border first" if "32x32" in resized else "")
        result_warnings.append(
            f"{what}: resized {sum(resized.values())} file(s) to 28x28 with bilinear filtering "
            f"(aspect ratio not kept): {sizes}{padded}"
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
