"""The ``genbench`` command line: click commands, thin over the Python API.

``commands`` holds the root group and ``run``/``report``/``check``/``models``; each other
file holds one command (``eval``, ``speed``, ``tune``, ``reproduce``). The console script
is ``genbench.cli:main``.
"""

from genbench.cli.commands import main

__all__ = ["main"]
