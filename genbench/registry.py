"""The generator registry: a plain dict filled by the validating :func:`register_generator`.

An unknown name is an error that lists the valid ones. Built-in generators are in
the ``genbench_baselines`` package; third-party ones can register through the
entry-point group ``genbench.generators`` or be loaded from ``file.py:Class``.
A generator's settings are typed in :mod:`genbench.config`; metric metadata is
registered in :mod:`genbench.metrics.spec`.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
from typing import TypeVar

from genbench.errors import ConfigError
from genbench.plugin_file import import_plugin_file
from genbench.protocol import Generator, check_generator_class
from genbench.search_space import validate_search_space
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
    """Import ``path/to/file.py:ClassName`` (:func:`genbench.plugin_file.import_plugin_file`) and validate it."""
    path, module, cls_name = import_plugin_file(spec, "--model", "ClassName")
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
