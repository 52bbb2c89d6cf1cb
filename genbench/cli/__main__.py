"""``python -m genbench.cli``: the console script without installing it."""

from genbench.cli import console

console()
