"""Untrusted text made safe for the terminal: file, model and suite names, paths, error messages.

A name may hold a newline (a forged extra output line), an ANSI escape sequence (clear the
screen, recolour or hide text), a bidirectional override (reorder what is shown) or rich
markup (``[red]``). Everything genbench prints that came from a file, a folder or a user
model goes through :func:`plain` (``click.echo``) or :func:`text` (rich).
"""

from __future__ import annotations

from rich.console import Console
from rich.text import Text

# Width of a table written to a pipe or a file: what a reader or a program gets in full, never cut to fit
# a terminal that is not there (rich assumes 80 columns then).
PIPED_WIDTH = 100_000


def plain(value: object) -> str:
    """``str(value)`` with every non-printable character escaped as Python does (``\\n``, ``\\x1b``, ``\\u202e``).

    Printable characters, including non-ASCII letters, are kept as they are.
    """
    string = str(value)
    if string.isprintable():
        return string
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in string)


def text(value: object, style: str = "") -> Text:
    """A rich :class:`~rich.text.Text` of :func:`plain` ``(value)``: shown literally, never parsed as markup or
    emoji."""
    return Text(plain(value), style=style)


def format_number(value: float | None) -> str:
    """A figure for a terminal table: three significant digits below 1000, whole with thousands separators
    from 1000 up, ``—`` for None."""
    if value is None:
        return "—"
    return f"{value:,.3g}" if abs(value) < 1000 else f"{value:,.0f}"


def table_console(stderr: bool = False) -> Console:
    """A rich console for tables: the terminal's width in a terminal, else wide enough that no cell is cut."""
    console = Console(stderr=stderr)
    return console if console.is_terminal else Console(stderr=stderr, width=PIPED_WIDTH)
