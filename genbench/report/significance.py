"""Which differences between models are significant over seeds.

Method. Every pair of models with at least two ok seeds is compared on the per-seed
values of one metric by Welch's unequal-variance t-test (Welch 1947;
``scipy.stats.ttest_ind(equal_var=False)``): seeds of different models are
independent runs, and their spreads differ a lot between models (a GAN's FID varies
far more over seeds than a DDPM's), which is what Welch's test allows for. The
p-values of all pairs of one metric form one family and are adjusted by Holm's
step-down method (Holm 1979), which keeps the chance of *any* false "significant"
at or below ``alpha`` (0.05) without assuming independent tests. A pair is
significant when its adjusted p-value is at most ``alpha``.

With three seeds a t-test has little power: only large, consistent differences come
out significant, and "not significant" means "not shown to differ", not "equal".
A bootstrap over seeds was not chosen because three values give only ten distinct
resamples per model.

Display. A compact letter display (Piepho 2004, "An algorithm for a letter-based
representation of all-pairwise comparisons", J. Comp. Graph. Stat. 13:456-466;
insert-and-absorb, then sweep): each model gets letters, and two models share a
letter exactly when their difference is not significant. Letters are ordered from
the best model (``a``) down.
"""

from __future__ import annotations

import math
import string
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
from scipy import stats as scipy_stats

ALPHA = 0.05
METHOD = "Welch t-test on per-seed values, Holm-adjusted over all pairs"
MIN_SEEDS = 2


@dataclass(frozen=True)
class PairTest:
    """One pairwise comparison; ``p_holm`` is the Holm-adjusted p-value."""

    a: str
    b: str
    mean_a: float
    mean_b: float
    t: float
    df: float
    p: float
    p_holm: float
    significant: bool


@dataclass
class Significance:
    """All pairwise comparisons of one metric and their letter display."""

    metric: str
    higher_is_better: bool
    alpha: float
    method: str
    models: list[str]  # compared models, best mean first
    pairs: list[PairTest]
    letters: dict[str, str]  # model -> letters ("" for models left out)
    left_out: dict[str, str] = field(default_factory=dict)  # model -> why it is not compared


def welch_test(x: Sequence[float], y: Sequence[float]) -> tuple[float, float, float]:
    """Welch's two-sided t-test: ``(t, df, p)``; needs two values on each side.

    When both sides have zero spread the test degenerates: equal means give p = 1,
    different means p = 0 (scipy's limit, t = +-inf).
    """
    if len(x) < MIN_SEEDS or len(y) < MIN_SEEDS:
        raise ValueError(f"Welch's test needs at least {MIN_SEEDS} values per group, got {len(x)} and {len(y)}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # zero spread: scipy warns, then returns its limit
        result = scipy_stats.ttest_ind(np.asarray(x, float), np.asarray(y, float), equal_var=False)
    t, p, df = float(result.statistic), float(result.pvalue), float(result.df)
    if math.isnan(p):  # both spreads zero and equal means
        return 0.0, df, 1.0
    return t, df, p


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the input order.

    Sorted ascending, ``p_(i)`` becomes ``max_{k<=i} min(1, (m - k + 1) p_(k))``; a
    hypothesis is rejected at level alpha when its adjusted value is ``<= alpha``.
    """
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted


def _absorb(columns: list[set[str]]) -> list[set[str]]:
    """Drop empty columns, duplicates and columns contained in another column."""
    unique: list[set[str]] = []
    for col in columns:
        if col and col not in unique:
            unique.append(col)
    return [c for c in unique if not any(c < other for other in unique)]


def _letter(i: int) -> str:
    alphabet = string.ascii_lowercase + string.ascii_uppercase
    return alphabet[i] if i < len(alphabet) else f"[{i + 1}]"


def compact_letter_display(models: Sequence[str], significant: set[frozenset[str]]) -> dict[str, str]:
    """Letters per model (``models`` best first) such that two models share a letter iff
    the pair is not in ``significant``. Piepho (2004): insert-and-absorb, then sweep."""
    columns: list[set[str]] = [set(models)] if models else []
    rank = {m: i for i, m in enumerate(models)}
    for pair in sorted(significant, key=lambda p: sorted(rank[m] for m in p)):
        i, j = sorted(pair, key=rank.__getitem__)
        split: list[set[str]] = []
        for col in columns:
            if i in col and j in col:
                split += [col - {i}, col - {j}]
            else:
                split.append(col)
        columns = _absorb(split)
    # Sweep: take a model out of a column when it keeps another letter and every other member
    # of the column still shares one of its other columns.
    for col in columns:
        for member in sorted(col, key=rank.__getitem__):
            elsewhere = [c for c in columns if c is not col and member in c]
            if elsewhere and all(any(other in c for c in elsewhere) for other in col - {member}):
                col.discard(member)
    columns = _absorb(columns)
    columns.sort(key=lambda c: sorted(rank[m] for m in c))
    return {m: "".join(_letter(k) for k, c in enumerate(columns) if m in c) for m in models}


def compare_models(
    values: dict[str, Sequence[float]], metric: str, higher_is_better: bool, alpha: float = ALPHA
) -> Significance:
    """All pairwise Welch tests of ``metric`` between the models of ``values`` (per-seed values).

    Models with fewer than two values are left out with the reason; letters are only
    given when at least two models are compared.
    """
    left_out = {m: f"{len(v)} seed(s): a t-test needs at least {MIN_SEEDS}"
                for m, v in values.items() if len(v) < MIN_SEEDS}
    means = {m: math.fsum(v) / len(v) for m, v in values.items() if m not in left_out}
    models = sorted(means, key=lambda m: (-means[m] if higher_is_better else means[m], m))
    raw = []
    for a, b in combinations(models, 2):
        t, df, p = welch_test(values[a], values[b])
        raw.append((a, b, t, df, p))
    adjusted = holm([r[4] for r in raw])
    pairs = [PairTest(a, b, means[a], means[b], t, df, p, q, q <= alpha)
             for (a, b, t, df, p), q in zip(raw, adjusted, strict=True)]
    letters = {m: "" for m in values}
    if len(models) >= 2:
        letters.update(compact_letter_display(models, {frozenset((p.a, p.b)) for p in pairs if p.significant}))
    return Significance(metric, higher_is_better, alpha, METHOD, models, pairs, letters, left_out)
