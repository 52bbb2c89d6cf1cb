"""Domain feature extractors: committed weights, accuracy, invariances, torch-fidelity, cache."""

from __future__ import annotations

import hashlib
import os

import pytest
import torch

import genbench.features as gf
from genbench.data.datasets import load_split
from genbench.errors import GenbenchError
from genbench.features.reference import reference_path
from genbench.features.train import TrainConfig

MIN_ACCURACY = {"mnist": 0.993, "fashion-mnist": 0.91}


pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.mark.parametrize("dataset", ["mnist", "fashion-mnist"])
def test_committed_weights_hash_and_metadata(dataset):
    path = gf.weights_path(dataset)
    assert path.is_file() and path.stat().st_size < 4 * 2**20  # a few MB at most
    assert gf.extractor_sha256(dataset) == hashlib.sha256(path.read_bytes()).hexdigest()
    assert gf.extractor_sha256(f"genbench-{dataset}") == gf.extractor_sha256(dataset)
    blob = torch.load(path, map_location="cpu", weights_only=True)
    assert blob["meta"]["dataset"] == dataset
    assert all(v.dtype == torch.float32 for v in blob["state_dict"].values() if v.is_floating_point())


@pytest.mark.parametrize("dataset", ["mnist", "fashion-mnist"])
def test_classifier_test_accuracy(dataset, data_root):
    test = load_split(dataset, "test", data_root)
    ex = gf.load_extractor("genbench", dataset)
    logits = ex.extract(test.images, batch_size=1000).logits
    accuracy = (logits.argmax(1) == test.labels).double().mean().item()
    assert accuracy >= MIN_ACCURACY[dataset]
    recorded = torch.load(gf.weights_path(dataset), weights_only=True)["meta"]["test_accuracy"]
    assert accuracy == pytest.approx(recorded, abs=1e-4)


def test_features_are_batch_size_independent(data_root):
    images = load_split("mnist", "test", data_root).images[:256]
    ex = gf.load_extractor("genbench", "mnist")
    one = ex.extract(images, batch_size=1)
    full = ex.extract(images, batch_size=256)
    assert one.features.shape == (256, 128) and one.logits.shape == (256, 10)
    assert torch.allclose(one.features, full.features, rtol=0, atol=1e-5)
    assert torch.allclose(one.logits, full.logits, rtol=0, atol=1e-5)


def test_unknown_extractor_and_missing_inception_weights(tmp_path, monkeypatch):
    with pytest.raises(GenbenchError, match="valid: genbench-fashion-mnist, genbench-mnist"):
        gf.extractor_sha256("cifar10")
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(GenbenchError, match="does not substitute"):
        gf.load_extractor("inception", "mnist")
    with pytest.raises(GenbenchError, match="no such file"):
        gf.load_extractor("inception", "mnist", inception_weights=tmp_path / "nope.pth")
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(GenbenchError, match="cannot load InceptionV3 weights"):
        gf.load_extractor("inception", "mnist", inception_weights=bad)


def test_registered_with_torch_fidelity_and_accepts_rgb_batches(data_root):
    from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY
    from torch_fidelity.utils import create_feature_extractor

    assert FEATURE_EXTRACTORS_REGISTRY["genbench-mnist"] is gf.GenbenchFeatureExtractor
    assert FEATURE_EXTRACTORS_REGISTRY["genbench-fashion-mnist"] is gf.GenbenchFeatureExtractor
    fe = create_feature_extractor("genbench-mnist", ["features", "logits"], cuda=False, verbose=False)
    gray = load_split("mnist", "test", data_root).images[:32]
    feats, logits = fe(gray.expand(-1, 3, -1, -1).contiguous())  # what torch-fidelity passes for gray PNGs
    ours = gf.load_extractor("genbench", "mnist").extract(gray)
    assert torch.allclose(feats, ours.features, atol=1e-5) and torch.allclose(logits, ours.logits, atol=1e-5)


def test_reference_statistics_are_cached_atomically(data_root):
    ex = gf.load_extractor("genbench", "mnist")
    path = reference_path("mnist", "test", ex)
    assert str(path).startswith(os.environ["XDG_CACHE_HOME"])  # never the user's real cache
    ref = gf.load_reference("mnist", ex, data_root=data_root)
    assert path.is_file()
    assert ex.sha256[:16] in path.name and "mnist-test-genbench-mnist" in path.name
    assert ref.features.shape == (10_000, 128) and ref.sigma.shape == (128, 128)
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]

    from genbench.features import reference as reference_module

    calls = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ex, "extract", lambda *a, **k: calls.append(1))
        reference_module.REFERENCE_CACHE.clear()
        again = gf.load_reference("mnist", ex, data_root=data_root)  # from disk, no extraction
    assert not calls and torch.equal(again.features, ref.features)

    path.write_bytes(b"damaged")
    reference_module.REFERENCE_CACHE.clear()
    with pytest.warns(UserWarning, match="unreadable statistics cache"):
        fresh = gf.load_reference("mnist", ex, data_root=data_root)
    # Recomputed, not read: equal up to float32 rounding (the damaged file may have been written by a process
    # with another torch thread count, which orders the convolutions' sums differently).
    assert torch.allclose(fresh.features, ref.features, rtol=1e-5, atol=1e-5)
    assert torch.load(path, weights_only=True)["key"]["sha256"] == ex.sha256


def test_training_is_deterministic_for_a_seed(data_root):
    config = TrainConfig(epochs=1, batch_size=128, train_images=384)
    a = gf.train_extractor("mnist", data_root, seed=3, config=config)
    b = gf.train_extractor("mnist", data_root, seed=3, config=config)
    c = gf.train_extractor("mnist", data_root, seed=4, config=config)
    assert all(torch.equal(a.state_dict[k], b.state_dict[k]) for k in a.state_dict)
    assert not torch.equal(a.state_dict["fc.weight"], c.state_dict["fc.weight"])
    assert a.meta["test_accuracy"] == b.meta["test_accuracy"] > 0.5  # 3 steps already learn something


def test_features_train_command_writes_weights(tmp_path, data_root):
    from click.testing import CliRunner

    from genbench.cli.eval import features_group

    out = tmp_path / "w.pt"
    args = ["train", "--dataset", "mnist", "--data-root", data_root, "--weights", str(out), "--epochs", "1",
            "--train-images", "256"]
    result = CliRunner().invoke(features_group, args)
    assert result.exit_code == 0, result.stderr
    sha = hashlib.sha256(out.read_bytes()).hexdigest()
    assert f"sha256 {sha}" in result.stdout and "test accuracy" in result.stdout
    blob = torch.load(out, weights_only=True)
    assert blob["meta"]["recipe"]["train_images"] == 256 and blob["meta"]["seed"] == 0
