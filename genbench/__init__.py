"""genbench: benchmark and evaluation suite for generative image models."""

from genbench.protocol import Capability, Generator, quantize, to_signed, to_unit
from genbench.registry import register_generator

__version__ = "0.1.0"

__all__ = [
    "Capability",
    "Generator",
    "__version__",
    "quantize",
    "register_generator",
    "run_suite",
    "to_signed",
    "to_unit",
]


def __getattr__(name: str):
    # The runner pulls in the harness, metrics and data; import it only when used.
    if name == "run_suite":
        from genbench.runner import run_suite

        return run_suite
    raise AttributeError(name)
