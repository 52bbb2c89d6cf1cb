"""Suites: versioned TOML files fixing dataset, models, budgets, settings and evaluation.

Bump a suite's ``version`` whenever its data, budgets or metric definitions change,
so results from different versions are never compared as equals.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from genbench.budget import Budget
from genbench.data import dataset_names
from genbench.errors import ConfigError

_TOP_KEYS = {"name", "version", "description", "dataset", "seeds", "models", "budget", "eval", "model", "tiny"}
_EVAL_KEYS = {"n_samples", "nll_images", "recon_images"}
_MODEL_KEYS = {"budget", "settings", "tiny"}


@dataclass(frozen=True)
class EvalSettings:
    n_samples: int = 2000  # samples scored by FID/KID/IS/PR/DC
    nll_images: int | None = None  # test images for NLL (None: the whole 10k split)
    recon_images: int = 1000  # test images for PSNR/MSE/SSIM


@dataclass(frozen=True)
class ModelEntry:
    name: str
    budget: Budget
    settings: dict[str, Any] = field(default_factory=dict)
    tiny: bool = False  # start from the generator's `tiny_config` (smoke tests)


@dataclass(frozen=True)
class Suite:
    name: str
    version: int
    description: str
    dataset: str
    seeds: tuple[int, ...]
    models: tuple[ModelEntry, ...]
    eval: EvalSettings
    default_budget: Budget
    source: str = ""

    def model(self, name: str) -> ModelEntry | None:
        return next((m for m in self.models if m.name == name), None)


def _reject_unknown(where: str, got: dict, valid: set[str]) -> None:
    unknown = sorted(set(got) - valid)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; valid: {', '.join(sorted(valid))}")


def suite_names() -> list[str]:
    folder = resources.files("genbench") / "suites"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml"))


def load_suite(name_or_path: str) -> Suite:
    """Load a built-in suite by name, or a suite file by path."""
    path = Path(name_or_path)
    if name_or_path.endswith(".toml") and path.is_file():
        text, source = path.read_text(), str(path)
    else:
        res = resources.files("genbench") / "suites" / f"{name_or_path}.toml"
        if not res.is_file():
            raise ConfigError(f"unknown suite {name_or_path!r}; valid: {', '.join(suite_names())} (or a path to a .toml file)")
        text, source = res.read_text(), f"genbench/suites/{name_or_path}.toml"
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: invalid TOML: {exc}") from None
    return parse_suite(raw, source)


def parse_suite(raw: dict, source: str = "<suite>") -> Suite:
    _reject_unknown(source, raw, _TOP_KEYS)
    for key in ("name", "version", "dataset", "models", "budget"):
        if key not in raw:
            raise ConfigError(f"{source}: missing key {key!r}")
    if raw["dataset"] not in dataset_names():
        raise ConfigError(f"{source}: unknown dataset {raw['dataset']!r}; valid: {', '.join(dataset_names())}")
    eval_raw = raw.get("eval", {})
    _reject_unknown(f"{source} [eval]", eval_raw, _EVAL_KEYS)
    default_budget = _budget(raw["budget"], f"{source} [budget]")
    per_model = raw.get("model", {})
    models = raw["models"]
    if models == "all":
        from genbench.registry import generator_names

        models = generator_names()
    if not isinstance(models, list) or not models:
        raise ConfigError(f"{source}: `models` must be a non-empty list of generator names or \"all\"")
    unknown_sections = sorted(set(per_model) - set(models))
    if unknown_sections:
        raise ConfigError(f"{source}: [model.{unknown_sections[0]}] is not in `models` ({', '.join(models)})")
    entries = []
    for name in models:
        section = per_model.get(name, {})
        _reject_unknown(f"{source} [model.{name}]", section, _MODEL_KEYS)
        budget = default_budget.merged(section["budget"]) if "budget" in section else default_budget
        tiny = bool(section.get("tiny", raw.get("tiny", False)))
        entries.append(ModelEntry(name, budget, dict(section.get("settings", {})), tiny))
    seeds = tuple(int(s) for s in raw.get("seeds", [0]))
    return Suite(
        name=str(raw["name"]),
        version=int(raw["version"]),
        description=str(raw.get("description", "")),
        dataset=raw["dataset"],
        seeds=seeds,
        models=tuple(entries),
        eval=EvalSettings(**eval_raw),
        default_budget=default_budget,
        source=source,
    )


def _budget(value: Any, where: str) -> Budget:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a table like {{ images = 60000, seconds = 300 }}")
    try:
        return Budget.from_dict(value)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
