"""Leaderboards: Markdown, CSV, JSON and one self-contained HTML page, rebuilt from run records.

Rows come from :func:`genbench.aggregate.aggregate` (the aggregation ``genbench
check`` uses too): mean ± sample std over ok seeds. Competitors are ordered by mean
FID; the primary metrics (FID for sample quality, NLL for likelihood) carry a
compact letter display of which differences are significant over seeds
(:mod:`genbench.significance`). Reference rows (floor, ceiling, memorizer; a
generator's ``role``) are shown apart, in a table of their own, and never ranked.
Rows of other results folders of the same suite version can be shown beside a
folder's own (``--compare``, :mod:`genbench.compare`); they are marked as such.

The HTML page fits a 1400-px window: its main table holds the primary metrics, and
every metric of a model (with per-seed values) is in that model's details block. It
shows the training-loss curves from each run's ``train_log.csv``, FID against cost
and the sample grids, all embedded as data URIs: it loads nothing, and its
Content-Security-Policy forbids any request, so it opens offline.
"""

from __future__ import annotations

import base64
import html
import io
import math
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd

from genbench.aggregate import ModelSummary, aggregate
from genbench.compare import ComparedFolder, Sources, gather
from genbench.errors import InputError
from genbench.io import atomic_write_files, json_text
from genbench.protocol import Role
from genbench.rank_agreement import RankAgreement, rank_agreement
from genbench.rank_agreement import describe as describe_agreement
from genbench.registry import MetricSpec, metric_specs
from genbench.results import STATUSES, RunRecord, json_safe, utc_now
from genbench.significance import Significance, compare_models

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
# The main table (Markdown and HTML) holds what a reader can trust; every metric is in the full table (Markdown)
# and each model's details (HTML). Left out on purpose: is and confident_fraction, which the floor's pixel noise
# maxes out (the classifier is confident on it), and copy_fraction, whose question copy_ct_p answers with a test.
PRIMARY = ("fid", "fid_ssl", "fid_inf", "precision", "recall", "classes_covered", "copy_ct_p", "nll_bpd",
           "train_images_per_s")
# Metrics whose differences between competitors are tested for significance.
SIGNIFICANCE_METRICS = ("fid", "nll_bpd")
# Reference rows, in the order they are listed.
REFERENCE_ROLES = (Role.CEILING, Role.MEMORIZER, Role.FLOOR)
ROLE_NOTES = {
    Role.CEILING: "real images no model trained on and no metric uses as reference: the best a model can expect",
    Role.MEMORIZER: "training images returned verbatim: good FID, caught by copy_fraction and copy_ct_p",
    Role.FLOOR: "each pixel on its own: a likelihood model that learns anything should beat its NLL",
}
_BASE = ("model", "role", "compared_from", "seeds", "images_seen", "budget_kind", "revisions",
         *(f"n_{s}" for s in STATUSES))
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


def _tables(board: pd.DataFrame, tests: dict[str, Significance], only: Sequence[str] | None = None,
            agreement: RankAgreement | None = None) -> list[tuple[str, list[str], list[list[str]]]]:
    """(caption, header, rows) of the competitors' table and, if any, the reference rows' table.

    ``only`` keeps just those metrics (the main table). When some rows come from a
    ``--compare`` folder, a ``from`` column names each row's folder. A computed
    ``agreement`` adds the competitors' column of rank moves between its two metrics.
    """
    meta = metric_specs()
    metrics = [m for m in ordered_metrics(board) if only is None or m in only]
    grouped = {m for m, t in tests.items() if any(t.letters.values())}
    compared = board["compared_from"].notna().any()
    out = []
    for caption, competitors in (("", True), ("Reference rows (not ranked)", False)):
        part = board[(board["role"] == Role.COMPETITOR.value) == competitors]
        if not len(part):
            continue
        header = (["model"] if competitors else ["reference", "model"]) + (["from"] if compared else []) + [
            "seeds (ok/cap/div/fail)", "images seen"]
        for m in metrics:
            header.append(_label(m, meta))
            if competitors and m in grouped:
                header.append(f"{m} group")
        ranked = competitors and agreement is not None and agreement.tau is not None
        if ranked:
            header.append(f"rank {agreement.metric_a} → {agreement.metric_b}")
        rows = []
        for _, row in part.iterrows():
            cells = [] if competitors else [str(row["role"])]
            cells.append(str(row["model"]))
            if compared:
                cells.append(row["compared_from"] if isinstance(row["compared_from"], str) else THIS_FOLDER)
            cells += ["/".join(str(row[f"n_{status}"]) for status in STATUSES),
                      "—" if pd.isna(row["images_seen"]) else f"{int(row['images_seen']):,}"]
            for m in metrics:
                n = row.get(f"{m}_n")
                cells.append(fmt(row[m], row.get(f"{m}_std", float("nan")), 0 if pd.isna(n) else int(n)))
                if competitors and m in grouped:
                    cells.append(row.get(f"{m}_group") or "—")
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
                f"`{metric} group`: competitors sharing a letter do not differ significantly in {metric} "
                f"({test.method}: {len(test.pairs)} pairs, alpha {test.alpha:g}); `a` holds the best mean. "
                f"Not significant means not shown to differ with these seeds."
                + (f" Not tested: {', '.join(f'{m} ({why})' for m, why in sorted(test.left_out.items()))}."
                   if test.left_out else ""))
        else:
            notes.append(f"No significance for {metric}: it needs at least two competitors with two or more ok seeds.")
    if agreement is not None:
        notes.append(describe_agreement(agreement))
    if len(board) and "copy_ct_p" in ordered_metrics(board):
        notes.append("`copy_ct_p`: one-sided p-value of Meehan et al.'s data-copying test (C_T): small when the "
                     "samples sit closer to the training set than fresh test images do. Samples crowded into a few "
                     "cells (collapsed, blurred averages) can read small too: copying shows as a small p together "
                     "with a good FID or a high copy_fraction (each model's details).")
    roles = [Role(r) for r in board["role"] if r != Role.COMPETITOR.value] if len(board) else []
    if roles:
        names = board.loc[board["role"] != Role.COMPETITOR.value, "model"]
        notes.append("Reference rows anchor the scale and are not ranked: " + "; ".join(
            f"{role.value} `{name}`: {ROLE_NOTES[role]}" for role, name in zip(roles, names, strict=True)) + ".")
    else:
        notes.append("No reference rows (floor, ceiling, memorizer) in these run records.")
    return notes


def _markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|",
            *("| " + " | ".join(cells) + " |" for cells in rows), ""]


def _markdown_tables(board: pd.DataFrame, tests: dict[str, Significance], only: Sequence[str] | None = None,
                     caption_level: str = "##", agreement: RankAgreement | None = None) -> list[str]:
    lines = []
    for caption, header, rows in _tables(board, tests, only, agreement):
        if caption:
            lines += [f"{caption_level} {caption}", ""]
        lines += _markdown_table(header, rows)
    return lines


def render_markdown(board: pd.DataFrame, title: str, notes: list[str] | None = None,
                    tests: dict[str, Significance] | None = None, agreement: RankAgreement | None = None) -> str:
    """The main tables (:data:`PRIMARY` metrics), footnotes, then every metric of every row in one table."""
    tests = tests or {}
    lines = [f"# {title}", ""]
    lines += [f"{n}" for n in (notes or [])]
    if notes:
        lines.append("")
    lines += _markdown_tables(board, tests, PRIMARY, agreement=agreement)
    lines += [f"{n}\n" for n in _footnotes(board, tests, agreement)]
    full = [(caption, header, rows) for caption, header, rows in _tables(board, {})]
    if full:
        lines += ["## Every metric", "",
                  "Every metric any row reports (mean ± sample std over ok seeds), reference rows last.", ""]
        # One table: the competitors' rows gain their role, the reference rows' role moves after the model.
        header = ["model", "role", *full[0][1][(2 if full[0][0] else 1):]]
        rows = [[c[1], c[0], *c[2:]] if caption else [c[0], Role.COMPETITOR.value, *c[1:]]
                for caption, _, part in full for c in part]
        lines += _markdown_table(header, rows)
    return "\n".join(lines)


def headline_markdown(suite_dir: str | os.PathLike) -> str:
    """The leaderboard of ``suite_dir``'s run records, primary metrics only, as Markdown tables.

    The same rows, letters and numbers as ``leaderboard.md`` (one aggregation), but only
    the columns of the HTML page's main table (:data:`PRIMARY`), so that it fits a
    README; ``scripts/readme_leaderboard.py`` writes it into README.md. A run record
    that cannot be read is an :class:`~genbench.errors.InputError`: a headline never
    leaves a run out silently.
    """
    sources = gather(suite_dir)
    if sources.problems:
        raise InputError(f"unreadable run records in {suite_dir}: {'; '.join(sources.problems)}")
    if not sources.records:
        raise InputError(f"{suite_dir} holds no run records")
    tests = significance(aggregate(sources.records))
    board = leaderboard_frame(sources.records, tests)
    agreement = rank_agreement(sources.records)
    return "\n".join(_markdown_tables(board, tests, PRIMARY, caption_level="####", agreement=agreement)
                     ).rstrip("\n") + "\n"


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


def _png_data_uri(path: Path) -> str | None:
    try:
        return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")
    except OSError:
        return None


def _figure_uri(fig: Any) -> str:
    """A matplotlib Figure as a PNG data URI."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _mpl(label: str) -> str:
    """Text shown literally by matplotlib (a ``$`` would start math mode)."""
    return label.replace("$", r"\$")


_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "*")


def series_styles(n: int) -> list[tuple[tuple[float, float, float, float], str]]:
    """``n`` (RGBA colour, marker) pairs whose colours all differ: the palette is sized to ``n``.

    Up to 10 series get matplotlib's tab10, up to 20 tab20, more evenly spaced hues of
    a rainbow map; markers cycle as well, so neighbouring hues differ in shape too.
    """
    from matplotlib import colormaps

    if n <= 10:
        colours = [colormaps["tab10"](i) for i in range(n)]
    elif n <= 20:
        colours = [colormaps["tab20"](i) for i in range(n)]
    else:
        colours = [colormaps["gist_rainbow"](i / n) for i in range(n)]
    return [(tuple(float(c) for c in colour), _MARKERS[i % len(_MARKERS)]) for i, colour in enumerate(colours)]


def fid_cost_figure(points: Sequence[tuple[str, float, float]], x_label: str, log_x: bool) -> Any:
    """Scatter of ``(model, x, fid)`` points, one colour (and marker) per model, the legend outside the axes.

    Returns the matplotlib ``Figure``: the legend sits to the right of the axes, so it
    never covers a point.
    """
    from matplotlib.figure import Figure

    names = sorted({p[0] for p in points})
    # Two plots still sit side by side in a 1400-px window with a one-column legend.
    fig = Figure(figsize=(4.8 + 1.6 * math.ceil(len(names) / 20), 3.8), dpi=100, layout="constrained")
    ax = fig.subplots()
    for name, (colour, marker) in zip(names, series_styles(len(names)), strict=True):
        xs = [p[1] for p in points if p[0] == name]
        ys = [p[2] for p in points if p[0] == name]
        ax.scatter(xs, ys, label=_mpl(name), s=30, color=colour, marker=marker)
    if log_x:
        ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(x_label)
    ax.set_ylabel("FID (domain features, lower is better)")
    ax.grid(True, alpha=0.3)
    fig.legend(loc="outside right upper", fontsize=8, ncols=math.ceil(len(names) / 20))
    return fig


def _plot(records: list[RunRecord], x_key: str, x_label: str, log_x: bool) -> str | None:
    """Scatter of FID against one per-run figure, one colour per model; PNG data URI."""
    points = []
    for rec in records:
        m = rec.metrics
        x = m.get(x_key) if x_key in m else rec.timings.get(x_key)
        if rec.status == "ok" and m.get("fid") is not None and x:
            points.append((rec.model_name, float(x), float(m["fid"])))
    if not points:
        return None
    return _figure_uri(fid_cost_figure(points, x_label, log_x))


_LOG_AXES = ("step", "images", "seconds")  # train_log.csv columns that are not logged values


def _read_train_log(path: Path) -> pd.DataFrame | None:
    """A run's ``train_log.csv`` as numbers (non-finite values as NaN); None if missing, empty or malformed."""
    try:
        log = pd.read_csv(path)
    except (OSError, ValueError):  # pandas' parser and empty-file errors are ValueErrors
        return None
    log = log.apply(pd.to_numeric, errors="coerce").replace([math.inf, -math.inf], math.nan)
    return log if len(log) and "step" in log else None


def _loss_columns(log: pd.DataFrame) -> list[str]:
    """The logged values named like a loss; every logged value when none is."""
    logged = [c for c in log.columns if c not in _LOG_AXES and log[c].notna().any()]
    return [c for c in logged if "loss" in c.lower()] or logged


def _loss_curves(models: Sequence[str], runs: dict[str, list[tuple[int, Path]]]) -> tuple[str | None, list[str]]:
    """One panel per model of its logged losses against images seen, one line per seed.

    ``runs`` maps a model to its (seed, run folder) pairs. Returns the figure as a PNG
    data URI (None without any log) and the models that have no readable log.
    """
    panels = []
    for model in models:
        logs = [(seed, log) for seed, folder in runs.get(model, [])
                if (log := _read_train_log(folder / "train_log.csv")) is not None and _loss_columns(log)]
        if logs:
            panels.append((model, logs))
    missing = [m for m in models if m not in {name for name, _ in panels}]
    if not panels:
        return None, missing
    import numpy as np
    from matplotlib.figure import Figure
    from matplotlib.ticker import EngFormatter

    ncols = min(4, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig = Figure(figsize=(3.2 * ncols, 2.5 * nrows), dpi=100, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, (model, logs) in zip(axes, panels, strict=False):
        by_images = all(log["images"].notna().all() for _, log in logs if "images" in log) and all(
            "images" in log for _, log in logs)
        x_col = "images" if by_images else "step"
        keys = list(dict.fromkeys(c for _, log in logs for c in _loss_columns(log)))
        colours = [colour for colour, _ in series_styles(len(keys))]
        for i, key in enumerate(keys):
            for j, log in enumerate(log for _, log in logs if key in log):
                # Each logged value is one batch's: a moving average over 5% of the run shows the trend.
                window = max(1, len(log) // 20)
                if window > 1:
                    ax.plot(log[x_col], log[key], color=colours[i], lw=0.6, alpha=0.2)
                ax.plot(log[x_col], log[key].rolling(window, center=True, min_periods=1).mean(),
                        color=colours[i], lw=1.0, alpha=0.9, label=_mpl(key) if j == 0 else None)
        values = np.concatenate([log[k].to_numpy(dtype=float) for _, log in logs for k in keys if k in log])
        values = values[np.isfinite(values)]
        if values.size:  # the 1st-99th percentile: a diverging run's last values do not flatten the curves
            lo, hi = np.percentile(values, [1, 99])
            pad = 0.08 * (hi - lo) or 0.05 * abs(hi) or 1.0
            ax.set_ylim(lo - pad, hi + pad)
        ax.set_title(_mpl(f"{model} ({len(logs)} seed{'s' if len(logs) > 1 else ''})"), fontsize=9)
        ax.set_xlabel("images seen" if by_images else "steps", fontsize=8)
        ax.xaxis.set_major_formatter(EngFormatter(sep=""))
        ax.tick_params(labelsize=7)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    return _figure_uri(fig), missing


def _metric_keys(records: Sequence[RunRecord]) -> list[str]:
    """Every numeric metric of ``records``, in leaderboard order."""
    keys = {k for r in records for k, v in r.metrics.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)}
    rank = {m: i for i, m in enumerate(PREFERRED_ORDER)}
    return sorted(keys, key=lambda m: (rank.get(m, len(rank)), m))


def _details_html(model: str, anchor: str, summary: ModelSummary, records: list[RunRecord], origin: str | None,
                  meta: Mapping[str, MetricSpec]) -> str:
    """A model's ``<details>`` block: status, every metric's mean ± std and its value per ok seed.

    ``origin``: HTML naming the compared folder the runs come from (None: this folder).
    """
    esc = html.escape
    ok = sorted((r for r in records if r.status == "ok"), key=lambda r: r.seed)
    counts = ", ".join(f"{summary.status.get(s, 0)} {s}" for s in STATUSES)
    head = (f'<details id="{anchor}"><summary><b>{esc(model)}</b> · {esc(counts)}'
            + f" · revision{'s' if len(summary.revisions) > 1 else ''} {esc(', '.join(sorted(summary.revisions)))}"
            + (f" · from {origin}" if origin else "") + "</summary>")
    problems = "".join(f"<p>seed {r.seed}: {esc(r.status)}: {esc(str(r.error or 'no error recorded'))}</p>"
                       for r in sorted(records, key=lambda r: r.seed) if r.status != "ok")
    rows = []
    for key in _metric_keys(ok):
        per_seed = " · ".join(
            f'<span class="v">seed {r.seed}: {esc(fmt(float(r.metrics[key]), math.nan, 1))}</span>'
            for r in ok if isinstance(r.metrics.get(key), (int, float)) and not isinstance(r.metrics[key], bool))
        rows.append(f'<tr><td class="name">{esc(_label(key, meta))}</td>'
                    f'<td class="num">{_number_html(fmt(summary.mean(key), summary.std(key), summary.n(key)))}</td>'
                    f'<td class="seeds">{per_seed}</td></tr>')
    table = ('<table class="detail"><thead><tr><th class="name">metric</th><th>mean ± std</th>'
             '<th class="name">per ok seed</th></tr></thead>'
             f"<tbody>{''.join(rows)}</tbody></table>") if rows else "<p>No ok seed: no metric.</p>"
    return head + problems + table + "</details>"


_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2em;color:#222}"
    "p{overflow-wrap:anywhere}"
    "table{border-collapse:collapse;font-size:14px;margin:0.5em 0}"
    "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right;vertical-align:top}"
    "th{background:#f3f3f3}"
    "td.num{font-variant-numeric:tabular-nums}"  # its numbers are nowrap spans: a cell breaks only before ±
    "td.name span[title]{overflow-wrap:normal}"  # a compared folder breaks after a '/', never mid-word
    "td.name,th.name{text-align:left;overflow-wrap:anywhere;min-width:9ch}"
    "td.seeds{text-align:left}span.v{white-space:nowrap;font-variant-numeric:tabular-nums}"
    "table.reference td{background:#f7f7f2;font-style:italic}"
    "details{margin:0.4em 0}summary{cursor:pointer}"
    "figure{display:inline-block;margin:8px;text-align:center;vertical-align:top}"
    "img{max-width:100%;height:auto}img.grid{image-rendering:pixelated}"
    ".notes{color:#555}"
)
# Nothing may leave the file: no script, no network, images from data: URIs only.
_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
_TEXT_COLUMNS = ("reference", "model", "from")


def short_folder_names(folders: Sequence[str]) -> dict[str, str]:
    """A short name for each compared folder: its last two path parts, more where they would clash.

    The HTML page shows it in the ``from`` column, the full path in a tooltip, so that a
    long absolute path neither widens the table nor breaks mid-word.
    """
    parts = {f: Path(f).parts for f in dict.fromkeys(folders)}
    longest = max((len(p) for p in parts.values()), default=1)
    for k in range(2, longest + 1):
        names = {f: str(Path(*p[-k:])) if p else f for f, p in parts.items()}
        if len(set(names.values())) == len(names):
            return names
    return {f: f for f in parts}


def _folder_html(folder: str, short: Mapping[str, str]) -> str:
    full = str(Path(folder).absolute())
    name = html.escape(short.get(folder, folder)).replace("/", "/<wbr>")
    return f'<span title="{html.escape(full)}">{name}</span>'


def _number_html(cell: str) -> str:
    """A ``mean ± std`` cell that may wrap before the ``±`` (and nowhere else) when a table is tight."""
    mean, sep, std = cell.partition(" ± ")
    return f'<span class="v">{html.escape(mean)}</span>' + (f' <span class="v">± {html.escape(std)}</span>'
                                                            if sep else "")


def _header_html(label: str) -> str:
    """A column label that may wrap: the unit on its own line, breaks allowed after underscores (and after the
    slashes of the status counts, so that four counts fit a crowded table)."""
    escaped = html.escape(label).replace(" [", "<br>[").replace("_", "_<wbr>")
    return escaped.replace("/", "/<wbr>") if label.startswith("seeds (") else escaped


def render_html(board: pd.DataFrame, records: list[RunRecord], suite_dir: Path, title: str, notes: list[str],
                tests: dict[str, Significance] | None = None, folder_of: dict[str, Path] | None = None,
                agreement: RankAgreement | None = None) -> str:
    """The self-contained HTML page; ``folder_of`` maps a model to the folder of its runs (default ``suite_dir``)."""
    tests = tests or {}
    folder_of = folder_of or {}
    esc = html.escape
    meta = metric_specs()
    models = list(board["model"]) if len(board) else []
    anchors = {model: f"model-{i}" for i, model in enumerate(models)}
    runs = {m: sorted(((r.seed, folder_of.get(m, suite_dir) / m / f"seed{r.seed}") for r in records
                       if r.model_name == m), key=lambda p: p[0]) for m in models}
    froms = board["compared_from"] if len(board) else []
    short = short_folder_names([f for f in froms if isinstance(f, str)])
    tables = []
    for caption, header, rows in _tables(board, tests, only=PRIMARY, agreement=agreement) if len(board) else []:
        classes = ["name" if h in _TEXT_COLUMNS else "num" for h in header]
        body = []
        for cells in rows:
            tds = []
            for h, cls, cell in zip(header, classes, cells, strict=True):
                text = esc(cell)
                if h == "model":
                    text = f'<a href="#{anchors[cell]}">{text}</a>'
                elif h == "from" and cell != THIS_FOLDER:
                    text = _folder_html(cell, short)
                elif cls == "num" and " ± " in cell:
                    text = _number_html(cell)
                tds.append(f'<td class="{cls}">{text}</td>')
            body.append("<tr>" + "".join(tds) + "</tr>")
        table_class = ' class="reference"' if caption else ""
        tables.append((f"<h2>{esc(caption)}</h2>" if caption else "")
                      + f"<table{table_class}><thead><tr>"
                      + "".join(f'<th class="{c}">{_header_html(h)}</th>' for h, c in zip(header, classes, strict=True))
                      + "</tr></thead><tbody>" + "".join(body) + "</tbody></table>")
    summaries = aggregate(records)
    origin = {m: _folder_html(f, short) for m, f in zip(models, froms, strict=True) if isinstance(f, str)}
    details = [_details_html(m, anchors[m], summaries[m], [r for r in records if r.model_name == m],
                             origin.get(m), meta) for m in models if m in summaries]
    curves, no_log = _loss_curves(models, runs)
    grids = []
    for model in models:
        for seed, folder in runs[model][:1]:
            uri = _png_data_uri(folder / "samples.png")
            if uri:
                grids.append(f'<figure><img class="grid" src="{uri}" alt="samples of {esc(model)}" width="240">'
                             f"<figcaption>{esc(model)} (seed {seed})</figcaption></figure>")
    plots = []
    for key, label, log_x in (("train_seconds", "training time [s]", False),
                              ("sample_images_per_s", "sampling throughput [img/s]", True)):
        uri = _plot(records, key, label, log_x)
        if uri:
            plots.append(f'<figure><img src="{uri}" alt="FID against {esc(label)}">'
                         f"<figcaption>FID against {esc(label)}</figcaption></figure>")
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(title)}</title>", f"<style>{_STYLE}</style></head><body>", f"<h1>{esc(title)}</h1>",
        '<div class="notes">' + "".join(f"<p>{esc(n)}</p>" for n in notes)
        + f"<p>Generated {esc(utc_now())} from run records.</p></div>",
        *tables,
        *(f"<p>{esc(n)}</p>" for n in (_footnotes(board, tests, agreement) if len(board) else [])),
    ]
    if details:
        parts += ["<h2>Every metric, per model</h2>",
                  f"<p>The table above shows {', '.join(PRIMARY)}; each model's block lists every metric "
                  f"its ok seeds report, with the value of each seed.</p>", *details]
    if curves:
        parts += ["<h2>Training loss</h2>",
                  f'<figure><img src="{curves}" alt="training-loss curves per model">'
                  "<figcaption>Each run's logged losses from its train_log.csv (every logged value where a model "
                  "logs nothing named loss), one line per seed: a moving average over 5% of the run, the logged "
                  "values faint behind it; the y axis spans the 1st to 99th percentile of each panel's values."
                  + (f" No training log: {esc(', '.join(no_log))}." if no_log else "")
                  + "</figcaption></figure>"]
    if plots:
        parts += ["<h2>Quality against cost</h2>", *plots]
    if grids:
        parts += ["<h2>Samples</h2>", *grids]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _significance_json(tests: dict[str, Significance]) -> dict[str, Any]:
    return {metric: {
        "method": t.method, "alpha": t.alpha, "higher_is_better": t.higher_is_better,
        "models": t.models, "letters": {m: v for m, v in t.letters.items() if m in t.models},
        "left_out": t.left_out, "pairs": [asdict(p) for p in t.pairs],
    } for metric, t in tests.items()}


def write_report(suite_dir: str | os.PathLike, compare: Sequence[str | os.PathLike] = ()) -> dict[str, Path]:
    """Rebuild leaderboard.{md,csv,json,html} in ``suite_dir`` from its run records.

    ``compare`` adds the runs of other results folders of the same suite version
    (:func:`genbench.compare.gather`), marked as compared; :class:`~genbench.errors.InputError`
    if one cannot be compared.
    """
    suite_dir = Path(suite_dir)
    sources: Sources = gather(suite_dir, compare)
    records = sources.records
    for problem in sources.problems:
        warnings.warn(f"skipped unreadable run record {problem}", stacklevel=2)
    compared_from = {r.model_name: str(cf.folder) for cf in sources.compared for r in cf.records}
    tests = significance(aggregate(records))
    agreement = rank_agreement(records)
    board = leaderboard_frame(records, tests, compared_from)
    suite_name = records[0].suite_name if records else suite_dir.name
    title = f"Leaderboard: {suite_name}"
    notes = _notes(records, sources.problems, suite_name, sources.compared)
    paths = {ext: suite_dir / f"leaderboard.{ext}" for ext in ("md", "csv", "json", "html")}
    md = render_markdown(board, title, notes, tests, agreement) if len(board) else f"# {title}\n\nNo runs.\n"
    meta = metric_specs()
    revisions = revisions_by_model(records)
    summary = json_safe({
        "suite": suite_name,
        "generated": utc_now(),
        "notes": notes,
        "metrics": {k: {"unit": meta[k].unit, "higher_is_better": meta[k].higher_is_better}
                    for k in (ordered_metrics(board) if len(board) else []) if k in meta},
        "rows": [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
                 for row in board.to_dict(orient="records")],
        "compared": [{"folder": str(cf.folder), "models": cf.models, "runs": len(cf.records), "left_out": cf.left_out}
                     for cf in sources.compared],
        "significance": _significance_json(tests),
        "kendall_tau_fid_fid_ssl": agreement.to_json(),
        "statuses": list(STATUSES),
        "revisions": revisions,
        "dirty": sorted(m for m, revs in revisions.items() if any(r.endswith("-dirty") for r in revs)),
    })
    # One set: a reader (or a full disk) never leaves files that list different runs.
    atomic_write_files({
        paths["md"]: md,
        paths["csv"]: board.to_csv(index=False),
        paths["json"]: json_text(summary),
        paths["html"]: render_html(board, records, suite_dir, title, notes, tests, sources.folder_of, agreement),
    })
    return paths
