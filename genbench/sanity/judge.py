"""Judging one (metric, family) cell of the sanity matrix from its values at every level and seed.

The criteria follow Räisä, van Breugel & van der Schaar (ICML 2025, "Position: All Current Generative
Fidelity and Diversity Metrics are Flawed"; their ``sanity_check_criteria.py``): a metric that should
move must move the right way from the first level to the last by a minimum swing, and one that
should not move must stay within a band. Their metrics live in [0, 1], so their swing (0.2) and band
(0.05) are absolute; genbench's metrics have every scale (FID is unbounded), so here both are in
units of the metric's seed-to-seed spread on the unchanged sets, and "the right way" is a rank
correlation over every set rather than a shape of the means:

- ``rho``: Spearman's rank correlation of the metric with the level over every (level, seed) set
  (``scipy.stats.spearmanr``); in the expected direction it must reach ``RHO_MIN``;
- ``spread``: the standard deviation over seeds at the base level, never below ``SPREAD_FLOOR``
  times the base mean's magnitude (nor below ``SPREAD_FLOOR_ABS``), so that a metric that every seed
  agrees on exactly is not divided by zero;
- ``swing``: the change of the mean from the base level to the strongest, in spreads, signed so
  that positive is the expected direction; it must reach ``SWING_MIN``;
- ``sensitivity``: the same for the mildest level, reported, not judged: how early a metric notices;
- ``max_dev``: the largest change of a level's mean from the base, in spreads; a ``flat`` metric
  passes when it stays within ``FLAT_BAND``.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

RHO_MIN = 0.7
SWING_MIN = 3.0
FLAT_BAND = 3.0
SPREAD_FLOOR = 0.01  # of the base mean's magnitude
SPREAD_FLOOR_ABS = 1e-9

PASS, FAIL, UNJUDGED, NULL = "pass", "fail", "none", "null"


@dataclass(frozen=True)
class Cell:
    """The verdict of one (metric, family) cell and the numbers it rests on (None where undefined)."""

    expectation: str  # worse | better | flat | none
    direction: int  # +1: the metric should go up, -1: down, 0: flat or no expectation
    verdict: str  # pass | fail | none | null
    rho: float | None
    spread: float | None
    sensitivity: float | None
    swing: float | None
    max_dev: float | None
    reason: str

    def to_json(self) -> dict:
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in self.__dict__.items()}


def expected_direction(expectation: str, higher_is_better: bool | None) -> int:
    """+1 if the metric's value should rise, -1 if it should fall, 0 for flat or no expectation."""
    if expectation not in ("worse", "better"):
        return 0
    if higher_is_better is None:
        raise ValueError(f"a metric without a direction cannot be expected to get {expectation}")
    up_is_better = 1 if higher_is_better else -1
    return up_is_better if expectation == "better" else -up_is_better


def spearman(levels: np.ndarray, values: np.ndarray) -> float:
    """Spearman's rho of ``values`` against ``levels``; nan when either is constant."""
    if len(values) < 3 or np.ptp(values) == 0 or np.ptp(levels) == 0:
        return float("nan")
    from scipy.stats import spearmanr

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(spearmanr(levels, values).statistic)


def judge(levels: list[float], values: list[list[float | None]], base_index: int, expectation: str,
          higher_is_better: bool | None) -> Cell:
    """Judge a cell from ``values[level][seed]`` (None: the metric was null for that set) at ``levels``
    (in the family's order of severity; ``base_index`` is the unchanged level)."""
    direction = expected_direction(expectation, higher_is_better)
    nulls = [levels[i] for i, row in enumerate(values) if any(v is None for v in row)]
    if nulls:
        return Cell(expectation, direction, NULL, None, None, None, None, None,
                    f"null at level(s) {', '.join(f'{v:g}' for v in nulls)}")
    order = np.arange(len(levels), dtype=np.float64)  # the rank of severity: a level's value may fall (contrast)
    xs = np.concatenate([np.full(len(row), order[i]) for i, row in enumerate(values)])
    ys = np.concatenate([np.asarray(row, dtype=np.float64) for row in values])
    means = np.array([np.mean(row) for row in values])
    base = np.asarray(values[base_index], dtype=np.float64)
    sd = float(np.std(base, ddof=1)) if len(base) > 1 else 0.0
    spread = max(sd, SPREAD_FLOOR * abs(float(np.mean(base))), SPREAD_FLOOR_ABS)
    rho = spearman(xs, ys)
    mild = base_index + 1 if base_index + 1 < len(levels) else base_index - 1
    sign = direction or 1
    sensitivity = sign * (means[mild] - means[base_index]) / spread
    swing = sign * (means[-1] - means[base_index]) / spread
    max_dev = float(np.max(np.abs(means - means[base_index])) / spread)
    if expectation == "none":
        return Cell(expectation, 0, UNJUDGED, rho, spread, sensitivity, swing, max_dev, "no expectation")
    if expectation == "flat":
        ok = max_dev <= FLAT_BAND
        why = f"moves at most {max_dev:.2g} spreads from the base (band {FLAT_BAND:g})"
        return Cell(expectation, 0, PASS if ok else FAIL, rho, spread, sensitivity, swing, max_dev, why)
    oriented = direction * rho if math.isfinite(rho) else float("nan")
    problems = []
    if not (oriented >= RHO_MIN):
        problems.append(f"rho {rho:+.2f} against the expected direction's {direction * RHO_MIN:+.2f}"
                        if math.isfinite(rho) else "constant")
    if not swing >= SWING_MIN:
        problems.append(f"swing {swing:.2g} spreads < {SWING_MIN:g}")
    why = "; ".join(problems) or f"rho {rho:+.2f}, swing {swing:.2g} spreads"
    return Cell(expectation, direction, FAIL if problems else PASS, rho, spread, sensitivity, swing, max_dev, why)
