"""Leaderboards: Markdown, CSV, JSON and one self-contained HTML page, rebuilt from run records.

Rows come from :func:`genbench.report.aggregate.aggregate` (the aggregation ``genbench
check`` uses too): mean ± sample std over ok seeds. Competitors are ordered by mean
FID; the primary metrics (FID for sample quality, NLL for likelihood) carry a
compact letter display of which differences are significant over seeds
(:mod:`genbench.report.significance`). Reference rows (floor, ceiling, memorizer; a
generator's ``role``) are shown apart, in a table of their own, and never ranked.
Rows of other results folders of the same suite version can be shown beside a
folder's own (``--compare``, :mod:`genbench.report.compare`); they are marked as such.

The HTML page fits a 1400-px window: its main table holds the primary metrics, and
every metric of a model (with per-seed values) is in that model's details block. It
shows the training-loss curves from each run's ``train_log.csv``, FID against cost
and the sample grids, all embedded as data URIs: it loads nothing, and its
Content-Security-Policy forbids any request, so it opens offline.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from genbench.files.atomic import atomic_write_files, json_text
from genbench.metrics import metric_specs
from genbench.report.aggregate import aggregate
from genbench.report.compare import Sources, gather
from genbench.report.html_page import render_html
from genbench.report.markdown_page import render_markdown
from genbench.report.rank_agreement import rank_agreement
from genbench.report.significance import Significance
from genbench.report.table import _notes, leaderboard_frame, ordered_metrics, revisions_by_model, significance
from genbench.results import STATUSES, json_safe, utc_now


def _significance_json(tests: dict[str, Significance]) -> dict[str, Any]:
    return {metric: {
        "method": t.method, "alpha": t.alpha, "higher_is_better": t.higher_is_better,
        "models": t.models, "letters": {m: v for m, v in t.letters.items() if m in t.models},
        "left_out": t.left_out, "pairs": [asdict(p) for p in t.pairs],
    } for metric, t in tests.items()}


def write_report(suite_dir: str | os.PathLike, compare: Sequence[str | os.PathLike] = ()) -> dict[str, Path]:
    """Rebuild leaderboard.{md,csv,json,html} in ``suite_dir`` from its run records.

    ``compare`` adds the runs of other results folders of the same suite version
    (:func:`genbench.report.compare.gather`), marked as compared; :class:`~genbench.errors.InputError`
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
