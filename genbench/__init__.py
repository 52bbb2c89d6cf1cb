"""genbench: benchmark and evaluation suite for generative image models.

Importing genbench makes its domain feature extractors (``genbench-mnist``,
``genbench-fashion-mnist``) available to ``torch_fidelity.calculate_metrics``, whichever
of the two packages is imported first, without importing torch-fidelity itself.
"""

import sys
import warnings
from importlib.abc import MetaPathFinder
from importlib.machinery import ModuleSpec

from genbench.protocol import Capability, Generator, quantize, to_signed, to_unit
from genbench.registry import register_generator
from genbench.version import __version__

__all__ = [
    "Capability",
    "Generator",
    "RunOptions",
    "__version__",
    "load_run",
    "quantize",
    "register_generator",
    "run_suite",
    "to_signed",
    "to_unit",
]


def __getattr__(name: str):
    # run.plan pulls in training, metrics and data; import it only when used.
    if name == "run_suite":
        from genbench.run.plan import run_suite

        return run_suite
    if name == "RunOptions":
        from genbench.run.options import RunOptions

        return RunOptions
    if name == "load_run":
        from genbench.run.trained import load_run

        return load_run
    raise AttributeError(name)


def _register_with_torch_fidelity() -> None:
    try:
        from genbench.features.fidelity import register_with_torch_fidelity

        register_with_torch_fidelity()
    except (ImportError, ValueError) as exc:  # never break the user's torch-fidelity import
        warnings.warn(f"genbench: feature extractors not registered with torch-fidelity ({exc})", stacklevel=2)


class _RegisteringLoader:
    """Runs torch-fidelity's own loader, then registers; every other attribute is the original loader's."""

    def __init__(self, inner) -> None:
        self._inner = inner

    def __getattr__(self, name: str):
        return getattr(self._inner, name)

    def create_module(self, spec: ModuleSpec):
        return self._inner.create_module(spec)

    def exec_module(self, module) -> None:
        self._inner.exec_module(module)
        sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _TorchFidelityImportHook)]
        _register_with_torch_fidelity()


class _TorchFidelityImportHook(MetaPathFinder):
    """Finds nothing itself: wraps the loader that the other finders give ``torch_fidelity``."""

    def find_spec(self, fullname: str, path, target=None) -> ModuleSpec | None:
        if fullname != "torch_fidelity":
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _RegisteringLoader(spec.loader)
                return spec
        return None


if "torch_fidelity" in sys.modules:
    _register_with_torch_fidelity()
elif not any(isinstance(f, _TorchFidelityImportHook) for f in sys.meta_path):
    sys.meta_path.insert(0, _TorchFidelityImportHook())
