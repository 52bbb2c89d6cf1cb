"""Run records (``run.json``): schema, provenance, atomic writes and reading them back.

A run record describes itself: config, versions, git hash, machine, budget asked
and achieved, status, metrics with their metadata, timings. Leaderboards are built
from the records on disk by :mod:`genbench.report` (through :mod:`genbench.aggregate`).
"""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

from genbench.io import atomic_write_json

SCHEMA_VERSION = 1
RUN_FILE = "run.json"
STATUSES = ("ok", "diverged", "failed")

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


def write_run_record(run_dir: str | os.PathLike, record: dict[str, Any]) -> Path:
    path = Path(run_dir) / RUN_FILE
    atomic_write_json(path, json_safe(record))
    return path


def read_run_record(path: str | os.PathLike) -> dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        record = json.load(f)
    if not isinstance(record, dict) or "schema_version" not in record or "model" not in record:
        raise ValueError("not a genbench run record")
    return record


def collect_runs(suite_dir: str | os.PathLike) -> tuple[list[dict[str, Any]], list[str]]:
    """All run records under ``suite_dir``; unreadable ones are named in the second list, not raised."""
    records, problems = [], []
    for path in sorted(Path(suite_dir).glob(f"*/seed*/{RUN_FILE}")):
        try:
            records.append(read_run_record(path))
        except (OSError, ValueError) as exc:
            problems.append(f"{path}: {exc}")
    return records, problems
