"""The outputs of ``genbench sanity``: ``sanity.json`` (every value of every set, every cell, the command, the
machine and the genbench revision), ``sanity.md`` (the matrix) and ``sanity.png`` (the matrix as a heatmap)."""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

from genbench.sanity.families import EXPECT, OVERRIDES, ROLE_ORDER, ROLE_WORDS, ROLES
from genbench.sanity.judge import FLAT_BAND, RHO_MIN, SPREAD_FLOOR, SPREAD_FLOOR_ABS, SWING_MIN, Cell
from genbench.sanity.run import SanityResult, judged_direction

SCHEMA = "genbench-sanity/1"
FILES = ("sanity.json", "sanity.md", "sanity.png")
SYMBOL = {"pass": "✓", "fail": "✗", "none": "·", "null": "∅"}
SIGMA, RHO, DASH = "\u03c3", "\u03c1", "\u2013"  # escaped: ruff reads the letters as look-alikes


def criteria() -> dict[str, float]:
    return {"rho_min": RHO_MIN, "swing_min_spreads": SWING_MIN, "flat_band_spreads": FLAT_BAND,
            "spread_floor_relative": SPREAD_FLOOR, "spread_floor_absolute": SPREAD_FLOOR_ABS}


def _num(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def to_json(result: SanityResult, *, command: str, machine: dict, genbench: dict, created: str,
            wall_seconds: float) -> dict[str, Any]:
    """The whole run as JSON. Everything but ``timings`` and ``created`` is the same for the same seeds."""
    from genbench.metrics import metric_specs

    specs = metric_specs()
    counts: dict[str, int] = {}
    for cell in result.cells.values():
        counts[cell.verdict] = counts.get(cell.verdict, 0) + 1
    return {
        "schema": SCHEMA,
        "dataset": result.dataset,
        "command": command,
        "machine": machine,
        "genbench": genbench,
        "created": created,
        "settings": {"n": result.n, "seeds": result.seeds, "quick": result.quick, "metric_groups": result.groups,
                     "skipped_groups": result.skipped_groups, "criteria": criteria()},
        "metrics": {k: {"role": ROLES.get(k), "higher_is_better": specs[k].higher_is_better,
                        "judged_higher_is_better": judged_direction(k)} for k in result.keys},
        "undeclared": result.undeclared,
        "families": [{"name": f.name, "kind": f.kind, "what": f.what, "severity": f.severity,
                      "levels": list(result.levels[f.name]), "base": f.base} for f in result.families],
        "sets": [{"family": s.family, "level": s.level, "seed": s.seed, "n": s.n,
                  "metrics": {k: _num(v) for k, v in s.metrics.items()}, "null_reasons": s.null_reasons}
                 for s in result.sets],
        "cells": [{"family": fam, "metric": key, **cell.to_json()} for (fam, key), cell in result.cells.items()],
        "summary": counts,
        "timings": {"wall_seconds": round(wall_seconds, 1), "build_seconds": round(result.build_seconds, 2),
                    "scored_sets": result.scored_sets, "workers": result.workers,
                    "group_seconds": {g: round(t, 2) for g, t in result.group_seconds.items()}},
    }


def cell_text(cell: Cell) -> str:
    """One matrix cell: the verdict's symbol, then rho (and the mildest level's change in spreads) for a
    direction, the largest change in spreads for ``flat``, rho for no expectation."""
    sym = SYMBOL[cell.verdict]
    if cell.verdict == "null":
        return sym
    if cell.rho is None and cell.max_dev is None:
        return DASH
    rho = f"{RHO} n/a" if cell.rho is None or not math.isfinite(cell.rho) else f"{cell.rho:+.2f}"
    if cell.expectation == "flat":
        return f"{sym} ≤{cell.max_dev:.1f}{SIGMA}"
    if cell.expectation in ("worse", "better"):
        return f"{sym} {rho} ({cell.sensitivity:+.1f}{SIGMA})"
    return f"{sym} {rho}"


def markdown(data: dict[str, Any]) -> str:
    """The matrix page of one run (metrics down, families across), its legend and the failing cells."""
    families = [f["name"] for f in data["families"]]
    keys = list(data["metrics"])
    cells = {(c["family"], c["metric"]): c for c in data["cells"]}
    lines = [f"# Metric sanity matrix: {data['dataset']}", ""]
    rev = data["genbench"]
    lines += [f"`{data['command']}` — genbench {rev.get('version')}, revision `{rev.get('revision')}`, "
              f"{data['machine'].get('processor')} ({data['machine'].get('cpu_count')} cores); "
              f"{data['settings']['n']} images per set, seeds {', '.join(map(str, data['settings']['seeds']))}"
              + (" (--quick)" if data["settings"]["quick"] else "") + ".", ""]
    head = "| metric | " + " | ".join(f.replace("_", " ") for f in families) + " |"
    lines += [head, "| --- |" + " --- |" * len(families)]
    from genbench.metrics import metric_specs

    specs = metric_specs()
    for key in keys:
        arrow = {True: "↑", False: "↓", None: ""}[data["metrics"][key]["judged_higher_is_better"]]
        row = []
        for fam in families:
            cell = cells.get((fam, key))
            row.append("" if cell is None else cell_text(Cell(**{k: cell[k] for k in Cell.__dataclass_fields__})))
        lines.append(f"| `{key}` {arrow}{'' if specs[key].higher_is_better is not None else '*'} | "
                     + " | ".join(row) + " |")
    s = data["summary"]
    lines += ["", f"{s.get('pass', 0)} pass, {s.get('fail', 0)} fail, {s.get('none', 0)} without expectation, "
                  f"{s.get('null', 0)} null.", ""]
    lines += [f"✓ pass, ✗ fail, · no expectation (not judged), ∅ the metric was null for some set, {DASH} not "
              f"computed. For a metric that should move: {RHO} (Spearman, metric against severity over every "
              f"set) and, in brackets, the change at the mildest level in seed-to-seed spreads {SIGMA} "
              f"(positive: the expected way). For a metric that should not move: its largest change in {SIGMA}. "
              "↑/↓: the metric's direction "
              "(* read for the checks only, not in the registry). Criteria and families: docs/sanity.md.", ""]
    if data["undeclared"]:
        lines += [f"Metrics without a declared role (not judged): {', '.join(data['undeclared'])}.", ""]
    if data["settings"]["skipped_groups"]:
        lines += ["Not scored: " + "; ".join(f"`{g}`: {why}" for g, why in data["settings"]["skipped_groups"].items())
                  + ".", ""]
    failing = [c for c in data["cells"] if c["verdict"] == "fail"]
    if failing:
        lines += ["## Failing cells", "", "| family | metric | expected | why |", "| --- | --- | --- | --- |"]
        lines += [f"| {c['family']} | `{c['metric']}` | {c['expectation']} | {c['reason']} |" for c in failing]
        lines.append("")
    lines += ["## Families", "", "| family | what | severity | levels |", "| --- | --- | --- | --- |"]
    lines += [f"| {f['name']} | {f['what']} | {f['severity']} | "
              f"{', '.join(('**' + format(v, 'g') + '**') if v == f['base'] else format(v, 'g') for v in f['levels'])}"
              " |" for f in data["families"]]
    lines += ["", "The base level (bold) is the unchanged set the others are compared with.", ""]
    return "\n".join(lines)


def heatmap_png(data: dict[str, Any]) -> bytes:
    """The matrix as a PNG: one coloured square per cell (green pass, red fail, gray no expectation, white
    null or not computed), with rho, or the largest change in spreads for a flat expectation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.colors import ListedColormap

    families = [f["name"] for f in data["families"]]
    keys = list(data["metrics"])
    cells = {(c["family"], c["metric"]): c for c in data["cells"]}
    code = {"pass": 3, "fail": 2, "none": 1, "null": 0}
    grid = np.zeros((len(keys), len(families)))
    fig, ax = plt.subplots(figsize=(1.0 + 0.75 * len(families), 1.2 + 0.36 * len(keys)), dpi=110)
    for i, key in enumerate(keys):
        for j, fam in enumerate(families):
            c = cells.get((fam, key))
            computed = c is not None and (c["rho"] is not None or c["max_dev"] is not None)
            grid[i, j] = code[c["verdict"]] if computed else 0
            if not computed:
                continue
            if c["expectation"] == "flat" and c["max_dev"] is not None:
                label = f"{c['max_dev']:.1f}{SIGMA}" if c["max_dev"] < 100 else f">99{SIGMA}"
            else:
                label = "" if c["rho"] is None else f"{c['rho']:+.2f}"
            ax.text(j, i, label, ha="center", va="center", fontsize=7)
    ax.imshow(grid, cmap=ListedColormap(["#ffffff", "#e0e0e0", "#f4a3a3", "#a8dca8"]), vmin=0, vmax=3,
              aspect="auto")
    ax.set_xticks(range(len(families)), [f.replace("_", " ") for f in families], rotation=40, ha="right",
                  fontsize=8)
    ax.set_yticks(range(len(keys)), keys, fontsize=8)
    ax.set_title(f"genbench sanity: {data['dataset']} (green pass, red fail, gray no expectation)", fontsize=9)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    plt.close(fig)
    return buffer.getvalue()


def write_outputs(folder: Path, data: dict[str, Any]) -> list[Path]:
    """``sanity.json``, ``sanity.md`` and ``sanity.png`` in ``folder``, replaced together."""
    from genbench.files.atomic import atomic_write_files, json_text

    paths = [folder / name for name in FILES]
    atomic_write_files({paths[0]: json_text(data), paths[1]: markdown(data), paths[2]: heatmap_png(data)})
    return paths


def expectations_table() -> str:
    """The declarations (families down, roles across, then each role's metrics and the exceptions) as Markdown,
    for the docs page."""
    from genbench.metrics import metric_specs

    registered = metric_specs()
    lines = ["| family | " + " | ".join(r.replace("_", " ") for r in ROLE_ORDER) + " |",
             "| --- |" + " --- |" * len(ROLE_ORDER)]
    lines += [f"| {fam} | " + " | ".join(exp) + " |" for fam, exp in EXPECT.items()]
    lines += ["", "| role | what | metrics |", "| --- | --- | --- |"]
    for role in ROLE_ORDER:
        keys = [f"`{k}`" for k, r in ROLES.items() if r == role and k in registered]
        lines.append(f"| {role.replace('_', ' ')} | {ROLE_WORDS[role]} | {', '.join(keys)} |")
    if OVERRIDES:
        lines += ["", "Exceptions: " + "; ".join(f"`{k}` under {fam}: {exp}" for (fam, k), exp in OVERRIDES.items())
                  + "."]
    return "\n".join(lines)
