"""genbench's version, in a module of its own so that what records it (run records, eval.json) need not
import the package's public facade, ``genbench/__init__.py``, which imports the run API."""

__version__ = "0.1.0"
