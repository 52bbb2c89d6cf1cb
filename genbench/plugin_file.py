"""Import a plug-in from ``path/to/file.py:NAME`` (``--model``, ``--metric``, ``--lens``) or from an installed
package's entry point (``--metric NAME``, ``--lens NAME``): user code runs, only when asked."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from genbench.errors import ConfigError


def import_plugin_file(spec: str, option: str, what: str) -> tuple[Path, ModuleType, str]:
    """``(path, module, NAME)`` of ``spec`` = ``path/to/file.py:NAME``, the file imported; ``option``
    (``--model``) and ``what`` (``ClassName``) word the one-line errors.

    The file's folder goes first on ``sys.path``, as Python puts a script's, so that the
    file can import modules beside it.
    """
    path_str, sep, name = spec.rpartition(":")
    if not sep or not path_str or not name:
        raise ConfigError(f"{option} expects path/to/file.py:{what}, got {spec!r}")
    path = Path(path_str)
    if not path.is_file():
        raise ConfigError(f"{option}: no such file {path}")
    # One module per file; the suffix tells apart same-named files and is the same in every process
    # (str hashes are salted per process), so a record names the same module in every run.
    digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:16]
    mod_name = f"genbench_user_{path.stem}_{digest}"
    module_spec = importlib.util.spec_from_file_location(mod_name, path)
    if module_spec is None or module_spec.loader is None:
        raise ConfigError(f"{option}: cannot import {path}")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[mod_name] = module
    # As Python does for a script (sys.path[0]): a plug-in may import the modules beside it.
    folder = str(path.resolve().parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    try:
        module_spec.loader.exec_module(module)
    except Exception as exc:
        raise ConfigError(f"{option}: importing {path} failed: {type(exc).__name__}: {exc}") from None
    return path, module, name


def is_entry_point_name(spec: str) -> bool:
    """Whether ``spec`` names an entry point (``dinov2``) rather than a file (``path/to/file.py:NAME``)."""
    return ":" not in spec and not spec.endswith(".py")


def load_entry_point(name: str, group: str, option: str) -> tuple[object, str]:
    """``(object, source)`` of the entry point ``name`` in ``group`` (an installed package's
    ``[project.entry-points."GROUP"]``); ``source`` names it in errors and records."""
    from importlib.metadata import entry_points

    found = [ep for ep in entry_points(group=group) if ep.name == name]
    if not found:
        installed = sorted({ep.name for ep in entry_points(group=group)})
        have = f"installed: {', '.join(installed)}" if installed else "no package installs any"
        raise ConfigError(f"{option} {name}: no entry point {name!r} in group {group} ({have}); "
                          f"give path/to/file.py:NAME or install the package that provides it")
    ep = found[0]
    source = f"{option} {name} (entry point {ep.value})"
    try:
        obj = ep.load()
    except Exception as exc:
        raise ConfigError(" ".join(f"{source}: loading it failed: {type(exc).__name__}: {exc}".split())) from None
    return obj, source
