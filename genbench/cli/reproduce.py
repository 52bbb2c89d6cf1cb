"""`genbench reproduce`: a thin shell over :func:`genbench.verify.reproduce.reproduce_runs`."""

from __future__ import annotations

import click
from rich.console import Console
from rich.table import Table

from genbench.cli.options import csv_list, data_root_option, json_option, no_progress_option, parse_seeds, write_json
from genbench.term import plain, text

SHOWN_DIFFS = 3  # differences printed per run; --json holds them all


@click.command("reproduce")
@click.argument("results", metavar="RESULTS_DIR", type=click.Path(file_okay=False))
@click.option("--models", help="Comma-separated models to rerun (default: every model in RESULTS_DIR).")
@click.option("--seeds", help="Comma-separated seeds to rerun, e.g. 0,1 (default: every seed in RESULTS_DIR).")
@click.option("--tol", help="Tolerances replacing the kinds' floors and the seeds' intervals, as for `genbench check`: "
                            "METRIC=N% (relative) or METRIC=N (absolute), comma-separated, e.g. fid=5%.")
@json_option()
@click.option("--keep", "out", type=click.Path(file_okay=False), default=None, metavar="DIR",
              help="Keep the reruns in DIR/SUITE/MODEL/seedK/ (must not hold those runs yet) [default: a "
                   "temporary folder, removed afterwards].")
@click.option("--suite", default=None, metavar="NAME|FILE",
              help="The suite the records were run with, when the file their records name is not found here "
                   "(default: the records' own). Its name and version must match the records'.")
@click.option("--model", "model_files", multiple=True, metavar="FILE.py:CLASS",
              help="The class of a record made with `genbench run --model FILE.py:CLASS` (imports that file). "
                   "Repeatable.")
@data_root_option()
@no_progress_option()
def reproduce_command(results, models, seeds, tol, json_path, out, suite, model_files, data_root, no_progress):
    """Rerun the run records of one suite folder (e.g. results/mnist-small) with the current code and compare.

    Each record's own spec is rerun: suite and version, model, the record's config,
    seed, budget asked, torch threads and device. One verdict per run: 'identical'
    (status, work done and every metric equal bit for bit), 'within tolerance' (every
    difference inside its metric kind's floor, as in `genbench check`, or --tol),
    'consistent' (some metric outside the floor but inside the 99% prediction interval
    of the folder's committed seeds of that model: what another processor or thread
    count gives a chaotic training run) or 'different' (which metrics, by how much).
    Uncertainty estimates and speed figures are not judged. A warning names the files
    the run used (genbench/, the model's baseline file, the suite file) that changed
    since the record's git_hash.

    Exit code 0 when every run reproduced (identical, within tolerance or consistent),
    1 when any is different, 2 on unusable input.
    """
    from genbench.registry import load_generator_from_file
    from genbench.verify.reproduce import CONSISTENT, DIFFERENT, IDENTICAL, WITHIN, reproduce_runs, verdicts_json

    extra = [load_generator_from_file(spec) for spec in model_files]
    progress_console = Console(stderr=True)
    try:
        verdicts = reproduce_runs(results, models=csv_list(models), seeds=parse_seeds(seeds), tolerances=tol, out=out,
                                  suite=suite, extra_models=extra, data_root=data_root, console=progress_console,
                                  show_progress=not no_progress)
    except KeyboardInterrupt:
        click.echo("Interrupted: no verdict was given" + (f"; reruns so far are in {plain(out)}" if out else ""),
                   err=True)
        click.get_current_context().exit(130)
    console = Console(stderr=json_path == "-")
    colour = {IDENTICAL: "green", WITHIN: "green", CONSISTENT: "yellow", DIFFERENT: "red"}
    table = Table(title=text(f"genbench reproduce {results}"))
    for col in ("model", "seed", "verdict", "what differs"):
        table.add_column(col, justify="right" if col == "seed" else "left")
    for v in verdicts:
        # The differences that use most of their tolerance first (exact ones and nulls before all).
        shown = [d.describe() for d in sorted(v.differences, key=lambda d: -d.share)]
        more = len(shown) - SHOWN_DIFFS
        detail = "; ".join(shown[:SHOWN_DIFFS]) + (f"; and {more} more" if more > 0 else "")
        if v.rerun_error:
            detail = f"rerun: {v.rerun_error}; {detail}"
        table.add_row(text(v.model), str(v.seed), f"[{colour[v.verdict]}]{v.verdict}[/]", text(detail or "—"))
    console.print(table)
    # One line per message, naming the runs it concerns: many runs share one revision.
    messages: dict[tuple[str, str], list[str]] = {}
    paths: dict[str, list[str]] = {}
    for v in verdicts:
        for note in (*v.notes, *v.revision.notes):
            messages.setdefault(("note", note), []).append(f"{v.model} seed {v.seed}")
        if v.revision.warning:
            messages.setdefault(("Warning", v.revision.warning), []).append(f"{v.model} seed {v.seed}")
            paths.setdefault(v.revision.commit, []).extend(v.revision.paths)
    for (kind, message), runs in messages.items():
        console.print(text(f"{kind}: {', '.join(runs)}: {message}", "yellow" if kind == "Warning" else "dim"))
    for commit, used in paths.items():
        console.print(text(f"  the changes: git diff --stat {commit[:10]} -- {' '.join(dict.fromkeys(used))}", "dim"))
    excluded = sorted({k for v in verdicts for k in v.excluded})
    if excluded:
        console.print(text(f"Not compared (the registry's speed group: timing, noise from one run to the next): "
                           f"{', '.join(excluded)}", "dim"))
    new = sorted({k for v in verdicts for k in v.not_in_record})
    if new:
        console.print(text(f"Not in the records, so not judged (metrics the current code adds): {', '.join(new)}",
                           "dim"))
    if out:
        console.print(text(f"Reruns kept in {out}"))
    counts = {name: sum(v.verdict == name for v in verdicts) for name in (IDENTICAL, WITHIN, CONSISTENT, DIFFERENT)}
    console.print(f"{counts[IDENTICAL]} identical, {counts[WITHIN]} within tolerance, {counts[CONSISTENT]} consistent, "
                  f"{counts[DIFFERENT]} different")
    if json_path:
        write_json(json_path, verdicts_json(verdicts, results))
    click.get_current_context().exit(1 if counts[DIFFERENT] else 0)
