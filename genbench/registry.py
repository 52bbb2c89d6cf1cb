"""Registries: plain dicts filled by validating ``register_*`` functions.

An unknown name is an error that lists the valid ones. Built-in generators are in
the ``genbench_baselines`` package; third-party ones can register through the
entry-point group ``genbench.generators`` or be loaded from ``file.py:Class``.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from genbench.errors import ConfigError
from genbench.protocol import Capability, Generator, check_generator_class

GENERATORS: dict[str, type[Generator]] = {}
METRICS: dict[str, "MetricSpec"] = {}

G = TypeVar("G", bound=type)
_builtins_loaded = False


def register_generator(cls: G) -> G:
    """Class decorator: validate ``cls`` against the protocol and register it by ``cls.name``."""
    check_generator_class(cls)
    existing = GENERATORS.get(cls.name)
    if existing is not None and existing is not cls and existing.__qualname__ != cls.__qualname__:
        raise ValueError(f"generator name {cls.name!r} is already registered by {existing.__module__}.{existing.__qualname__}")
    GENERATORS[cls.name] = cls
    return cls


def _load_builtins() -> None:
    global _builtins_loaded
    if _builtins_loaded:
        return
    _builtins_loaded = True
    importlib.import_module("genbench_baselines")
    from importlib.metadata import entry_points

    for ep in entry_points(group="genbench.generators"):
        cls = ep.load()
        if cls.name not in GENERATORS:
            register_generator(cls)


def generator_names() -> list[str]:
    _load_builtins()
    return sorted(GENERATORS)


def get_generator(name: str) -> type[Generator]:
    _load_builtins()
    try:
        return GENERATORS[name]
    except KeyError:
        raise ConfigError(f"unknown generator {name!r}; valid: {', '.join(sorted(GENERATORS))}") from None


def load_generator_from_file(spec: str) -> type[Generator]:
    """Import ``path/to/file.py:ClassName`` (user code runs: only when asked) and validate it."""
    path_str, sep, cls_name = spec.rpartition(":")
    if not sep or not path_str or not cls_name:
        raise ConfigError(f"--model expects path/to/file.py:ClassName, got {spec!r}")
    path = Path(path_str)
    if not path.is_file():
        raise ConfigError(f"--model: no such file {path}")
    mod_name = f"genbench_user_{path.stem}_{abs(hash(str(path.resolve())))}"
    module_spec = importlib.util.spec_from_file_location(mod_name, path)
    if module_spec is None or module_spec.loader is None:
        raise ConfigError(f"--model: cannot import {path}")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[mod_name] = module
    try:
        module_spec.loader.exec_module(module)
    except Exception as exc:
        raise ConfigError(f"--model: importing {path} failed: {type(exc).__name__}: {exc}") from None
    cls = getattr(module, cls_name, None)
    if cls is None:
        raise ConfigError(f"--model: {path} has no class {cls_name!r}")
    try:
        check_generator_class(cls)
    except TypeError as exc:
        raise ConfigError(f"--model: {exc}") from None
    return cls


# -- config overrides ---------------------------------------------------------------

def _coerce(value: str, typ: Any, where: str) -> Any:
    typ_name = typ if isinstance(typ, str) else getattr(typ, "__name__", str(typ))
    t = typ_name.replace(" ", "")
    try:
        if t in ("bool",):
            low = value.lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if t in ("int",):
            return int(value)
        if t in ("float",):
            return float(value)
        if t in ("str",):
            return value
        if t.startswith("tuple[int") or t.startswith("tuple[float"):
            conv = int if "int" in t else float
            return tuple(conv(v) for v in value.strip("()[] ").split(",") if v.strip())
    except ValueError:
        raise ConfigError(f"{where}: cannot convert {value!r} to {typ_name}") from None
    raise ConfigError(f"{where}: fields of type {typ_name} cannot be set from the command line")


def make_config(cls: type[Generator], overrides: dict[str, Any] | None = None) -> Any:
    """Build ``cls.Config`` with overrides (strings are converted to the field's type)."""
    fields = {f.name: f for f in dataclasses.fields(cls.Config)}
    kwargs: dict[str, Any] = {}
    for key, value in (overrides or {}).items():
        if key not in fields:
            raise ConfigError(f"{cls.name} has no setting {key!r}; valid: {', '.join(sorted(fields))}")
        if isinstance(value, str):
            value = _coerce(value, fields[key].type, f"{cls.name}.{key}")
        kwargs[key] = value
    try:
        return cls.Config(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{cls.name}: invalid settings: {exc}") from None


def parse_set_options(items: list[str] | tuple[str, ...]) -> dict[str, dict[str, str]]:
    """``["dcgan.lr=1e-4", ...]`` -> ``{"dcgan": {"lr": "1e-4"}}``."""
    out: dict[str, dict[str, str]] = {}
    for item in items:
        lhs, eq, value = item.partition("=")
        model, dot, key = lhs.strip().partition(".")
        if not eq or not dot or not model or not key:
            raise ConfigError(f"--set expects MODEL.FIELD=VALUE, got {item!r}")
        out.setdefault(model, {})[key] = value.strip()
    return out


# -- metrics ------------------------------------------------------------------------

@dataclass(frozen=True)
class MetricSpec:
    """Metadata of one reported number: what it means and how to compare it."""

    key: str
    description: str
    unit: str = ""
    higher_is_better: bool | None = None  # None: informational, no direction
    requires: Capability = Capability.SAMPLE
    default_tol: float | None = None  # relative tolerance for `genbench check`
    group: str = "quality"  # quality | likelihood | reconstruction | speed | info

    @property
    def arrow(self) -> str:
        return {True: "↑", False: "↓", None: ""}[self.higher_is_better]


def register_metric(spec: MetricSpec) -> MetricSpec:
    if not spec.key or not spec.key.replace("_", "").isalnum():
        raise ValueError(f"metric key must be an identifier, got {spec.key!r}")
    if spec.key in METRICS and METRICS[spec.key] != spec:
        raise ValueError(f"metric {spec.key!r} is already registered differently")
    METRICS[spec.key] = spec
    return spec


def get_metric(key: str) -> MetricSpec:
    try:
        return METRICS[key]
    except KeyError:
        raise ConfigError(f"unknown metric {key!r}; valid: {', '.join(sorted(METRICS))}") from None


def metric_names() -> list[str]:
    return sorted(METRICS)


