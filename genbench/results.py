"""Run records (``run.json``) and leaderboards regenerated from them.

A run record describes itself: config, versions, git hash, machine, budget asked
and achieved, status, metrics with their metadata, timings. Leaderboards are never
edited by hand; they are always rebuilt from the records on disk.
"""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from genbench.io import atomic_write_json

SCHEMA_VERSION = 2
RUN_FILE = "run.json"
STATUSES = ("ok", "diverged", "failed")

# Leaderboard column order; other metrics follow alphabetically.
PREFERRED_ORDER = [
    "fid", "kid", "is", "precision", "recall", "density", "coverage", "confident_fraction",
    "nll_bpd", "psnr", "ssim", "mse", "completion_psnr", "completion_mse",
    "train_images_per_s", "sample_images_per_s", "peak_memory_mb", "num_parameters",
]
# Per-run extras that are not compared across models in the leaderboard.
_HIDDEN = {"fid_ci_low", "fid_ci_high", "kid_std", "is_std", "nll_is_bound", "n_samples", "nll_bpd_stderr",
           "feature_images_per_s"}


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@lru_cache(maxsize=1)
def git_hash() -> str | None:
    """Commit of the genbench source tree, or None when not run from a git checkout."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=here, capture_output=True, text=True,
            timeout=5, check=True,
        ).stdout.strip()
        return out + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


@lru_cache(maxsize=1)
def machine_info() -> dict[str, Any]:
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "processor": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def json_safe(value: Any) -> Any:
    """Non-finite floats become None (JSON has no NaN); tensors and numpy scalars become numbers."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 0) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


RECORD_SECTIONS = ("suite", "model", "budget", "metrics", "null_reasons", "metric_meta", "timings", "eval",
                   "machine", "executor")


@dataclass
class RunRecord:
    """The record of one (suite, model, seed) run: what ``run.json`` holds.

    Sections that are plain mappings (``suite``, ``model``, ``budget``, ``metrics``, ...)
    keep their JSON shape; ``metrics`` maps registered metric keys to numbers (``None``
    where a metric does not apply, with the reason in ``null_reasons``). ``executor``
    says how the run was executed (``name`` local|ray, ``host``, ``torch_threads``,
    ``attempt``, ``resumed_from_step``): it never changes the numbers of a run on
    the same device type and thread count. Schema history: 1, the first release; 2 adds
    ``executor`` (taking over ``resumed_from_step``) and ``warnings``.
    """

    suite: dict[str, Any]  # name, version, source
    model: dict[str, Any]  # name, class, config, capabilities, likelihood_is_bound
    seed: int
    status: str = "failed"  # ok | diverged | failed
    schema_version: int = SCHEMA_VERSION
    genbench_version: str | None = None
    git_hash: str | None = None
    created: str | None = None
    dataset: str | None = None
    device: str | None = None
    torch_version: str | None = None
    machine: dict[str, Any] = field(default_factory=dict)
    calibration_flops_per_s: float | None = None
    budget: dict[str, Any] = field(default_factory=dict)  # asked, kind, achieved
    error: str | None = None
    traceback: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    null_reasons: dict[str, str] = field(default_factory=dict)
    metric_meta: dict[str, Any] = field(default_factory=dict)
    extractor: dict[str, Any] | None = None
    timings: dict[str, float] = field(default_factory=dict)
    eval: dict[str, Any] = field(default_factory=dict)
    executor: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def model_name(self) -> str:
        return str(self.model["name"])

    @property
    def suite_name(self) -> str:
        return str(self.suite["name"])

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (non-finite floats become ``null``)."""
        return json_safe(asdict(self))

    @classmethod
    def from_json(cls, data: Any) -> "RunRecord":
        """Validate a decoded ``run.json`` (schema 1 or 2) and build the record; ``ValueError`` if unusable."""
        if not isinstance(data, dict):
            raise ValueError("not a genbench run record (not a JSON object)")
        version = data.get("schema_version")
        if version not in (1, SCHEMA_VERSION) or isinstance(version, bool):
            raise ValueError(f"unknown run-record schema_version {version!r} (this genbench reads 1 and {SCHEMA_VERSION})")
        for key in ("suite", "model"):
            if not isinstance(data.get(key), dict) or not isinstance(data[key].get("name"), str):
                raise ValueError(f"not a genbench run record (no {key} name)")
        seed = data.get("seed")
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise ValueError(f"seed must be an integer, got {seed!r}")
        if data.get("status") not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}, got {data.get('status')!r}")
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        if version == 1:
            values["schema_version"] = SCHEMA_VERSION
            if "resumed_from_step" in data:
                values.setdefault("executor", {})["resumed_from_step"] = data["resumed_from_step"]
        for key in RECORD_SECTIONS:
            if key in values and values[key] is not None and not isinstance(values[key], dict):
                raise ValueError(f"{key} must be a JSON object, got {type(values[key]).__name__}")
            if values.get(key) is None and key in values:
                values[key] = {}
        metrics = values.get("metrics", {})
        bad = [k for k, v in metrics.items() if v is not None and not isinstance(v, (int, float))]
        if bad:
            raise ValueError(f"metric(s) {', '.join(sorted(bad))} are not numbers")
        return cls(**values)


def write_run_record(run_dir: str | os.PathLike, record: RunRecord | dict[str, Any]) -> Path:
    """Write ``run_dir/run.json`` atomically (a dict is validated as a record first)."""
    if not isinstance(record, RunRecord):
        record = RunRecord.from_json(json_safe(record))
    path = Path(run_dir) / RUN_FILE
    atomic_write_json(path, record.to_json())
    return path


def read_run_record(path: str | os.PathLike) -> RunRecord:
    """Read and validate one ``run.json``; ``ValueError`` (or ``OSError``) if it is unusable."""
    with open(path, encoding="utf-8") as f:
        try:
            data = json.load(f)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not valid JSON ({exc})") from None
    return RunRecord.from_json(data)


def collect_runs(suite_dir: str | os.PathLike) -> tuple[list[RunRecord], list[str]]:
    """All run records under ``suite_dir``; unreadable ones are named in the second list, not raised."""
    records, problems = [], []
    for path in sorted(Path(suite_dir).glob(f"*/seed*/{RUN_FILE}")):
        try:
            records.append(read_run_record(path))
        except (OSError, ValueError) as exc:
            problems.append(f"{path}: {exc}")
    return records, problems


def _metric_meta() -> dict[str, Any]:
    import genbench.metrics  # noqa: F401  (registers every metric's metadata)
    from genbench.registry import METRICS

    return METRICS


def _fmt(mean: float, std: float, n: int) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "—"
    mag = abs(mean)
    digits = 0 if mag >= 1000 else 1 if mag >= 100 else 2 if mag >= 1 else 3 if mag >= 0.01 else 4
    text = f"{mean:.{digits}f}"
    if n > 1 and std is not None and not math.isnan(std):
        text += f" ± {std:.{digits}f}"
    return text


def leaderboard_frame(records: list[RunRecord]) -> pd.DataFrame:
    """One row per model: seeds, status counts, then mean and std of every metric over ok seeds."""
    rows = []
    for rec in records:
        row = {
            "model": rec.model_name,
            "seed": rec.seed,
            "status": rec.status,
            "images_seen": (rec.budget.get("achieved") or {}).get("images"),
            "budget_kind": rec.budget.get("kind"),
        }
        for key, value in rec.metrics.items():
            if isinstance(value, bool) or key in _HIDDEN:
                continue
            row[key] = value if rec.status == "ok" else None
        rows.append(row)
    if not rows:
        return pd.DataFrame()
    df = pd.DataFrame(rows)
    metric_cols = [c for c in df.columns if c not in ("model", "seed", "status", "images_seen", "budget_kind")]
    out = []
    for model, group in df.groupby("model", sort=True):
        entry: dict[str, Any] = {
            "model": model,
            "seeds": len(group),
            **{f"n_{s}": int((group["status"] == s).sum()) for s in STATUSES},
            "images_seen": group["images_seen"].mean(),
            "budget_kind": ",".join(sorted(set(group["budget_kind"].dropna()))),
        }
        for col in metric_cols:
            values = pd.to_numeric(group[col], errors="coerce").dropna()
            entry[col] = values.mean() if len(values) else float("nan")
            entry[f"{col}_std"] = values.std(ddof=1) if len(values) > 1 else float("nan")
            entry[f"{col}_n"] = len(values)
        out.append(entry)
    board = pd.DataFrame(out)
    if "fid" in board:
        board = board.sort_values("fid", na_position="last", kind="stable")
    return board.reset_index(drop=True)


def _ordered_metrics(board: pd.DataFrame) -> list[str]:
    base = {"model", "seeds", "images_seen", "budget_kind", *(f"n_{s}" for s in STATUSES)}
    metrics = [c for c in board.columns if c not in base and not c.endswith("_std") and not c.endswith("_n")]
    metrics = [m for m in metrics if board[m].notna().any()]
    return sorted(metrics, key=lambda m: (PREFERRED_ORDER.index(m) if m in PREFERRED_ORDER else len(PREFERRED_ORDER), m))


def render_markdown(board: pd.DataFrame, title: str, notes: list[str] | None = None) -> str:
    meta = _metric_meta()
    metrics = _ordered_metrics(board)
    headers = ["model", "seeds (ok/div/fail)", "images seen"]
    for m in metrics:
        spec = meta.get(m)
        label = m + (f" {spec.arrow}" if spec and spec.arrow else "") + (f" [{spec.unit}]" if spec and spec.unit else "")
        headers.append(label)
    lines = [f"# {title}", ""]
    lines += [f"{n}" for n in (notes or [])]
    if notes:
        lines.append("")
    lines.append("| " + " | ".join(headers) + " |")
    lines.append("|" + "|".join("---" for _ in headers) + "|")
    for _, row in board.iterrows():
        cells = [
            str(row["model"]),
            f"{row['n_ok']}/{row['n_diverged']}/{row['n_failed']}",
            "—" if pd.isna(row["images_seen"]) else f"{int(row['images_seen']):,}",
        ]
        cells += [_fmt(row[m], row.get(f"{m}_std", float("nan")), int(row.get(f"{m}_n", 0))) for m in metrics]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("Mean ± sample std over ok seeds; ↑ higher is better, ↓ lower is better; — not applicable or no ok seed.")
    return "\n".join(lines) + "\n"
