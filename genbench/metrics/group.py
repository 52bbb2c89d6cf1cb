"""Metric groups: the registry evaluation loops over.

A group is what one compute function writes: its keys (each registered with
``genbench.metrics.spec.register_metric``, which holds direction, unit and kind), what it
needs (``NEEDS``), and the function, which maps ``genbench.metrics.inputs.MetricInputs``
to a value per key (``Null`` with a reason where the metric does not apply).
``genbench eval --metrics`` chooses among the groups by name; a group whose need is not met
is null with that need's reason (``UNMET_REASONS``) without being called.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from genbench.metrics.spec import _METRICS

if TYPE_CHECKING:
    from genbench.metrics.inputs import MetricInputs

_GROUPS: dict[str, MetricGroup] = {}  # read through genbench.metrics.metric_groups()

# What a group may need, in words; evaluation meets each from what it was given.
NEEDS: dict[str, str] = {
    "features": "the lens's features of the samples and its statistics of the reference images",
    "logits": "the lens's class logits of the samples",
    "domain_classifier": "the dataset's own classifier as the lens (--features genbench)",
    "reference_labels": "the classes of the reference images",
    "ssl_lens": "the dataset's self-supervised lens (its features of samples and reference images)",
    "pixels": "the samples themselves, [n,1,28,28] uint8",
    "train": "the images of the dataset's training split",
    "reference_images": "the reference images themselves, [m,1,28,28] uint8",
}
# Why a group is null when one of its needs is missing; needs without an entry are always met
# where the group can be requested at all.
UNMET_REASONS: dict[str, str] = {
    "domain_classifier": "needs the domain classifier (--features genbench)",
    "reference_labels": "no labels of the reference images given",
}


@dataclass(frozen=True)
class Null:
    """A metric that does not apply to these samples, and why (it is written as null, the reason beside it)."""

    reason: str


GroupValues = Mapping[str, "float | bool | Null"]


@dataclass(frozen=True)
class MetricGroup:
    """The keys one compute function writes, what it needs, and the function.

    ``compute(inputs)`` returns exactly ``keys``, each a number or a ``Null``.
    ``implies``: groups computed first whenever this one is (a bootstrap interval needs its
    point estimate); ``description`` is the group's row in the docs' table of ``--metrics``.
    """

    name: str
    keys: tuple[str, ...]
    compute: Callable[[MetricInputs], GroupValues]
    needs: frozenset[str]
    description: str
    implies: tuple[str, ...] = ()


def register_metric_group(group: MetricGroup) -> MetricGroup:
    """Add ``group`` to the registry (in registration order: the order of ``--metrics`` and of the keys
    in results); its keys must already be registered metrics that no other group writes."""
    if not group.name.replace("_", "").isalnum():
        raise ValueError(f"metric group name must be an identifier, got {group.name!r}")
    if group.name in _GROUPS and _GROUPS[group.name] != group:
        raise ValueError(f"metric group {group.name!r} is already registered differently")
    if not group.keys:
        raise ValueError(f"metric group {group.name!r} writes no keys")
    unregistered = [k for k in group.keys if k not in _METRICS]
    if unregistered:
        raise ValueError(f"metric group {group.name!r}: register {', '.join(unregistered)} with register_metric first")
    for other in _GROUPS.values():
        shared = set(other.keys) & set(group.keys)
        if other.name != group.name and shared:
            raise ValueError(f"metric group {group.name!r}: {', '.join(sorted(shared))} already written by group "
                             f"{other.name!r}")
    unknown = sorted(set(group.needs) - set(NEEDS))
    if unknown:
        raise ValueError(f"metric group {group.name!r}: unknown need(s) {', '.join(unknown)}; "
                         f"valid: {', '.join(NEEDS)}")
    missing = [g for g in group.implies if g not in _GROUPS]
    if missing:
        raise ValueError(f"metric group {group.name!r} implies unregistered group(s) {', '.join(missing)}")
    if not callable(group.compute):
        raise ValueError(f"metric group {group.name!r}: compute must be callable")
    _GROUPS[group.name] = group
    return group
