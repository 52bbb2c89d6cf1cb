"""`genbench sanity` end to end: --quick writes the matrix in three forms, the same seeds give the same numbers,
and bad input is one line."""

from __future__ import annotations

import json
import time

import pytest
from click.testing import CliRunner

from genbench.cli import main
from genbench.sanity.families import FAMILIES
from genbench.sanity.report import SCHEMA
from genbench.sanity.run import run_sanity


def _run(args):
    return CliRunner().invoke(main, ["sanity", *args])


def test_quick_writes_the_matrix_as_markdown_png_and_json(tmp_path, data_root):
    started = time.perf_counter()
    result = _run(["--dataset", "mnist", "--quick", "--out", str(tmp_path), "--data-root", data_root,
                   "--device", "cpu", "--no-progress"])
    seconds = time.perf_counter() - started
    assert result.exit_code == 0, result.output
    folder = tmp_path / "sanity" / "mnist"
    data = json.loads((folder / "sanity.json").read_text())
    assert data["schema"] == SCHEMA and data["dataset"] == "mnist" and data["settings"]["quick"]
    assert data["command"] == f"genbench sanity --dataset mnist --quick --device cpu --out {tmp_path}"
    assert data["genbench"]["version"] and "revision" in data["genbench"] and data["machine"]["cpu_count"]
    assert [f["name"] for f in data["families"]] == [f.name for f in FAMILIES]
    assert data["settings"]["skipped_groups"] == {"fid_ci": "none of its keys has a direction (nothing to judge)"}
    # Every family at every level and seed, with its raw values; every (family, metric) cell judged.
    seeds = data["settings"]["seeds"]
    assert seeds == [0, 1]
    for family in data["families"]:
        sets = [(s["level"], s["seed"]) for s in data["sets"] if s["family"] == family["name"]]
        assert sorted(sets) == sorted((lv, sd) for lv in family["levels"] for sd in seeds)
    assert len(data["cells"]) == len(data["families"]) * len(data["metrics"])
    fid = next(c for c in data["cells"] if c["family"] == "blur" and c["metric"] == "fid")
    assert fid["expectation"] == "worse" and fid["verdict"] == "pass" and fid["rho"] > 0.7
    assert sum(data["summary"].values()) == len(data["cells"])
    markdown = (folder / "sanity.md").read_text()
    assert "| metric | blur | noise |" in markdown and "| `fid` ↓ |" in markdown
    assert (folder / "sanity.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "cells:" in result.output and str(folder / "sanity.json") in result.output
    print(f"\ngenbench sanity --quick: {seconds:.1f} s")


def test_the_same_seeds_give_the_same_numbers(data_root):
    families = ["noise", "mode_dropping", "copying", "class_hist_attack", "shift"]
    runs = [run_sanity("mnist", quick=True, families=families, data_root=data_root, workers=1) for _ in range(2)]
    for a, b in zip(runs[0].sets, runs[1].sets, strict=True):
        assert (a.family, a.level, a.seed, a.metrics, a.null_reasons) == (b.family, b.level, b.seed, b.metrics,
                                                                          b.null_reasons)
    assert {k: c.to_json() for k, c in runs[0].cells.items()} == {k: c.to_json() for k, c in runs[1].cells.items()}


@pytest.mark.parametrize(("args", "message"), [
    (["--dataset", "cifar10"], "Invalid value for '--dataset'"),
    (["--metrics", "fid,lpips"], "lpips"),
    (["--seeds", "0"], "at least two seeds"),
    (["--seeds", "0,x"], "comma-separated integers"),
])
def test_bad_input_is_one_line(tmp_path, args, message):
    result = _run([*args, "--out", str(tmp_path), "--quick"])
    assert result.exit_code == 2
    errors = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and message in result.output


def test_an_out_that_is_a_file_is_one_line(tmp_path):
    file = tmp_path / "taken"
    file.write_text("x")
    result = _run(["--out", str(file), "--quick"])
    assert result.exit_code == 2 and "is a file" in result.output
    inside = _run(["--out", str(file / "below"), "--quick"])
    assert inside.exit_code == 2 and inside.output.count("Error") == 1 and "--out" in inside.output
    assert not (tmp_path / "taken" / "sanity").exists()
