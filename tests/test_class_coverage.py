"""classes_covered, class_kl and fid_intra: hand-computed cases and known answers on real digits."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import genbench.features as gf
from genbench.data.datasets import load_split
from genbench.data.splits import HELD_OUT, REFERENCE, split_images, split_labels
from genbench.evaluate import EvalConfig, distribution_metrics
from genbench.metrics.classes import class_histogram, class_kl, class_metrics, classes_covered

pytestmark = pytest.mark.usefixtures("single_thread")


def test_histogram_coverage_and_kl_by_hand():
    p_test = np.full(10, 0.1)
    p = class_histogram(torch.tensor([0, 0, 1, 1]), 10)
    assert p.tolist() == [0.5, 0.5] + [0.0] * 8
    assert classes_covered(p, p_test) == 2
    assert class_kl(p, p_test) == pytest.approx(math.log(5))  # 2 * 0.5 ln(0.5 / 0.1)
    # Half the test share is enough; a little less is not.
    assert classes_covered(np.array([0.05, 0.0499999] + [0.9 / 8] * 8), p_test) == 9
    # Empty sample bins add nothing (KL(p_samples || p_test) stays finite); an empty test bin is refused.
    assert class_kl(p_test, p_test) == 0.0
    with pytest.raises(ValueError, match="needs every class in the test histogram"):
        class_kl(p_test, np.array([0.0] + [1 / 9] * 9))


def test_intra_class_fid_needs_enough_samples_per_class():
    g = torch.Generator().manual_seed(0)
    ref = torch.randn(400, 4, generator=g)
    ref_labels = torch.arange(400) % 4
    logits = torch.zeros(200, 4)
    logits[torch.arange(200), torch.arange(200) % 4] = 1.0  # 50 samples per class
    values, reasons = class_metrics(logits, torch.randn(200, 4, generator=g), ref, ref_labels)
    assert values["classes_covered"] == 4 and values["class_kl"] == pytest.approx(0.0)
    assert values["fid_intra"] > 0 and reasons == {}
    logits[:10] = torch.tensor([0.0, 0.0, 0.0, 1.0])  # classes 0 and 1 drop to 47, 2 to 48
    values, reasons = class_metrics(logits, torch.randn(200, 4, generator=g), ref, ref_labels)
    assert values["fid_intra"] is None
    assert reasons["fid_intra"] == "class(es) 0, 1, 2 have fewer than 50 samples (47, 47, 48)"


@pytest.fixture(scope="module")
def setup(data_root):
    extractor = gf.load_extractor("genbench", "mnist")
    reference = gf.load_reference("mnist", extractor, split=REFERENCE, data_root=data_root)
    return extractor, reference, split_labels("mnist", REFERENCE, data_root)


_CLASSES = EvalConfig(metric_groups=frozenset({"classes"}))


def _scores(setup, images, domain_classifier=True):
    extractor, reference, labels = setup
    metrics, reasons = distribution_metrics(extractor.extract(images), reference, domain_classifier=domain_classifier,
                                            config=_CLASSES, reference_labels=labels)
    return metrics, reasons


def _expected_kl(labels, ref_labels):
    """class_kl if the classifier were always right."""
    return class_kl(class_histogram(labels, 10), class_histogram(ref_labels, 10))


def test_real_held_out_images_cover_every_class(setup, data_root):
    m, reasons = _scores(setup, split_images("mnist", HELD_OUT, data_root))
    assert m["classes_covered"] == 10 and m["class_kl"] < 0.01
    assert 0 < m["fid_intra"] < 5 and "fid_intra" not in reasons


def test_digits_zero_to_four_cover_five_classes_at_ln2(setup, data_root):
    train = load_split("mnist", "train", data_root)
    keep = train.labels < 5
    images, labels = train.images[keep][:2000], train.labels[keep][:2000]
    m, reasons = _scores(setup, images)
    assert m["classes_covered"] == 5
    assert m["class_kl"] == pytest.approx(_expected_kl(labels, setup[2]), abs=0.02)
    assert m["class_kl"] == pytest.approx(math.log(2), abs=0.06)  # classes 0-4 hold 51% of the test split
    assert m["fid_intra"] is None and reasons["fid_intra"].startswith("class(es) 5, 6, 7, 8, 9 have fewer than 50")


def test_one_class_covers_one(setup, data_root):
    train = load_split("mnist", "train", data_root)
    m, _ = _scores(setup, train.images[train.labels == 3][:1000])
    p3 = float((setup[2] == 3).double().mean())
    assert m["classes_covered"] == 1 and m["class_kl"] == pytest.approx(math.log(1 / p3), abs=0.05)


def test_without_the_domain_classifier_the_class_metrics_are_null(setup, data_root):
    m, reasons = _scores(setup, split_images("mnist", HELD_OUT, data_root)[:100], domain_classifier=False)
    for key in ("classes_covered", "class_kl", "fid_intra"):
        assert m[key] is None and reasons[key] == "needs the domain classifier (--features genbench)"
