"""Significance between models: Welch's test, Holm's correction and the compact letter display."""

from __future__ import annotations

import math
from itertools import combinations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as scipy_stats

from genbench.report.significance import compact_letter_display, compare_models, holm, welch_test


def test_welch_matches_the_textbook_formula():
    x, y = [10.0, 12.0, 14.0], [20.0, 21.0, 25.0, 22.0]
    vx, vy = np.var(x, ddof=1) / len(x), np.var(y, ddof=1) / len(y)
    t = (np.mean(x) - np.mean(y)) / math.sqrt(vx + vy)
    df = (vx + vy) ** 2 / (vx**2 / (len(x) - 1) + vy**2 / (len(y) - 1))  # Welch-Satterthwaite
    p = 2 * scipy_stats.t.sf(abs(t), df)
    assert welch_test(x, y) == pytest.approx((t, df, p), rel=1e-10)


def test_welch_degenerate_cases():
    assert welch_test([1.0, 1.0], [1.0, 1.0])[2] == 1.0  # no spread, same mean
    assert welch_test([1.0, 1.0], [2.0, 2.0])[2] == 0.0  # no spread, different means
    with pytest.raises(ValueError, match="at least 2"):
        welch_test([1.0], [1.0, 2.0])


def test_holm_against_a_hand_computation():
    # Sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> running max 0.06.
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1
    assert holm([]) == []


def test_letters_for_a_known_pattern():
    # A < B < C < D with A-C, A-D and B-D significant: the classic "a, ab, bc, c".
    letters = compact_letter_display(["A", "B", "C", "D"], {frozenset(p) for p in [("A", "C"), ("A", "D"), ("B", "D")]})
    assert letters == {"A": "a", "B": "ab", "C": "bc", "D": "c"}
    assert compact_letter_display(["A", "B"], set()) == {"A": "a", "B": "a"}
    assert compact_letter_display(["A", "B", "C"], {frozenset(p) for p in combinations("ABC", 2)}) == {
        "A": "a", "B": "b", "C": "c"}


@settings(max_examples=200, deadline=None)
@given(st.integers(2, 7).flatmap(lambda n: st.tuples(
    st.just(n), st.sets(st.sampled_from(list(combinations(range(n), 2)))))))
def test_letters_share_exactly_for_non_significant_pairs(case):
    n, pairs = case
    models = [f"m{i}" for i in range(n)]
    significant = {frozenset((models[i], models[j])) for i, j in pairs}
    letters = compact_letter_display(models, significant)
    assert all(letters[m] for m in models)  # every model keeps at least one letter
    for a, b in combinations(models, 2):
        shares = bool(set(letters[a]) & set(letters[b]))
        assert shares == (frozenset((a, b)) not in significant), (a, b, letters)


def test_clearly_separated_models_differ_and_get_ordered_letters():
    values = {"bad": [40.0, 41.0, 39.5], "good": [7.5, 7.6, 7.4], "mid": [20.0, 20.5, 19.8]}
    result = compare_models(values, "fid", higher_is_better=False)
    assert result.models == ["good", "mid", "bad"]
    assert all(p.significant for p in result.pairs)
    assert result.letters == {"good": "a", "mid": "b", "bad": "c"}
    # Higher is better reverses the order.
    assert compare_models(values, "is", higher_is_better=True).models == ["bad", "mid", "good"]


def test_models_with_one_seed_are_left_out():
    result = compare_models({"a": [1.0, 1.1], "b": [5.0], "c": [9.0, 9.2]}, "fid", higher_is_better=False)
    assert result.models == ["a", "c"] and "b" in result.left_out and result.letters["b"] == ""
    assert compare_models({"a": [1.0], "b": [2.0]}, "fid", False).pairs == []


def test_identical_distributions_keep_the_familywise_error_rate():
    # Four models, three seeds each, all from one normal distribution: Holm keeps the chance of any
    # false "significant" among the six pairs at or below alpha (without it: about 0.2).
    # 1,000 trials: sd of a rate near 0.05 is 0.007.
    rng = np.random.default_rng(0)
    trials, false_any, false_single = 1000, 0, 0
    for _ in range(trials):
        values = {f"m{i}": list(rng.normal(10.0, 2.0, size=3)) for i in range(4)}
        result = compare_models(values, "fid", higher_is_better=False)
        false_any += any(p.significant for p in result.pairs)
        (first,) = [p for p in result.pairs if {p.a, p.b} == {"m0", "m1"}]  # a fixed pair, not the closest
        false_single += first.p <= 0.05
    assert false_any / trials <= 0.05 + 3 * 0.007
    # One unadjusted Welch test rejects at about its nominal rate (slightly under, with 3 vs 3).
    assert 0.02 <= false_single / trials <= 0.05 + 3 * 0.007
