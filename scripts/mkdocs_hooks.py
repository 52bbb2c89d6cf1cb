"""MkDocs hooks (mkdocs.yml ``hooks:``): the docs' tables of metrics are written from the registries, so a
registered metric or group appears in them without editing a page.

A page holds a marker line where a table goes: ``<!-- genbench:metric-groups -->`` (the
``--metrics`` groups: keys, what they need, what they are); ``<!-- genbench:sanity-families -->``,
``<!-- genbench:sanity-expectations -->`` and ``<!-- genbench:sanity-criteria -->`` (``genbench
sanity``'s families, its declared expectations and its pass/fail thresholds, from
:mod:`genbench.sanity`).
"""

from __future__ import annotations

from genbench.metrics import metric_groups
from genbench.metrics.group import NEEDS

MARKERS = {"<!-- genbench:metric-groups -->": "metric_groups_table",
           "<!-- genbench:sanity-families -->": "sanity_families_table",
           "<!-- genbench:sanity-expectations -->": "sanity_expectations_table",
           "<!-- genbench:sanity-criteria -->": "sanity_criteria_list"}
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
