"""Atomic, durable file writes: temporary file in the same folder, flush + fsync, rename.

A reader never sees a half-written file: it sees the old one or the new one. A set of
files (a leaderboard's md/csv/json/html) is written in two phases: every temporary
file first, then the renames, which need no free space; if any file cannot be written,
every file of the set keeps its previous version.

Failures raise :class:`~genbench.errors.WriteError` (an ``OSError`` and a one-line
``GenbenchError``) naming the file. Temporary files never outlive the write: they are
removed on error, on SIGTERM and SIGINT (after which the process ends as the signal
would have ended it), and at interpreter exit; only SIGKILL can leave one, which the
runner removes when it next opens that run folder.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import json
import os
import secrets
import signal
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch

from genbench.errors import WriteError

_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_live_tmp: set[str] = set()  # temporary files this process is writing right now
_previous_handlers: dict[int, Any] = {}  # signal -> handler it had before a write installed ours
_writes_in_main = 0


def _remove_live_tmp() -> None:
    for tmp in list(_live_tmp):
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        _live_tmp.discard(tmp)


atexit.register(_remove_live_tmp)


def _on_signal(signum: int, frame: Any) -> None:
    """Installed only over the default action: remove our temporary files, then die of the same signal."""
    _remove_live_tmp()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


@contextlib.contextmanager
def _temporaries_die_with_signals() -> Iterator[None]:
    """While writing: a SIGTERM or SIGINT that would kill the process first removes its temporary files.

    Only signals left at their default action are taken over (Python's own SIGINT handler
    raises KeyboardInterrupt, which the writers' cleanup already handles; handlers a caller
    installed are left alone), and only from the main thread, where Python runs handlers.
    The previous handler is restored when the last write ends, so signals outside writes
    behave exactly as before.
    """
    global _writes_in_main
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if _writes_in_main == 0:
        for sig in _SIGNALS:
            if signal.getsignal(sig) == signal.SIG_DFL:
                _previous_handlers[sig] = signal.signal(sig, _on_signal)
    _writes_in_main += 1
    try:
        yield
    finally:
        _writes_in_main -= 1
        if _writes_in_main == 0:
            for sig, handler in _previous_handlers.items():
                signal.signal(sig, handler)
            _previous_handlers.clear()


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_error(exc: OSError, path: Path) -> WriteError:
    return WriteError(exc.errno, exc.strerror or str(exc), str(path))


def _write_tmp(path: Path, data: bytes) -> str:
    """Write ``data`` to a new temporary file beside ``path``, fsynced; return its name."""
    # The name is registered before the file exists, so a signal at any point finds it.
    tmp = str(path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp")
    _live_tmp.add(tmp)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        _live_tmp.discard(tmp)
        if isinstance(exc, OSError) and not isinstance(exc, WriteError):
            raise _write_error(exc, path) from None
        raise
    return tmp


def atomic_write_files(files: Mapping[str | os.PathLike, bytes | str]) -> None:
    """Replace every file of ``files`` (path -> bytes, or str written as UTF-8) as one set.

    All temporary files are written and fsynced before the first rename, so a full disk
    or any other write error leaves every file of the set as it was.
    """
    items = [(Path(p), d.encode("utf-8") if isinstance(d, str) else d) for p, d in files.items()]
    with _temporaries_die_with_signals():
        written: list[tuple[str, Path]] = []
        try:
            for path, data in items:
                written.append((_write_tmp(path, data), path))
            for tmp, path in written:
                try:
                    os.replace(tmp, path)
                except OSError as exc:
                    raise _write_error(exc, path) from None
                _live_tmp.discard(tmp)
        except BaseException:
            for tmp, _ in written:
                if tmp in _live_tmp:
                    with contextlib.suppress(OSError):
                        os.unlink(tmp)
                    _live_tmp.discard(tmp)
            raise
    for folder in {path.parent for path, _ in items}:
        _fsync_dir(folder)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    atomic_write_files({path: data})


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_files({path: text})


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(path, json_text(obj))


def json_text(obj: Any) -> str:
    """The JSON genbench writes: indented, NaN refused (non-finite numbers must become null first)."""
    return json.dumps(obj, indent=2, sort_keys=False, allow_nan=False) + "\n"


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


class FileLock:
    """An exclusive advisory lock on ``path`` (``fcntl.flock``), held while in the ``with`` block.

    ``blocking=False`` raises :class:`BlockingIOError` at once if another process holds it;
    the lock file records the holder's pid for the error message. The OS releases the
    lock when the process dies, so a killed run never leaves a stale lock behind.
    """

    def __init__(self, path: str | os.PathLike, blocking: bool = True) -> None:
        self.path = Path(path)
        self.blocking = blocking
        self._fd: int | None = None

    def holder(self) -> str:
        try:
            return self.path.read_text().strip() or "?"
        except OSError:
            return "?"

    def __enter__(self) -> FileLock:
        import fcntl

        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise _write_error(exc, self.path) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if self.blocking else fcntl.LOCK_NB))
        except BaseException:
            os.close(fd)
            raise
        try:
            os.ftruncate(fd, 0)
            os.write(fd, str(os.getpid()).encode())
        except OSError:
            pass  # disk full: the pid only names the holder in messages; the lock itself is held
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        import fcntl

        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
