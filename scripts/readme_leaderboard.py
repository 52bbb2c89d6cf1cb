"""Fill README.md's headline leaderboard from the committed run records.

Every block ``<!-- leaderboard:SUITE -->`` ... ``<!-- /leaderboard -->`` in the file is
replaced by :func:`genbench.report.markdown_page.headline_markdown` of ``results/SUITE`` (the primary
columns of that suite's leaderboard, rebuilt from its ``run.json`` records), so the
README's numbers are never copied by hand. ``tests/test_readme.py`` fails when a block
differs from what this script would write.

    python scripts/readme_leaderboard.py            # rewrite README.md in place
    python scripts/readme_leaderboard.py --check    # exit 1 if a block is stale
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from genbench.files.atomic import atomic_write_text
from genbench.report.markdown_page import headline_markdown

ROOT = Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"(<!-- leaderboard:(?P<suite>[\w.-]+) -->\n)(?P<body>.*?)(<!-- /leaderboard -->)", re.DOTALL)


def fill(text: str, results: Path) -> str:
    """``text`` with every leaderboard block rebuilt from ``results/<suite>``."""
    return BLOCK.sub(lambda m: m.group(1) + "\n" + headline_markdown(results / m.group("suite")) + "\n" + m.group(4),
                     text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md")
    parser.add_argument("--results", type=Path, default=ROOT / "results")
    parser.add_argument("--check", action="store_true", help="exit 1 if a block differs, write nothing")
    args = parser.parse_args()
    text = args.readme.read_text(encoding="utf-8")
    if not BLOCK.search(text):
        print(f"Error: {args.readme} has no <!-- leaderboard:SUITE --> ... <!-- /leaderboard --> block",
              file=sys.stderr)
        return 2
    new = fill(text, args.results)
    if args.check:
        if new != text:
            print(f"{args.readme}: leaderboard block is stale; run python scripts/readme_leaderboard.py",
                  file=sys.stderr)
            return 1
        return 0
    if new != text:
        atomic_write_text(args.readme, new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
