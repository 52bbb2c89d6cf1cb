import json

import pandas as pd
import pytest

from genbench.report.leaderboard import write_report
from genbench.report.table import leaderboard_frame
from genbench.results import collect_runs, json_safe, write_run_record


def _record(model, seed, status="ok", fid=10.0, ips=100.0):
    return {
        "schema_version": 1, "model": {"name": model}, "seed": seed, "status": status,
        "suite": {"name": "syn", "version": 1}, "dataset": "mnist", "device": "cpu",
        "machine": {"processor": "cpu", "cpu_count": 2},
        "budget": {"kind": "images", "achieved": {"images": 1000}},
        "metrics": {"fid": fid, "train_images_per_s": ips, "nll_is_bound": False},
    }


def test_aggregation_mean_std_and_status(tmp_path):
    recs = [_record("a", 0, fid=10), _record("a", 1, fid=14), _record("a", 2, status="diverged", fid=None),
            _record("b", 0, fid=5)]
    for r in recs:
        write_run_record(tmp_path / r["model"]["name"] / f"seed{r['seed']}", r)
    board = leaderboard_frame(collect_runs(tmp_path)[0])
    a = board.set_index("model").loc["a"]
    assert a["fid"] == pytest.approx(12.0) and a["fid_std"] == pytest.approx(2.8284271, rel=1e-6)
    assert (a["n_ok"], a["n_diverged"], a["seeds"]) == (2, 1, 3)
    assert list(board["model"]) == ["b", "a"]  # sorted by FID, lower first
    paths = write_report(tmp_path)
    md = paths["md"].read_text()
    assert "| a | 2/0/1/0 |" in md and "12.00 ± 2.83" in md
    assert pd.read_csv(paths["csv"]).shape[0] == 2


def test_corrupt_record_is_reported_not_raised(tmp_path):
    write_run_record(tmp_path / "a" / "seed0", _record("a", 0))
    bad = tmp_path / "b" / "seed0"
    bad.mkdir(parents=True)
    (bad / "run.json").write_text('{"schema_version": 1, "mod')
    records, problems = collect_runs(tmp_path)
    assert len(records) == 1 and len(problems) == 1 and "b/seed0/run.json" in problems[0]
    with pytest.warns(UserWarning, match="unreadable"):
        md = write_report(tmp_path)["md"].read_text()
    assert "Skipped 1 unreadable" in md


def test_json_safe_nan_becomes_null(tmp_path):
    path = write_run_record(tmp_path, {**_record("a", 0), "metrics": {"fid": float("nan")}})
    assert json.loads(path.read_text())["metrics"]["fid"] is None
    assert json_safe({"x": [float("inf"), 1.0]}) == {"x": [None, 1.0]}


def test_report_files_and_self_contained_html(tmp_path):
    import re

    import torch

    from genbench.run.plan import save_grid

    for model, seed, fid in (("a", 0, 10.0), ("a", 1, 12.0), ("b", 0, 30.0)):
        rec = _record(model, seed, fid=fid)
        rec["metrics"]["sample_images_per_s"] = 500.0 * (seed + 1)
        rec["timings"] = {"train_seconds": 60.0 + seed}
        run_dir = tmp_path / model / f"seed{seed}"
        write_run_record(run_dir, rec)
        save_grid(torch.full((64, 1, 28, 28), 128, dtype=torch.uint8), run_dir / "samples.png")
    paths = write_report(tmp_path)
    assert set(paths) == {"md", "csv", "json", "html"} and all(p.is_file() for p in paths.values())
    data = json.loads(paths["json"].read_text())
    assert [row["model"] for row in data["rows"]] == ["a", "b"]
    assert data["rows"][0]["fid"] == pytest.approx(11.0)
    page = paths["html"].read_text()
    assert not re.search(r"(src|href)=\"(https?:)?//", page), "the page must not load anything from the network"
    assert page.count('src="data:image/png;base64,') == 2 + 2  # two sample grids, two plots
    assert "FID against training time" in page
    assert '<td class="num"><span class="v">11.00</span> <span class="v">± 1.41</span></td>' in page
