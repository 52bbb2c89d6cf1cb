"""Suites: versioned TOML files fixing dataset, models, budgets, settings and evaluation.

Bump a suite's ``version`` whenever its data, budgets or metric definitions change,
so results from different versions are never compared as equals. The seconds cap of an
images or steps budget is not part of that: it only guards against runaway runs (a run
it stops first is ``capped`` and left out of means and checks), so raising or lowering it
changes no reported number. A seconds-only budget is the budget itself.
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
from genbench.config import make_config, validate_config
from genbench.data.datasets import SPLIT_SIZES, dataset_names
from genbench.errors import ConfigError
from genbench.evaluate.settings import SUITE_EVAL_KEYS, EvalConfig
from genbench.registry import generator_names, get_generator
from genbench.validation import (
    describe,
    expect_bool,
    expect_int,
    expect_plain_name,
    expect_seeds,
    expect_str,
    expect_table,
    is_plain_name,
)

_TOP_KEYS = {"name", "version", "description", "dataset", "seeds", "models", "budget", "eval", "model", "tiny"}
_EVAL_KEYS = set(SUITE_EVAL_KEYS)
_MODEL_KEYS = {"budget", "settings", "tiny", "search_space"}


@dataclass(frozen=True)
class ModelEntry:
    name: str
    budget: Budget
    settings: dict[str, Any] = field(default_factory=dict)
    tiny: bool = False  # start from the generator's `tiny_config` (smoke tests)
    # `genbench tune`'s distributions for this model (None: the generator's own `search_space`)
    search_space: dict[str, Any] | None = None


@dataclass(frozen=True)
class Suite:
    name: str
    version: int
    description: str
    dataset: str
    seeds: tuple[int, ...]
    models: tuple[ModelEntry, ...]
    eval: EvalConfig  # as its [eval] table sets it; the other fields keep their defaults
    default_budget: Budget
    source: str = ""
    tiny: bool = False  # the file's top-level `tiny`: also for models it does not list (a --model plug-in)

    def __post_init__(self) -> None:
        # The name becomes a folder under --out; the seeds become folders under each model.
        expect_plain_name(self.name, "suite name")
        expect_int(self.version, "suite version", minimum=1)
        expect_seeds(self.seeds, "seeds")

    def model(self, name: str) -> ModelEntry | None:
        return next((m for m in self.models if m.name == name), None)

    def entry_for(self, name: str) -> ModelEntry:
        """The suite's entry for ``name``; for a model it does not list, its default budget and ``tiny`` flag."""
        return self.model(name) or ModelEntry(name, self.default_budget, tiny=self.tiny)


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
        try:
            text, source = path.read_text(encoding="utf-8"), str(path)
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read suite file {path}: {getattr(exc, 'strerror', None) or exc}") from None
    else:
        res = resources.files("genbench") / "suites" / f"{name_or_path}.toml" if is_plain_name(name_or_path) else None
        if res is None or not res.is_file():
            raise ConfigError(
                f"unknown suite {name_or_path!r}; valid: {', '.join(suite_names())} (or a path to a .toml file)")
        text, source = res.read_text(encoding="utf-8"), f"genbench/suites/{name_or_path}.toml"
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: invalid TOML: {exc}") from None
    return parse_suite(raw, source)


def parse_suite(raw: dict, source: str = "<suite>") -> Suite:
    """Check every value of a parsed suite file by type and range, then build the :class:`Suite`.

    Model names must be registered generators, and each model's ``settings`` must build a
    valid config, so a bad suite fails here, before anything trains.
    """
    expect_table(raw, source)
    _reject_unknown(source, raw, _TOP_KEYS)
    for key in ("name", "version", "dataset", "models", "budget"):
        if key not in raw:
            raise ConfigError(f"{source}: missing key {key!r}")
    name = expect_plain_name(raw["name"], f"{source}: `name`")
    version = expect_int(raw["version"], f"{source}: `version`", minimum=1)
    description = expect_str(raw.get("description", ""), f"{source}: `description`")
    dataset = expect_str(raw["dataset"], f"{source}: `dataset`")
    if dataset not in dataset_names():
        raise ConfigError(f"{source}: unknown dataset {dataset!r}; valid: {', '.join(dataset_names())}")
    seeds = expect_seeds(raw.get("seeds", [0]), f"{source}: `seeds`")
    tiny = expect_bool(raw.get("tiny", False), f"{source}: `tiny`")
    eval_raw = expect_table(raw.get("eval", {}), f"{source} [eval]", "{ n_samples = 2000 }")
    _reject_unknown(f"{source} [eval]", eval_raw, _EVAL_KEYS)
    try:
        eval_settings = EvalConfig(**eval_raw)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    default_budget = _budget(raw["budget"], f"{source} [budget]")
    models = raw["models"]
    if models == "all":
        models = generator_names()
    if not isinstance(models, list) or not models or not all(isinstance(m, str) for m in models):
        raise ConfigError(
            f"{source}: `models` must be a non-empty list of generator names or \"all\", got {describe(models)}")
    for i, model in enumerate(models):
        if model in models[:i]:
            raise ConfigError(f"{source}: `models` lists {model!r} twice")
    per_model = expect_table(raw.get("model", {}), f"{source} [model]", "[model.dcgan]")
    unknown_sections = sorted(set(per_model) - set(models))
    if unknown_sections:
        raise ConfigError(f"{source}: [model.{unknown_sections[0]}] is not in `models` ({', '.join(models)})")
    entries = []
    for model in models:
        where = f"{source} [model.{model}]"
        cls = get_generator(model)
        section = expect_table(per_model.get(model, {}), where)
        _reject_unknown(where, section, _MODEL_KEYS)
        budget = (_budget(section["budget"], f"{where} budget", default_budget) if "budget" in section
                  else default_budget)
        model_tiny = expect_bool(section.get("tiny", tiny), f"{where}: `tiny`")
        settings = dict(expect_table(section.get("settings", {}), f"{where} settings", "{ lr = 1e-4 }"))
        try:
            config = make_config(cls, {**(cls.tiny_config if model_tiny else {}), **settings}, text=False)
            validate_config(cls, config, train_size=SPLIT_SIZES["train"])
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        search_space = None
        if "search_space" in section:
            from genbench.search_space import parse_search_space, validate_search_space

            search_space = parse_search_space(section["search_space"], f"{where} search_space")
            base = {**(cls.tiny_config if model_tiny else {}), **settings}
            validate_search_space(cls, search_space, base, where=f"{where} search_space")
        entries.append(ModelEntry(model, budget, settings, model_tiny, search_space))
    return Suite(
        name=name,
        version=version,
        description=description,
        dataset=dataset,
        seeds=seeds,
        models=tuple(entries),
        eval=eval_settings,
        default_budget=default_budget,
        source=source,
        tiny=tiny,
    )


def _budget(value: Any, where: str, base: Budget | None = None) -> Budget:
    """The budget a table describes; with ``base``, the table replaces only the kinds it names."""
    expect_table(value, where, "{ images = 60000, seconds = 300 }")
    try:
        return base.merged(value) if base is not None else Budget.from_dict(value)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
