"""The self-supervised lens behind fid_ssl: committed weights, invariances, known answers, torch-fidelity, CLI."""

from __future__ import annotations

import hashlib
import json
from itertools import pairwise

import pytest
import torch
from click.testing import CliRunner
from torchvision.transforms.functional import gaussian_blur

import genbench.features as gf
from genbench.data.datasets import load_split
from genbench.errors import GenbenchError
from genbench.features import ssl
from genbench.features.reference import ReferenceStats
from genbench.metrics.fid import fid_from_features
from genbench.protocol import quantize

N = 2000
MIN_PROBE_ACCURACY = {"mnist": 0.98, "fashion-mnist": 0.80}

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def lens(data_root):
    extractor = ssl.load_ssl_extractor("mnist")
    reference = gf.load_reference("mnist", extractor, split="test-reference", data_root=data_root)
    train = load_split("mnist", "train", data_root)
    return extractor, reference, train


def _fid(lens, images):
    extractor, reference, _ = lens
    return fid_from_features(extractor.extract(images).features, reference.mu, reference.sigma)


@pytest.mark.parametrize("dataset", ["mnist", "fashion-mnist"])
def test_committed_weights_hash_and_metadata(dataset):
    path = ssl.ssl_weights_path(dataset)
    assert path.is_file() and path.stat().st_size < 4 * 2**20
    assert ssl.verified_ssl_sha256(dataset) == hashlib.sha256(path.read_bytes()).hexdigest()
    assert ssl.SSL_WEIGHTS_SHA256[dataset] == hashlib.sha256(path.read_bytes()).hexdigest()
    meta = torch.load(path, map_location="cpu", weights_only=True)["meta"]
    assert meta["dataset"] == dataset and meta["kind"] == "ssl" and meta["recipe"]["train_images"] is None
    assert meta["linear_probe_accuracy"] >= MIN_PROBE_ACCURACY[dataset]


def test_tampered_weights_are_refused_in_one_line(tmp_path):
    data = bytearray(ssl.ssl_weights_path("mnist").read_bytes())
    data[-100] ^= 1
    bad = tmp_path / "ssl-mnist.pt"
    bad.write_bytes(bytes(data))
    with pytest.raises(GenbenchError, match="not the recorded") as info:
        ssl.build_ssl_net("mnist", bad)
    assert "\n" not in str(info.value) and "reinstall genbench" in str(info.value)
    with pytest.raises(GenbenchError, match="are missing"):
        ssl.verified_ssl_sha256("mnist", tmp_path / "nope.pt")


def test_extraction_is_deterministic_and_batch_size_independent(lens):
    extractor, _, train = lens
    images = train.images[:256]
    one = extractor.extract(images, batch_size=1).features
    full = extractor.extract(images, batch_size=256).features
    again = extractor.extract(images, batch_size=256).features
    assert one.shape == (256, 128) and torch.equal(full, again)
    assert torch.allclose(one, full, rtol=0, atol=1e-5)


def test_frechet_distance_of_a_set_to_itself_is_zero(lens):
    extractor, _, train = lens
    feats = extractor.extract(train.images[:N]).features
    own = ReferenceStats.from_features(feats)
    assert abs(fid_from_features(feats, own.mu, own.sigma)) < 1e-3


def test_known_answers_real_blur_noise_are_ordered(lens):
    _, _, train = lens
    images = train.images[:N]
    real = _fid(lens, images)
    blurred = [_fid(lens, quantize(gaussian_blur(images.float() / 255, kernel_size=9, sigma=s))) for s in (1.0, 2.0)]
    noise = _fid(lens, quantize(torch.rand(N, 1, 28, 28, generator=torch.Generator().manual_seed(0))))
    fids = [real, *blurred, noise]
    assert all(a < b for a, b in pairwise(fids)), fids


def test_faint_background_noise_stays_near_real(lens):
    """What the lens was trained to ignore: up to 20 gray levels of speckle costs less than blur sigma 1."""
    _, _, train = lens
    images = train.images[:N]
    noisy = ssl.background_noise(images, 20, torch.Generator().manual_seed(0))
    assert int((noisy != images).sum()) > 0 and bool(((noisy != images) <= (images == 0)).all())
    blur = quantize(gaussian_blur(images.float() / 255, kernel_size=9, sigma=1.0))
    assert _fid(lens, images) < _fid(lens, noisy) < _fid(lens, blur)


def test_linear_probe_on_frozen_features(lens, data_root):
    extractor, _, train = lens
    test = load_split("mnist", "test", data_root)
    accuracy = ssl.linear_probe_accuracy(
        extractor.extract(train.images[:5000]).features, train.labels[:5000],
        extractor.extract(test.images[:2000]).features, test.labels[:2000],
    )
    assert accuracy >= 0.95


def test_registered_with_torch_fidelity(lens):
    from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY
    from torch_fidelity.utils import create_feature_extractor

    assert FEATURE_EXTRACTORS_REGISTRY["genbench-ssl-mnist"] is gf.GenbenchSSLFeatureExtractor
    assert FEATURE_EXTRACTORS_REGISTRY["genbench-ssl-fashion-mnist"] is gf.GenbenchSSLFeatureExtractor
    fe = create_feature_extractor("genbench-ssl-mnist", ["features"], cuda=False, verbose=False)
    gray = lens[2].images[:32]
    (feats,) = fe(gray.expand(-1, 3, -1, -1).contiguous())
    assert torch.allclose(feats, lens[0].extract(gray).features, atol=1e-5)
    with pytest.raises(ValueError, match="no Inception Score"):
        fe.get_default_feature_layer_for_metric("isc")


def test_training_is_deterministic_for_a_seed(data_root):
    config = ssl.SSLTrainConfig(epochs=1, batch_size=128, train_images=384)
    a = ssl.train_ssl_extractor("mnist", data_root, seed=3, config=config)
    b = ssl.train_ssl_extractor("mnist", data_root, seed=3, config=config)
    c = ssl.train_ssl_extractor("mnist", data_root, seed=4, config=config)
    assert all(torch.equal(a.state_dict[k], b.state_dict[k]) for k in a.state_dict)
    assert not torch.equal(a.state_dict["fc.weight"], c.state_dict["fc.weight"])
    assert a.meta["linear_probe_accuracy"] == b.meta["linear_probe_accuracy"]


def test_nt_xent_known_values():
    # Two perfectly aligned, mutually orthogonal pairs: each view's positive has cosine 1, the two others 0.
    z = torch.eye(2)
    tau = 0.5
    expected = -torch.log(torch.exp(torch.tensor(2.0)) / (torch.exp(torch.tensor(2.0)) + 2))
    assert ssl.nt_xent(z, z.clone(), tau).item() == pytest.approx(expected.item(), rel=1e-6)


def test_augmented_views_keep_the_digit_and_are_seeded(lens):
    images = lens[2].images[:64]
    cfg = ssl.SSL_RECIPES["mnist"]
    a = ssl.augment_views(images, cfg, torch.Generator().manual_seed(1))
    b = ssl.augment_views(images, cfg, torch.Generator().manual_seed(1))
    assert a.dtype == torch.uint8 and a.shape == images.shape and torch.equal(a, b)
    # The ink moves by a few pixels at most: the centre of mass stays within max_shift + rotation/scale slack.
    grid = torch.arange(28.0)

    def centre(x):
        w = (x.float() * (x > cfg.max_noise)).squeeze(1)
        return torch.stack([(w.sum(2) * grid).sum(1), (w.sum(1) * grid).sum(1)], 1) / w.sum((1, 2))[:, None]

    assert (centre(a) - centre(images)).abs().max() < cfg.max_shift + 2


def test_features_train_command_kind_ssl(tmp_path, data_root):
    from genbench.cli.eval import features_group

    out = tmp_path / "w.pt"
    args = ["train", "--kind", "ssl", "--dataset", "mnist", "--data-root", data_root, "--weights", str(out),
            "--epochs", "1", "--train-images", "512"]
    result = CliRunner().invoke(features_group, args)
    assert result.exit_code == 0, result.stderr
    sha = hashlib.sha256(out.read_bytes()).hexdigest()
    assert f"sha256 {sha}" in result.stdout and "linear-probe test accuracy" in result.stdout
    assert torch.load(out, weights_only=True)["meta"]["kind"] == "ssl"


def test_genbench_eval_reports_fid_ssl(tmp_path, data_root):
    import numpy as np

    from genbench.cli.eval import eval_command

    images = load_split("mnist", "train", data_root).images[:40]
    npz = tmp_path / "samples.npz"
    np.savez(npz, samples=images.numpy())
    from genbench.evaluate import EvalConfig

    assert "ssl" in EvalConfig().metric_groups  # in the default set of runs and of genbench eval's --metrics
    args = ["--samples", str(npz), "--data-root", data_root, "--json", "-", "--metrics", "ssl"]  # skip the copy search
    result = CliRunner().invoke(eval_command, args)
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout[result.stdout.index("{\n"):])
    assert record["fid_ssl"] > 0 and 0 <= record["precision_ssl"] <= 1 and 0 <= record["recall_ssl"] <= 1
    assert record["extractor"]["ssl_name"] == "genbench-ssl-mnist"
    assert record["extractor"]["ssl_sha256"] == ssl.SSL_WEIGHTS_SHA256["mnist"]
    assert record["timings"]["fid_ssl_seconds"] >= 0 and record["timings"]["ssl_features_seconds"] >= 0
    assert record["fid"] is None and record["null_reasons"]["fid"] == "not requested (metrics: ssl)"


def test_genbench_eval_refuses_weights_with_another_hash(tmp_path, data_root, monkeypatch):
    import numpy as np

    from genbench.cli.eval import eval_command

    npz = tmp_path / "samples.npz"
    np.savez(npz, samples=load_split("mnist", "train", data_root).images[:8].numpy())
    monkeypatch.setitem(ssl.SSL_WEIGHTS_SHA256, "mnist", "0" * 64)
    monkeypatch.setattr(ssl, "_LOADED", {})
    result = CliRunner().invoke(eval_command, ["--samples", str(npz), "--data-root", data_root, "--json", "-",
                                               "--metrics", "ssl"])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: SSL weights ") and "not the recorded 0000" in lines[0]
