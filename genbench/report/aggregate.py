"""One aggregation of run records per model, shared by the leaderboard and ``genbench check``.

Per model: its role, seeds, status counts, images seen, the code revisions of its runs,
and every numeric metric's values over the seeds that ended ``ok`` (``capped``,
``diverged`` and ``failed`` runs are counted, never averaged) (flags such as ``nll_is_bound`` and
missing or non-finite values are left out; whether the mean NLL is a bound is kept
beside them). The leaderboard shows means, standard deviations and significance from
these values; ``genbench check`` compares the means. Both read the same numbers, so
they cannot disagree about a model.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Any

from genbench.process import under_load
from genbench.protocol import Role
from genbench.results import STATUSES, RunRecord


@dataclass
class ModelSummary:
    """The runs of one model in one results folder."""

    name: str
    role: Role
    seeds: list[int] = field(default_factory=list)
    status: dict[str, int] = field(default_factory=dict)  # status -> number of runs
    images_seen: list[float] = field(default_factory=list)  # achieved images of every run that has them
    budget_kinds: set[str] = field(default_factory=set)
    revisions: set[str] = field(default_factory=set)  # short git hash of every run, "-dirty" kept; "unknown" if none
    values: dict[str, list[float]] = field(default_factory=dict)  # metric -> values over ok seeds
    # Whether the mean nll_bpd of the ok seeds is a bound: None without one, True if any seed's is (a mean
    # of upper bounds and exact values bounds the mean of the exact values, and is no more than a bound).
    nll_is_bound: bool | None = None
    # Of the ok seeds, how many measured their speed figures under load (genbench.process.under_load).
    speed_under_load: int = 0

    def n(self, key: str) -> int:
        return len(self.values.get(key, ()))

    def mean(self, key: str) -> float:
        """Mean over ok seeds; NaN when no ok seed has a value."""
        v = self.values.get(key)
        return math.fsum(v) / len(v) if v else float("nan")

    def std(self, key: str) -> float:
        """Sample standard deviation (n - 1) over ok seeds; NaN below two values."""
        v = self.values.get(key)
        return statistics.stdev(v) if v and len(v) > 1 else float("nan")


def _role(rec: RunRecord) -> Role:
    # Records written before roles existed are competitors; so is anything unrecognised.
    try:
        return Role(rec.model.get("role", Role.COMPETITOR.value))
    except ValueError:
        return Role.COMPETITOR


def _is_bound(rec: RunRecord) -> bool:
    """Whether ``rec``'s nll_bpd is a bound: its metric ``nll_is_bound``, else its model's ``likelihood_is_bound``."""
    flag = rec.metrics.get("nll_is_bound", rec.model.get("likelihood_is_bound"))
    return flag is True


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def short_revision(git_hash: str | None) -> str:
    """``3b447bed618e…`` -> ``3b447be``; ``…-dirty`` keeps its suffix; None (not run from git) -> ``unknown``."""
    if not isinstance(git_hash, str) or not git_hash:
        return "unknown"
    dirty = git_hash.endswith("-dirty")
    return git_hash.removesuffix("-dirty")[:7] + ("-dirty" if dirty else "")


def aggregate(records: list[RunRecord]) -> dict[str, ModelSummary]:
    """Run records -> one :class:`ModelSummary` per model name, sorted by name.

    A model's role is the one its records state; records that disagree make it a
    competitor, so a reference row can never be claimed by a name alone.
    """
    out: dict[str, ModelSummary] = {}
    for rec in sorted(records, key=lambda r: (r.model_name, r.seed)):
        name, role = rec.model_name, _role(rec)
        summary = out.get(name)
        if summary is None:
            summary = out[name] = ModelSummary(name, role, status={s: 0 for s in STATUSES})
        elif summary.role is not role:
            summary.role = Role.COMPETITOR
        summary.seeds.append(rec.seed)
        summary.status[rec.status] = summary.status.get(rec.status, 0) + 1
        images = _number((rec.budget.get("achieved") or {}).get("images"))
        if images is not None:
            summary.images_seen.append(images)
        summary.revisions.add(short_revision(rec.git_hash))
        if rec.budget.get("kind"):
            summary.budget_kinds.add(rec.budget["kind"])
        if rec.status != "ok":
            continue
        for key, value in rec.metrics.items():
            number = _number(value)
            if number is not None:
                summary.values.setdefault(key, []).append(number)
        summary.speed_under_load += under_load(rec.executor, rec.machine) is True
        if _number(rec.metrics.get("nll_bpd")) is not None:
            summary.nll_is_bound = bool(summary.nll_is_bound) or _is_bound(rec)
    return dict(sorted(out.items()))
