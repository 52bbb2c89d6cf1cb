"""The leaderboard's main table is chosen by the committed sanity matrices (results/sanity/): every
sample metric in it passed each failure its role is meant to detect, on both datasets, and every
column left out for its evidence failed one of them (or, for fid_inf, repeats one that is in)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from genbench.report.table import LEFT_OUT_OF_MAIN, PRIMARY
from genbench.sanity.families import ROLES

REPO = Path(__file__).resolve().parents[1]
MATRICES = {d: REPO / "results" / "sanity" / d / "sanity.json" for d in ("mnist", "fashion-mnist")}
MEANT_FOR = ("worse", "better")  # the failures a metric should see; flat (nuisance) cells are reported, not required


def _cells(dataset: str) -> list[dict]:
    data = json.loads(MATRICES[dataset].read_text(encoding="utf-8"))
    assert not data["settings"]["quick"], "the committed matrices are full runs"
    return data["cells"]


def _meant_for(dataset: str, metric: str) -> dict[str, str]:
    return {c["family"]: c["verdict"] for c in _cells(dataset) if c["metric"] == metric
            and c["expectation"] in MEANT_FOR}


@pytest.mark.parametrize("dataset", MATRICES)
def test_every_sample_metric_of_the_main_table_passes_what_it_is_meant_to_detect(dataset):
    judged = [m for m in PRIMARY if m in ROLES]
    # nll_bpd and throughput are not scores of a set of images: the sanity checks cannot judge them
    assert set(PRIMARY) - set(judged) == {"nll_bpd", "train_images_per_s"}
    for metric in judged:
        cells = _meant_for(dataset, metric)
        assert cells, f"{metric} has no failure it is meant to detect in {dataset}"
        failed = {f: v for f, v in cells.items() if v != "pass"}
        assert not failed, f"{metric} in the main table but failed {failed} on {dataset}"


def test_each_column_left_out_failed_a_check_or_repeats_a_kept_one():
    for metric in LEFT_OUT_OF_MAIN:
        failed = [(d, f) for d in MATRICES for f, v in _meant_for(d, metric).items() if v == "fail"]
        if metric == "fid_inf":  # passes, but is FID extrapolated: the same distance in the same lens
            assert not failed and ROLES["fid_inf"] == ROLES["fid"] and "fid" in PRIMARY
        else:
            assert failed, f"{metric} left out of the main table but failed nothing it is meant to detect"


def test_the_main_table_has_at_most_ten_columns_with_reference_rows(tmp_path):
    """Competitors and reference rows, every main-table metric reported: at most 10 columns each."""
    from genbench.report.leaderboard import write_report
    from genbench.results import write_run_record
    from tests.test_report import _record

    for model, role in (("gan", None), ("flow", None), ("real-data", "ceiling"), ("independent-pixels", "floor")):
        for seed in range(2):
            rec = _record(model, seed, 10.0 + seed, role=role, nll=1.0 + seed / 10)
            rec["metrics"].update({m: 0.5 for m in PRIMARY if m not in rec["metrics"]})
            write_run_record(tmp_path / model / f"seed{seed}", rec)
    md = write_report(tmp_path)["md"].read_text(encoding="utf-8").split("## Every metric")[0]
    headers = [line for line in md.splitlines() if line.startswith("| model |")]
    assert len(headers) == 2  # competitors, then reference rows
    for header in headers:
        columns = header.strip("|").split(" | ")
        assert len(columns) <= 10, columns
        assert all(any(c.startswith(m + " ") or c == m for c in columns) for m in PRIMARY), columns
