"""Leaderboards: Markdown, CSV, JSON and one self-contained HTML page, rebuilt from run records.

Rows come from :func:`genbench.aggregate.aggregate` (the aggregation ``genbench
check`` uses too): mean ± sample std over ok seeds. Competitors are ordered by mean
FID; the primary metrics (FID for sample quality, NLL for likelihood) carry a
compact letter display of which differences are significant over seeds
(:mod:`genbench.significance`). Reference rows (floor, ceiling, memorizer; a
generator's ``role``) are shown apart, in a table of their own, and never ranked.
The HTML page embeds its sample grids and plots as data URIs, so it opens offline.
"""

from __future__ import annotations

import base64
import html
import io
import math
import os
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd

from genbench.aggregate import ModelSummary, aggregate
from genbench.io import atomic_write_files, json_text
from genbench.protocol import Role
from genbench.results import STATUSES, RunRecord, collect_runs, json_safe, utc_now
from genbench.significance import Significance, compare_models

# Leaderboard column order; other metrics follow alphabetically.
PREFERRED_ORDER = [
    "fid", "kid", "is", "precision", "recall", "density", "coverage", "confident_fraction", "copy_fraction",
    "nll_bpd", "psnr", "ssim", "mse", "completion_psnr", "completion_mse",
    "train_images_per_s", "sample_images_per_s", "peak_memory_mb", "num_parameters",
]
# Per-run extras that are not compared across models in the leaderboard.
HIDDEN = {"fid_ci_low", "fid_ci_high", "kid_std", "is_std", "nll_is_bound", "n_samples", "nll_bpd_stderr",
          "feature_images_per_s"}
# Metrics whose differences between competitors are tested for significance.
SIGNIFICANCE_METRICS = ("fid", "nll_bpd")
# Reference rows, in the order they are listed.
REFERENCE_ROLES = (Role.CEILING, Role.MEMORIZER, Role.FLOOR)
ROLE_NOTES = {
    Role.CEILING: "real images no model trained on and no metric uses as reference: the best a model can expect",
    Role.MEMORIZER: "training images returned verbatim: good FID, caught by copy_fraction",
    Role.FLOOR: "each pixel on its own: a likelihood model that learns anything should beat its NLL",
}
_BASE = ("model", "role", "seeds", "images_seen", "budget_kind", *(f"n_{s}" for s in STATUSES))


def metric_meta() -> dict[str, Any]:
    import genbench.metrics  # noqa: F401  (registers every metric's metadata)
    from genbench.registry import METRICS

    return METRICS


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
    meta = metric_meta()
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


def leaderboard_frame(records: list[RunRecord], tests: dict[str, Significance] | None = None) -> pd.DataFrame:
    """One row per model: role, seeds, status counts, then mean, std and n of every metric over ok seeds.

    Competitors come first, by mean FID; reference rows follow. ``tests`` (from
    :func:`significance`) add a ``<metric>_group`` column of letters per tested metric.
    """
    summaries = aggregate(records)
    rows = []
    for s in sorted(summaries.values(), key=_sort_key):
        entry: dict[str, Any] = {
            "model": s.name,
            "role": s.role.value,
            "seeds": sum(s.status.values()),
            **{f"n_{status}": s.status.get(status, 0) for status in STATUSES},
            "images_seen": math.fsum(s.images_seen) / len(s.images_seen) if s.images_seen else float("nan"),
            "budget_kind": ",".join(sorted(s.budget_kinds)),
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
    return sorted(metrics, key=lambda m: (PREFERRED_ORDER.index(m) if m in PREFERRED_ORDER else len(PREFERRED_ORDER), m))


def _label(metric: str, meta: dict[str, Any]) -> str:
    spec = meta.get(metric)
    return metric + (f" {spec.arrow}" if spec and spec.arrow else "") + (f" [{spec.unit}]" if spec and spec.unit else "")


def _tables(board: pd.DataFrame, tests: dict[str, Significance]) -> list[tuple[str, list[str], list[list[str]]]]:
    """(caption, header, rows) of the competitors' table and, if any, the reference rows' table."""
    meta = metric_meta()
    metrics = ordered_metrics(board)
    grouped = {m for m, t in tests.items() if any(t.letters.values())}
    out = []
    for caption, competitors in (("", True), ("Reference rows (not ranked)", False)):
        part = board[(board["role"] == Role.COMPETITOR.value) == competitors]
        if not len(part):
            continue
        header = (["model"] if competitors else ["reference", "model"]) + ["seeds (ok/div/fail)", "images seen"]
        for m in metrics:
            header.append(_label(m, meta))
            if competitors and m in grouped:
                header.append(f"{m} group")
        rows = []
        for _, row in part.iterrows():
            cells = [] if competitors else [str(row["role"])]
            cells += [str(row["model"]), f"{row['n_ok']}/{row['n_diverged']}/{row['n_failed']}",
                      "—" if pd.isna(row["images_seen"]) else f"{int(row['images_seen']):,}"]
            for m in metrics:
                n = row.get(f"{m}_n")
                cells.append(fmt(row[m], row.get(f"{m}_std", float("nan")), 0 if pd.isna(n) else int(n)))
                if competitors and m in grouped:
                    cells.append(row.get(f"{m}_group") or "—")
            rows.append(cells)
        out.append((caption, header, rows))
    return out


def _footnotes(board: pd.DataFrame, tests: dict[str, Significance]) -> list[str]:
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
    roles = [Role(r) for r in board["role"] if r != Role.COMPETITOR.value] if len(board) else []
    if roles:
        notes.append("Reference rows anchor the scale and are not ranked: " + "; ".join(
            f"{role.value} `{name}`: {ROLE_NOTES[role]}"
            for role, name in zip(roles, board.loc[board["role"] != Role.COMPETITOR.value, "model"])) + ".")
    else:
        notes.append("No reference rows (floor, ceiling, memorizer) in these run records.")
    return notes


def render_markdown(board: pd.DataFrame, title: str, notes: list[str] | None = None,
                    tests: dict[str, Significance] | None = None) -> str:
    tests = tests or {}
    lines = [f"# {title}", ""]
    lines += [f"{n}" for n in (notes or [])]
    if notes:
        lines.append("")
    for caption, header, rows in _tables(board, tests):
        if caption:
            lines += [f"## {caption}", ""]
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "|".join("---" for _ in header) + "|")
        lines += ["| " + " | ".join(cells) + " |" for cells in rows]
        lines.append("")
    lines += [f"{n}\n" for n in _footnotes(board, tests)]
    return "\n".join(lines)


def _notes(records: list[RunRecord], problems: list[str], suite_name: str) -> list[str]:
    notes = []
    if records:
        versions = sorted({str(r.suite.get("version")) for r in records})
        kinds = sorted({r.budget.get("kind", "?") for r in records})
        notes.append(f"Suite `{suite_name}` version {', '.join(versions)}; budgets in {', '.join(kinds)} "
                     f"({'equal wall-clock budgets' if kinds == ['seconds'] else 'work-based budgets with a seconds cap'}); "
                     f"{len(records)} run(s); dataset {records[0].dataset}.")
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
    if problems:
        notes.append(f"Skipped {len(problems)} unreadable run record(s): " + "; ".join(problems))
    return notes


def _png_data_uri(path: Path) -> str | None:
    try:
        return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")
    except OSError:
        return None


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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.8), dpi=100)
    for name in sorted({p[0] for p in points}):
        xs = [p[1] for p in points if p[0] == name]
        ys = [p[2] for p in points if p[0] == name]
        ax.scatter(xs, ys, label=name, s=30)
    if log_x:
        ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(x_label)
    ax.set_ylabel("FID (domain features, lower is better)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def render_html(board: pd.DataFrame, records: list[RunRecord], suite_dir: Path, title: str, notes: list[str],
                tests: dict[str, Significance] | None = None) -> str:
    tests = tests or {}
    esc = html.escape
    tables = []
    for caption, header, rows in _tables(board, tests) if len(board) else []:
        cls = ' class="reference"' if caption else ""
        tables.append((f"<h2>{esc(caption)}</h2>" if caption else "")
                      + f"<table{cls}><thead><tr>" + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr></thead><tbody>"
                      + "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in cells) + "</tr>" for cells in rows)
                      + "</tbody></table>")
    grids = []
    for model in board["model"] if len(board) else []:
        seeds = sorted(r.seed for r in records if r.model_name == model)
        for seed in seeds[:1]:
            uri = _png_data_uri(suite_dir / model / f"seed{seed}" / "samples.png")
            if uri:
                grids.append(f'<figure><img src="{uri}" alt="samples of {esc(model)}" width="240">'
                             f"<figcaption>{esc(model)} (seed {seed})</figcaption></figure>")
    plots = []
    for key, label, log_x in (("train_seconds", "training time [s]", False),
                              ("sample_images_per_s", "sampling throughput [img/s]", True)):
        uri = _plot(records, key, label, log_x)
        if uri:
            plots.append(f'<figure><img src="{uri}" alt="FID against {esc(label)}"><figcaption>FID against {esc(label)}</figcaption></figure>')
    style = ("body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;font-size:14px}"
             "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td:first-child,th:first-child{text-align:left}"
             "th{background:#f3f3f3}table.reference td{background:#f7f7f2;font-style:italic}"
             "figure{display:inline-block;margin:8px;text-align:center}"
             "img{image-rendering:pixelated}.notes{color:#555}")
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">', f"<title>{esc(title)}</title>",
        f"<style>{style}</style></head><body>", f"<h1>{esc(title)}</h1>",
        '<div class="notes">' + "".join(f"<p>{esc(n)}</p>" for n in notes) + f"<p>Generated {esc(utc_now())} from run records.</p></div>",
        *tables,
        *(f"<p>{esc(n)}</p>" for n in (_footnotes(board, tests) if len(board) else [])),
    ]
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


def write_report(suite_dir: str | os.PathLike) -> dict[str, Path]:
    """Rebuild leaderboard.{md,csv,json,html} in ``suite_dir`` from its run records."""
    suite_dir = Path(suite_dir)
    records, problems = collect_runs(suite_dir)
    for problem in problems:
        warnings.warn(f"skipped unreadable run record {problem}", stacklevel=2)
    tests = significance(aggregate(records))
    board = leaderboard_frame(records, tests)
    suite_name = records[0].suite_name if records else suite_dir.name
    title = f"Leaderboard: {suite_name}"
    notes = _notes(records, problems, suite_name)
    paths = {ext: suite_dir / f"leaderboard.{ext}" for ext in ("md", "csv", "json", "html")}
    md = render_markdown(board, title, notes, tests) if len(board) else f"# {title}\n\nNo runs.\n"
    meta = metric_meta()
    summary = json_safe({
        "suite": suite_name,
        "generated": utc_now(),
        "notes": notes,
        "metrics": {k: {"unit": meta[k].unit, "higher_is_better": meta[k].higher_is_better}
                    for k in (ordered_metrics(board) if len(board) else []) if k in meta},
        "rows": [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
                 for row in board.to_dict(orient="records")],
        "significance": _significance_json(tests),
        "statuses": list(STATUSES),
    })
    # One set: a reader (or a full disk) never leaves files that list different runs.
    atomic_write_files({
        paths["md"]: md,
        paths["csv"]: board.to_csv(index=False),
        paths["json"]: json_text(summary),
        paths["html"]: render_html(board, records, suite_dir, title, notes, tests),
    })
    return paths
