"""The HTML page's figures (FID against cost, training-loss curves), drawn with matplotlib and
embedded as PNG data URIs."""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from genbench.results import RunRecord


def _png_data_uri(path: Path) -> str | None:
    try:
        return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")
    except OSError:
        return None


def _figure_uri(fig: Any) -> str:
    """A matplotlib Figure as a PNG data URI."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _mpl(label: str) -> str:
    """Text shown literally by matplotlib (a ``$`` would start math mode)."""
    return label.replace("$", r"\$")


_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "*")


def series_styles(n: int) -> list[tuple[tuple[float, float, float, float], str]]:
    """``n`` (RGBA colour, marker) pairs whose colours all differ: the palette is sized to ``n``.

    Up to 10 series get matplotlib's tab10, up to 20 tab20, more evenly spaced hues of
    a rainbow map; markers cycle as well, so neighbouring hues differ in shape too.
    """
    from matplotlib import colormaps

    if n <= 10:
        colours = [colormaps["tab10"](i) for i in range(n)]
    elif n <= 20:
        colours = [colormaps["tab20"](i) for i in range(n)]
    else:
        colours = [colormaps["gist_rainbow"](i / n) for i in range(n)]
    return [(tuple(float(c) for c in colour), _MARKERS[i % len(_MARKERS)]) for i, colour in enumerate(colours)]


def fid_cost_figure(points: Sequence[tuple[str, float, float]], x_label: str, log_x: bool) -> Any:
    """Scatter of ``(model, x, fid)`` points, one colour (and marker) per model, the legend outside the axes.

    Returns the matplotlib ``Figure``: the legend sits to the right of the axes, so it
    never covers a point.
    """
    from matplotlib.figure import Figure

    names = sorted({p[0] for p in points})
    # Two plots still sit side by side in a 1400-px window with a one-column legend.
    fig = Figure(figsize=(4.8 + 1.6 * math.ceil(len(names) / 20), 3.8), dpi=100, layout="constrained")
    ax = fig.subplots()
    for name, (colour, marker) in zip(names, series_styles(len(names)), strict=True):
        xs = [p[1] for p in points if p[0] == name]
        ys = [p[2] for p in points if p[0] == name]
        ax.scatter(xs, ys, label=_mpl(name), s=30, color=colour, marker=marker)
    if log_x:
        ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(x_label)
    ax.set_ylabel("FID (domain features, lower is better)")
    ax.grid(True, alpha=0.3)
    fig.legend(loc="outside right upper", fontsize=8, ncols=math.ceil(len(names) / 20))
    return fig


def _plot(records: list[RunRecord], x_key: str, x_label: str, log_x: bool) -> str | None:
    """Scatter of FID against one per-run figure, one colour per model; PNG data URI."""
    points = []
    for rec in records:
        m = rec.metrics
        x = m.get(x_key) if x_key in m else rec.timings.get(x_key)
        if rec.status == "ok" and m.get("fid") is not None and x:
            points.append((rec.model_name, float(x), float(m["fid"])))
    if not points:
        return None
    return _figure_uri(fid_cost_figure(points, x_label, log_x))


_LOG_AXES = ("step", "images", "seconds")  # train_log.csv columns that are not logged values


def _read_train_log(path: Path) -> pd.DataFrame | None:
    """A run's ``train_log.csv`` as numbers (non-finite values as NaN); None if missing, empty or malformed."""
    try:
        log = pd.read_csv(path)
    except (OSError, ValueError):  # pandas' parser and empty-file errors are ValueErrors
        return None
    log = log.apply(pd.to_numeric, errors="coerce").replace([math.inf, -math.inf], math.nan)
    return log if len(log) and "step" in log else None


def _loss_columns(log: pd.DataFrame) -> list[str]:
    """The logged values named like a loss; every logged value when none is."""
    logged = [c for c in log.columns if c not in _LOG_AXES and log[c].notna().any()]
    return [c for c in logged if "loss" in c.lower()] or logged


def _loss_curves(models: Sequence[str], runs: dict[str, list[tuple[int, Path]]]) -> tuple[str | None, list[str]]:
    """One panel per model of its logged losses against images seen, one line per seed.

    ``runs`` maps a model to its (seed, run folder) pairs. Returns the figure as a PNG
    data URI (None without any log) and the models that have no readable log.
    """
    panels = []
    for model in models:
        logs = [(seed, log) for seed, folder in runs.get(model, [])
                if (log := _read_train_log(folder / "train_log.csv")) is not None and _loss_columns(log)]
        if logs:
            panels.append((model, logs))
    missing = [m for m in models if m not in {name for name, _ in panels}]
    if not panels:
        return None, missing
    import numpy as np
    from matplotlib.figure import Figure
    from matplotlib.ticker import EngFormatter

    ncols = min(4, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig = Figure(figsize=(3.2 * ncols, 2.5 * nrows), dpi=100, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, (model, logs) in zip(axes, panels, strict=False):
        by_images = all(log["images"].notna().all() for _, log in logs if "images" in log) and all(
            "images" in log for _, log in logs)
        x_col = "images" if by_images else "step"
        keys = list(dict.fromkeys(c for _, log in logs for c in _loss_columns(log)))
        colours = [colour for colour, _ in series_styles(len(keys))]
        for i, key in enumerate(keys):
            for j, log in enumerate(log for _, log in logs if key in log):
                # Each logged value is one batch's: a moving average over 5% of the run shows the trend.
                window = max(1, len(log) // 20)
                if window > 1:
                    ax.plot(log[x_col], log[key], color=colours[i], lw=0.6, alpha=0.2)
                ax.plot(log[x_col], log[key].rolling(window, center=True, min_periods=1).mean(),
                        color=colours[i], lw=1.0, alpha=0.9, label=_mpl(key) if j == 0 else None)
        values = np.concatenate([log[k].to_numpy(dtype=float) for _, log in logs for k in keys if k in log])
        values = values[np.isfinite(values)]
        if values.size:  # the 1st-99th percentile: a diverging run's last values do not flatten the curves
            lo, hi = np.percentile(values, [1, 99])
            pad = 0.08 * (hi - lo) or 0.05 * abs(hi) or 1.0
            ax.set_ylim(lo - pad, hi + pad)
        ax.set_title(_mpl(f"{model} ({len(logs)} seed{'s' if len(logs) > 1 else ''})"), fontsize=9)
        ax.set_xlabel("images seen" if by_images else "steps", fontsize=8)
        ax.xaxis.set_major_formatter(EngFormatter(sep=""))
        ax.tick_params(labelsize=7)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    return _figure_uri(fig), missing
