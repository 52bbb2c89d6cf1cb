"""The families of ``genbench sanity``: how each builds its image sets, and what every metric should do.

A *family* is one controlled failure (or one nuisance) at increasing *levels*; one level, ``base``, is
the unchanged set the others are compared with. Every set of a family at a seed starts from the same
images: ``N`` held-out test images (:data:`genbench.data.splits.HELD_OUT`) drawn by the seed, so a
change between levels is the family's doing, not a new draw. The reference part of the test split,
which the metrics compare against, is never an input (``tests/test_sanity.py`` checks it).

What each metric should do is declared in two tables: :data:`ROLES` puts every metric in a role
(a distance, a fidelity, a diversity metric...), :data:`EXPECT` says per family what each role
should do, and :data:`OVERRIDES` names the few metrics that differ from their role. Directions are
in the metric's own terms (its registered ``higher_is_better``): ``worse``, ``better``, ``flat``
(should not move) or ``none`` (no expectation: computed and shown, not judged).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from genbench.sanity import degrade

WORSE, BETTER, FLAT, NONE = "worse", "better", "flat", "none"
EXPECTATIONS = (WORSE, BETTER, FLAT, NONE)

# -- what every metric is, and what each family should do to it ----------------------------------

ROLE_ORDER = ("distance", "fidelity", "diversity", "class_score", "class_balance", "class_distance", "copy")
ROLE_WORDS = {
    "distance": "distance between the sample and reference distributions",
    "fidelity": "fidelity: how real each sample looks",
    "diversity": "diversity: how much of the reference the samples cover",
    "class_score": "Inception Score: confident and class-diverse",
    "class_balance": "the classifier's class histogram against the reference's",
    "class_distance": "distance within each class",
    "copy": "copying of training images",
}
ROLES: dict[str, str] = {
    "fid": "distance", "kid": "distance", "fid_inf": "distance", "fid_ssl": "distance",
    "precision": "fidelity", "density": "fidelity", "precision_ssl": "fidelity", "confident_fraction": "fidelity",
    "recall": "diversity", "coverage": "diversity", "recall_ssl": "diversity",
    "is": "class_score",
    "classes_covered": "class_balance", "class_kl": "class_balance",
    "fid_intra": "class_distance",
    "copy_fraction": "copy", "copy_ct": "copy", "copy_ct_p": "copy",
    # The metrics issue 35 adds; a key that is not registered is skipped.
    "cmmd": "distance", "cmmd_ssl": "distance", "vendi": "diversity",
    "alpha_precision": "fidelity", "beta_recall": "diversity", "authenticity": "copy",
}
# Metrics the registry gives no direction that the sanity checks still read one way: Meehan et al.'s
# C_T is << 0 when samples copy, and its one-sided p-value is then small; the Vendi score is the
# effective number of distinct samples, so a diversity failure lowers it (its registry entry has no
# direction because more is not better across datasets, only within one set of failures).
SANITY_HIGHER_IS_BETTER: dict[str, bool] = {"copy_ct": True, "copy_ct_p": True, "vendi": True}

W, B, F, N = WORSE, BETTER, FLAT, NONE
# Rows: families; columns: ROLE_ORDER. Read a row as "under this failure, a metric of this role should ...".
EXPECT: dict[str, tuple[str, ...]] = {
    #                distance fidelity diversity class_score class_balance class_distance copy
    "blur":           (W,      W,       N,        W,          N,            W,             N),
    "noise":          (W,      W,       N,        W,          N,            W,             N),
    "mode_dropping":  (W,      F,       W,        W,          W,            N,             N),
    "imbalance":      (W,      F,       W,        W,          W,            N,             N),
    "mode_invention": (W,      W,       N,        N,          N,            W,             N),
    "copying":        (N,      N,       N,        N,          N,            N,             W),
    "low_diversity":  (W,      F,       W,        N,          N,            N,             F),
    "low_div_jitter": (W,      F,       W,        N,          N,            N,             N),
    "class_hist_attack": (N,   F,       N,        N,          B,            N,             N),
    "sample_size":    (F,      F,       F,        F,          F,            F,             F),
    "shift":          (F,      F,       F,        F,          F,            F,             F),
    "rotation":       (F,      F,       F,        F,          F,            F,             F),
    "thickness":      (F,      F,       F,        F,          F,            F,             F),
    "contrast":       (F,      F,       F,        F,          F,            F,             F),
}
# (family, metric) -> expectation, where a metric should not do what its role does.
OVERRIDES: dict[tuple[str, str], str] = {
    # A dropped or rare class has no samples of its own: classes_covered counts classes above a share,
    # which a milder imbalance keeps.
    ("imbalance", "classes_covered"): NONE,
    # The noisy pool's own histogram already covers every class; the attack moves shares, not coverage.
    ("class_hist_attack", "classes_covered"): NONE,
}


def expectation(family: str, key: str) -> str | None:
    """What ``key`` should do under ``family`` (None: the metric has no role, so no declaration)."""
    if (family, key) in OVERRIDES:
        return OVERRIDES[(family, key)]
    role = ROLES.get(key)
    return None if role is None else EXPECT[family][ROLE_ORDER.index(role)]


# -- the images a family starts from ----------------------------------------------------------------

@dataclass
class Pools:
    """What the sets are made of, for one dataset.

    ``images [H,1,28,28]``/``labels [H]``: the held-out test images and their classes, ``test_index [H]``
    their rows in the test split; ``train``: the training split (copying only); ``other``: held-out
    images of the other dataset (mode invention only); ``reference_shares [C]``: the class shares of
    the reference images; ``predict``: the domain classifier's top-1 class of images.
    """

    dataset: str
    images: Tensor
    labels: np.ndarray
    test_index: np.ndarray
    train: Tensor
    other: Tensor
    reference_shares: np.ndarray
    predict: Callable[[Tensor], np.ndarray]
    poor: dict[int, tuple[Tensor, np.ndarray]] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.reference_shares)


@dataclass
class BuiltSet:
    """One scored set: ``images``, and where each row came from (held-out rows, training rows, rows of the
    other dataset; -1 where a row came from elsewhere)."""

    images: Tensor
    held_out: np.ndarray
    train: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    other: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


def clean_rows(pools: Pools, n: int, seed: int) -> np.ndarray:
    """The seed's ``n`` held-out rows, in a random order: every family's base set."""
    if n > len(pools.images):
        raise ValueError(f"{n} images asked of a held-out pool of {len(pools.images)}")
    return np.random.default_rng([seed, _salt("clean")]).permutation(len(pools.images))[:n]


def _salt(name: str) -> int:
    return zlib.crc32(name.encode())


def _rest(pools: Pools, rows: np.ndarray, rng: np.random.Generator, keep: Callable[[np.ndarray], np.ndarray]):
    """Held-out rows not in ``rows`` whose labels pass ``keep``, in a random order."""
    others = np.setdiff1d(np.arange(len(pools.images)), rows)
    others = others[keep(pools.labels[others])]
    return rng.permutation(others)


def drop_order(pools: Pools) -> np.ndarray:
    """Classes in the order mode dropping removes them: fewest held-out images first (ties by label), so the
    classes that remain always have the most images to draw from."""
    counts = np.bincount(pools.labels, minlength=pools.num_classes)
    return np.lexsort((np.arange(pools.num_classes), counts))


def largest_remainder(shares: np.ndarray, n: int) -> np.ndarray:
    """Whole counts summing to ``n`` in proportion to ``shares`` (Hamilton's largest-remainder rounding)."""
    exact = np.asarray(shares, dtype=np.float64) / np.sum(shares) * n
    counts = np.floor(exact).astype(np.int64)
    order = np.lexsort((np.arange(len(exact)), -(exact - counts)))
    counts[order[: n - counts.sum()]] += 1
    return counts


def step_shares(num_classes: int, majority: np.ndarray, ratio: float) -> np.ndarray:
    """Step imbalance (Buda et al. 2018): the ``majority`` classes ``ratio`` times as frequent as the others."""
    shares = np.ones(num_classes)
    shares[majority] = ratio
    return shares / shares.sum()


def _take_counts(pools: Pools, rows: np.ndarray, counts: np.ndarray, rng: np.random.Generator,
                 labels: np.ndarray | None = None, what: str = "held-out") -> np.ndarray:
    """``counts[c]`` rows of each class: first those of ``rows`` (in their order), then others at random."""
    labels = pools.labels if labels is None else labels
    out = []
    for c, want in enumerate(counts):
        mine = rows[labels[rows] == c][:want]
        if len(mine) < want:
            extra = np.setdiff1d(np.flatnonzero(labels == c), rows)
            if len(mine) + len(extra) < want:
                raise ValueError(f"class {c} has {len(mine) + len(extra)} {what} images; {want} were asked")
            mine = np.concatenate([mine, rng.permutation(extra)[: want - len(mine)]])
        out.append(mine)
    return np.concatenate(out)


# -- the families ----------------------------------------------------------------------------------

Builder = Callable[[Pools, np.ndarray, float, np.random.Generator], BuiltSet]


def _held(pools: Pools, rows: np.ndarray) -> BuiltSet:
    return BuiltSet(pools.images[torch.from_numpy(rows)], rows)


def _transform(fn: Callable[..., Tensor], random: bool) -> Builder:
    def build(pools: Pools, rows: np.ndarray, level: float, rng: np.random.Generator) -> BuiltSet:
        images = pools.images[torch.from_numpy(rows)]
        return BuiltSet(fn(images, level, rng) if random else fn(images, level), rows)

    return build


def _mode_dropping(pools: Pools, rows: np.ndarray, level: float, rng: np.random.Generator) -> BuiltSet:
    dropped = drop_order(pools)[: int(level)]
    keep = rows[~np.isin(pools.labels[rows], dropped)]
    fill = _rest(pools, rows, rng, lambda lab: ~np.isin(lab, dropped))[: len(rows) - len(keep)]
    if len(keep) + len(fill) < len(rows):
        raise ValueError(f"dropping {int(level)} classes leaves {len(keep) + len(fill)} held-out images; "
                         f"{len(rows)} were asked")
    return _held(pools, np.concatenate([keep, fill]))


def _imbalance(pools: Pools, rows: np.ndarray, level: float, rng: np.random.Generator) -> BuiltSet:
    if level == 1:
        return _held(pools, rows)
    majority = drop_order(pools)[pools.num_classes // 2:]
    counts = largest_remainder(step_shares(pools.num_classes, majority, level), len(rows))
    return _held(pools, _take_counts(pools, rows, counts, rng))


def _replace_tail(pools: Pools, rows: np.ndarray, level: float, rng: np.random.Generator, source: str) -> BuiltSet:
    """The last ``round(level * n)`` images replaced by distinct random images of ``source``."""
    m = round(level * len(rows))
    kept = rows[: len(rows) - m]
    pool = pools.train if source == "train" else pools.other
    picked = np.sort(rng.choice(len(pool), size=m, replace=False)) if m else np.zeros(0, dtype=np.int64)
    images = torch.cat([pools.images[torch.from_numpy(kept)], pool[torch.from_numpy(picked)]])
    extra = {source: picked}
    return BuiltSet(images, kept, **extra)


def _low_diversity(jitter: bool) -> Builder:
    def build(pools: Pools, rows: np.ndarray, level: float, rng: np.random.Generator) -> BuiltSet:
        distinct = max(1, len(rows) // int(level))
        repeated = rows[np.arange(len(rows)) % distinct]
        images = pools.images[torch.from_numpy(repeated)]
        if jitter and level > 1:
            images = degrade.shift(images, JITTER_PIXELS, rng)
        return BuiltSet(images, repeated)

    return build


JITTER_PIXELS = 1  # low_div_jitter: each repeat moved by up to one pixel each way
# class_hist_attack: the poor pool's noise, in gray levels. Noise pushes the classifier's top-1 class towards
# a few classes (8 on MNIST, shirt on Fashion-MNIST), so the pool's predicted histogram is skewed by itself,
# as a poor generator's is; at this level every class keeps enough predicted images for the attack's n = 1000.
POOR_NOISE = 24.0


def poor_pool(pools: Pools, seed: int) -> tuple[Tensor, np.ndarray]:
    """The class-histogram attack's pool: every held-out image with Gaussian noise of ``POOR_NOISE`` gray
    levels (one draw per seed), and the domain classifier's top-1 class of each (made once per seed)."""
    if seed not in pools.poor:
        noisy = degrade.add_noise(pools.images, POOR_NOISE, np.random.default_rng([seed, _salt("poor-pool")]))
        pools.poor[seed] = (noisy, pools.predict(noisy))
    return pools.poor[seed]


def _class_hist_attack(pools: Pools, rows: np.ndarray, level: float, rng: np.random.Generator,
                       seed: int) -> BuiltSet:
    """Top-1 histogram matching (Kynkäänniemi et al. 2023) at strength ``level``: ``n`` images of the poor pool
    whose predicted-class counts move from the pool's own histogram (0: a stratified random draw) to the
    reference's (1). Their resampling draws with replacement from a pool five times the set; here the counts
    are met exactly, without replacement, so the attack repeats no image (it would otherwise also be a
    low-diversity failure)."""
    noisy, predicted = poor_pool(pools, seed)
    own = np.bincount(predicted, minlength=pools.num_classes) / len(predicted)
    target = largest_remainder((1 - level) * own + level * pools.reference_shares, len(rows))
    # One order of the pool per seed, shared by every level: a stronger attack swaps images, it does not redraw.
    order = np.random.default_rng([seed, _salt("poor-order")]).permutation(len(noisy))
    short = [c for c, want in enumerate(target) if int(np.sum(predicted == c)) < want]
    if short:
        raise ValueError(f"the poor pool has too few images predicted as class(es) {short} for the attack")
    picked = np.concatenate([order[predicted[order] == c][:want] for c, want in enumerate(target)])
    return BuiltSet(noisy[torch.from_numpy(picked)], picked)


def _sample_size(pools: Pools, rows: np.ndarray, level: float, rng: np.random.Generator, seed: int) -> BuiltSet:
    """The first ``level * n`` of the base rows, or all of them and then more held-out rows in one order per
    seed: each size holds every smaller one."""
    n = round(level * len(rows))
    if n <= len(rows):
        return _held(pools, rows[:n])
    more = _rest(pools, rows, np.random.default_rng([seed, _salt("sample-size")]), lambda lab: lab >= 0)
    if len(rows) + len(more) < n:
        raise ValueError(f"{n} images asked of a held-out pool of {len(pools.images)}")
    return _held(pools, np.concatenate([rows, more[: n - len(rows)]]))


@dataclass(frozen=True)
class Family:
    """One failure or nuisance: its levels (``base`` is the unchanged one) and how a set is built."""

    name: str
    kind: str  # "failure", "attack", "estimator" or "nuisance"
    what: str  # one line: what the family does
    severity: str  # what a level is
    levels: tuple[float, ...]
    build: Builder
    base: float = 0.0
    uses_seed: bool = False  # the builder also takes the seed (the attack's pool is per seed)
    show: tuple[str, ...] = ()  # roles scored and shown here although they have no expectation

    @property
    def base_index(self) -> int:
        return self.levels.index(self.base)

    def quick_levels(self) -> tuple[float, ...]:
        """``--quick``'s levels: the base and the strongest, in the family's order."""
        return tuple(v for v in self.levels if v in (self.base, self.levels[-1]))

    def make(self, pools: Pools, rows: np.ndarray, level: float, seed: int) -> BuiltSet:
        """The set at ``level`` for ``seed``, built from the seed's base rows ``rows``."""
        if level not in self.levels:
            raise ValueError(f"{self.name}: no level {level}")
        rng = np.random.default_rng([seed, _salt(self.name), round(level * 1_000_000)])
        if self.uses_seed:
            return self.build(pools, rows, level, rng, seed)
        return self.build(pools, rows, level, rng)


FAMILIES: tuple[Family, ...] = (
    Family("blur", "failure", "Gaussian blur of every image", "sigma (pixels)", (0, 0.5, 0.75, 1.0, 1.5, 2.0),
           _transform(degrade.blur, random=False)),
    Family("noise", "failure", "additive Gaussian noise on every pixel", "sigma (gray levels)",
           (0, 4, 8, 16, 32, 64), _transform(degrade.add_noise, random=True)),
    Family("mode_dropping", "failure", "k of the classes removed (by true label), their images replaced by "
           "images of the remaining classes", "classes removed", (0, 1, 2, 3, 4, 5), _mode_dropping),
    Family("imbalance", "failure", "step imbalance: half the classes r times as frequent as the other half "
           "(1: the natural histogram)", "ratio r", (1, 2, 4, 8, 16, 64), _imbalance, base=1),
    Family("mode_invention", "failure", "a share of the images replaced by held-out images of the other dataset",
           "share invented", (0, 0.05, 0.1, 0.2, 0.3, 0.5),
           lambda p, r, lv, rng: _replace_tail(p, r, lv, rng, "other")),
    Family("copying", "failure", "a share of the images replaced by training images, verbatim", "share copied",
           (0, 0.05, 0.1, 0.2, 0.4, 0.8), lambda p, r, lv, rng: _replace_tail(p, r, lv, rng, "train")),
    Family("low_diversity", "failure", "n/f distinct images, each repeated f times", "repeats f",
           (1, 2, 5, 10, 50, 100), _low_diversity(jitter=False), base=1),
    Family("low_div_jitter", "failure", "as low_diversity, each repeat moved by up to one pixel each way",
           "repeats f", (1, 2, 5, 10, 50, 100), _low_diversity(jitter=True), base=1),
    Family("class_hist_attack", "attack", "images of a poor pool (every held-out image with noise of 24 gray "
           "levels) chosen so that their predicted-class histogram moves from the pool's own, skewed by the noise, "
           "to the reference's; per-image quality fixed",
           "attack strength", (0, 0.2, 0.4, 0.6, 0.8, 1.0), _class_hist_attack, uses_seed=True,
           show=("distance",)),  # how far the distances move with per-image quality fixed is the point
    # From 0.7 n: fid_inf is null at 640 images or fewer (its smallest subset must exceed the 128 features).
    Family("sample_size", "estimator", "more or fewer real held-out images (the base is n)", "size / n",
           (0.7, 0.8, 1.0, 1.25, 1.5, 2.0), _sample_size, base=1.0, uses_seed=True),
    Family("shift", "nuisance", "each image moved by whole pixels, each way uniform in -s..s", "s (pixels)",
           (0, 1, 2, 3, 4, 5), _transform(degrade.shift, random=True)),
    Family("rotation", "nuisance", "each image rotated by an angle uniform in [-a, a]", "a (degrees)",
           (0, 3, 6, 9, 12, 15), _transform(degrade.rotate, random=True)),
    Family("thickness", "nuisance", "a share of the images with strokes one pixel thicker or thinner (gray "
           "dilation or erosion, half each)", "share changed", (0, 0.2, 0.4, 0.6, 0.8, 1.0),
           _transform(degrade.thickness, random=True)),
    Family("contrast", "nuisance", "ink scaled down (fainter strokes, black background kept)", "ink scale",
           (1.0, 0.9, 0.8, 0.7, 0.6, 0.5), _transform(degrade.contrast, random=False), base=1.0),
)
FAMILY_NAMES = tuple(f.name for f in FAMILIES)
assert set(FAMILY_NAMES) == set(EXPECT), "every family declares its expectations, and only families do"
