"""``python -m genbench.cli``: the console script without installing it."""

from genbench.cli.commands import main

main()
