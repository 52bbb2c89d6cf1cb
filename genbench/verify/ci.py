"""What CI reads from ``genbench check`` and ``genbench speed``: JUnit XML, a Markdown summary and
github-action-benchmark's custom JSON.

- JUnit XML (``--junit-xml FILE``): one ``<testcase>`` per compared figure (model x metric for
  check, model x figure for speed), ``<failure>`` for a verdict that makes the command exit 1,
  ``<error>`` for one it cannot judge (a metric missing from the results). Written with
  :mod:`xml.etree.ElementTree`, so any test reporter that reads pytest's ``--junitxml`` reads it.
- Markdown (``--summary FILE``): the command's table and its count line; appended to the file
  ``$GITHUB_STEP_SUMMARY`` names as well when that variable is set (GitHub Actions shows that file
  on the run's page).
- Benchmark JSON (``--bench-bigger FILE`` / ``--bench-smaller FILE``): a list of
  ``{"name", "unit", "value", "range"?}``, the input of github-action-benchmark's
  ``customBiggerIsBetter`` and ``customSmallerIsBetter`` tools. One file per direction, as the
  action takes one tool per step; a metric without a better direction is in neither.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree

from genbench.errors import GenbenchError
from genbench.term import plain

STEP_SUMMARY_ENV = "GITHUB_STEP_SUMMARY"


@dataclass(frozen=True)
class Case:
    """One judged figure: a JUnit test case and a row of the Markdown summary."""

    model: str
    figure: str
    verdict: str
    failed: bool  # the verdict makes the command exit 1
    error: bool = False  # could not be judged (exit 2)
    detail: str = ""  # baseline, value and tolerance in words
    properties: dict[str, object] = field(default_factory=dict)


def junit_xml(suite: str, cases: Sequence[Case], seconds: float) -> bytes:
    """A JUnit XML document (``<testsuites><testsuite>...``) with one test case per :class:`Case`."""
    failures = sum(c.failed and not c.error for c in cases)
    errors = sum(c.error for c in cases)
    counts = {"tests": str(len(cases)), "failures": str(failures), "errors": str(errors), "skipped": "0",
              "time": f"{seconds:.3f}"}
    root = ElementTree.Element("testsuites", name="genbench", **counts)
    suite_el = ElementTree.SubElement(root, "testsuite", name=plain(suite), **counts,
                                      timestamp=time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()))
    for case in cases:
        element = ElementTree.SubElement(suite_el, "testcase", classname=plain(f"{suite}.{case.model}"),
                                         name=plain(case.figure), time="0")
        if case.properties:
            props = ElementTree.SubElement(element, "properties")
            for key, value in case.properties.items():
                ElementTree.SubElement(props, "property", name=key, value=plain("" if value is None else value))
        message = plain(f"{case.model} {case.figure}: {case.verdict}" + (f" ({case.detail})" if case.detail else ""))
        if case.error:
            ElementTree.SubElement(element, "error", message=message, type=plain(case.verdict)).text = message
        elif case.failed:
            ElementTree.SubElement(element, "failure", message=message, type=plain(case.verdict)).text = message
        else:
            ElementTree.SubElement(element, "system-out").text = message
    ElementTree.indent(root)
    return ElementTree.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def _cell(value: object) -> str:
    """A Markdown table cell: one line, '|' escaped (it would end the cell)."""
    return " ".join(plain(value).split()).replace("|", "\\|")


def markdown(title: str, header: Sequence[str], rows: Sequence[Sequence[object]], footer: Sequence[str]) -> str:
    """A Markdown section: ``### title``, a table, then one paragraph per footer line."""
    lines = [f"### {_cell(title)}", "", "| " + " | ".join(map(_cell, header)) + " |",
             "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(map(_cell, row)) + " |" for row in rows]
    for line in footer:
        lines += ["", _cell(line)]
    return "\n".join(lines) + "\n"


def bench_entry(name: str, unit: str, value: float, low: float | None = None, high: float | None = None) -> dict:
    """One github-action-benchmark entry; ``range`` is the half width of [low, high] when known."""
    entry: dict[str, object] = {"name": name, "unit": unit, "value": value}
    if low is not None and high is not None:
        entry["range"] = f"±{(high - low) / 2:.4g}"
    return entry


def write_outputs(*, junit: bytes | None = None, junit_path: str | None = None, summary: str | None = None,
                  summary_path: str | None = None, bench: dict[str, list[dict]] | None = None) -> None:
    """Write the CI files asked for; the summary also goes to ``$GITHUB_STEP_SUMMARY`` when it is set.

    ``bench`` maps a file path to its entries. An unwritable path is a one-line error.
    """
    from genbench.files.atomic import atomic_write_bytes, atomic_write_json, atomic_write_text

    try:
        if junit_path:
            atomic_write_bytes(junit_path, junit or b"")
        if summary_path:
            atomic_write_text(summary_path, summary or "")
        for path, entries in (bench or {}).items():
            atomic_write_json(path, entries)
    except OSError as exc:  # atomic_write_* raise GenbenchError for their own failures
        raise GenbenchError(f"cannot write a CI report: {exc.strerror or exc}") from None
    step_summary = os.environ.get(STEP_SUMMARY_ENV)
    if step_summary and summary is not None:
        # Appended, not replaced: every step of a GitHub job adds its own section to this file.
        try:
            with Path(step_summary).open("a", encoding="utf-8") as fh:
                fh.write(summary + "\n")
        except OSError as exc:
            raise GenbenchError(f"cannot append to ${STEP_SUMMARY_ENV} ({plain(step_summary)}): "
                                f"{exc.strerror or exc}") from None
