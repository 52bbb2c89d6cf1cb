"""`--compare DIR`: runs of another results folder of the same suite version join a leaderboard, not rerun."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from genbench.cli import main
from genbench.errors import InputError
from genbench.report.compare import gather
from genbench.results import write_run_record
from genbench.suite import load_suite

FIDS = {"good": [7.5, 7.6, 7.4], "mid": [20.0, 20.5, 19.8], "real-data": [0.9, 1.0, 1.1]}


def _record(model, seed, fid, suite="syn", version=1, role=None):
    rec = {
        "schema_version": 2, "model": {"name": model}, "seed": seed, "status": "ok",
        "suite": {"name": suite, "version": version}, "dataset": "mnist", "device": "cpu",
        "machine": {"processor": "cpu", "cpu_count": 2},
        "budget": {"kind": "images", "achieved": {"images": 1000}},
        "metrics": {"fid": fid, "is": 5.0 + seed},
    }
    if role:
        rec["model"]["role"] = role
    return rec


def _folder(path, fids, **kw):
    for model, values in fids.items():
        for seed, fid in enumerate(values):
            role = "ceiling" if model == "real-data" else None
            write_run_record(path / model / f"seed{seed}", _record(model, seed, fid, role=role, **kw))
    return path


def _report(*args):
    return CliRunner().invoke(main, ["report", *map(str, args)])


def test_compared_rows_join_the_leaderboard_and_are_marked(tmp_path):
    refs = _folder(tmp_path / "refs" / "syn", FIDS)
    mine = _folder(tmp_path / "mine" / "syn", {"my-gen": [10.0, 10.4, 9.9]})
    before = sorted(p.relative_to(refs) for p in refs.rglob("*"))
    r = _report(mine, "--compare", refs)
    assert r.exit_code == 0, r.output
    assert sorted(p.relative_to(refs) for p in refs.rglob("*")) == before  # nothing written to a compared folder

    summary = json.loads((mine / "leaderboard.json").read_text())
    rows = {row["model"]: row for row in summary["rows"]}
    assert list(rows) == ["good", "my-gen", "mid", "real-data"]  # one ranking across both folders, by mean FID
    assert rows["my-gen"]["compared_from"] is None
    assert {rows[m]["compared_from"] for m in ("good", "mid", "real-data")} == {str(refs)}
    assert rows["good"]["fid"] == pytest.approx(7.5) and rows["my-gen"]["fid"] == pytest.approx(10.1)
    assert summary["compared"] == [{"folder": str(refs), "models": ["good", "mid", "real-data"], "runs": 9,
                                    "left_out": {}}]
    # The new model is tested against the compared ones (reference rows never are).
    assert sorted(summary["significance"]["fid"]["models"]) == ["good", "mid", "my-gen"]

    md = (mine / "leaderboard.md").read_text()
    assert "| model | from | seeds (ok/cap/div/fail) |" in md
    assert "| my-gen | this folder | 3/0/0/0 |" in md and f"| good | {refs} | 3/0/0/0 |" in md
    assert f"| real-data (ceiling) | {refs} |" in md
    assert f"Compared, not rerun: 9 run(s) of good, mid, real-data read from `{refs}`" in md
    csv_header = (mine / "leaderboard.csv").read_text().splitlines()[0].split(",")
    assert "compared_from" in csv_header
    html = (mine / "leaderboard.html").read_text()
    short = "/<wbr>".join(refs.parts[-2:])  # the short name; the full path is the tooltip
    assert f'<td class="name"><span title="{refs.absolute()}">{short}</span></td>' in html
    assert '<td class="name">this folder</td>' in html

    # Without --compare the folder's own leaderboard is back to its own runs, without a "from" column.
    assert _report(mine).exit_code == 0
    assert [row["model"] for row in json.loads((mine / "leaderboard.json").read_text())["rows"]] == ["my-gen"]
    assert "| from |" not in (mine / "leaderboard.md").read_text()


def test_a_models_row_comes_from_the_first_folder_that_has_it(tmp_path):
    """The results folder wins over --compare folders, and earlier --compare folders over later ones."""
    refs = _folder(tmp_path / "refs" / "syn", FIDS)
    other = _folder(tmp_path / "other" / "syn", {"mid": [30.0, 31.0], "extra": [50.0]})
    mine = _folder(tmp_path / "mine" / "syn", {"good": [12.0]})  # a rerun of `good`, seed 0 only
    r = _report(mine, "--compare", refs, "--compare", other)
    assert r.exit_code == 0, r.output
    summary = json.loads((mine / "leaderboard.json").read_text())
    rows = {row["model"]: row for row in summary["rows"]}
    # good: only this folder's one run, never mixed with the compared folder's seeds.
    assert rows["good"]["seeds"] == 1 and rows["good"]["fid"] == pytest.approx(12.0)
    assert rows["good"]["compared_from"] is None
    assert rows["mid"]["fid"] == pytest.approx(sum(FIDS["mid"]) / 3) and rows["mid"]["compared_from"] == str(refs)
    assert rows["extra"]["compared_from"] == str(other)
    assert [c["left_out"] for c in summary["compared"]] == [{"good": 3}, {"mid": 2}]
    md = (mine / "leaderboard.md").read_text()
    assert f"Left out of `{refs}`, because a folder listed before it has its own runs of them" in md
    assert "good (3 run(s))" in md and "mid (2 run(s))" in md


@pytest.mark.parametrize("case, message", [
    ("version", "holds runs of suite syn version 2, but the results are of suite syn version 1: "
                "only runs of the same suite version are comparable"),
    ("name", "holds runs of suite other version 1, but the results are of suite syn version 1"),
    ("itself", "is the results folder itself: its runs are in the leaderboard already"),
    ("missing", "no such folder"),
    ("empty", "holds no run records (expected"),
    ("twice", "is given twice"),
    ("mixed", "holds runs of suite syn version 1 and suite syn version 2: --compare needs runs of one suite version"),
])
def test_what_cannot_be_compared_is_refused_in_one_line(tmp_path, case, message):
    mine = _folder(tmp_path / "mine" / "syn", {"my-gen": [10.0]})
    refs = tmp_path / "refs" / "syn"
    args = ["--compare", refs]
    if case == "version":
        _folder(refs, FIDS, version=2)
    elif case == "name":
        _folder(refs, FIDS, suite="other")
    elif case == "itself":
        args = ["--compare", mine]
    elif case == "empty":
        refs.mkdir(parents=True)
    elif case == "twice":
        _folder(refs, FIDS)
        args = ["--compare", refs, "--compare", tmp_path / "refs" / "." / "syn"]
    elif case == "mixed":
        _folder(refs, FIDS)
        write_run_record(mine / "old" / "seed0", _record("old", 0, 3.0, version=2))
    before = (mine / "leaderboard.md").exists()
    r = _report(mine, *args)
    assert r.exit_code == 2
    assert r.output.startswith("Error: ") and r.output.count("\n") == 1 and message in r.output, r.output
    assert (mine / "leaderboard.md").exists() == before  # nothing written


def test_compared_folders_are_checked_against_the_suite_being_run(tmp_path):
    """gather(..., suite=) is what `genbench run` calls before training; the folder to write may not exist yet."""
    refs = _folder(tmp_path / "refs" / "syn", FIDS)
    sources = gather(tmp_path / "new" / "syn", [refs], suite=("syn", 1))
    assert sorted(r.model_name for r in sources.records) == ["good"] * 3 + ["mid"] * 3 + ["real-data"] * 3
    with pytest.raises(InputError, match="but the results are of suite syn version 7"):
        gather(tmp_path / "new" / "syn", [refs], suite=("syn", 7))
    with pytest.raises(InputError, match="write to another --out"):
        gather(refs, [_folder(tmp_path / "x" / "syn", {"mid": [1.0]}, version=2)], suite=("syn", 2))


def test_run_with_compare_trains_only_the_new_model(tmp_path, data_root):
    """The README's path: train your own model and see it beside runs already made, none of them retrained."""
    version = load_suite("smoke").version
    refs = tmp_path / "committed" / "smoke"
    for seed, fid in enumerate([7.5, 7.7]):
        write_run_record(refs / "ref-model" / f"seed{seed}", _record("ref-model", seed, fid, "smoke", version))
    src = tmp_path / "my.py"
    src.write_text("from tests.conftest import DummyGenerator\n"
                   "class MyGen(DummyGenerator):\n"
                   "    name = 'my-gen'\n")
    out = tmp_path / "mine"
    args = ["run", "--suite", "smoke", "--models", "my-gen", "--model", f"{src}:MyGen", "--budget", "steps=3",
            "--out", str(out), "--no-progress", "--data-root", data_root]

    bad = tmp_path / "v0" / "smoke"
    write_run_record(bad / "ref-model" / "seed0", _record("ref-model", 0, 7.5, "smoke", version + 1))
    r = CliRunner().invoke(main, [*args, "--compare", str(bad)])
    assert r.exit_code == 2 and f"version {version + 1}" in r.output and "Traceback" not in r.output
    assert not out.exists()  # refused before anything trained

    r = CliRunner().invoke(main, [*args, "--compare", str(refs)])
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in (out / "smoke").iterdir() if p.is_dir()) == ["my-gen"]
    assert not (refs / "leaderboard.md").exists()
    rows = {row["model"]: row for row in json.loads((out / "smoke" / "leaderboard.json").read_text())["rows"]}
    assert set(rows) == {"my-gen", "ref-model"}
    assert rows["ref-model"]["compared_from"] == str(refs) and rows["ref-model"]["seeds"] == 2
    assert rows["my-gen"]["compared_from"] is None and rows["my-gen"]["fid"] is not None

