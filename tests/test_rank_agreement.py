"""Kendall's τ between the fid and fid_ssl rankings: known answers on synthetic records, and the leaderboard."""

from __future__ import annotations

import html
import json
import math

import pytest

from genbench.report.leaderboard import write_report
from genbench.report.rank_agreement import rank_agreement
from genbench.results import RunRecord, write_run_record


def _record(model: str, seed: int, fid: float, fid_ssl: float | None, role: str | None = None) -> dict:
    metrics = {"fid": fid}
    if fid_ssl is not None:
        metrics["fid_ssl"] = fid_ssl
    rec = {"schema_version": 1, "model": {"name": model}, "seed": seed, "status": "ok",
           "suite": {"name": "syn", "version": 1}, "dataset": "mnist", "device": "cpu",
           "machine": {"processor": "cpu", "cpu_count": 2},
           "budget": {"kind": "images", "achieved": {"images": 1000}}, "metrics": metrics}
    if role:
        rec["model"]["role"] = role
    return rec


def _records(table: dict[str, list[tuple[float, float | None]]], roles: dict[str, str] | None = None
             ) -> list[RunRecord]:
    return [RunRecord.from_json(_record(m, s, a, b, (roles or {}).get(m)))
            for m, seeds in table.items() for s, (a, b) in enumerate(seeds)]


def _three_seeds(fid: float, ssl: float) -> list[tuple[float, float]]:
    return [(fid - 0.1, ssl - 0.2), (fid, ssl), (fid + 0.1, ssl + 0.2)]


def test_identical_rankings_give_tau_one_and_nobody_moves():
    records = _records({"a": _three_seeds(5, 50), "b": _three_seeds(10, 60), "c": _three_seeds(20, 90),
                        "d": _three_seeds(40, 300)})
    agreement = rank_agreement(records)
    assert agreement.tau == pytest.approx(1.0) and agreement.moved == []
    assert agreement.ci_low == pytest.approx(1.0) and agreement.ci_high == pytest.approx(1.0)  # seeds never cross
    assert agreement.p_value < 0.1 and agreement.models == ["a", "b", "c", "d"]


def test_reversed_rankings_give_minus_one_and_everyone_moves():
    records = _records({"a": _three_seeds(5, 400), "b": _three_seeds(10, 300), "c": _three_seeds(20, 200),
                        "d": _three_seeds(40, 100)})
    agreement = rank_agreement(records)
    assert agreement.tau == pytest.approx(-1.0)
    assert agreement.moved == ["a", "b", "c", "d"]
    assert agreement.ranks_a == {"a": 1, "b": 2, "c": 3, "d": 4} and agreement.ranks_b == {"a": 4, "b": 3, "c": 2,
                                                                                             "d": 1}


def test_one_swap_names_the_two_models_and_the_interval_reflects_seed_noise():
    # b and c swap under fid_ssl; c's fid_ssl seeds straddle b's, so some replicates restore the order.
    records = _records({
        "a": _three_seeds(5, 50), "b": _three_seeds(10, 80),
        "c": [(19.9, 60.0), (20.0, 70.0), (20.1, 95.0)], "d": _three_seeds(40, 300)})
    agreement = rank_agreement(records)
    # 6 pairs, one discordant: (5 - 1) / 6.
    assert agreement.tau == pytest.approx(4 / 6) and agreement.moved == ["b", "c"]
    assert agreement.ci_low == pytest.approx(4 / 6) and agreement.ci_high == pytest.approx(1.0)
    again = rank_agreement(records)
    assert (again.ci_low, again.ci_high) == (agreement.ci_low, agreement.ci_high)  # seeded


def test_reference_rows_are_not_ranked_and_missing_keys_give_a_reason():
    table = {"a": _three_seeds(5, 50), "b": _three_seeds(10, 60), "c": _three_seeds(20, 90),
             "real-data": _three_seeds(1, 500)}  # a ceiling that would break the agreement if counted
    agreement = rank_agreement(_records(table, {"real-data": "ceiling"}))
    assert agreement.tau == pytest.approx(1.0) and "real-data" not in agreement.models

    no_ssl = _records({m: [(f, None) for f, _ in v] for m, v in table.items()}, {"real-data": "ceiling"})
    agreement = rank_agreement(no_ssl)
    assert agreement.tau is None and agreement.ci_low is None
    assert agreement.reason == ("needs at least 3 competitors with ok runs that report both fid and fid_ssl; "
                                "have none")
    assert agreement.left_out == {m: "no ok run reports both fid and fid_ssl" for m in ("a", "b", "c")}


def test_leaderboard_reports_kendall_in_every_format(tmp_path):
    table = {"a": _three_seeds(5, 400), "b": _three_seeds(10, 300), "c": _three_seeds(20, 200)}
    for model, seeds in table.items():
        for seed, (fid, ssl) in enumerate(seeds):
            write_run_record(tmp_path / model / f"seed{seed}", _record(model, seed, fid, ssl))
    paths = write_report(tmp_path)
    summary = json.loads(paths["json"].read_text())
    kendall = summary["kendall_tau_fid_fid_ssl"]
    assert kendall["tau"] == pytest.approx(-1.0) and kendall["moved"] == ["a", "c"]  # b stays second
    assert kendall["ranks"] == {"a": [1, 3], "b": [2, 2], "c": [3, 1]}
    assert not math.isnan(kendall["ci_low"])
    sentence = "Kendall's τ = -1.00"
    assert sentence in paths["md"].read_text() and html.escape(sentence) in paths["html"].read_text()
    md = paths["md"].read_text()
    assert "rank moves (fid → fid_ssl): a 1 → 3, c 3 → 1" in md
    # The full table marks each competitor's move (b keeps its rank); the main table, which must fit a
    # 1,400-px page, leaves the column to it and to the sentence above.
    main, full = md.split("## Every metric")
    assert "rank fid → fid_ssl" not in main and "| rank fid → fid_ssl |" in full
    assert "| 400.0 ± 0.2 | 1 → 3 |" in full and "| 300.0 ± 0.2 | 2 |" in full and "| 200.0 ± 0.2 | 3 → 1 |" in full
