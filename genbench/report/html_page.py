"""The leaderboard as one self-contained HTML page: it loads nothing, and its Content-Security-Policy
forbids any request, so it opens offline."""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from genbench.metrics import metric_specs
from genbench.metrics.spec import MetricSpec
from genbench.report.aggregate import ModelSummary, aggregate
from genbench.report.plots import _loss_curves, _plot, _png_data_uri
from genbench.report.rank_agreement import RankAgreement
from genbench.report.significance import Significance
from genbench.report.table import (
    PREFERRED_ORDER,
    PRIMARY,
    THIS_FOLDER,
    _footnotes,
    _label,
    _tables,
    fmt,
    nll_marks,
)
from genbench.results import STATUSES, RunRecord, utc_now


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
        cell = fmt(summary.mean(key), summary.std(key), summary.n(key))
        if key == "nll_bpd":
            cell += nll_marks(summary.nll_is_bound, summary.mean(key))
        rows.append(f'<tr><td class="name">{esc(_label(key, meta))}</td>'
                    f'<td class="num">{_number_html(cell)}</td>'
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
    """A ``mean ± std`` cell that may wrap before the ``±`` and before a mark such as ``(bound)`` (and within
    the mark), never inside a number, when a table is tight."""
    number, marked, mark = cell.partition(" (")
    mean, sep, std = number.partition(" ± ")
    return (f'<span class="v">{html.escape(mean)}</span>' + (f' <span class="v">± {html.escape(std)}</span>'
                                                             if sep else "")
            + (f" <span>({html.escape(mark)}</span>" if marked else ""))


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
                if h == "model":  # a reference row's cell is "MODEL (ROLE)"
                    text = f'<a href="#{anchors[cell.split(" (")[0]]}">{text}</a>'
                elif h == "from" and cell != THIS_FOLDER:
                    text = _folder_html(cell, short)
                elif cls == "num" and (" ± " in cell or " (" in cell):
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
