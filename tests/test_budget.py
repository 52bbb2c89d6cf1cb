import pytest

from genbench.budget import Budget, BudgetTracker, parse_budget_overrides
from genbench.errors import ConfigError
from genbench.run.train import train
from tests.conftest import DummyConfig, DummyGenerator


def _images(n=256):
    import torch

    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (n, 1, 28, 28), dtype=torch.uint8, generator=g)


def test_steps_limit():
    r = train(DummyGenerator(DummyConfig(batch_size=16)), _images(), Budget(steps=7), seed=0)
    assert r.achieved["steps"] == 7 and r.achieved["images"] == 7 * 16 and r.achieved["stopped_by"] == "steps"


def test_images_limit_rounds_up_to_whole_batches():
    r = train(DummyGenerator(DummyConfig(batch_size=16)), _images(), Budget(images=100), seed=0)
    assert r.achieved["images"] == 112 and r.achieved["steps"] == 7 and r.achieved["stopped_by"] == "images"


def test_seconds_limit():
    r = train(DummyGenerator(DummyConfig(batch_size=16)), _images(), Budget(seconds=0.3), seed=0)
    assert r.achieved["stopped_by"] == "seconds"
    assert 0.3 <= r.achieved["seconds"] < 5.0
    assert r.achieved["steps"] > 1


def test_first_limit_reached_wins():
    r = train(DummyGenerator(DummyConfig(batch_size=16)), _images(), Budget(steps=5, images=10_000, seconds=60), seed=0)
    assert r.achieved["stopped_by"] == "steps" and r.achieved["steps"] == 5


def test_epochs_wrap_and_drop_last_partial_batch():
    # 40 images, batch 16 -> 2 steps per epoch; 5 steps cross two epoch boundaries.
    r = train(DummyGenerator(DummyConfig(batch_size=16)), _images(40), Budget(steps=5), seed=0)
    assert r.achieved["images"] == 80


def test_tracker_fraction_and_parse():
    t = BudgetTracker(Budget(images=100, seconds=10))
    t.update(50, 1.0)
    assert t.fraction() == pytest.approx(0.5)
    assert Budget.from_dict(parse_budget_overrides("images=60000,seconds=120")) == Budget(images=60000, seconds=120.0)
    assert Budget(steps=3).merged({"seconds": 5}) == Budget(steps=3, seconds=5.0)


@pytest.mark.parametrize("text", ["", "images", "epochs=3", "images=abc", "seconds=-1", "steps=0"])
def test_bad_budgets(text):
    with pytest.raises(ConfigError):
        Budget.from_dict(parse_budget_overrides(text))
