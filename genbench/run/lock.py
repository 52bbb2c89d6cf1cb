"""The locks of a results folder: one writer per run folder, one leaderboard rebuild at a time."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from genbench.errors import ConfigError
from genbench.files.atomic import FileLock

LOCK_NAME = ".lock"
LEADERBOARD_LOCK_NAME = ".leaderboard.lock"


class RunLockedError(ConfigError):
    """Another process is writing the same (model, seed) into the same results folder."""


@contextmanager
def run_lock(run_dir: Path, consequence: str) -> Iterator[None]:
    """Hold ``run_dir``'s lock for the ``with`` block, without waiting.

    Raises :class:`RunLockedError` at once if another process holds it: the message names
    that process's pid and ends with ``consequence`` (what the refusal means for the caller).
    """
    lock = FileLock(run_dir / LOCK_NAME, blocking=False)
    try:
        lock.__enter__()
    except BlockingIOError:
        raise RunLockedError(
            f"{run_dir} is being written by another genbench process (pid {lock.holder()}); {consequence}"
        ) from None
    try:
        yield
    finally:
        lock.__exit__(None, None, None)


def leaderboard_lock(suite_dir: Path) -> FileLock:
    """The lock held while a suite folder's leaderboard is rebuilt (waits for another holder)."""
    return FileLock(Path(suite_dir) / LEADERBOARD_LOCK_NAME)
