"""genbench's copy of torch-fidelity's FID/KID/IS arithmetic gives torch-fidelity's numbers bit for bit."""

from __future__ import annotations

import pytest
import torch

from genbench.metrics import _fidelity_math as ours


@pytest.fixture(scope="module")
def sets():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1200, 64, generator=g)
    y = torch.randn(1100, 64, generator=g) * 1.2 + 0.3
    return x, y


def test_fid_equals_torch_fidelity(sets):
    from torch_fidelity.metric_fid import (
        fid_features_to_statistics,
        fid_statistics_to_metric,
    )

    x, y = sets
    theirs = [fid_features_to_statistics(t) for t in (x, y)]
    mine = [ours.fid_features_to_statistics(t) for t in (x, y)]
    for a, b in zip(theirs, mine, strict=True):
        assert (a["mu"] == b["mu"]).all() and (a["sigma"] == b["sigma"]).all()
    fid = fid_statistics_to_metric(theirs[0], theirs[1], verbose=False)["frechet_inception_distance"]
    assert fid > 1.0 and ours.fid_statistics_to_metric(mine[0], mine[1]) == fid


@pytest.mark.parametrize("subsets, size, seed, threads", [(5, 1000, 2020, 1), (5, 1000, 2020, 3), (7, 300, 3, None)])
def test_kid_equals_torch_fidelity(sets, subsets, size, seed, threads):
    from torch_fidelity.metric_kid import kid_features_to_metric

    x, y = sets
    theirs = kid_features_to_metric(x, y, kid_subsets=subsets, kid_subset_size=size, rng_seed=seed, verbose=False)
    mean, std = ours.kid_features_to_metric(x, y, subsets, size, seed, threads)
    assert mean > 0.01
    assert (mean, std) == (theirs["kernel_inception_distance_mean"], theirs["kernel_inception_distance_std"])


def test_kid_refuses_a_subset_larger_than_a_set(sets):
    x, y = sets
    with pytest.raises(ValueError, match="subset size 1150"):
        ours.kid_features_to_metric(x, y, 2, 1150)


@pytest.mark.parametrize("n, splits, seed", [(1000, 10, 2020), (997, 7, 5)])
def test_inception_score_equals_torch_fidelity(n, splits, seed):
    from torch_fidelity.metric_isc import isc_features_to_metric

    logits = torch.randn(n, 10, generator=torch.Generator().manual_seed(n)) * 3
    theirs = isc_features_to_metric(logits, splits=splits, shuffle=True, rng_seed=seed)
    mean, std = ours.isc_features_to_metric(logits, splits, seed)
    assert mean > 1.5
    assert (mean, std) == (theirs["inception_score_mean"], theirs["inception_score_std"])
