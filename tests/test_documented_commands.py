"""Every `genbench ...` command line of README.md, docs/*.md and the --help epilogues works in a fresh clone.

Each line is run in a folder holding a copy of the committed `results/` and `examples/` (what a fresh
clone has), in document order, so that a default output folder that collides with the committed
records is caught. How a line is run depends on what it costs:

- synopsis lines (`[--models a,b]`, `NAME`, `...`): the command exists and takes every option named;
- run and tune: the whole command up to the first training step (suite, models, `--set`, budget,
  output folder, data), with the training itself replaced by nothing;
- check, baseline save, eval, list, --version: run for real (a check of `/tmp/...` results made by a
  documented run reads the committed records of that suite instead);
- speed, reproduce, sanity, and runs on Ray or CUDA: their arguments are parsed and checked by click.
"""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import click
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from genbench.cli import main

REPO = Path(__file__).resolve().parents[1]
SOURCES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.DOTALL | re.MULTILINE)
PLACEHOLDER = re.compile(r"\[|\]|\||\.\.\.|\$|^a,b$|\b(?!HEAD\b)[A-Z]+\b")
REAL = {"check", "baseline", "eval", "list", "--version", "report"}
PARSED_ONLY = {"speed": "measures for minutes", "reproduce": "retrains the records' runs",
               "sanity": "scores hundreds of image sets for minutes"}


def _epilogue_commands() -> list[tuple[str, str]]:
    """Example lines of the --help texts (`genbench ...  what it does`)."""
    found = []

    def walk(command: click.Command, path: str) -> None:
        for line in (command.help or "").splitlines():
            match = re.match(r"\s*(genbench \S.*?)(?:\s{2,}.*)?$", line)
            if match:
                found.append((f"{path} --help", match.group(1)))
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, f"{path} {name}")

    walk(main, "genbench")
    return found


def documented_commands() -> list[tuple[str, str]]:
    """(where, command line) for every genbench line in a code block of the docs, then the --help examples."""
    found = []
    for path in SOURCES:
        for lang, body in FENCE.findall(path.read_text(encoding="utf-8")):
            if lang not in ("", "bash", "sh", "shell", "console", "text"):
                continue
            for line in body.replace("\\\n", " ").splitlines():
                line = line.strip().removeprefix("$ ")
                if line.startswith("genbench "):
                    found.append((path.name, " ".join(shlex.split(line, comments=True))))
    return found + _epilogue_commands()


def _resolve(args: list[str]) -> tuple[click.Command, list[str], list[str]]:
    """The command a line names, its path and the arguments left for it."""
    command, path = main, []
    while isinstance(command, click.Group) and args and not args[0].startswith("-"):
        command = command.commands[args[0]]
        path.append(args.pop(0))
    return command, path, args


def _is_synopsis(args: list[str]) -> bool:
    return any(PLACEHOLDER.search(a) for a in args)


def _options_exist(command: click.Command, args: list[str]) -> None:
    names = {o for p in command.params for o in p.opts + p.secondary_opts} | {"--help", "-h", "--version"}
    unknown = [a.split("=")[0] for a in args if a.startswith("--") and a.split("=")[0] not in names]
    assert not unknown, f"{command.name} has no option {', '.join(unknown)}"


@pytest.fixture
def clone(tmp_path, monkeypatch, data_root):
    """A folder with what a fresh clone has of results/ and examples/ (copies: nothing here writes the repo)."""
    root = tmp_path / "clone"
    for name in ("results", "examples"):
        shutil.copytree(REPO / name, root / name, ignore=shutil.ignore_patterns("__pycache__", "samples"))
    samples = root / "my_samples"
    samples.mkdir()
    from genbench.data.datasets import load_split

    for i, image in enumerate(load_split("mnist", "train", data_root).images[:40, 0].numpy()):
        Image.fromarray(np.ascontiguousarray(image)).save(samples / f"{i:03d}.png")
    monkeypatch.chdir(root)
    return root


def _no_training(monkeypatch) -> None:
    """run and tune stop where training would start: everything before it is checked as usual."""
    import genbench.run.plan as run_plan
    import genbench.tune.tuner as tuner

    monkeypatch.setattr(run_plan.LocalExecutor, "run", lambda self, specs, board, **kw: [])
    monkeypatch.setattr(run_plan, "write_leaderboard", lambda suite_dir, compare=(): None)
    monkeypatch.setattr(tuner, "run_tune", lambda plan, **kw: {t.model: [] for t in plan.tasks})


def test_every_documented_command_works_in_a_fresh_clone(clone, monkeypatch, capsys):
    _no_training(monkeypatch)
    runner = CliRunner()
    ran: list[str] = []
    for where, line in documented_commands():
        args = shlex.split(line)[1:]
        command, path, rest = _resolve(list(args))
        if _is_synopsis(args):
            _options_exist(command, rest)
            ran.append(f"options  {where}: {line}")
            continue
        if (path and path[0] in PARSED_ONLY) or "ray" in args or "cuda" in args:
            with command.make_context(" ".join(["genbench", *path]), list(rest)):
                pass  # click checks every option, type, choice and callback here
            ran.append(f"parsed   {where}: {line}")
            continue
        # What a documented run or tune would have written is not made here: the line after it reads the
        # committed records (or tuned suite) of the same suite instead.
        args = [a.replace("/tmp/now/gate", "results/gate").replace("/tmp/gate-base/gate", "results/gate")
                .replace("runs/mnist-small-tune/", "results/mnist-small-tune/")
                .replace("/tmp/", str(clone / "tmp") + "/").replace("/shared/", str(clone / "shared") + "/")
                for a in args]
        result = runner.invoke(main, args)
        ok = result.exit_code == 0 or (path[:1] == ["check"] and result.exit_code == 1)  # 1: a verdict, not an error
        assert ok, f"{where}: {line}\nexit {result.exit_code}\n{result.output[-2000:]}{result.exception!r}"
        ran.append(f"{'ran' if (path[:1] and path[0] in REAL) or not path else 'planned'}  {where}: {line}")
    with capsys.disabled():
        print(f"\n{len(ran)} documented command lines:\n" + "\n".join(ran))
    assert len(ran) >= 40


def test_the_default_output_folder_is_not_committed_and_is_ignored():
    import subprocess

    from genbench.cli.options import OUT_DEFAULT

    assert not OUT_DEFAULT.startswith("results")
    tracked = subprocess.run(["git", "ls-files", "--", OUT_DEFAULT], cwd=REPO, capture_output=True, text=True,
                             check=True).stdout
    assert tracked == ""
    ignored = subprocess.run(["git", "check-ignore", "-q", f"{OUT_DEFAULT}/mnist-small/vae/seed0/run.json"],
                             cwd=REPO)
    assert ignored.returncode == 0, f"{OUT_DEFAULT}/ is not in .gitignore: a default run would show as untracked"
