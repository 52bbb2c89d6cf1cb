"""The reference rows: independent-pixels (floor), real-data (ceiling), train-copy (memorizer)."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
import torch

from genbench.config import make_config
from genbench.data.splits import HELD_OUT, REFERENCE, TRAIN, split_images
from genbench.protocol import Role, RunContext, check_generator_class
from genbench.registry import get_generator

BITS = 784 * math.log(2.0)

pytestmark = pytest.mark.usefixtures("single_thread")


def _model(name, **overrides):
    cls = get_generator(name)
    return cls(make_config(cls, overrides))


def _bits_per_dim(model, images):
    return (-model.log_likelihood(images) / BITS).tolist()


def test_roles_are_declared_and_validated():
    assert get_generator("independent-pixels").role is Role.FLOOR
    assert get_generator("real-data").role is Role.CEILING
    assert get_generator("train-copy").role is Role.MEMORIZER
    assert get_generator("dcgan").role is Role.COMPETITOR

    class Named(get_generator("dcgan")):
        role = "ceiling"  # a string is not a role

    with pytest.raises(TypeError, match=re.escape("role must be a genbench.Role")):
        check_generator_class(Named)


def test_untrained_independent_pixels_is_uniform_8_bits_per_dim():
    model = _model("independent-pixels")
    images = torch.randint(0, 256, (4, 1, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    assert _bits_per_dim(model, images) == pytest.approx([8.0] * 4, abs=1e-12)


def test_independent_pixels_hand_computed_case():
    # Two training images: all 0 and all 255. Add-one smoothing: p(0) = p(255) = 2/258, others 1/258.
    model = _model("independent-pixels", batch_size=2)
    model.train_step(torch.stack([torch.zeros(1, 28, 28), torch.full((1, 28, 28), 255.0)]).to(torch.uint8), 0)
    x = torch.zeros(1, 1, 28, 28, dtype=torch.uint8)
    x[0, 0, 0, :10] = 7  # 10 pixels at an unseen value, 774 at 0
    expected = -(774 * math.log(2 / 258) + 10 * math.log(1 / 258))
    assert -model.log_likelihood(x).item() == pytest.approx(expected, rel=1e-12)
    # Samples only ever take a seen value at probability 2/258 each, so about 2 * 2/258 of pixels are 0 or 255.
    s = (model.sample(500, torch.Generator().manual_seed(0)) * 255).round()
    share = ((s == 0) | (s == 255)).double().mean().item()
    assert share == pytest.approx(4 / 258, abs=0.002)  # 392,000 pixels: sd 0.0002


def test_independent_pixels_on_mnist_equals_a_numpy_histogram(data_root):
    train = split_images("mnist", TRAIN, data_root)
    test = split_images("mnist", "test", data_root)
    model = _model("independent-pixels")
    for start in range(0, len(train), 6000):  # one epoch; counting does not depend on the batch size
        model.train_step(train[start:start + 6000], start // 6000)
    flat = train.reshape(len(train), -1).numpy()
    counts = np.stack([np.bincount(flat[:, i], minlength=256) for i in range(784)]) + 1.0
    assert np.array_equal(model.counts.numpy(), counts)
    logp = np.log(counts / counts.sum(1, keepdims=True))
    t = test.reshape(len(test), -1).numpy()
    nll_numpy = -logp[np.arange(784)[None, :], t].sum(1).mean() / BITS
    nll_model = float(np.mean(_bits_per_dim(model, test)))
    assert nll_model == pytest.approx(nll_numpy, rel=1e-12)
    assert 1.6 < nll_model < 1.8  # the issue measured 1.69 bits/dim


def test_independent_pixels_samples_follow_the_marginals():
    model = _model("independent-pixels", batch_size=3)
    batch = torch.zeros(3, 1, 28, 28, dtype=torch.uint8)
    batch[:, 0, 0, 0] = torch.tensor([10, 10, 20], dtype=torch.uint8)
    model.train_step(batch, 0)
    s = (model.sample(20000, torch.Generator().manual_seed(3))[:, 0, 0, 0] * 255).round()
    # p(10) = 3/259, p(20) = 2/259 at pixel (0, 0); 20,000 draws.
    assert (s == 10).double().mean().item() == pytest.approx(3 / 259, abs=0.003)
    assert (s == 20).double().mean().item() == pytest.approx(2 / 259, abs=0.003)


@pytest.mark.parametrize("name, split", [("real-data", HELD_OUT), ("train-copy", TRAIN)])
def test_data_rows_sample_their_split_verbatim(name, split, data_root):
    model = _model(name)
    with pytest.raises(RuntimeError, match="call setup"):
        model.sample(2, torch.Generator().manual_seed(0))
    model.setup(RunContext("mnist", data_root))
    pool = split_images("mnist", split, data_root)
    samples = (model.sample(300, torch.Generator().manual_seed(0)) * 255).round().to(torch.uint8)
    rows = {bytes(x.numpy()) for x in pool}
    assert all(bytes(x.numpy()) in rows for x in samples)
    assert "pool" not in model.state_dict()  # the data is not part of the checkpoint


def test_data_rows_draw_without_replacement(data_root):
    model = _model("real-data")
    model.setup(RunContext("mnist", data_root))
    index = {bytes(x.numpy()): i for i, x in enumerate(model.pool)}
    samples = (model.sample(4500, torch.Generator().manual_seed(2)) * 255).round().to(torch.uint8)
    drawn = [index[bytes(x.numpy())] for x in samples]
    assert sorted(drawn[:2000]) == list(range(2000)) and sorted(drawn[2000:4000]) == list(range(2000))
    assert len(set(drawn[4000:])) == 500  # the third round: distinct again
    assert get_generator("real-data").sample_in_one_call and not get_generator("dcgan").sample_in_one_call


def test_evaluation_asks_for_all_samples_at_once_when_a_model_says_so(data_root):
    from genbench.evaluate import EvalConfig, evaluate_model

    calls = []

    class Counting(get_generator("train-copy")):
        def sample(self, n, generator):
            calls.append(n)
            return super().sample(n, generator)

    model = Counting(make_config(Counting))
    model.setup(RunContext("mnist", data_root))
    evaluate_model(model, dataset="mnist", data_root=data_root, seed=0, device=torch.device("cpu"),
                   config=EvalConfig(n_samples=1200, fid_bootstrap_reps=0, kid_subsets=2))
    assert calls == [1200]  # the default would be batches of 500


def test_real_data_never_samples_a_reference_image(data_root):
    model = _model("real-data")
    model.setup(RunContext("mnist", data_root))
    reference = {bytes(x.numpy()) for x in split_images("mnist", REFERENCE, data_root)}
    samples = (model.sample(2000, torch.Generator().manual_seed(1)) * 255).round().to(torch.uint8)
    assert not any(bytes(x.numpy()) in reference for x in samples)


def test_a_run_records_the_role_and_uses_the_run_data_root(tmp_path, data_root, monkeypatch):
    from genbench.run.plan import RunOptions, run_suite
    from genbench.suite import parse_suite

    # No $GENBENCH_DATA: the data must come through the run's --data-root alone.
    monkeypatch.delenv("GENBENCH_DATA")
    suite = parse_suite({"name": "r", "version": 1, "dataset": "mnist", "models": ["real-data", "train-copy"],
                         "budget": {"steps": 1}, "eval": {"n_samples": 200}})
    records = run_suite(suite, RunOptions(out=tmp_path, data_root=data_root), show_progress=False)
    by_name = {r.model_name: r for r in records}
    assert {r.status for r in records} == {"ok"}
    assert by_name["real-data"].model["role"] == "ceiling"
    assert by_name["train-copy"].model["role"] == "memorizer"
    assert by_name["train-copy"].metrics["copy_fraction"] == 1.0
    assert by_name["real-data"].metrics["copy_fraction"] < 0.2  # nominal 0.05; 200 samples
    board = json.loads((tmp_path / "r" / "leaderboard.json").read_text())
    assert {row["model"]: row["role"] for row in board["rows"]} == {"real-data": "ceiling", "train-copy": "memorizer"}
