"""MkDocs hooks (mkdocs.yml ``hooks:``): the docs' tables of metrics are written from the registries, so a
registered metric or group appears in them without editing a page.

A page holds a marker line where a table goes: ``<!-- genbench:metric-groups -->`` (the
``--metrics`` groups: keys, what they need, what they are); ``<!-- genbench:sanity-families -->``,
``<!-- genbench:sanity-expectations -->`` and ``<!-- genbench:sanity-criteria -->`` (``genbench
sanity``'s families, its declared expectations and its pass/fail thresholds, from
:mod:`genbench.sanity`). The committed sanity heatmaps, which live beside their data in
``results/sanity/``, are added to the site as ``results/sanity-DATASET.png``.
"""

from __future__ import annotations

from pathlib import Path

from genbench.metrics import metric_groups
from genbench.metrics.group import NEEDS

MARKERS = {"<!-- genbench:metric-groups -->": "metric_groups_table",
           "<!-- genbench:sanity-families -->": "sanity_families_table",
           "<!-- genbench:sanity-expectations -->": "sanity_expectations_table",
           "<!-- genbench:sanity-criteria -->": "sanity_criteria_list",
           "<!-- genbench:main-table-evidence -->": "main_table_evidence_table"}
# How a group's needs read in the table; the samples' features from the --features lens are what
# every feature group needs, so only the rest is named.
_NEED_WORDS = {
    "logits": "class logits",
    "domain_classifier": "the domain classifier",
    "reference_labels": "reference labels",
    "ssl_lens": "the self-supervised lens",
    "pixels": "pixels",
    "train": "the training images",
}


def metric_groups_table() -> str:
    """The ``--metrics`` groups as a Markdown table, in registration order."""
    rows = ["| `--metrics` group | keys in `eval.json` | needs | what ([Metrics](metrics.md)) |",
            "| --- | --- | --- | --- |"]
    for group in metric_groups().values():
        needs = [_NEED_WORDS[n] for n in NEEDS if n in group.needs and n in _NEED_WORDS] or ["features"]
        keys = ", ".join(f"`{k}`" for k in group.keys)
        rows.append(f"| `{group.name}` | {keys} | {', '.join(needs)} | {group.description} |")
    return "\n".join(rows)


def sanity_families_table() -> str:
    """``genbench sanity``'s families with their levels (the base in bold) and --quick's levels."""
    from genbench.sanity.families import FAMILIES

    rows = ["| family | kind | what | level | levels (base in bold) | `--quick` |",
            "| --- | --- | --- | --- | --- | --- |"]
    for f in FAMILIES:
        levels = ", ".join(f"**{v:g}**" if v == f.base else f"{v:g}" for v in f.levels)
        rows.append(f"| `{f.name}` | {f.kind} | {f.what} | {f.severity} | {levels} | "
                    f"{', '.join(f'{v:g}' for v in f.quick_levels())} |")
    return "\n".join(rows)


def sanity_expectations_table() -> str:
    """What every role of metric should do under each family, the roles' metrics and the exceptions."""
    from genbench.sanity.report import expectations_table

    return expectations_table()


def sanity_criteria_list() -> str:
    """The pass/fail thresholds of a sanity cell, as a list."""
    from genbench.sanity.judge import FLAT_BAND, RHO_MIN, SPREAD_FLOOR, SPREAD_FLOOR_ABS, SWING_MIN

    return "\n".join([
        f"- **worse / better**: Spearman's rho in the expected direction at least **{RHO_MIN:g}**, and a swing "
        f"(base to strongest level) of at least **{SWING_MIN:g}** spreads the expected way;",
        f"- **flat**: every level's mean within **{FLAT_BAND:g}** spreads of the base's;",
        f"- **spread**: the standard deviation over seeds at the base level, at least **{SPREAD_FLOOR:g}** times the "
        f"base mean's magnitude and at least {SPREAD_FLOOR_ABS:g}.",
    ])


def on_page_markdown(markdown: str, **kwargs: object) -> str:
    for marker, render in MARKERS.items():
        if marker in markdown:
            markdown = markdown.replace(marker, globals()[render]())
    return markdown


REPO = Path(__file__).resolve().parents[1]
SANITY_DATASETS = ("mnist", "fashion-mnist")


def main_table_evidence_table() -> str:
    """Per judged metric: its role, whether the main table shows it, and its meant-for cells (the families it
    should move in) passed on each committed sanity matrix, the failed ones named."""
    import json

    from genbench.report.table import LEFT_OUT_OF_MAIN, PRIMARY
    from genbench.sanity.families import ROLE_WORDS, ROLES

    cells = {}
    for dataset in SANITY_DATASETS:
        data = json.loads((REPO / "results" / "sanity" / dataset / "sanity.json").read_text(encoding="utf-8"))
        for c in data["cells"]:
            if c["expectation"] in ("worse", "better"):
                cells.setdefault(c["metric"], {}).setdefault(dataset, []).append((c["family"], c["verdict"]))
    rows = ["| metric | role | main table | " + " | ".join(f"{d}: meant-for checks passed" for d in SANITY_DATASETS)
            + " | not passed (failed, or null where marked) |",
            "|---|---|---|" + "---|" * len(SANITY_DATASETS) + "---|"]
    for metric in sorted(cells, key=lambda m: (m not in PRIMARY, list(ROLES).index(m) if m in ROLES else 99)):
        by = cells[metric]
        passed = [f"{sum(v == 'pass' for _, v in by.get(d, []))} of {len(by.get(d, []))}" for d in SANITY_DATASETS]
        failed = sorted({f"{f} ({d}{'' if v == 'fail' else ', ' + v})" for d in SANITY_DATASETS
                         for f, v in by.get(d, []) if v != "pass"})
        shown = "yes" if metric in PRIMARY else ("left out: " + LEFT_OUT_OF_MAIN[metric] if metric in
                                                 LEFT_OUT_OF_MAIN else "no")
        rows.append(f"| `{metric}` | {ROLE_WORDS.get(ROLES.get(metric, ''), '')} | {shown} | " + " | ".join(passed)
                    + f" | {', '.join(failed) or '—'} |")
    return "\n".join(rows)


def on_files(files, config, **kwargs: object):
    """Add each committed sanity heatmap to the site (a missing one is left out; the page's link then fails
    the strict build, which is what should happen)."""
    from mkdocs.structure.files import File

    for dataset in SANITY_DATASETS:
        png = REPO / "results" / "sanity" / dataset / "sanity.png"
        if png.is_file():
            files.append(File.generated(config, f"results/sanity-{dataset}.png", abs_src_path=str(png)))
    return files
