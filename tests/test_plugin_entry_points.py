"""Lenses and metrics from an installed package: ``--lens NAME`` / ``--metric NAME`` load the entry point
NAME of the groups ``genbench.lenses`` / ``genbench.metrics``, and register it as the file form would;
a missing or broken entry point is refused in one line naming the fix."""

from __future__ import annotations

import importlib
import importlib.metadata
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from genbench.cli import main
from genbench.errors import ConfigError
from genbench.features.user_lens import LENS_ENTRY_POINTS, load_lens, weights_sha256
from genbench.metrics.user_metric import METRIC_ENTRY_POINTS, load_user_metric, user_metrics

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture
def installed(monkeypatch):
    """The examples as an installed package would declare them in its pyproject.toml."""
    monkeypatch.syspath_prepend(str(EXAMPLES))
    eps = importlib.metadata.EntryPoints([
        importlib.metadata.EntryPoint("randconv", "my_lens:RandomConvLens", LENS_ENTRY_POINTS),
        importlib.metadata.EntryPoint("ink_share", "my_metric:ink_share", METRIC_ENTRY_POINTS),
        importlib.metadata.EntryPoint("ink-share", "my_metric:ink_share", METRIC_ENTRY_POINTS),
        importlib.metadata.EntryPoint("broken", "no_such_module_here:Thing", LENS_ENTRY_POINTS),
    ])
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group=None: eps.select(group=group))


def test_an_entry_point_lens_is_the_example_class_registered_under_its_name(installed):
    lens = load_lens("randconv")
    assert (lens.name, lens.dim, lens.dtype) == ("randconv", 64, "float32")
    assert lens.source == "--lens randconv (entry point my_lens:RandomConvLens)"
    # keyed by the weights' hash like the file form's, so both share cached reference statistics
    assert lens.sha256 == weights_sha256(importlib.import_module("my_lens").RandomConvLens())
    # the file form is another class of the same name: refused, not mixed with the installed one
    with pytest.raises(ConfigError, match=r"a lens named 'randconv' is registered already \(from --lens randconv"):
        load_lens(f"{EXAMPLES / 'my_lens.py'}:RandomConvLens")


def test_an_entry_point_metric_is_keyed_by_its_name_and_computes_the_function(installed):
    group = load_user_metric("ink_share")
    assert group.keys == ("ink_share",)
    metric = user_metrics()["ink_share"]
    images = np.zeros((4, 1, 28, 28), np.uint8)
    images[:2, 0, :14] = 255
    assert metric.function(images) == pytest.approx(0.25)
    assert metric.source == "--metric ink_share (entry point my_metric:ink_share)"


def test_missing_broken_and_unusable_entry_points_are_refused_in_one_line(installed):
    with pytest.raises(ConfigError, match=r"^--lens dinov2: no entry point 'dinov2' in group genbench.lenses "
                                          r"\(installed: broken, randconv\); give path/to/file.py:NAME"):
        load_lens("dinov2")
    with pytest.raises(ConfigError, match=r"^--lens broken \(entry point no_such_module_here:Thing\): loading it "
                                          r"failed: ModuleNotFoundError"):
        load_lens("broken")
    with pytest.raises(ConfigError, match="the entry point's name is the metric key; name it with letters"):
        load_user_metric("ink-share")


def test_the_cli_refuses_an_unknown_entry_point_before_any_work(installed, tmp_path):
    torch.save(torch.zeros(3, 1, 28, 28, dtype=torch.uint8), tmp_path / "s.pt")
    result = CliRunner().invoke(main, ["eval", "--samples", str(tmp_path / "s.pt"), "--lens", "dinov2"])
    assert result.exit_code == 2
    assert "Invalid value for '--lens': dinov2: no entry point 'dinov2' in group genbench.lenses" in result.output
    assert "Traceback" not in result.output
