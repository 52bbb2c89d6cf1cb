"""genbench sanity's parts: every degradation's known properties, the declarations, and the judging of a cell
on synthetic metric values with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from genbench.data.splits import REFERENCE, TEST, held_out_mask, split_images, split_labels
from genbench.metrics import metric_specs
from genbench.sanity import degrade
from genbench.sanity.families import (
    EXPECT,
    EXPECTATIONS,
    FAMILIES,
    OVERRIDES,
    ROLE_ORDER,
    ROLES,
    SANITY_HIGHER_IS_BETTER,
    clean_rows,
    drop_order,
    largest_remainder,
    poor_pool,
    step_shares,
)
from genbench.sanity.judge import FLAT_BAND, RHO_MIN, SPREAD_FLOOR, SWING_MIN, expected_direction, judge, spearman
from genbench.sanity.run import family_groups, judged_direction, load_pools, plan_groups

N = 200
FAMILY = {f.name: f for f in FAMILIES}


@pytest.fixture(scope="module")
def pools(data_root):
    return load_pools("mnist", data_root)


def _make(pools, name: str, level: float, seed: int = 0, n: int = N):
    return FAMILY[name].make(pools, clean_rows(pools, n, seed), level, seed)


# -- the inputs: held-out images only ------------------------------------------------------------------

def test_the_pool_is_the_held_out_part_of_the_test_split_disjoint_from_the_reference(pools, data_root):
    test = split_images("mnist", TEST, data_root)
    reference_rows = np.flatnonzero(~held_out_mask(len(test)).numpy())
    assert len(np.intersect1d(pools.test_index, reference_rows)) == 0
    assert len(pools.test_index) + len(reference_rows) == len(test)
    assert torch.equal(pools.images, test[torch.from_numpy(pools.test_index)])
    assert np.array_equal(pools.labels, split_labels("mnist", TEST, data_root).numpy()[pools.test_index])


def test_no_set_of_any_family_holds_a_reference_image(pools, data_root):
    reference = {bytes(img.numpy().tobytes()) for img in split_images("mnist", REFERENCE, data_root)}
    for family in FAMILIES:
        for level in family.quick_levels():
            built = _make(pools, family.name, level)
            assert len(built.images) == (round(level * N) if family.name == "sample_size" else N)
            assert built.held_out.max(initial=0) < len(pools.images)
            # Rows of the pool are used as they are (or degraded); none is a reference image.
            untouched = [bytes(img.numpy().tobytes()) for img in pools.images[torch.from_numpy(built.held_out)]]
            assert not reference.intersection(untouched), family.name


# -- each family does what it says ------------------------------------------------------------------

def test_blur_and_noise_at_zero_are_the_identity_and_grow_with_their_level(pools):
    base = pools.images[torch.from_numpy(clean_rows(pools, N, 0))]
    rng = np.random.default_rng(0)
    assert torch.equal(degrade.blur(base, 0), base)
    assert torch.equal(degrade.add_noise(base, 0, rng), base)
    changes = [float((degrade.blur(base, s).float() - base.float()).abs().mean()) for s in (0.5, 1.0, 2.0)]
    assert 0 < changes[0] < changes[1] < changes[2]
    assert torch.equal(_make(pools, "blur", 0).images, base)
    assert torch.equal(_make(pools, "noise", 0).images, base)


def test_mode_dropping_removes_exactly_the_first_k_classes_of_its_order(pools):
    order = drop_order(pools)
    counts = np.bincount(pools.labels, minlength=10)
    assert list(counts[order]) == sorted(counts)  # fewest held-out images first
    for k in FAMILY["mode_dropping"].levels:
        built = _make(pools, "mode_dropping", k)
        present = set(pools.labels[built.held_out])
        assert present == set(range(10)) - set(order[: int(k)])
        assert len(built.images) == N and len(set(built.held_out)) == N  # no image twice


def test_imbalance_draws_the_step_imbalance_counts_exactly(pools):
    majority = drop_order(pools)[5:]
    for ratio in (2, 16, 64):
        built = _make(pools, "imbalance", ratio)
        want = largest_remainder(step_shares(10, majority, ratio), N)
        assert list(np.bincount(pools.labels[built.held_out], minlength=10)) == list(want)
        assert want[majority].min() == pytest.approx(ratio * want[np.setdiff1d(range(10), majority)].max(),
                                                     rel=0.5)
    assert np.array_equal(_make(pools, "imbalance", 1).held_out, clean_rows(pools, N, 0))


def test_largest_remainder_sums_to_n_and_rounds_by_the_largest_remainders():
    assert list(largest_remainder(np.array([1, 1, 1]), 10)) == [4, 3, 3]
    assert list(largest_remainder(np.array([0.5, 0.3, 0.2]), 7)) == [4, 2, 1]  # 3.5, 2.1, 1.4
    assert largest_remainder(np.ones(10), 1000).sum() == 1000


@pytest.mark.parametrize("share", [0.05, 0.2, 0.8])
def test_copy_injection_inserts_exactly_the_share_of_training_images(pools, share):
    built = _make(pools, "copying", share)
    m = round(share * N)
    assert len(built.train) == m == len(set(built.train))
    assert torch.equal(built.images[N - m:], pools.train[torch.from_numpy(built.train)])
    assert torch.equal(built.images[: N - m], pools.images[torch.from_numpy(clean_rows(pools, N, 0)[: N - m])])


def test_mode_invention_inserts_exactly_the_share_of_the_other_datasets_images(pools):
    built = _make(pools, "mode_invention", 0.3)
    assert len(built.other) == 60 and torch.equal(built.images[-60:], pools.other[torch.from_numpy(built.other)])
    assert len(built.train) == 0


def test_low_diversity_repeats_n_over_f_distinct_images(pools):
    for f in (2, 10, 100):
        built = _make(pools, "low_diversity", f)
        assert len({bytes(img.numpy().tobytes()) for img in built.images}) == N // f
        jittered = _make(pools, "low_div_jitter", f)
        assert np.array_equal(jittered.held_out, built.held_out)  # the same images, each repeat moved
        assert not torch.equal(jittered.images, built.images)


def test_nuisances_keep_every_image_and_its_label_and_are_the_identity_at_their_base(pools):
    rows = clean_rows(pools, N, 0)
    base = pools.images[torch.from_numpy(rows)]
    for name in ("shift", "rotation", "thickness", "contrast"):
        family = FAMILY[name]
        assert torch.equal(family.make(pools, rows, family.base, 0).images, base), name
        strongest = family.make(pools, rows, family.levels[-1], 0)
        assert np.array_equal(strongest.held_out, rows)  # the same images in the same order: labels unchanged
        assert not torch.equal(strongest.images, base), name
    # Whole-pixel shifts move gray levels without changing them; contrast keeps the background black.
    shifted = degrade.shift(base, 2, np.random.default_rng(0))
    assert set(torch.unique(shifted).tolist()) <= set(torch.unique(base).tolist())
    faint = degrade.contrast(base, 0.5)
    assert bool((faint[base == 0] == 0).all()) and int(faint.max()) == round(int(base.max()) * 0.5)


def test_thickness_changes_exactly_the_share_asked(pools):
    base = pools.images[torch.from_numpy(clean_rows(pools, N, 0))]
    changed = degrade.thickness(base, 0.4, np.random.default_rng(0))
    differs = (changed != base).flatten(1).any(dim=1)
    assert int(differs.sum()) == round(0.4 * N)
    ink = (changed.float() - base.float()).flatten(1).sum(dim=1)[differs]
    assert (ink > 0).any() and (ink < 0).any()  # some thicker, some thinner


def test_the_class_histogram_attack_matches_the_reference_histogram_from_one_fixed_pool(pools):
    noisy, predicted = poor_pool(pools, 0)
    matched = _make(pools, "class_hist_attack", 1.0)
    assert list(np.bincount(predicted[matched.held_out], minlength=10)) == list(
        largest_remainder(pools.reference_shares, N))
    unattacked = _make(pools, "class_hist_attack", 0.0)
    own = np.bincount(predicted, minlength=10) / len(predicted)
    assert list(np.bincount(predicted[unattacked.held_out], minlength=10)) == list(largest_remainder(own, N))
    # Per-image quality fixed: every image is a row of the same noisy pool, none repeated.
    for built in (matched, unattacked):
        assert torch.equal(built.images, noisy[torch.from_numpy(built.held_out)])
        assert len(set(built.held_out)) == N


def test_sample_size_sets_are_nested(pools):
    small, base, big = (_make(pools, "sample_size", f) for f in (0.7, 1.0, 2.0))
    assert len(small.images) == 140 and len(big.images) == 2 * N
    assert np.array_equal(base.held_out, clean_rows(pools, N, 0))
    assert np.array_equal(big.held_out[:N], base.held_out) and np.array_equal(small.held_out, base.held_out[:140])
    assert len(set(big.held_out)) == 2 * N


def test_a_set_depends_only_on_its_seed(pools):
    for name in ("noise", "shift", "class_hist_attack", "copying"):
        level = FAMILY[name].levels[-1]
        a, b, other = _make(pools, name, level, 3), _make(pools, name, level, 3), _make(pools, name, level, 4)
        assert torch.equal(a.images, b.images) and not torch.equal(a.images, other.images), name


# -- the declarations ------------------------------------------------------------------------------

def test_every_registered_metric_with_a_direction_has_a_role():
    specs = metric_specs()
    missing = [k for k in specs if judged_direction(k) is not None and specs[k].group == "quality" and k not in ROLES
               and specs[k].kind not in ("speed", "info", "work")]
    assert not missing, f"declare a role for {missing} in genbench.sanity.families.ROLES"


def test_the_expectation_table_is_complete_and_readable():
    assert set(EXPECT) == {f.name for f in FAMILIES}
    assert all(len(row) == len(ROLE_ORDER) and set(row) <= set(EXPECTATIONS) for row in EXPECT.values())
    assert set(ROLES.values()) <= set(ROLE_ORDER)
    assert all(fam in EXPECT and exp in EXPECTATIONS for (fam, _), exp in OVERRIDES.items())
    # The sanity-only directions are for metrics the registry leaves without one.
    assert all(metric_specs()[k].higher_is_better is None for k in SANITY_HIGHER_IS_BETTER)
    # Every family has at least five levels besides its base.
    assert all(len(f.levels) >= 6 and f.base in f.levels for f in FAMILIES)
    for fam, row in EXPECT.items():
        if FAMILY[fam].kind == "nuisance":
            assert set(row) == {"flat"}, fam


def test_a_family_scores_the_groups_it_judges_or_shows():
    groups, _ = plan_groups(["fid", "kid", "prdc", "classes", "copy", "copy_test"])
    assert family_groups("copying", groups) == ["copy", "copy_test"]  # nothing else has an expectation there
    assert "copy" not in family_groups("blur", groups) and "fid" in family_groups("blur", groups)
    # The attack shows the distances, which it leaves without an expectation: their movement is the finding.
    assert {"fid", "kid", "prdc", "classes"} <= set(family_groups("class_hist_attack", groups))
    assert family_groups("shift", groups) == groups  # a nuisance expects every metric to stay flat


def test_groups_without_a_judged_key_are_skipped_and_said_to_be():
    groups, skipped = plan_groups(["fid", "fid_ci", "copy_test"])
    assert groups == ["fid", "copy_test"]  # fid_ci implies fid, which is asked for anyway
    assert set(skipped) == {"fid_ci"} and "direction" in skipped["fid_ci"]


# -- judging a cell --------------------------------------------------------------------------------

LEVELS = [0, 1, 2, 3, 4, 5]


def _values(means, noise=(0.0, 0.1, -0.1)):
    return [[m + e for e in noise] for m in means]


def test_a_distance_that_grows_with_a_failure_passes_as_worse():
    cell = judge(LEVELS, _values([1, 2, 3, 4, 5, 6]), 0, "worse", higher_is_better=False)
    assert cell.verdict == "pass" and cell.direction == 1
    points = np.array(_values([1, 2, 3, 4, 5, 6])).ravel()
    assert cell.rho == pytest.approx(spearman(np.repeat(np.arange(6), 3), points)) and cell.rho > 0.9
    assert cell.spread == pytest.approx(0.1)  # sd of (1, 1.1, 0.9), ddof 1
    assert cell.sensitivity == pytest.approx(10.0) and cell.swing == pytest.approx(50.0)


def test_a_score_that_rises_under_a_failure_fails_and_says_why():
    cell = judge(LEVELS, _values([1, 2, 3, 4, 5, 6]), 0, "worse", higher_is_better=True)
    assert cell.verdict == "fail" and cell.direction == -1 and cell.sensitivity == pytest.approx(-10.0)
    assert "against the expected direction" in cell.reason and "swing" in cell.reason


def test_a_monotone_metric_with_too_small_a_swing_fails():
    means = [1, 1.01, 1.02, 1.03, 1.04, 1.05]  # rho 0.9 against noise of 0.1: right way, 0.5 spreads
    cell = judge(LEVELS, _values(means, (0.0, 0.1, -0.1)), 0, "worse", higher_is_better=False)
    assert cell.swing == pytest.approx(0.5) and cell.swing < SWING_MIN and cell.verdict == "fail"


def test_a_noisy_metric_below_the_rho_threshold_fails_even_with_a_big_swing():
    values = [[0, 0.1, -0.1], [5, -5, 0], [-5, 5, 0], [5, -5, 0], [-5, 5, 0], [10, 10, 10]]
    cell = judge(LEVELS, values, 0, "worse", higher_is_better=False)
    assert cell.swing >= SWING_MIN and cell.rho < RHO_MIN and cell.verdict == "fail"


def test_flat_passes_within_the_band_and_fails_beyond_it():
    inside = judge(LEVELS, _values([1, 1.05, 0.95, 1.1, 1.0, 0.9]), 0, "flat", higher_is_better=False)
    assert inside.verdict == "pass" and inside.max_dev == pytest.approx(1.0)
    beyond = judge(LEVELS, _values([1, 1, 1, 1, 1, 1 + (FLAT_BAND + 0.5) * 0.1]), 0, "flat", higher_is_better=True)
    assert beyond.verdict == "fail" and beyond.max_dev == pytest.approx(FLAT_BAND + 0.5)


def test_a_constant_metric_fails_a_direction_and_passes_flat_through_the_spread_floor():
    constant = [[10.0] * 3 for _ in LEVELS]
    moving = judge(LEVELS, constant, 0, "worse", higher_is_better=True)
    assert moving.verdict == "fail" and "constant" in moving.reason
    assert moving.spread == pytest.approx(SPREAD_FLOOR * 10)
    assert judge(LEVELS, constant, 0, "flat", higher_is_better=True).verdict == "pass"
    # A metric every seed agrees on: one unit from 10 is 1 / (0.01 * 10) = 10 spreads.
    step = judge(LEVELS, [[10.0] * 3] + [[9.0] * 3] * 5, 0, "worse", higher_is_better=True)
    assert step.sensitivity == pytest.approx(10.0) and step.verdict == "fail"  # rho: ties everywhere but one level


def test_a_null_value_makes_the_cell_null_and_no_expectation_is_not_judged():
    values = _values([1, 2, 3, 4, 5, 6])
    values[3][1] = None
    assert judge(LEVELS, values, 0, "worse", higher_is_better=False).verdict == "null"
    free = judge(LEVELS, _values([6, 5, 4, 3, 2, 1]), 0, "none", higher_is_better=False)
    assert free.verdict == "none" and free.rho == pytest.approx(-1.0, abs=0.1)


def test_a_base_in_the_middle_compares_with_it():
    cell = judge([0.5, 1.0, 2.0], [[3.0, 3.2], [2.0, 2.2], [1.0, 1.2]], 1, "flat", higher_is_better=False)
    assert cell.spread == pytest.approx(math.sqrt(0.02)) and cell.max_dev == pytest.approx(1.0 / math.sqrt(0.02))


def test_expected_directions_follow_the_metrics_own_direction():
    assert expected_direction("worse", False) == 1 and expected_direction("worse", True) == -1
    assert expected_direction("better", False) == -1 and expected_direction("better", True) == 1
    assert expected_direction("flat", True) == 0 and expected_direction("none", None) == 0
    with pytest.raises(ValueError, match="without a direction"):
        expected_direction("worse", None)
