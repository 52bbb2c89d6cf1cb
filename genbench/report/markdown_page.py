"""The leaderboard as Markdown (``leaderboard.md``) and the headline block the README embeds."""

from __future__ import annotations

import os
from collections.abc import Sequence

import pandas as pd

from genbench.errors import InputError
from genbench.protocol import Role
from genbench.report.aggregate import aggregate
from genbench.report.compare import gather
from genbench.report.rank_agreement import RankAgreement, rank_agreement
from genbench.report.significance import Significance
from genbench.report.table import PRIMARY, _footnotes, _tables, leaderboard_frame, significance


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
    full = [(caption, header, rows) for caption, header, rows in _tables(board, {}, agreement=agreement)]
    if full:
        lines += ["## Every metric", "",
                  "Every metric any row reports (mean ± sample std over ok seeds), reference rows last.", ""]
        # One table: the competitors' rows gain their role, the reference rows' role moves after the model.
        header = ["model", "role", *full[0][1][(2 if full[0][0] else 1):]]
        rows = [[c[1], c[0], *c[2:]] if caption else [c[0], Role.COMPETITOR.value, *c[1:]]
                for caption, _, part in full for c in part]
        rows = [r + ["—"] * (len(header) - len(r)) for r in rows]  # reference rows have no rank
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
