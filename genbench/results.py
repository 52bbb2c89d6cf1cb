"""Run records (``run.json``): schema, provenance, atomic writes and reading them back.

A run record describes itself: config, versions, git hash, machine, budget asked
and achieved, status, metrics with their metadata, timings. Leaderboards are built
from the records on disk by :mod:`genbench.report.leaderboard` (through :mod:`genbench.report.aggregate`).
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

import torch

from genbench.files.atomic import atomic_write_json

SCHEMA_VERSION = 3
RUN_FILE = "run.json"
# ok: the work budget was spent; capped: the seconds cap stopped an images/steps budget first
# (trained less than asked: left out of means like diverged); diverged: non-finite loss; failed: an error.
STATUSES = ("ok", "capped", "diverged", "failed")

def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# What a run executes, relative to the genbench package folder in a checkout: the harness, the
# baselines (installed as genbench_baselines) and the packaging. Changes elsewhere (results,
# docs, scripts, tests) change no number, and results written into a checkout must not make
# the next run of the same code dirty.
_CODE_PATHS = (".", "../baselines", "../pyproject.toml")


@lru_cache(maxsize=1)
def git_hash() -> str | None:
    """Commit of the genbench source tree, ending in ``-dirty`` when the code a run uses has uncommitted
    changes (:func:`changed_files`); None when not run from a git checkout."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return out + ("-dirty" if changed_files() else "")


@lru_cache(maxsize=1)
def changed_files() -> tuple[str, ...]:
    """Tracked files of the code a run uses (the genbench package, baselines/, pyproject.toml) with
    uncommitted changes, as ``git status`` names them; () when clean or not a git checkout."""
    here = Path(__file__).resolve().parent
    paths = [p for p in _CODE_PATHS if (here / p).exists()]
    try:
        out = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", *paths], cwd=here, capture_output=True,
            text=True, timeout=5, check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return ()
    return tuple(line[3:] for line in out.splitlines() if line.strip())


def inside_git_work_tree(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` (or, when it does not exist yet, its nearest existing parent) lies in a git work tree."""
    path = Path(folder).absolute()
    while not path.is_dir() and path != path.parent:
        path = path.parent
    try:
        out = subprocess.run(["git", "rev-parse", "--is-inside-work-tree"], cwd=path, capture_output=True,
                             text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return False
    return out.returncode == 0 and out.stdout.strip() == "true"


def cap_reason(budget: dict[str, Any]) -> str | None:
    """Why a run with this ``budget`` section is ``capped``, or None: its images/steps budget was cut short
    by its seconds cap (the work budget is the contract; the cap only guards against runaway runs)."""
    asked, achieved = budget.get("asked") or {}, budget.get("achieved") or {}
    if achieved.get("stopped_by") != "seconds":
        return None
    parts = [f"{int(achieved.get(kind) or 0):,} of {int(asked[kind]):,} {kind}"
             for kind in ("images", "steps") if isinstance(asked.get(kind), (int, float))]
    if not parts:
        return None  # a seconds-only budget: the seconds are the budget itself
    cap = asked.get("seconds")
    return (f"stopped by the seconds cap{f' ({cap:g} s)' if isinstance(cap, (int, float)) else ''} after "
            f"{' and '.join(parts)}: trained less than the suite asks, so left out of means and checks")


@lru_cache(maxsize=1)
def machine_info() -> dict[str, Any]:
    """The machine (torch's thread count of a run is in its record's ``executor`` section)."""
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "processor": _cpu_model(),
        "cpu_count": os.cpu_count(),
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
    ``attempt``, ``resumed_from_step``, the machine's ``load_average`` [1, 5, 15 min] at
    the ``start`` and ``end`` of the run): it never changes the numbers of a run on
    the same device type and thread count; ``allow_dirty`` is true when the run was let
    write into a results folder under git from a checkout with uncommitted changes
    (``git_hash`` then ends in ``-dirty``). Schema history: 1, the first release; 2 adds
    ``executor`` (taking over ``resumed_from_step``) and ``warnings``; 3 adds status
    ``capped`` (``genbench.results.cap_reason``; a record of schema 1 or 2 that ended ``ok`` with a capped
    budget is read as ``capped``) and ``executor.allow_dirty``.
    """

    suite: dict[str, Any]  # name, version, source
    model: dict[str, Any]  # name, class, config, capabilities, likelihood_is_bound, role
    seed: int
    status: str = "failed"  # ok | capped | diverged | failed
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
    def from_json(cls, data: Any) -> RunRecord:
        """Validate a decoded ``run.json`` (schema 1 to 3) and build the record; ``ValueError`` if unusable."""
        if not isinstance(data, dict):
            raise ValueError("not a genbench run record (not a JSON object)")
        version = data.get("schema_version")
        if version not in (1, 2, SCHEMA_VERSION) or isinstance(version, bool):
            raise ValueError(
                f"unknown run-record schema_version {version!r} (this genbench reads 1 to {SCHEMA_VERSION})")
        for key in ("suite", "model"):
            if not isinstance(data.get(key), dict) or not isinstance(data[key].get("name"), str):
                raise ValueError(f"not a genbench run record (no {key} name)")
        seed = data.get("seed")
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise ValueError(f"seed must be an integer, got {seed!r}")
        if data.get("status") not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}, got {data.get('status')!r}")
        if data["status"] == "capped" and version != SCHEMA_VERSION:
            raise ValueError(f"status 'capped' needs schema_version {SCHEMA_VERSION}, got {version}")
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        if version == 1 and "resumed_from_step" in data:
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
        if version != SCHEMA_VERSION:
            values["schema_version"] = SCHEMA_VERSION
            # Before schema 3 a run cut short by its seconds cap was recorded ok: read it as what it is.
            reason = cap_reason(values.get("budget") or {})
            if values["status"] == "ok" and reason:
                values["status"], values["error"] = "capped", reason
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
