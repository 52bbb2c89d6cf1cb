"""The driver's progress display: one line per active run and an overall counter.

Runs report ``(fraction, info)`` through a :class:`~genbench.run.task.RunProgress`
callback; the local executor calls :meth:`ProgressBoard.update` directly, the Ray
executor forwards the same events from its workers through a queue.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskID, TaskProgressColumn, TextColumn, TimeElapsedColumn


class ProgressBoard:
    """Rich progress lines keyed by run (``"dcgan seed 0"``), plus ``runs done: k/N``.

    With ``enabled=False`` every call is a no-op, so executors never test for it.
    """

    def __init__(self, console: Console, keys: Sequence[str], enabled: bool = True) -> None:
        self.enabled = enabled and bool(keys)
        self._tasks: dict[str, TaskID] = {}
        self._finished: set[str] = set()
        self._total = len(keys)
        self._progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), TaskProgressColumn(),
            TextColumn("{task.fields[info]}"), TimeElapsedColumn(), console=console, transient=False,
        )
        self._overall: TaskID | None = None

    def __enter__(self) -> ProgressBoard:
        if self.enabled:
            self._progress.__enter__()
            self._overall = self._progress.add_task("runs done", total=self._total, info=f"0/{self._total}")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self._progress.__exit__(*exc)

    def update(self, key: str, fraction: float, info: str) -> None:
        """Show run ``key`` at ``fraction`` of its work (a line appears at its first update)."""
        if not self.enabled or key in self._finished:
            return
        if key not in self._tasks:
            self._tasks[key] = self._progress.add_task(escape(key), total=1.0, info="")
        self._progress.update(self._tasks[key], completed=min(max(fraction, 0.0), 1.0), info=escape(info))

    def finish(self, key: str, status: str) -> None:
        """Run ``key`` ended with ``status``: its line stays, the counter moves on."""
        if not self.enabled or key in self._finished:
            return
        self.update(key, 1.0, status)
        self._finished.add(key)
        if self._overall is not None:
            self._progress.update(self._overall, completed=len(self._finished),
                                  info=f"{len(self._finished)}/{self._total}")
