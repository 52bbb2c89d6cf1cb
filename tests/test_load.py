"""The machine's load over a whole run: sampled, kept with the speed figures in run.json, and marked on speed
cells in every leaderboard format."""

from __future__ import annotations

import json
import time

import pandas as pd

from genbench.process import LoadSampler, summarise, under_load
from genbench.report.leaderboard import write_report
from genbench.results import write_run_record


def test_a_run_is_under_load_when_a_sample_exceeds_the_cores():
    assert summarise([0.5, 2.6, 1.0], 2, 5.0) == {"interval_s": 5.0, "samples": [0.5, 2.6, 1.0], "max": 2.6,
                                                  "mean": 1.37, "cores": 2, "under_load": True}
    # A run's own threads fill the cores and its helpers add a little: not loaded.
    assert summarise([2.0, 2.4], 2, 5.0)["under_load"] is False
    assert summarise([], 2, 5.0)["under_load"] is False


def test_the_sampler_samples_from_start_to_stop():
    sampler = LoadSampler(interval=0.01).start()
    time.sleep(0.2)
    during = sampler.stop()
    assert len(during["samples"]) >= 3  # the start, some in between, the end
    assert during["max"] == max(during["samples"]) and during["interval_s"] == 0.01


def test_old_records_are_judged_by_their_start_and_end():
    machine = {"cpu_count": 2}
    assert under_load({"load_average": {"start": [0.3, 0.2, 0.1], "end": [2.6, 1.0, 0.5]}}, machine) is True
    assert under_load({"load_average": {"start": [2.0, 0.2, 0.1], "end": [2.4, 1.0, 0.5]}}, machine) is False
    assert under_load({"load_average": {"start": None}}, machine) is None
    # A sampled record's own verdict wins over its start and end.
    sampled = {"load_average": {"start": [0.1], "end": [0.1], "during": {"under_load": True}}}
    assert under_load(sampled, machine) is True


def _record(model, seed, loaded):
    return {
        "schema_version": 1, "model": {"name": model}, "seed": seed, "status": "ok",
        "suite": {"name": "syn", "version": 1}, "dataset": "mnist", "device": "cpu",
        "machine": {"processor": "cpu", "cpu_count": 2},
        "executor": {"load_average": {"start": [0.2, 0.2, 0.2], "end": [0.4, 0.3, 0.2],
                                      "during": summarise([0.2, 3.5 if loaded else 1.5, 0.4], 2, 5.0)}},
        "budget": {"kind": "images", "achieved": {"images": 1000}},
        "metrics": {"fid": 10.0 + seed, "train_images_per_s": 500.0 + seed, "num_parameters": 1000},
    }


def test_speed_cells_measured_under_load_are_marked_in_every_format(tmp_path):
    for model, loaded in (("busy", [False, True]), ("idle", [False, False])):
        for seed, flag in enumerate(loaded):
            write_run_record(tmp_path / model / f"seed{seed}", _record(model, seed, flag))
    paths = write_report(tmp_path)
    md = paths["md"].read_text()
    lines = md.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| model |") and "num_parameters" in line)
    def cells(line):
        return [c.strip(" |") for c in line.split(" | ")]

    header = cells(lines[start])  # the table of every metric
    speed, params = header.index("train_images_per_s ↑ [img/s]"), header.index("num_parameters")
    row = {m: cells(next(line for line in lines[start:] if line.startswith(f"| {m} |"))) for m in ("busy", "idle")}
    assert row["busy"][speed] == "500.5 ± 0.7 (loaded)" and row["idle"][speed] == "500.5 ± 0.7"
    assert "(loaded)" not in row["busy"][params]  # a count of work is no figure of time
    assert "`(loaded)`: some ok seed of the model measured this speed figure while the machine was under load" in md
    csv = pd.read_csv(paths["csv"]).set_index("model")
    rows = {r["model"]: r for r in json.loads(paths["json"].read_text())["rows"]}
    assert csv.loc["busy", "speed_under_load"] == rows["busy"]["speed_under_load"] == 1
    assert csv.loc["idle", "speed_under_load"] == rows["idle"]["speed_under_load"] == 0
    assert "<span>(loaded)</span>" in paths["html"].read_text()
