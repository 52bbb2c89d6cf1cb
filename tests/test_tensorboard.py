"""`genbench run --tensorboard DIR`: scalars and the sample grid, readable by TensorBoard's own reader."""

import sys

import pytest
from click.testing import CliRunner

from genbench.cli import main

pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed")


def _events(log_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    return acc


def test_run_logs_losses_throughput_metrics_and_grid(tmp_path, data_root):
    tb = tmp_path / "tb"
    r = CliRunner().invoke(main, ["run", "--suite", "smoke", "--models", "seed-gan", "--budget", "steps=120",
                                  "--out", str(tmp_path / "out"), "--tensorboard", str(tb), "--no-progress",
                                  "--data-root", data_root])
    assert r.exit_code == 0, r.output
    acc = _events(tb / "smoke" / "seed-gan" / "seed0")
    tags = acc.Tags()
    assert {"train/loss_d", "train/loss_g", "speed/train_images_per_s", "eval/fid"} <= set(tags["scalars"])
    assert [e.step for e in acc.Scalars("train/loss_g")] == [50, 100, 120]  # every logged step
    assert acc.Scalars("eval/fid")[0].value > 0 and acc.Scalars("eval/fid")[0].step == 120
    assert tags["images"] == ["samples"]
    assert acc.Images("samples")[0].width == 8 * 28 + 9 * 2  # an 8x8 grid with 2-px padding


def test_missing_tensorboard_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    r = CliRunner().invoke(main, ["run", "--suite", "smoke", "--out", str(tmp_path), "--tensorboard", str(tmp_path)])
    assert r.exit_code == 2
    assert r.stderr.strip() == (
        "Error: --tensorboard needs TensorBoard, which is not installed: pip install -e '.[tensorboard]'")
