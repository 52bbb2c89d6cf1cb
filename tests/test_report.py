"""Leaderboard layout: reference rows apart and unranked, significance letters, one aggregation with check."""

from __future__ import annotations

import html
import json

import pandas as pd
import pytest

from genbench.report.aggregate import aggregate
from genbench.report.leaderboard import write_report
from genbench.report.table import leaderboard_frame
from genbench.results import RunRecord, collect_runs, json_safe, write_run_record
from genbench.verify.check import summarise

FIDS = {  # per-seed FIDs: good and mid clearly apart, noisy overlaps both
    "good": [7.5, 7.6, 7.4], "mid": [20.0, 20.5, 19.8], "noisy": [5.0, 30.0, 18.0],
    "real-data": [0.9, 1.0, 1.1], "train-copy": [0.8, 0.9, 1.0], "independent-pixels": [430.0, 431.0, 432.0],
}
ROLES = {"real-data": "ceiling", "train-copy": "memorizer", "independent-pixels": "floor"}


def _record(model, seed, fid, role=None, nll=None, status="ok"):
    rec = {
        "schema_version": 1, "model": {"name": model}, "seed": seed, "status": status,
        "suite": {"name": "syn", "version": 1}, "dataset": "mnist", "device": "cpu",
        "machine": {"processor": "cpu", "cpu_count": 2},
        "budget": {"kind": "images", "achieved": {"images": 1000}},
        "metrics": {"fid": fid, "copy_fraction": 0.05, "nll_is_bound": False, "is": 5.0 + seed},
    }
    if role:
        rec["model"]["role"] = role
    if nll is not None:
        rec["metrics"]["nll_bpd"] = nll
    return rec


@pytest.fixture
def suite_dir(tmp_path):
    for model, fids in FIDS.items():
        for seed, fid in enumerate(fids):
            nll = {"good": 1.0 + 0.01 * seed, "independent-pixels": 1.69}.get(model)
            write_run_record(tmp_path / model / f"seed{seed}", _record(model, seed, fid, ROLES.get(model), nll))
    return tmp_path


def test_reference_rows_are_apart_and_unranked(suite_dir):
    paths = write_report(suite_dir)
    md = paths["md"].read_text()
    main, every_metric = md.split("## Every metric")
    competitors, references = main.split("## Reference rows (not ranked)")
    for name, role in (("good", "competitor"), *((n, r) for n, r in ROLES.items())):
        assert f"| {name} | {role} |" in every_metric  # one table of every metric, roles named
    for name in ("good", "mid", "noisy"):
        assert f"| {name} |" in competitors and f"| {name} |" not in references
    for name, role in ROLES.items():
        assert f"| {name} ({role}) |" in references and f"| {name} |" not in competitors
    # Competitors by mean FID; references in a fixed order, not by FID.
    assert competitors.index("| good |") < competitors.index("| noisy |") < competitors.index("| mid |")
    assert references.index("real-data") < references.index("train-copy") < references.index("independent-pixels")
    rows = json.loads(paths["json"].read_text())["rows"]
    assert [(r["model"], r["role"]) for r in rows] == [
        ("good", "competitor"), ("noisy", "competitor"), ("mid", "competitor"),
        ("real-data", "ceiling"), ("train-copy", "memorizer"), ("independent-pixels", "floor")]
    csv = pd.read_csv(paths["csv"])
    assert list(csv["role"]) == [r["role"] for r in rows]
    page = paths["html"].read_text()
    assert page.count('<table class="reference">') == 1 and "Reference rows (not ranked)" in page


def test_a_name_alone_never_makes_a_reference_row(tmp_path):
    for seed in range(2):  # a user's model called real-data, without a declared role
        write_run_record(tmp_path / "real-data" / f"seed{seed}", _record("real-data", seed, 3.0 + seed))
    board = leaderboard_frame(collect_runs(tmp_path)[0])
    assert list(board["role"]) == ["competitor"]
    assert "Reference rows" not in write_report(tmp_path)["md"].read_text()


def test_significance_letters_in_every_format(suite_dir):
    paths = write_report(suite_dir)
    data = json.loads(paths["json"].read_text())
    fid = data["significance"]["fid"]
    assert fid["models"] == ["good", "noisy", "mid"]  # competitors only, best mean first
    assert fid["letters"] == {"good": "a", "noisy": "ab", "mid": "b"}
    pairs = {(p["a"], p["b"]): p for p in fid["pairs"]}
    assert pairs[("good", "mid")]["significant"] and not pairs[("good", "noisy")]["significant"]
    assert all(p["p_holm"] >= p["p"] for p in fid["pairs"])
    # nll_bpd: one competitor reports it, so nothing is compared.
    assert data["significance"]["nll_bpd"]["pairs"] == []
    rows = {r["model"]: r for r in data["rows"]}
    assert rows["noisy"]["fid_group"] == "ab" and rows["real-data"]["fid_group"] == ""
    md = paths["md"].read_text()
    # the main table's letters follow the cells, taking no column of their own
    main = md.split("## Reference rows")[0]
    assert "| model | seeds (ok/cap/div/fail) | fid ↓ |" in main and "fid group" not in main
    assert "| good | 3/0/0/0 | 7.50 ± 0.10 ᵃ | 0.050 ± 0.000 | 1.01 ± 0.01 |" in main
    assert "| noisy | 3/0/0/0 | 17.67 ± 12.50 ᵃᵇ |" in main
    assert "Welch t-test" in md and "Holm" in md and "Letters after fid" in md
    assert '<span class="v">± 0.10 ᵃ</span>' in paths["html"].read_text()


def test_group_marks_are_superscript_letters_or_spelled_out():
    from genbench.report.table import group_mark

    assert group_mark("") == "" and group_mark("a") == " ᵃ" and group_mark("bcd") == " ᵇᶜᵈ"
    assert group_mark("pq") == " ^pq"  # Unicode has no superscript q


def test_bounds_and_implausible_nlls_are_marked_in_every_format(tmp_path):
    """An ELBO-style bound reads `(bound)`; a mean outside [0.5, 8] bits/dim carries its likely unit mistake;
    an exact NLL and a model without one carry nothing."""
    from genbench.report.markdown_page import headline_markdown

    nlls = {"elbo": ([1.57, 1.59], True), "exact": ([1.05, 1.05], False), "bits": ([10.2, 10.4], False),
            "mixed": ([1.20, 1.30], None), "gan": (None, None)}
    for model, (values, bound) in nlls.items():
        for seed in range(2):
            rec = _record(model, seed, 10.0 + seed, nll=values[seed] if values else None)
            if values is None:
                del rec["metrics"]["nll_is_bound"]
            else:  # "mixed": seed 1 is a bound, seed 0 exact, so the mean is no more than a bound
                rec["metrics"]["nll_is_bound"] = bound if bound is not None else seed == 1
            write_run_record(tmp_path / model / f"seed{seed}", rec)
    paths = write_report(tmp_path)
    cells = {"elbo": "1.58 ± 0.01 (bound)", "exact": "1.05 ± 0.00", "bits": "10.30 ± 0.14 (> 8: bits instead of nats?)",
             "mixed": "1.25 ± 0.07 (bound)", "gan": "—"}
    for text in (paths["md"].read_text(), headline_markdown(tmp_path)):
        def split(line: str) -> list[str]:
            return [c.strip() for c in line.strip().strip("|").split(" | ")]

        header = split(next(line for line in text.splitlines() if line.startswith("| model |")))
        column = header.index("nll_bpd ↓ [bits/dim]")
        for model, cell in cells.items():
            row = split(next(line for line in text.splitlines() if line.startswith(f"| {model} |")))
            assert row[column].startswith(cell) and row[column].removeprefix(cell).strip(" ᵃᵇᶜᵈ") == "", model
    csv = pd.read_csv(paths["csv"]).set_index("model")
    rows = {r["model"]: r for r in json.loads(paths["json"].read_text())["rows"]}
    for model, bound in {"elbo": True, "exact": False, "bits": False, "mixed": True, "gan": None}.items():
        assert rows[model]["nll_is_bound"] is bound
        assert (pd.isna(csv.loc[model, "nll_is_bound"]) if bound is None else bool(csv.loc[model, "nll_is_bound"])
                is bound)
    assert rows["bits"]["nll_bpd_implausible"] == csv.loc["bits", "nll_bpd_implausible"] == "> 8: bits instead of nats?"
    assert all(rows[m]["nll_bpd_implausible"] is None for m in ("elbo", "exact", "mixed", "gan"))
    page = paths["html"].read_text()
    # A tight table may wrap before the mark, never inside a number.
    assert '<span class="v">1.58</span> <span class="v">± 0.01</span> <span>(bound)</span>' in page
    assert '<span class="v">± 0.14</span> <span>(&gt; 8: bits instead of nats?)</span>' in page
    assert "`(bound)` marks an upper bound" in paths["md"].read_text()


def test_one_seed_gives_no_letters(tmp_path):
    for model, fid in (("a", 1.0), ("b", 2.0)):
        write_run_record(tmp_path / model / "seed0", _record(model, 0, fid))
    paths = write_report(tmp_path)
    md = paths["md"].read_text()
    assert "fid group" not in md and "No significance for fid" in md
    assert set(json.loads(paths["json"].read_text())["significance"]["fid"]["left_out"]) == {"a", "b"}


def test_check_and_leaderboard_read_the_same_aggregation(suite_dir):
    records = collect_runs(suite_dir)[0]
    # A diverged seed counts, its metrics do not.
    records.append(RunRecord.from_json(json_safe(_record("good", 3, 99.0, status="diverged"))))
    board = leaderboard_frame(records).set_index("model")
    summary = summarise(records)
    agg = aggregate(records)
    for model, row in board.iterrows():
        values = summary[model]["metrics"]["fid"]  # per ok seed; their mean is the leaderboard's
        assert sum(values) / len(values) == pytest.approx(row["fid"]) and row["fid"] == agg[model].mean("fid")
        assert summary[model]["status"]["ok"] == row["n_ok"]
    assert summary["good"]["status"] == {"ok": 3, "capped": 0, "diverged": 1, "failed": 0}
    assert "nll_is_bound" not in summary["good"]["metrics"]  # flags are not aggregated


def test_runs_cut_short_by_the_seconds_cap_are_named(tmp_path):
    """A work budget stopped by its seconds cap trained less than the suite asks: the leaderboard says so."""
    for seed, (images, stopped_by) in enumerate([(4512, "seconds"), (300000, "images"), (11904, "seconds")]):
        rec = _record("dcgan", seed, 10.0 + seed)
        rec["budget"] = {"kind": "images", "asked": {"images": 300000, "seconds": 400.0},
                         "achieved": {"images": images, "seconds": 400.0, "stopped_by": stopped_by}}
        write_run_record(tmp_path / "dcgan" / f"seed{seed}", rec)
    rec = _record("vae", 0, 12.0)
    rec["budget"] = {"kind": "images", "asked": {"images": 1000}, "achieved": {"images": 1000, "stopped_by": "images"}}
    write_run_record(tmp_path / "vae" / "seed0", rec)
    paths = write_report(tmp_path)
    line = next(n for n in json.loads(paths["json"].read_text())["notes"] if n.startswith("Stopped by the seconds cap"))
    assert line.endswith(": dcgan seeds 0, 2 (4,512 to 11,904 of 300,000 images).")
    assert "Stopped by the seconds cap" in paths["md"].read_text() and "vae" not in line


def test_no_cap_note_when_every_budget_was_spent(suite_dir):
    notes = json.loads(write_report(suite_dir)["json"].read_text())["notes"]
    assert not any(n.startswith("Stopped by the seconds cap") for n in notes)


def test_leaderboard_states_revisions_and_flags_dirty_ones(tmp_path):
    """Which code each row comes from, in every format; runs made from uncommitted changes are flagged."""
    hashes = {("a", 0): "3b447bed618e" + "0" * 28, ("a", 1): "0aea9cda9f14" + "0" * 28,
              ("b", 0): "ec654d9ab827" + "0" * 28 + "-dirty", ("c", 0): None}
    for (model, seed), git_hash in hashes.items():
        write_run_record(tmp_path / model / f"seed{seed}", {**_record(model, seed, 5.0), "git_hash": git_hash})
    paths = write_report(tmp_path)
    note = ("Code revisions per model: a 0aea9cd, 3b447be; b ec654d9-dirty; c unknown. Dirty (run from uncommitted "
            "changes, so no revision can be checked out to rerun them): b.")
    data = json.loads(paths["json"].read_text())
    assert note in data["notes"] and note in paths["md"].read_text()
    assert data["revisions"] == {"a": ["0aea9cd", "3b447be"], "b": ["ec654d9-dirty"], "c": ["unknown"]}
    assert data["dirty"] == ["b"]
    assert {r["model"]: r["revisions"] for r in data["rows"]}["a"] == "0aea9cd 3b447be"
    page = paths["html"].read_text()
    assert note in page and "revisions 0aea9cd, 3b447be" in page


def test_one_clean_revision_is_one_line(suite_dir):
    notes = json.loads(write_report(suite_dir)["json"].read_text())["notes"]
    assert "Code revision of every run: unknown." in notes


def test_plot_colours_never_repeat_and_the_legend_covers_no_point():
    from genbench.report.plots import fid_cost_figure, series_styles

    for n in (1, 10, 11, 20, 21, 45):
        colours = [colour for colour, _ in series_styles(n)]
        assert len(set(colours)) == n, n
    points = [(f"model-{i:02d}", 10.0 ** (i / 4), 5.0 + i) for i in range(11)]  # 11 models, as in the issue
    fig = fid_cost_figure(points, "sampling throughput [img/s]", log_x=True)
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig).draw()
    (ax,) = fig.axes
    faces = [tuple(c.get_facecolor()[0]) for c in ax.collections]
    assert len(faces) == 11 and len(set(faces)) == 11
    (legend,) = fig.legends
    renderer = fig.canvas.get_renderer()
    assert not legend.get_window_extent(renderer).overlaps(ax.get_window_extent(renderer))


def test_compared_folder_is_named_short_with_the_full_path_in_a_tooltip(tmp_path):
    from genbench.report.html_page import short_folder_names

    assert short_folder_names(["/a/b/results/mnist-small", "/c/old/results/mnist-small", "runs/x"]) == {
        "/a/b/results/mnist-small": "b/results/mnist-small", "/c/old/results/mnist-small": "old/results/mnist-small",
        "runs/x": "runs/x"}
    mine, refs = tmp_path / "mine" / "syn", tmp_path / 'odd "<name>&' / ("long-" * 20) / "syn"
    write_run_record(mine / "good" / "seed0", _record("good", 0, 7.5))
    write_run_record(refs / "mid" / "seed0", _record("mid", 0, 20.0))
    page = write_report(mine, [refs])["html"].read_text()
    short = f"{'long-' * 20}/syn"
    assert f'<span title="{html.escape(str(refs))}">{short.replace("/", "/<wbr>")}</span>' in page
    assert f">{refs}<" not in page  # the long path is never shown as cell text
