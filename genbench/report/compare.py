"""Compared folders: run records of the same suite version, read from other results folders.

``genbench run ... --compare DIR`` and ``genbench report RESULTS --compare DIR`` put the
runs already in ``DIR`` (for example the committed ``results/mnist-small``) into the
leaderboard beside the results folder's own runs, without rerunning them. Only runs
of the same suite name and version are comparable; anything else is refused.

A model's leaderboard row is built from one folder only: the results folder first,
then the compared folders in the order given. When a folder has a model that an
earlier one already has, its runs of that model are left out (and the leaderboard
says so), so that one row never mixes runs of different code or settings.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genbench.errors import InputError
from genbench.results import RunRecord, collect_runs

SuiteId = tuple[str, Any]  # (suite name, suite version) as the run records state them


@dataclass
class ComparedFolder:
    """One ``--compare`` folder: what it contributes to a leaderboard."""

    folder: Path  # as given on the command line
    records: list[RunRecord] = field(default_factory=list)  # the runs shown from this folder
    left_out: dict[str, int] = field(default_factory=dict)  # model -> runs not shown: an earlier folder has it
    problems: list[str] = field(default_factory=list)  # unreadable run records, skipped

    @property
    def models(self) -> list[str]:
        return sorted({r.model_name for r in self.records})


@dataclass
class Sources:
    """Every run record a leaderboard shows, and the folder each model's runs come from."""

    records: list[RunRecord]
    folder_of: dict[str, Path]  # model -> folder holding its runs (MODEL/seedK/ below it)
    compared: list[ComparedFolder]
    problems: list[str]  # unreadable run records of every folder


def suite_ids(records: Sequence[RunRecord]) -> list[SuiteId]:
    """The distinct (suite name, version) pairs of ``records``, sorted."""
    return sorted({(r.suite_name, r.suite.get("version")) for r in records}, key=str)


def _describe(ids: Sequence[SuiteId]) -> str:
    return " and ".join(f"suite {name} version {version}" for name, version in ids)


def read_compared(folders: Sequence[str | os.PathLike], suite: SuiteId,
                  results_dir: str | os.PathLike) -> list[ComparedFolder]:
    """Read and check every ``--compare`` folder against the suite of ``results_dir``.

    Raises :class:`InputError` (one line) when a folder is missing, is the results
    folder itself or is given twice, holds no run records, or holds runs of another
    suite name or version than ``suite``.
    """
    out: list[ComparedFolder] = []
    seen = {Path(results_dir).resolve()}
    for given in folders:
        folder = Path(given)
        if not folder.is_dir():
            raise InputError(f"--compare {folder}: no such folder")
        resolved = folder.resolve()
        if resolved == Path(results_dir).resolve():
            raise InputError(
                f"--compare {folder} is the results folder itself: its runs are in the leaderboard already")
        if resolved in seen:
            raise InputError(f"--compare {folder} is given twice")
        seen.add(resolved)
        records, problems = collect_runs(folder)
        if not records:
            raise InputError(f"--compare {folder} holds no run records (expected {folder}/MODEL/seedK/run.json)")
        ids = suite_ids(records)
        if ids != [suite]:
            raise InputError(f"--compare {folder} holds runs of {_describe(ids)}, but the results are of "
                             f"{_describe([suite])}: only runs of the same suite version are comparable")
        out.append(ComparedFolder(folder, records, problems=problems))
    return out


def gather(results_dir: str | os.PathLike, compare: Sequence[str | os.PathLike] = (),
           suite: SuiteId | None = None) -> Sources:
    """The run records of ``results_dir`` and of every ``compare`` folder, each model from one folder.

    Without ``compare`` these are the records :func:`genbench.results.collect_runs` reads.
    With it, every run in ``results_dir`` and in the compared folders must be of one
    suite version: ``suite`` (``genbench run``: the suite being run) or, when it is
    None, the one version ``results_dir`` holds (``genbench report``). Each model's
    runs come from the first folder that has the model: ``results_dir``, then the
    compared folders in the order given.
    """
    results_dir = Path(results_dir)
    records, problems = collect_runs(results_dir)
    folder_of = {r.model_name: results_dir for r in records}
    if not compare:
        return Sources(records, folder_of, [], problems)
    ids = suite_ids(records)
    if suite is None and not ids:
        raise InputError(f"{results_dir} holds no run records to compare with")
    if (suite is None and len(ids) > 1) or (suite is not None and ids and ids != [suite]):
        raise InputError(f"{results_dir} holds runs of {_describe(ids)}: --compare needs runs of one suite version"
                         + (f" ({_describe([suite])}); write to another --out" if suite is not None else ""))
    compared = read_compared(compare, suite or ids[0], results_dir)
    for cf in compared:
        cf.left_out = dict(sorted(Counter(r.model_name for r in cf.records if r.model_name in folder_of).items()))
        cf.records = [r for r in cf.records if r.model_name not in folder_of]
        folder_of.update({r.model_name: cf.folder for r in cf.records})
        records += cf.records
        problems += cf.problems
    return Sources(records, folder_of, compared, problems)
