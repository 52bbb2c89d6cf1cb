"""The command line's list syntax, split in one place: ``a,b,c`` and ``KEY=VALUE[,KEY=VALUE]``.

``--models``, ``--seeds``, ``--budget``, ``--tol`` and ``--set`` (and list-valued model
settings) split their text here; each caller keeps its own checks of keys and values
and its own error wording.
"""

from __future__ import annotations


def split_items(text: str | None) -> list[str]:
    """Comma-separated items, stripped, blank ones dropped: ``" a, b,,c "`` -> ``["a", "b", "c"]``."""
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def split_pair(item: str) -> tuple[str, str] | None:
    """``" key = value "`` -> ``("key", "value")``; None without ``=`` or with an empty key.

    Only the first ``=`` separates, so a value may hold more (``a=b=c`` -> ``("a", "b=c")``).
    """
    key, eq, value = item.partition("=")
    key = key.strip()
    return (key, value.strip()) if eq and key else None
