"""Leaderboard reports: Markdown, CSV, JSON and one self-contained HTML page.

Everything is rebuilt from the run records on disk (``genbench report``); the HTML
page embeds its sample grids and plots as data URIs, so it opens offline.
"""

from __future__ import annotations

import base64
import html
import io
import math
import os
import warnings
from pathlib import Path
from typing import Any

import pandas as pd

from genbench.io import atomic_write_files, json_text
from genbench.results import (
    STATUSES,
    RunRecord,
    _metric_meta,
    _ordered_metrics,
    _fmt,
    collect_runs,
    json_safe,
    leaderboard_frame,
    render_markdown,
    utc_now,
)


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


def render_html(board: pd.DataFrame, records: list[RunRecord], suite_dir: Path, title: str, notes: list[str]) -> str:
    meta = _metric_meta()
    metrics = _ordered_metrics(board) if len(board) else []
    esc = html.escape
    head = ["model", "seeds ok/div/fail", "images seen"]
    for m in metrics:
        spec = meta.get(m)
        head.append(m + (f" {spec.arrow}" if spec and spec.arrow else "") + (f" [{spec.unit}]" if spec and spec.unit else ""))
    rows = []
    for _, row in board.iterrows():
        cells = [row["model"], f"{row['n_ok']}/{row['n_diverged']}/{row['n_failed']}",
                 "—" if pd.isna(row["images_seen"]) else f"{int(row['images_seen']):,}"]
        cells += [_fmt(row[m], row.get(f"{m}_std", float("nan")), int(row.get(f"{m}_n", 0))) for m in metrics]
        rows.append("<tr>" + "".join(f"<td>{esc(str(c))}</td>" for c in cells) + "</tr>")
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
             "th{background:#f3f3f3}figure{display:inline-block;margin:8px;text-align:center}"
             "img{image-rendering:pixelated}.notes{color:#555}")
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">', f"<title>{esc(title)}</title>",
        f"<style>{style}</style></head><body>", f"<h1>{esc(title)}</h1>",
        '<div class="notes">' + "".join(f"<p>{esc(n)}</p>" for n in notes) + f"<p>Generated {esc(utc_now())} from run records.</p></div>",
        "<table><thead><tr>" + "".join(f"<th>{esc(h)}</th>" for h in head) + "</tr></thead><tbody>",
        *rows, "</tbody></table>",
        "<p>Mean ± sample std over ok seeds; ↑ higher is better, ↓ lower is better; — not applicable or no ok seed.</p>",
    ]
    if plots:
        parts += ["<h2>Quality against cost</h2>", *plots]
    if grids:
        parts += ["<h2>Samples</h2>", *grids]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_report(suite_dir: str | os.PathLike) -> dict[str, Path]:
    """Rebuild leaderboard.{md,csv,json,html} in ``suite_dir`` from its run records."""
    suite_dir = Path(suite_dir)
    records, problems = collect_runs(suite_dir)
    for problem in problems:
        warnings.warn(f"skipped unreadable run record {problem}", stacklevel=2)
    board = leaderboard_frame(records)
    suite_name = records[0].suite_name if records else suite_dir.name
    title = f"Leaderboard: {suite_name}"
    notes = _notes(records, problems, suite_name)
    paths = {ext: suite_dir / f"leaderboard.{ext}" for ext in ("md", "csv", "json", "html")}
    md = render_markdown(board, title, notes) if len(board) else f"# {title}\n\nNo runs.\n"
    meta = _metric_meta()
    summary = json_safe({
        "suite": suite_name,
        "generated": utc_now(),
        "notes": notes,
        "metrics": {k: {"unit": meta[k].unit, "higher_is_better": meta[k].higher_is_better}
                    for k in (_ordered_metrics(board) if len(board) else []) if k in meta},
        "rows": [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
                 for row in board.to_dict(orient="records")],
        "statuses": list(STATUSES),
    })
    # One set: a reader (or a full disk) never leaves files that list different runs.
    atomic_write_files({
        paths["md"]: md,
        paths["csv"]: board.to_csv(index=False),
        paths["json"]: json_text(summary),
        paths["html"]: render_html(board, records, suite_dir, title, notes),
    })
    return paths
