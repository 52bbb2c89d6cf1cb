"""The words a comparison ends in, shared by ``genbench check``, ``genbench speed`` and ``genbench reproduce``.

A :class:`Verdict` is a ``str``: it is written to JSON, tables and messages as its plain
word, and compares equal to it.
"""

from __future__ import annotations

from enum import Enum


class Verdict(str, Enum):  # enum.StrEnum from Python 3.11; genbench supports 3.10
    """How a figure compares: against a baseline or an old revision (``held``, ``improved``,
    ``regressed``, ``work changed``, ``missing``), or a rerun against its record
    (``identical``, ``within tolerance``, ``consistent``, ``different``)."""

    __str__ = str.__str__
    __format__ = str.__format__

    # A figure against a baseline (check) or against an old revision (speed).
    HELD = "held"
    IMPROVED = "improved"
    REGRESSED = "regressed"
    WORK_CHANGED = "work changed"  # a deterministic work count (parameters, FLOPs per image) differs
    MISSING = "missing"  # in the baseline, absent now
    # A rerun against its record (reproduce).
    IDENTICAL = "identical"
    WITHIN = "within tolerance"
    CONSISTENT = "consistent"  # outside the floors, inside what the committed seeds show (a prediction interval)
    DIFFERENT = "different"


REPRODUCED = (Verdict.IDENTICAL, Verdict.WITHIN, Verdict.CONSISTENT)
