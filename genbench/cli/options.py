"""Options shared by several commands, declared once so that their names, types and defaults agree, and the
helpers that read and write them (comma lists, seeds, ``--json``). Every command module imports this one;
it imports no command, so the commands never import each other."""

from __future__ import annotations

import click

from genbench.errors import GenbenchError
from genbench.kv import split_items
from genbench.validation import expect_seeds


def ci_options(bench_smaller: bool):
    """The CI report options of `genbench check` and `genbench speed` (genbench.verify.ci)."""
    options = [
        click.option("--junit-xml", "junit_xml", type=click.Path(dir_okay=False), default=None, metavar="FILE",
                     help="Also write JUnit XML for test reporters: one test case per compared figure, a failure "
                          "for each that makes the exit code 1."),
        click.option("--summary", "summary", type=click.Path(dir_okay=False), default=None, metavar="FILE",
                     help="Also write the table as Markdown. It is appended to $GITHUB_STEP_SUMMARY as well "
                          "whenever that variable is set (GitHub Actions)."),
        click.option("--bench-bigger", "bench_bigger", type=click.Path(dir_okay=False), default=None,
                     metavar="FILE",
                     help="Also write the figures where bigger is better as github-action-benchmark's "
                          "customBiggerIsBetter JSON (a list of name, unit, value)."),
    ]
    if bench_smaller:
        options.append(click.option(
            "--bench-smaller", "bench_smaller", type=click.Path(dir_okay=False), default=None, metavar="FILE",
            help="Also write the figures where smaller is better (FID, bits/dim...) as github-action-benchmark's "
                 "customSmallerIsBetter JSON."))

    def decorate(command):
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


# -- the options of several commands: one name, one type, one default (docs/cli.md, "One grammar") --

DEVICE_HELP = "Where to train and evaluate: auto picks cuda when torch sees a GPU, else cpu."
DATA_ROOT_HELP = "Dataset folder in torchvision's layout (default: $GENBENCH_DATA, else ~/.cache/genbench/data)."
JSON_HELP = "Also write the results as JSON to this file ('-': the JSON on stdout, the table on stderr)."
NO_PROGRESS_HELP = "No progress bars (e.g. in CI logs)."
ALLOW_DIRTY_HELP = ("Write into a results folder under git even though genbench runs from a checkout with "
                    "uncommitted changes (refused otherwise); the records say so.")
CPUS_PER_RUN_HELP = ("torch threads per run, and the CPUs Ray reserves for it [default: all cores on the CPU, "
                     "cores per GPU on CUDA]. On the CPU a run's numbers depend on it: equal values give equal "
                     "records with either executor.")
OUT_DEFAULT = "runs"  # never `results/`, where the committed records live: a default run cannot touch them


def device_option(help: str = DEVICE_HELP):
    from genbench.device import DEVICE_CHOICES

    return click.option("--device", type=click.Choice(DEVICE_CHOICES), default="auto", show_default=True, help=help)


def data_root_option():
    return click.option("--data-root", type=click.Path(file_okay=False), default=None, help=DATA_ROOT_HELP)


def json_option(help: str = JSON_HELP):
    return click.option("--json", "json_path", type=click.Path(dir_okay=False, allow_dash=True), default=None,
                        metavar="FILE|-", help=help)


def no_progress_option():
    return click.option("--no-progress", is_flag=True, help=NO_PROGRESS_HELP)


def allow_dirty_option():
    return click.option("--allow-dirty", is_flag=True, help=ALLOW_DIRTY_HELP)


def cpus_per_run_option():
    return click.option("--cpus-per-run", type=click.IntRange(min=1), default=None, help=CPUS_PER_RUN_HELP)


def seed_option(help: str):
    return click.option("--seed", type=int, default=0, show_default=True, help=help)


# -- reading and writing them --


def csv_list(value: str | None) -> list[str] | None:
    """``--models a,b``: the items, or None when none are given."""
    return split_items(value) or None


def parse_seeds(value: str | None) -> list[int] | None:
    """``--seeds 0,1,2``: whole numbers (click's one-line usage error otherwise), or None when none are given."""
    items = csv_list(value)
    if items is None:
        return None
    try:
        seeds = [int(v) for v in items]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, got {value!r}", param_hint="--seeds") from None
    return list(expect_seeds(seeds, "--seeds"))


def write_json(json_path: str, payload) -> None:
    """--json: the payload on stdout for '-', else atomically to the file (one-line error if it cannot be)."""
    import json

    if json_path == "-":
        click.echo(json.dumps(payload, indent=2, allow_nan=False))
        return
    from genbench.files.atomic import atomic_write_json

    try:
        atomic_write_json(json_path, payload)
    except OSError as exc:
        raise GenbenchError(f"cannot write {json_path}: {exc.strerror or exc}") from None
