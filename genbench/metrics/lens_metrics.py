"""The metric keys of a lens of your own (``genbench.features.user_lens``): every group that needs
only a lens's features is computed in each lens again, under its keys suffixed with ``_<lens name>``,
as ``fid_ssl`` is FID in the self-supervised lens. Each suffixed key is registered with its base
key's direction, unit and kind, so check, report and the leaderboard treat it alike."""

from __future__ import annotations

import dataclasses

from genbench.errors import ConfigError
from genbench.metrics.group import _GROUPS, MetricGroup
from genbench.metrics.spec import _METRICS, register_metric


def per_lens_groups() -> list[MetricGroup]:
    """The registered groups computed in every lens: those that need a lens's features and nothing else."""
    return [g for g in _GROUPS.values() if g.needs == frozenset({"features"})]


def lens_key(key: str, lens: str) -> str:
    return f"{key}_{lens}"


def register_lens_keys(lens: str, source: str) -> list[str]:
    """Register ``<key>_<lens>`` for every key of ``per_lens_groups``; refuse a name whose keys exist."""
    keys = [k for g in per_lens_groups() for k in g.keys]
    taken = [lens_key(k, lens) for k in keys if lens_key(k, lens) in _METRICS]
    if taken:
        raise ConfigError(f"{source}: lens name {lens!r} would reuse metric key(s) {', '.join(taken)}; rename it")
    for key in keys:
        base = _METRICS[key]
        register_metric(dataclasses.replace(base, key=lens_key(key, lens),
                                            description=f"{base.description}, in the lens {lens!r}"))
    return [lens_key(k, lens) for k in keys]
