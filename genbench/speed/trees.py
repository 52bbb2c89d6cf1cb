"""Source trees for ``genbench speed --against``: the working tree and an exported git revision.

A revision is exported with ``git archive`` (only the tracked ``genbench/`` and
``baselines/`` folders) into a temporary folder; the repository, its worktree list
and its index are never touched, and an interrupted run leaves nothing behind
but a temporary folder. The installed package maps the import name
``genbench_baselines`` to the folder ``baselines/``; a tree is made importable
with a shim folder holding the symlink ``genbench_baselines -> <tree>/baselines``,
put on ``PYTHONPATH`` before the tree itself (``PYTHONPATH`` wins over the
editable install's finder, which Python consults after ``sys.path``).
"""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

from genbench.errors import InputError

CODE_DIRS = ("genbench", "baselines")


@dataclass(frozen=True)
class SourceTree:
    """A genbench source tree and how to import it in a worker process."""

    label: str  # "working tree" or the revision as given
    root: Path  # holds genbench/ and baselines/
    shim: Path  # holds the genbench_baselines symlink
    commit: str | None  # full hash, None for the working tree

    @property
    def pythonpath(self) -> list[str]:
        return [str(self.shim), str(self.root)]

    @property
    def genbench_init(self) -> Path:
        return self.root / "genbench" / "__init__.py"


def _git(root: Path, *args: str, binary: bool = False) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=not binary, check=False)
    except FileNotFoundError:
        raise InputError("git is not installed; --against needs it") from None


def repo_root(path: str | os.PathLike = ".") -> Path:
    """Top folder of the git checkout holding ``path``; InputError when there is none."""
    proc = _git(Path(path), "rev-parse", "--show-toplevel")
    if proc.returncode != 0:
        raise InputError(f"{Path(path).resolve()} is not inside a git checkout; --against compares git revisions")
    root = Path(proc.stdout.strip())
    if not all((root / d).is_dir() for d in CODE_DIRS):
        raise InputError(f"{root} is not a genbench checkout (no {' and '.join(d + '/' for d in CODE_DIRS)})")
    return root


def resolve_revision(root: Path, rev: str) -> str:
    """Full commit hash of ``rev`` in the repository at ``root``; InputError when unknown."""
    if not rev or rev.startswith("-"):
        raise InputError(f"--against: {rev!r} is not a git revision")
    proc = _git(root, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    if proc.returncode != 0:
        shallow = _git(root, "rev-parse", "--is-shallow-repository").stdout.strip() == "true"
        hint = " (this is a shallow clone: `git fetch --unshallow` brings the history)" if shallow else ""
        raise InputError(f"--against: unknown revision {rev!r} in {root}{hint}")
    return proc.stdout.strip()


def _shim(tree_root: Path, shim: Path) -> Path:
    shim.mkdir(parents=True, exist_ok=True)
    (shim / "genbench_baselines").symlink_to(tree_root / "baselines", target_is_directory=True)
    return shim


def working_tree(root: Path, scratch: Path) -> SourceTree:
    """The checkout at ``root`` as it is on disk, uncommitted changes included."""
    return SourceTree("working tree", root, _shim(root, scratch / "shim-new"), None)


def export_revision(root: Path, rev: str, scratch: Path) -> SourceTree:
    """Export ``rev``'s ``genbench/`` and ``baselines/`` into ``scratch`` (a folder the caller removes)."""
    commit = resolve_revision(root, rev)
    proc = _git(root, "archive", "--format=tar", commit, *CODE_DIRS, binary=True)
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip().splitlines()
        raise InputError(f"--against {rev}: git archive failed: {err[-1] if err else proc.returncode}")
    dest = scratch / "old"
    dest.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(proc.stdout)) as tar:
        # The "data" filter refuses links out of the folder; Pythons older than 3.10.12 lack it.
        tar.extractall(dest, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    if not (dest / "genbench" / "__init__.py").is_file() or not (dest / "baselines").is_dir():
        raise InputError(f"--against {rev}: revision {commit[:12]} has no genbench/ and baselines/ to measure")
    return SourceTree(rev, dest, _shim(dest, scratch / "shim-old"), commit)
