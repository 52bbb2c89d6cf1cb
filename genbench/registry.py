"""The generator registry: a plain dict filled by the validating :func:`register_generator`.

An unknown name is an error that lists the valid ones. Built-in generators are in
the ``genbench_baselines`` package; third-party ones can register through the
entry-point group ``genbench.generators`` or be loaded from ``file.py:Class``.
A generator's settings are typed in :mod:`genbench.config`; metric metadata is
registered in :mod:`genbench.metrics.spec`.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import re
import sys
from pathlib import Path
from typing import TypeVar

from genbench.errors import ConfigError
from genbench.protocol import Generator, check_generator_class
from genbench.tune.search_space import validate_search_space
from genbench.validation import (
    expect_plain_name,
    is_plain_name,
)

GENERATORS: dict[str, type[Generator]] = {}
PLUGIN_MODULE_PREFIX = "genbench_user_"  # the module of a --model file: genbench_user_<stem>_<path digest>
_PLUGIN_SUFFIX = re.compile(rf"^({PLUGIN_MODULE_PREFIX}.+)_[0-9a-f]+(\.[^.]+)$")


def class_identity(class_path: str | None) -> str | None:
    """A record's ``model.class`` without the folder a ``--model`` file was loaded from.

    ``genbench_user_my_gan_<digest>.MyGAN`` -> ``genbench_user_my_gan.MyGAN``: the same file's
    class trained in another checkout or on another machine is the same class to compare with.
    Built-in and entry-point classes are returned unchanged.
    """
    if not isinstance(class_path, str):
        return class_path
    return _PLUGIN_SUFFIX.sub(r"\1\2", class_path)

G = TypeVar("G", bound=type)
_builtins_loaded = False


def register_generator(cls: G) -> G:
    """Class decorator: validate ``cls`` against the protocol and register it by ``cls.name``."""
    check_generator_class(cls)
    if not is_plain_name(cls.name):
        raise ValueError(f"generator name {cls.name!r} must be a plain name (letters, digits, '-', '_', '.'): "
                         f"it names result folders")
    _check_search_space(cls, TypeError)
    existing = GENERATORS.get(cls.name)
    if existing is not None and existing is not cls and existing.__qualname__ != cls.__qualname__:
        raise ValueError(
            f"generator name {cls.name!r} is already registered by {existing.__module__}.{existing.__qualname__}")
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
    """Import ``path/to/file.py:ClassName`` (user code runs: only when asked) and validate it.

    The file's folder goes first on ``sys.path``, as Python puts a script's, so that the
    file can import modules beside it.
    """
    path_str, sep, cls_name = spec.rpartition(":")
    if not sep or not path_str or not cls_name:
        raise ConfigError(f"--model expects path/to/file.py:ClassName, got {spec!r}")
    path = Path(path_str)
    if not path.is_file():
        raise ConfigError(f"--model: no such file {path}")
    # One module per file; the suffix tells apart same-named files and is the same in every process
    # (str hashes are salted per process), so a record names the same module in every run.
    digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:16]
    mod_name = f"{PLUGIN_MODULE_PREFIX}{path.stem}_{digest}"
    module_spec = importlib.util.spec_from_file_location(mod_name, path)
    if module_spec is None or module_spec.loader is None:
        raise ConfigError(f"--model: cannot import {path}")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[mod_name] = module
    # As Python does for a script (sys.path[0]): a plug-in may import the modules beside it.
    folder = str(path.resolve().parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
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
    expect_plain_name(cls.name, f"--model: {cls_name}.name")
    _check_search_space(cls, ConfigError, "--model: ")
    return cls


def _check_search_space(cls: type[Generator], error: type[Exception], prefix: str = "") -> None:
    """A declared ``search_space`` must draw only valid settings (checked at registration, like the Config)."""
    if not cls.search_space:
        return
    try:
        validate_search_space(cls, cls.search_space, where=f"{cls.__name__}.search_space")
    except ConfigError as exc:
        raise error(f"{prefix}{exc}") from None
