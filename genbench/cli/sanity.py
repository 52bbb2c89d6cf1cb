"""``genbench sanity``: a thin shell over :func:`genbench.sanity.run.run_sanity` and :mod:`genbench.sanity.report`."""

from __future__ import annotations

import shlex
import time
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from genbench.cli.eval import DATASET_CHOICES, _parse_groups
from genbench.cli.options import (
    OUT_DEFAULT,
    allow_dirty_option,
    data_root_option,
    device_option,
    json_option,
    no_progress_option,
)
from genbench.errors import ConfigError
from genbench.evaluate import METRIC_GROUPS
from genbench.term import plain


@click.command("sanity")
@click.option("--dataset", type=click.Choice(DATASET_CHOICES), default="mnist", show_default=True,
              help="Dataset whose held-out test images are degraded and whose reference the metrics compare with.")
@click.option("--metrics", "metric_groups", default=",".join(METRIC_GROUPS), show_default="all of them",
              callback=lambda ctx, param, value: _parse_groups(value),
              help="Metric groups to judge, comma-separated (as genbench eval --metrics); a group none of whose "
                   "keys has a direction (fid_ci) is skipped, and said to be.")
@click.option("--out", type=click.Path(file_okay=False), default=OUT_DEFAULT, show_default=True,
              help="Results folder; the matrix goes to OUT/sanity/DATASET/ (sanity.md, sanity.png, sanity.json). "
                   "The committed matrices are in results/sanity/; the default never touches them.")
@click.option("--seeds", help="Comma-separated seeds, at least two (default: 0,1,2; with --quick 0,1): each draws "
                              "its own held-out images and degradations.")
@click.option("--quick", is_flag=True,
              help="A small run for tests and a first look: 100 images per set, each family's base and strongest "
                   "level, seeds 0,1 (its numbers are noisier, not a result).")
@device_option("Where to compute the features: auto picks cuda when torch sees a GPU, else cpu.")
@data_root_option()
@no_progress_option()
@allow_dirty_option()
@json_option("Also write sanity.json to this file ('-': the JSON on stdout, the summary on stderr).")
def sanity_command(dataset, metric_groups, out, seeds, quick, device, data_root, no_progress, allow_dirty,
                   json_path) -> None:
    """Which metric sees which failure: degrade held-out real images under controlled severities, score every
    set with every metric group, and judge each (metric, family) cell.

    Families: blur, noise, mode dropping, class imbalance, mode invention, copying of training
    images, low diversity (with and without jitter), the class-histogram attack, sample size, and
    four nuisances a reader ignores (shift, rotation, stroke thickness, contrast). Each declares
    what every metric should do; a cell passes when the metric moves the expected way by enough
    (Spearman's rho and a minimum swing in seed-to-seed spreads) or, where it should not move,
    stays within a band. The reference images are never degraded. See docs/sanity.md.

    \b
    genbench sanity --dataset mnist --quick --out /tmp/sanity   a small run, about a minute
    """
    from genbench.cli.options import parse_seeds, write_json
    from genbench.device import resolve_device
    from genbench.results import git_hash, machine_info, utc_now
    from genbench.run.plan import check_clean_revision
    from genbench.sanity.report import to_json, write_outputs
    from genbench.sanity.run import run_sanity

    seed_list = parse_seeds(seeds)
    if seed_list is not None and len(seed_list) < 2:
        raise click.BadParameter("the spread between seeds needs at least two seeds, e.g. 0,1,2", param_hint="--seeds")
    folder = Path(out) / "sanity" / dataset
    check_clean_revision(out, allow_dirty)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"--out: cannot create {plain(folder)}: {exc.strerror or exc}") from None
    device_name = str(resolve_device(device))
    console = Console(stderr=True)
    started = time.perf_counter()
    progress = Progress(TextColumn("[bold]sets scored"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        TextColumn("{task.fields[info]}"), console=console, disable=no_progress)
    with progress:
        task = progress.add_task("sets", total=None, info="")

        def report(done: int, total: int, label: str) -> None:
            progress.update(task, completed=done, total=total, info=plain(label))

        result = run_sanity(dataset, metric_groups=sorted(metric_groups), seeds=seed_list, quick=quick,
                            data_root=data_root, device=device_name, progress=report)
    wall = time.perf_counter() - started
    import genbench

    data = to_json(result, command=_command_line(dataset, metric_groups, out, seed_list, quick, device),
                   machine=machine_info(), genbench={"version": genbench.__version__, "revision": git_hash()},
                   created=utc_now(), wall_seconds=wall)
    paths = write_outputs(folder, data)
    if json_path:
        write_json(json_path, data)
    counts = data["summary"]
    to_stderr = json_path == "-"  # the result on stdout, unless the JSON is
    click.echo(f"{len(result.cells)} cells: {counts.get('pass', 0)} pass, {counts.get('fail', 0)} fail, "
               f"{counts.get('none', 0)} without expectation, {counts.get('null', 0)} null; "
               f"{result.scored_sets} sets scored in {wall:.0f} s", err=to_stderr)
    for path in paths:
        click.echo(plain(path), err=to_stderr)


def _command_line(dataset, metric_groups, out, seeds, quick, device) -> str:
    """The command that makes these outputs, options at their defaults left out."""
    words = ["genbench", "sanity", "--dataset", dataset]
    if set(metric_groups) != set(METRIC_GROUPS):
        words += ["--metrics", ",".join(g for g in METRIC_GROUPS if g in metric_groups)]
    if seeds is not None:
        words += ["--seeds", ",".join(map(str, seeds))]
    if quick:
        words.append("--quick")
    if device != "auto":
        words += ["--device", device]
    words += ["--out", str(out)]
    return " ".join(shlex.quote(w) for w in words)
