"""The metric-group registry: what it refuses, and how evaluation loops over it (needs, nulls, implies)."""

from __future__ import annotations

import pytest
import torch

from genbench.errors import ConfigError
from genbench.evaluate import DISTRIBUTION_KEYS, METRIC_GROUPS
from genbench.evaluate.samples import compute_metric_groups
from genbench.metrics import metric_groups, metric_specs
from genbench.metrics.group import _GROUPS, MetricGroup, Null, register_metric_group
from genbench.metrics.inputs import LensView, MetricInputs
from genbench.metrics.spec import _METRICS, MetricSpec, register_metric


@pytest.fixture
def scratch_registry():
    """Registrations made by a test are removed after it: the registries are process-wide."""
    specs, groups = dict(_METRICS), dict(_GROUPS)
    yield
    _METRICS.clear()
    _METRICS.update(specs)
    _GROUPS.clear()
    _GROUPS.update(groups)


def _feature_mean(inputs: MetricInputs):
    return {"feature_mean": float(inputs.lens.features.mean())}


def test_the_builtin_groups_keep_the_keys_and_order_records_have_always_had():
    # Records list metrics in this order; a refactor of the registry must not reorder or rename them.
    # A metric added later (one new module in genbench/metrics/) comes after them.
    builtin_keys = ("fid", "fid_ci_low", "fid_ci_high", "kid", "kid_std", "is", "is_std", "precision", "recall",
                    "density", "coverage", "confident_fraction", "fid_inf", "classes_covered", "class_kl", "fid_intra")
    assert DISTRIBUTION_KEYS[:len(builtin_keys)] == builtin_keys
    builtin_groups = ["fid", "fid_ci", "kid", "is", "prdc", "confident_fraction", "fid_inf", "classes", "ssl", "copy",
                      "copy_test"]
    assert list(METRIC_GROUPS)[:len(builtin_groups)] == builtin_groups
    assert METRIC_GROUPS["copy_test"] == ("copy_ct", "copy_ct_p")
    for group in metric_groups().values():  # every key a group writes carries its metadata
        assert all(key in metric_specs() for key in group.keys), group.name


@pytest.mark.usefixtures("scratch_registry")
def test_register_metric_group_refuses_what_evaluation_could_not_use():
    register_metric(MetricSpec("feature_mean", "mean feature value", kind="score", higher_is_better=True))
    with pytest.raises(ValueError, match="register nope with register_metric first"):
        register_metric_group(MetricGroup("g", ("nope",), _feature_mean, frozenset({"features"}), "x"))
    with pytest.raises(ValueError, match="metric group 'g': fid already written by group 'fid'"):
        register_metric_group(MetricGroup("g", ("fid",), _feature_mean, frozenset({"features"}), "x"))
    with pytest.raises(ValueError, match="unknown need\\(s\\) weights; valid: features, logits"):
        register_metric_group(MetricGroup("g", ("feature_mean",), _feature_mean, frozenset({"weights"}), "x"))
    with pytest.raises(ValueError, match="implies unregistered group\\(s\\) nothing"):
        register_metric_group(MetricGroup("g", ("feature_mean",), _feature_mean, frozenset({"features"}), "x",
                                          implies=("nothing",)))
    with pytest.raises(ValueError, match="must be an identifier"):
        register_metric_group(MetricGroup("a-b", ("feature_mean",), _feature_mean, frozenset({"features"}), "x"))
    with pytest.raises(ValueError, match="'fid' is already registered differently"):
        register_metric_group(MetricGroup("fid", ("feature_mean",), _feature_mean, frozenset({"features"}), "x"))


def _inputs() -> MetricInputs:
    features = torch.arange(12, dtype=torch.float32).reshape(4, 3)  # mean 5.5
    return MetricInputs(samples=None, config=None, seed=0, lens=LensView(features, None, None))


@pytest.mark.usefixtures("scratch_registry")
def test_a_registered_group_is_computed_null_when_unmet_and_not_requested_when_left_out():
    register_metric(MetricSpec("feature_mean", "mean feature value", kind="score", higher_is_better=True))
    register_metric(MetricSpec("feature_mean_classed", "mean feature value", kind="score", higher_is_better=True))
    mean = register_metric_group(MetricGroup("mean", ("feature_mean",), _feature_mean, frozenset({"features"}), "x"))
    classed = register_metric_group(MetricGroup(
        "classed", ("feature_mean_classed",), lambda i: {"feature_mean_classed": 1.0},
        frozenset({"features", "domain_classifier"}), "x"))
    assert list(metric_groups())[-2:] == ["mean", "classed"]  # appended after the built-in groups

    metrics, reasons = compute_metric_groups(_inputs(), {"mean", "classed"}, {"features"}, [mean, classed])
    assert metrics == {"feature_mean": 5.5, "feature_mean_classed": None}
    assert reasons == {"feature_mean_classed": "needs the domain classifier (--features genbench)"}

    metrics, reasons = compute_metric_groups(_inputs(), {"classed"}, {"features", "domain_classifier"},
                                             [mean, classed])
    assert metrics == {"feature_mean": None, "feature_mean_classed": 1.0}
    assert reasons == {"feature_mean": "not requested (metrics: classed)"}

    with pytest.raises(ConfigError, match="unknown metric group\\(s\\) nope; valid: fid, fid_ci"):
        compute_metric_groups(_inputs(), {"nope"}, {"features"}, [mean])


@pytest.mark.usefixtures("scratch_registry")
def test_implied_groups_run_first_and_nulls_carry_their_reason():
    register_metric(MetricSpec("twice", "twice the mean", kind="score", higher_is_better=True))
    register_metric(MetricSpec("feature_mean", "mean feature value", kind="score", higher_is_better=True))
    mean = register_metric_group(MetricGroup("mean", ("feature_mean",), _feature_mean, frozenset({"features"}), "x"))
    twice = register_metric_group(MetricGroup(
        "twice", ("twice",), lambda i: {"twice": 2 * i.values["feature_mean"]}, frozenset({"features"}), "x",
        implies=("mean",)))
    metrics, reasons = compute_metric_groups(_inputs(), {"twice"}, {"features"}, [mean, twice])
    assert metrics == {"feature_mean": 5.5, "twice": 11.0} and reasons == {}

    nulled = MetricGroup("mean", ("feature_mean",), lambda i: {"feature_mean": Null("no samples left")},
                         frozenset({"features"}), "x")
    metrics, reasons = compute_metric_groups(_inputs(), {"mean"}, {"features"}, [nulled])
    assert metrics == {"feature_mean": None} and reasons == {"feature_mean": "no samples left"}


@pytest.mark.usefixtures("scratch_registry")
def test_a_group_returning_other_keys_than_it_registered_is_a_bug_named_by_group():
    register_metric(MetricSpec("feature_mean", "mean feature value", kind="score", higher_is_better=True))
    wrong = register_metric_group(MetricGroup("wrong", ("feature_mean",), lambda i: {"mean": 1.0},
                                              frozenset({"features"}), "x"))
    with pytest.raises(RuntimeError, match="metric group 'wrong' returned keys \\['mean'\\], not its registered"):
        compute_metric_groups(_inputs(), {"wrong"}, {"features"}, [wrong])
