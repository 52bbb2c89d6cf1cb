"""The leaderboard's table model: one row per model from the aggregated records, columns in a fixed
order, significance letters on the primary metrics, and the notes and footnotes every output shares."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from genbench.likelihood_contract import PLAUSIBLE_BPD, bpd_mark
from genbench.metrics import metric_specs
from genbench.metrics.spec import MetricSpec
from genbench.protocol import Role
from genbench.report.aggregate import ModelSummary, aggregate
from genbench.report.compare import ComparedFolder
from genbench.report.rank_agreement import RankAgreement
from genbench.report.rank_agreement import describe as describe_agreement
from genbench.report.significance import Significance, compare_models
from genbench.results import STATUSES, RunRecord

# Leaderboard column order; other metrics follow alphabetically.
PREFERRED_ORDER = [
    "fid", "fid_ssl", "fid_inf", "kid", "is", "precision", "recall", "density", "coverage", "classes_covered",
    "class_kl", "fid_intra", "confident_fraction", "copy_fraction", "copy_ct", "copy_ct_p",
    "nll_bpd", "psnr", "ssim", "mse", "completion_psnr", "completion_mse",
    "train_images_per_s", "sample_images_per_s", "peak_memory_mb", "num_parameters",
]
# Per-run extras that are not compared across models in the leaderboard.
HIDDEN = {"fid_ci_low", "fid_ci_high", "kid_std", "is_std", "nll_is_bound", "n_samples", "nll_bpd_stderr",
          "feature_images_per_s"}
# The main table (Markdown and HTML) holds what a reader can trust, chosen by the sanity matrices of
# results/sanity/ (docs/sanity.md, "The main table"): each sample metric here passed every failure its
# role is meant to detect on MNIST and on Fashion-MNIST (tests/test_main_table_evidence.py keeps that
# true), one per question: a distance in each lens, fidelity, diversity, class balance, copying; then
# the likelihood and the cost, which the sanity checks do not judge. Left out with their evidence:
# recall (misses class imbalance: coverage asks its question and passes) and copy_ct_p (its swing under
# copy injection stays inside its seed spread: copy_fraction passes); fid_inf, which passes but
# repeats fid at the suites' fixed sample count. Every metric stays in the full table and the details.
PRIMARY = ("fid", "fid_ssl", "precision", "coverage", "classes_covered", "copy_fraction", "nll_bpd",
           "train_images_per_s")
# The columns that left the main table for the evidence above, and why (a footnote says so).
LEFT_OUT_OF_MAIN = {
    "recall": "did not detect class imbalance in the sanity matrices; coverage, which did, stands in its place",
    "copy_ct_p": "did not move beyond its seed-to-seed spread under copy injection; copy_fraction did",
    "fid_inf": "passed the same checks as fid, whose value it repeats at a suite's fixed sample count",
}
# Metrics whose differences between competitors are tested for significance.
SIGNIFICANCE_METRICS = ("fid", "nll_bpd")
# Reference rows, in the order they are listed.
REFERENCE_ROLES = (Role.CEILING, Role.MEMORIZER, Role.FLOOR)
ROLE_NOTES = {
    Role.CEILING: "real images no model trained on and no metric uses as reference: the best a model can expect",
    Role.MEMORIZER: "training images returned verbatim: good FID, caught by copy_fraction and copy_ct_p",
    Role.FLOOR: "each pixel on its own: a likelihood model that learns anything should beat its NLL",
}
# Per model, beside nll_bpd: whether its mean is a bound, and the likely unit mistake of an implausible one.
NLL_FLAGS = ("nll_is_bound", "nll_bpd_implausible")
# Per model, beside its speed figures: how many of its ok seeds measured them under load.
SPEED_FLAG = "speed_under_load"
_BASE = ("model", "role", "compared_from", "seeds", "images_seen", "budget_kind", "revisions",
         *(f"n_{s}" for s in STATUSES), *NLL_FLAGS, SPEED_FLAG)


def load_sensitive(metric: str) -> bool:
    """A figure of time (throughput, FLOP/s): lower when other work shares the machine."""
    return "_per_s" in metric or metric == "flops_utilization"


def load_mark(under_load: Any, metric: str) -> str:
    """What follows a speed cell measured (in some ok seed) while the machine was under load."""
    return " (loaded)" if load_sensitive(metric) and isinstance(under_load, (int, np.integer)) and under_load else ""
THIS_FOLDER = "this folder"  # the "from" column of a leaderboard's own rows, beside compared ones


def fmt(mean: float, std: float, n: int) -> str:
    """``mean ± std`` with digits by magnitude; ``—`` for a missing value; no std for one seed."""
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "—"
    mag = abs(mean)
    digits = 0 if mag >= 1000 else 1 if mag >= 100 else 2 if mag >= 1 else 3 if mag >= 0.01 else 4
    if mean == 0 and (std is None or math.isnan(std) or std == 0):
        digits = 0  # e.g. the parameter count of a model that has none
    text = f"{mean:.{digits}f}"
    if n > 1 and std is not None and not math.isnan(std):
        text += f" ± {std:.{digits}f}"
    return text


def nll_marks(is_bound: Any, mean: float) -> str:
    """What follows a mean nll_bpd in a table: `` (bound)``, the likely unit mistake of an implausible
    value (`` (> 8: bits instead of nats?)``), both, or nothing."""
    marks = ["bound"] if isinstance(is_bound, (bool, np.bool_)) and is_bound else []
    mark = bpd_mark(mean)
    if mark:
        marks.append(mark)
    return f" ({'; '.join(marks)})" if marks else ""


def significance(summaries: dict[str, ModelSummary]) -> dict[str, Significance]:
    """Pairwise tests of each primary metric between the competitors that report it."""
    meta = metric_specs()
    out = {}
    for metric in SIGNIFICANCE_METRICS:
        values = {s.name: s.values[metric] for s in summaries.values()
                  if s.role is Role.COMPETITOR and s.values.get(metric)}
        if values:
            out[metric] = compare_models(values, metric, bool(meta[metric].higher_is_better))
    return out


def _sort_key(summary: ModelSummary) -> tuple:
    if summary.role is Role.COMPETITOR:
        fid = summary.mean("fid")
        return (0, math.isnan(fid), 0.0 if math.isnan(fid) else fid, summary.name)
    return (1, REFERENCE_ROLES.index(summary.role), 0, summary.name)


def leaderboard_frame(records: list[RunRecord], tests: dict[str, Significance] | None = None,
                      compared_from: dict[str, str] | None = None) -> pd.DataFrame:
    """One row per model: role, seeds, status counts, code revisions (short git hashes), then mean, std and n of
    every metric over ok seeds.

    Competitors come first, by mean FID; reference rows follow. ``tests`` (from
    :func:`significance`) add a ``<metric>_group`` column of letters per tested metric.
    ``compared_from`` maps the models read from a ``--compare`` folder to that folder
    (column ``compared_from``; None for the results folder's own models).
    """
    summaries = aggregate(records)
    rows = []
    for s in sorted(summaries.values(), key=_sort_key):
        entry: dict[str, Any] = {
            "model": s.name,
            "role": s.role.value,
            "compared_from": (compared_from or {}).get(s.name),
            "seeds": sum(s.status.values()),
            **{f"n_{status}": s.status.get(status, 0) for status in STATUSES},
            "images_seen": math.fsum(s.images_seen) / len(s.images_seen) if s.images_seen else float("nan"),
            "budget_kind": ",".join(sorted(s.budget_kinds)),
            "revisions": " ".join(sorted(s.revisions)),
            "nll_is_bound": s.nll_is_bound,
            "nll_bpd_implausible": bpd_mark(s.mean("nll_bpd")),
            SPEED_FLAG: s.speed_under_load,
        }
        for key in sorted(k for k in s.values if k not in HIDDEN):
            entry[key] = s.mean(key)
            entry[f"{key}_std"] = s.std(key)
            entry[f"{key}_n"] = s.n(key)
        for metric, test in (tests or {}).items():
            entry[f"{metric}_group"] = test.letters.get(s.name, "") if s.role is Role.COMPETITOR else ""
        rows.append(entry)
    return pd.DataFrame(rows)


def ordered_metrics(board: pd.DataFrame) -> list[str]:
    """Metric columns of ``board`` that have a value somewhere, in leaderboard order."""
    metrics = [c for c in board.columns
               if c not in _BASE and not c.endswith(("_std", "_n", "_group")) and board[c].notna().any()]
    rank = {m: i for i, m in enumerate(PREFERRED_ORDER)}
    return sorted(metrics, key=lambda m: (rank.get(m, len(rank)), m))


def _label(metric: str, meta: Mapping[str, MetricSpec]) -> str:
    spec = meta.get(metric)
    arrow = f" {spec.arrow}" if spec and spec.arrow else ""
    return metric + arrow + (f" [{spec.unit}]" if spec and spec.unit else "")


_SUPERSCRIPT = dict(zip("abcdefghijklmnoprstuvwxyz", "ᵃᵇᶜᵈᵉᶠᵍʰⁱʲᵏˡᵐⁿᵒᵖʳˢᵗᵘᵛʷˣʸᶻ", strict=True))


def group_mark(letters: str) -> str:
    """A significance group written after a main-table cell: `` ᵃᵇ`` (``^q`` style where Unicode has no
    superscript letter), so that the letters take no column of their own."""
    if not letters:
        return ""
    if all(c in _SUPERSCRIPT for c in letters):
        return " " + "".join(_SUPERSCRIPT[c] for c in letters)
    return f" ^{letters}"


def _tables(board: pd.DataFrame, tests: dict[str, Significance], only: Sequence[str] | None = None,
            agreement: RankAgreement | None = None) -> list[tuple[str, list[str], list[list[str]]]]:
    """(caption, header, rows) of the competitors' table and, if any, the reference rows' table.

    ``only`` keeps just those metrics: the main table, which must fit a 1,400-px page, so its
    significance letters follow the cells (:func:`group_mark`) and "images seen" and the rank moves
    stay in the full table and the footnotes. Without ``only``, each tested metric gets a
    ``group`` column and a computed ``agreement`` a column of rank moves between its two metrics.
    When some rows come from a ``--compare`` folder, a ``from`` column names each row's folder.
    """
    meta = metric_specs()
    main = only is not None
    metrics = [m for m in ordered_metrics(board) if not main or m in only]
    grouped = {m for m, t in tests.items() if any(t.letters.values())}
    compared = board["compared_from"].notna().any()
    out = []
    for caption, competitors in (("", True), ("Reference rows (not ranked)", False)):
        part = board[(board["role"] == Role.COMPETITOR.value) == competitors]
        if not len(part):
            continue
        # The main table names a reference row's role beside its model ("real-data (ceiling)"): one column fewer.
        header = (["model"] if competitors or main else ["reference", "model"]) + (["from"] if compared else []) + [
            "seeds (ok/cap/div/fail)"] + ([] if main else ["images seen"])
        for m in metrics:
            header.append(_label(m, meta))
            if competitors and m in grouped and not main:
                header.append(f"{m} group")
        ranked = competitors and agreement is not None and agreement.tau is not None and not main
        if ranked:
            header.append(f"rank {agreement.metric_a} → {agreement.metric_b}")
        rows = []
        for _, row in part.iterrows():
            if competitors:
                cells = [str(row["model"])]
            elif main:
                cells = [f"{row['model']} ({row['role']})"]
            else:
                cells = [str(row["role"]), str(row["model"])]
            if compared:
                cells.append(row["compared_from"] if isinstance(row["compared_from"], str) else THIS_FOLDER)
            cells.append("/".join(str(row[f"n_{status}"]) for status in STATUSES))
            if not main:
                cells.append("—" if pd.isna(row["images_seen"]) else f"{int(row['images_seen']):,}")
            for m in metrics:
                n = row.get(f"{m}_n")
                cell = fmt(row[m], row.get(f"{m}_std", float("nan")), 0 if pd.isna(n) else int(n))
                if cell != "—":
                    cell += nll_marks(row["nll_is_bound"], row[m]) if m == "nll_bpd" else load_mark(row[SPEED_FLAG], m)
                if competitors and m in grouped:
                    if main:
                        cell += group_mark(row.get(f"{m}_group") or "")
                    else:
                        cells.append(cell)
                        cell = row.get(f"{m}_group") or "—"
                cells.append(cell)
            if ranked:
                cells.append(_rank_move(agreement, str(row["model"])))
            rows.append(cells)
        out.append((caption, header, rows))
    return out


def _rank_move(agreement: RankAgreement, model: str) -> str:
    """``2 → 4`` for a model whose rank moves, ``2`` for one that keeps it, ``—`` for one not ranked by both."""
    if model not in agreement.ranks_a:
        return "—"
    a, b = agreement.ranks_a[model], agreement.ranks_b[model]
    return f"{a} → {b}" if a != b else str(a)


def _footnotes(board: pd.DataFrame, tests: dict[str, Significance], agreement: RankAgreement | None = None,
               ) -> list[str]:
    notes = ["Mean ± sample std over ok seeds; ↑ higher is better, ↓ lower is better; — not applicable or no ok seed."
             + (" Competitors are listed by mean FID." if (board["role"] == Role.COMPETITOR.value).any() else "")]
    for metric, test in tests.items():
        if any(test.letters.values()):
            notes.append(
                f"Letters after {metric} (ᵃ, ᵃᵇ, ...; `{metric}_group` in the CSV and JSON): competitors sharing "
                f"a letter do not differ significantly in {metric} "
                f"({test.method}: {len(test.pairs)} pairs, alpha {test.alpha:g}); ᵃ holds the best mean. "
                f"Not significant means not shown to differ with these seeds."
                + (f" Not tested: {', '.join(f'{m} ({why})' for m, why in sorted(test.left_out.items()))}."
                   if test.left_out else ""))
        else:
            notes.append(f"No significance for {metric}: it needs at least two competitors with two or more ok seeds.")
    if agreement is not None:
        notes.append(describe_agreement(agreement))
    if len(board) and "nll_bpd" in ordered_metrics(board):
        low, high = PLAUSIBLE_BPD
        notes.append("`nll_bpd`: `(bound)` marks an upper bound on the NLL (an ELBO, IWAE or variational bound, or "
                     "uniform dequantization), not an exact value: a bound below an exact NLL shows the bounded model "
                     f"is better, one above it shows nothing. A mean outside [{low:g}, {high:g}] bits/dim is kept and "
                     "marked with the likely unit mistake (each run's record names it in `warnings`).")
    if len(board) and (board[SPEED_FLAG] > 0).any() and any(load_sensitive(m) for m in ordered_metrics(board)):
        notes.append(f"`(loaded)`: some ok seed of the model measured this speed figure while the machine was under "
                     f"load (its 1-minute load average, sampled over the whole run, was above its cores by more "
                     f"than half a core at some point), so it is lower than the machine gives a run alone; "
                     f"`{SPEED_FLAG}` in the CSV and JSON counts those seeds.")
    if len(board) and "copy_ct_p" in ordered_metrics(board):
        notes.append("`copy_ct_p`: one-sided p-value of Meehan et al.'s data-copying test (C_T): small when the "
                     "samples sit closer to the training set than fresh test images do. Samples crowded into a few "
                     "cells (collapsed, blurred averages) can read small too: copying shows as a small p together "
                     "with a good FID or a high copy_fraction (each model's details).")
    left_out = [m for m in LEFT_OUT_OF_MAIN if len(board) and m in ordered_metrics(board)]
    if left_out:
        reasons = "; ".join(f"`{m}` {LEFT_OUT_OF_MAIN[m]}" for m in left_out)
        notes.append("The main table's columns were chosen by the metric sanity checks (docs: Metric sanity checks, "
                     "\"The main table\"); every metric is in the full table and each model's details. "
                     f"Left out: {reasons}.")
    roles = [Role(r) for r in board["role"] if r != Role.COMPETITOR.value] if len(board) else []
    if roles:
        names = board.loc[board["role"] != Role.COMPETITOR.value, "model"]
        notes.append("Reference rows anchor the scale and are not ranked: " + "; ".join(
            f"{role.value} `{name}`: {ROLE_NOTES[role]}" for role, name in zip(roles, names, strict=True)) + ".")
    else:
        notes.append("No reference rows (floor, ceiling, memorizer) in these run records.")
    return notes


def _capped_runs(records: Sequence[RunRecord]) -> list[str]:
    """Per model, the runs whose images/steps budget was cut short by its seconds cap (status ``capped``)."""
    by_model: dict[str, list[RunRecord]] = {}
    for r in records:
        if r.status == "capped":
            by_model.setdefault(r.model_name, []).append(r)
    out = []
    for model, runs in sorted(by_model.items()):
        kind = runs[0].budget["kind"]
        done = [int(r.budget["achieved"].get(kind) or 0) for r in runs]
        asked = runs[0].budget.get("asked", {}).get(kind)
        seeds = ", ".join(str(r.seed) for r in sorted(runs, key=lambda r: r.seed))
        span = f"{min(done):,}" if min(done) == max(done) else f"{min(done):,} to {max(done):,}"
        of = f" of {int(asked):,}" if isinstance(asked, (int, float)) else ""
        out.append(f"{model} seed{'s' if len(runs) > 1 else ''} {seeds} ({span}{of} {kind})")
    return out


def revisions_by_model(records: Sequence[RunRecord]) -> dict[str, list[str]]:
    """Per model, the short code revisions (git hashes) its runs were made at; ``-dirty`` marks uncommitted code."""
    return {name: sorted(s.revisions) for name, s in aggregate(list(records)).items()}


def _revisions_note(records: Sequence[RunRecord]) -> str:
    """Which code revisions the rows come from, with the dirty ones (uncommitted changes) flagged."""
    by_model = revisions_by_model(records)
    every = sorted({rev for revs in by_model.values() for rev in revs})
    if len(every) == 1:
        note = f"Code revision of every run: {every[0]}."
    else:
        note = "Code revisions per model: " + "; ".join(f"{m} {', '.join(revs)}" for m, revs in by_model.items()) + "."
    dirty = [m for m, revs in by_model.items() if any(r.endswith("-dirty") for r in revs)]
    if dirty:
        note += (f" Dirty (run from uncommitted changes, so no revision can be checked out to rerun them): "
                 f"{', '.join(dirty)}.")
    return note


def _notes(records: list[RunRecord], problems: list[str], suite_name: str,
           compared: Sequence[ComparedFolder] = ()) -> list[str]:
    notes = []
    if records:
        versions = sorted({str(r.suite.get("version")) for r in records})
        kinds = sorted({r.budget.get("kind", "?") for r in records})
        budgets = "equal wall-clock budgets" if kinds == ["seconds"] else "work-based budgets; seconds caps only guard"
        notes.append(f"Suite `{suite_name}` version {', '.join(versions)}; budgets in {', '.join(kinds)} "
                     f"({budgets}); {len(records)} run(s); dataset {records[0].dataset}.")
        machines = sorted({
            f"{r.machine.get('processor')} ({r.machine.get('cpu_count')} cores"
            + (f", {r.machine['gpu']}" if r.machine.get("gpu") else "") + f"), device {r.device}"
            for r in records
        })
        notes.append("Machine: " + "; ".join(machines) + ".")
        extractors = sorted({f"{r.extractor.get('name')} sha256 {r.extractor.get('sha256', '')[:12]}"
                             for r in records if r.extractor})
        if extractors:
            notes.append("Feature extractor: " + "; ".join(extractors) + ".")
        capped = _capped_runs(records)
        if capped:
            notes.append("Stopped by the seconds cap before their work budget, so trained less than the suite asks "
                         "(a slower or busier machine than the suite's caps allow for): status `capped`, counted in "
                         "the status column, left out of means, significance and `genbench check`: "
                         + "; ".join(capped) + ".")
        notes.append(_revisions_note(records))
    for cf in compared:
        notes.append(f"Compared, not rerun: {len(cf.records)} run(s) of {', '.join(cf.models)} read from "
                     f"`{cf.folder}` (rows marked `from {cf.folder}`)." if cf.records else
                     f"Compared, not rerun: nothing shown from `{cf.folder}`: a folder listed before it has every "
                     f"model it holds.")
        if cf.left_out:
            notes.append(f"Left out of `{cf.folder}`, because a folder listed before it has its own runs of them "
                         f"(a row never mixes folders): "
                         + ", ".join(f"{m} ({n} run(s))" for m, n in cf.left_out.items()) + ".")
    if problems:
        notes.append(f"Skipped {len(problems)} unreadable run record(s): " + "; ".join(problems))
    return notes
