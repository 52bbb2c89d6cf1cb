"""Which files a run used changed between a record's code revision and the working tree.

A run record names the commit it was made from (``git_hash``, with ``-dirty`` when the
tree had uncommitted changes). ``genbench reproduce`` reruns a record with the code as it
is now; when the rerun differs, the first question is whether the code it used changed.
:func:`revision_check` answers it with ``git diff --stat COMMIT -- PATHS`` (the commit
against the working tree, uncommitted changes included), restricted to the files a run
of that model uses: the genbench package, the model's module with the baseline modules
it imports, and the suite file.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import subprocess
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

_HASH = re.compile(r"[0-9a-f]{7,64}")
DIRTY = "-dirty"


@dataclass(frozen=True)
class RevisionCheck:
    """The outcome for one record: files that changed, or why nothing could be compared.

    ``changed`` lists repository paths (``/`` separated) that differ between ``commit``
    and the working tree; ``stat`` is git's ``--stat`` of them; ``notes`` say what could
    not be compared (no hash, a hash this clone lacks, uncommitted changes in the record).
    """

    record_hash: str | None
    commit: str | None = None  # the commit the diff was taken against (record_hash without -dirty)
    paths: tuple[str, ...] = ()  # what was compared
    changed: tuple[str, ...] = ()
    stat: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def warning(self) -> str | None:
        """One line naming the changed files, or None when the files this run used are unchanged."""
        if not self.changed:
            return None
        shown = ", ".join(self.changed[:6]) + (f" and {len(self.changed) - 6} more" if len(self.changed) > 6 else "")
        return (f"code changed since the record's revision {self.commit[:10]} in {len(self.changed)} file(s) "
                f"the run used: {shown}")


def _git(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=30)


@lru_cache(maxsize=1)
def repo_root() -> Path | None:
    """The git work tree genbench runs from, or None when it is not a git checkout."""
    here = Path(__file__).resolve().parent
    try:
        out = _git(["rev-parse", "--show-toplevel"], here)
    except (OSError, subprocess.SubprocessError):
        return None
    return Path(out.stdout.strip()).resolve() if out.returncode == 0 else None


def module_files(module: str) -> list[Path]:
    """The file of ``module`` and, transitively, of the ``genbench_baselines`` modules it imports."""
    seen: dict[str, Path] = {}
    todo = [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            spec = None
        if spec is None or not spec.origin or not spec.origin.endswith(".py"):
            continue
        path = Path(spec.origin).resolve()
        seen[name] = path
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (OSError, SyntaxError, UnicodeDecodeError):
            continue
        package = name.rpartition(".")[0]
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: resolve against this module's package
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*parts, base] if base else parts)
                targets = [base] + [f"{base}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            todo += [t for t in targets if t.split(".")[0] == "genbench_baselines" and t != "genbench_baselines"]
    return list(seen.values())


def used_paths(model_modules: list[str], suite_file: str | None) -> tuple[list[str], list[str]]:
    """Repository paths a run of that model and suite used, and notes on files outside the repository.

    Always ``genbench/`` (the harness, metrics and built-in suites); the model's modules
    and the baseline modules they import; a suite file given by path.
    """
    root = repo_root()
    if root is None:
        return [], []
    candidates = [Path(__file__).resolve().parent]
    for module in model_modules:
        candidates += module_files(module)
    if suite_file and Path(suite_file).is_file():
        candidates.append(Path(suite_file).resolve())
    paths, notes = [], []
    for path in candidates:
        if path.is_relative_to(root):
            rel = path.relative_to(root).as_posix() + ("/" if path.is_dir() else "")
            if rel not in paths and not any(rel.startswith(p) for p in paths if p.endswith("/")):
                paths.append(rel)
        else:
            notes.append(f"{path} lies outside the repository {root}; its changes are not compared")
    return paths, notes


def revision_check(record_hash: str | None, paths: list[str], notes: list[str] | None = None) -> RevisionCheck:
    """Compare the files ``paths`` (relative to the repository) at the record's commit with the working tree."""
    notes = list(notes or [])
    root = repo_root()
    if record_hash is None:
        return RevisionCheck(None, notes=(*notes, "the record names no code revision (git_hash is null): "
                                                  "which code made it cannot be told"))
    if root is None:
        return RevisionCheck(record_hash, notes=(*notes, "genbench does not run from a git checkout here: "
                                                         "the record's revision cannot be compared"))
    commit = record_hash.removesuffix(DIRTY)
    if not _HASH.fullmatch(commit):
        return RevisionCheck(record_hash, notes=(*notes, f"the record's git_hash {record_hash!r} is not a commit hash"))
    found = _git(["rev-parse", "--verify", "--quiet", f"{commit}^{{commit}}"], root)
    if found.returncode != 0:
        return RevisionCheck(record_hash, notes=(
            *notes, f"the record's revision {commit[:10]} is not in this repository (a commit of another clone, "
                    f"or not fetched): which files changed since cannot be told"))
    if record_hash.endswith(DIRTY):
        notes.append(f"the record was made from uncommitted changes on top of {commit[:10]}; what they were is "
                     f"not recorded, so the files are compared with {commit[:10]} itself")
    diff = _git(["diff", "--stat=200", commit, "--", *paths], root)
    names = _git(["diff", "--name-only", commit, "--", *paths], root)
    untracked = _git(["ls-files", "--others", "--exclude-standard", "--", *paths], root)
    if diff.returncode or names.returncode or untracked.returncode:
        error = (diff.stderr or names.stderr or untracked.stderr).strip().splitlines()
        return RevisionCheck(record_hash, commit, tuple(paths), notes=(
            *notes, f"git diff against {commit[:10]} failed: {error[0] if error else 'no message'}"))
    changed = names.stdout.splitlines() + [f"{p} (untracked)" for p in untracked.stdout.splitlines()]
    return RevisionCheck(record_hash, commit, tuple(paths), tuple(changed), diff.stdout.rstrip(), tuple(notes))
