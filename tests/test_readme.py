"""README.md's headline leaderboard is generated from the committed run records, never copied by hand."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from genbench.errors import InputError
from genbench.report.markdown_page import headline_markdown

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
BLOCK = re.compile(r"<!-- leaderboard:(?P<suite>[\w.-]+) -->\n(?P<body>.*?)<!-- /leaderboard -->", re.DOTALL)


def test_readme_leaderboard_blocks_equal_what_the_records_give():
    blocks = list(BLOCK.finditer(README.read_text(encoding="utf-8")))
    assert [b.group("suite") for b in blocks] == ["mnist-small"]
    for block in blocks:
        expected = "\n" + headline_markdown(ROOT / "results" / block.group("suite")) + "\n"
        assert block.group("body") == expected, "stale README block: run python scripts/readme_leaderboard.py"


def test_headline_is_the_leaderboards_own_rows_and_numbers():
    # Every row of the headline is a row of leaderboard.md with the same cells in the shared columns.
    suite = ROOT / "results" / "mnist-small"
    # leaderboard.md's main tables (competitors, reference rows); its "Every metric" table follows them
    full = _tables((suite / "leaderboard.md").read_text(encoding="utf-8"))[:2]
    head = _tables(headline_markdown(suite))
    assert len(head) == len(full) == 2
    for (h_header, h_rows), (f_header, f_rows) in zip(head, full, strict=True):
        assert set(h_header) <= set(f_header)
        assert [r[0] for r in h_rows] == [r[0] for r in f_rows]
        for h_row, f_row in zip(h_rows, f_rows, strict=True):
            full_cells = dict(zip(f_header, f_row, strict=True))
            assert dict(zip(h_header, h_row, strict=True)) == {c: full_cells[c] for c in h_header}


def test_headline_refuses_an_unreadable_record(tmp_path):
    suite = tmp_path / "mnist-small"
    shutil.copytree(ROOT / "results" / "mnist-small" / "vae", suite / "vae")
    (suite / "vae" / "seed1" / "run.json").write_text("{", encoding="utf-8")
    with pytest.raises(InputError, match=r"^unreadable run records in .*seed1/run\.json: not valid JSON"):
        headline_markdown(suite)


def test_readme_stays_a_front_door():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 250
    assert "../shared" not in text
    assert "\npython -m pytest " in text.replace("```bash\n", "\n")  # the test command CI runs


def _tables(markdown: str) -> list[tuple[list[str], list[list[str]]]]:
    tables, current = [], None
    for line in markdown.splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if current is None:
                current = (cells, [])
                tables.append(current)
            elif set(line) != {"|", "-"}:
                current[1].append(cells)
        else:
            current = None
    return tables
