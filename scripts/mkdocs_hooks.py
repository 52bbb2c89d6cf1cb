"""MkDocs hooks (mkdocs.yml ``hooks:``): the docs' tables of metrics are written from the registries, so a
registered metric or group appears in them without editing a page.

A page holds a marker line where a table goes: ``<!-- genbench:metric-groups -->`` (the
``--metrics`` groups: keys, what they need, what they are).
"""

from __future__ import annotations

from genbench.metrics import metric_groups
from genbench.metrics.group import NEEDS

MARKERS = {"<!-- genbench:metric-groups -->": "metric_groups_table"}
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


def on_page_markdown(markdown: str, **kwargs: object) -> str:
    for marker, render in MARKERS.items():
        if marker in markdown:
            markdown = markdown.replace(marker, globals()[render]())
    return markdown
