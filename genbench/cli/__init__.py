"""The ``genbench`` command line: click commands, thin over the Python API.

``commands`` holds the root group and ``run``/``report``/``check``/``models``; each other
file holds one command (``eval``, ``speed``, ``tune``, ``reproduce``). The console script
is ``genbench.cli:console``, which runs the group :data:`main` and then exits quickly.
"""

import gc

from genbench.cli.commands import main

__all__ = ["console", "main"]


def console() -> None:
    """The ``genbench`` console script: :data:`main` in click's standalone mode, then a quick exit.

    What is still alive when a command ends is left to the operating system: frozen, the
    garbage collector's last passes at exit skip torch's large object graph, which
    otherwise delays every command's exit noticeably (``results/speed/README.md``). Exit
    handlers still run and every file genbench writes is closed before this point; only
    the collection of leftover reference cycles at exit is skipped.
    """
    try:
        main()  # standalone mode: ends with SystemExit
    finally:
        gc.freeze()
