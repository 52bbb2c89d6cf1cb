"""``genbench speed``: measure the code's throughput, or compare it with a git revision.

A thin shell over :func:`genbench.speed.bench.run_speed`; errors are one line
``Error: ...`` with exit code 2 (raised as GenbenchError, turned into a line by the
``genbench`` group).
"""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from genbench.cli.options import (
    ci_options,
    data_root_option,
    device_option,
    json_option,
    no_progress_option,
    seed_option,
)
from genbench.data.datasets import resolve_data_root
from genbench.device import resolve_device_name
from genbench.errors import GenbenchError
from genbench.kv import split_items
from genbench.term import format_number
from genbench.verdict import Verdict

COLOURS = {Verdict.REGRESSED: "red", Verdict.IMPROVED: "green", Verdict.WORK_CHANGED: "yellow", Verdict.HELD: ""}


def _short(figure: str) -> str:
    """Table label: ``train_images_per_s`` -> ``train img/s``; work counts unchanged."""
    return figure.replace("_images_per_s", " img/s")


def _interval(low, high, fmt: str = "{:.3g}") -> str:
    if low is None or high is None:
        return "—"
    return f"[{fmt.format(low)}, {fmt.format(high)}]"


def _load_text(load: dict) -> str:
    start, end = load.get("start"), load.get("end")
    peak = max((r[0] for r in load.get("rounds", []) if r), default=None)
    if start is None:
        return "load average unavailable"
    return f"load average (1/5/15 min) at start {start}, at end {end}, highest 1-min after a round {peak}"


@click.command("speed")
@click.option("--against", "against", metavar="REV",
              help="Also measure git revision REV (a commit, branch or tag of the checkout you are in) and report "
                   "the ratio working tree / REV per model and figure. REV is exported to a temporary folder and "
                   "run with this interpreter and its installed packages.")
@click.option("--tol", "tol_text", default="10%", show_default=True,
              help="With --against: 'regressed' when the whole 95% interval of the ratio lies below 1-TOL, "
                   "'improved' when it lies above 1+TOL.")
@click.option("--models", help="Comma-separated generators and/or 'eval' (the genbench eval workloads); "
                               "default: every competitor generator (not the reference rows) and eval.")
@click.option("--figures", "figures_text", metavar="LIST",
              help="Comma-separated subset of train, sample, features, metrics (default: all). "
                   "train/sample apply to generators, features/metrics to eval.")
@click.option("--seconds", "seconds_per_figure", type=click.FloatRange(min=0.0, min_open=True), default=5.0,
              show_default=True,
              help="Measured seconds per figure and side: windows are added until they reach it. Longer gives "
                   "tighter intervals (about 1/sqrt(seconds)).")
@click.option("--window", "window_seconds", type=click.FloatRange(min=0.0, min_open=True), default=0.05,
              show_default=True,
              help="Target length of a window in seconds; a window is a whole number of calls (at least one), "
                   "so slow calls (e.g. sampling 500 images from ddpm) make longer windows.")
@click.option("--min-rounds", type=click.IntRange(min=1), default=8, show_default=True,
              help="Windows per figure and side at least, however slow its calls (a 95% interval needs 6).")
@click.option("--rounds", type=click.IntRange(min=1), default=None,
              help="Exactly this many windows per figure and side (instead of --seconds / --min-rounds).")
@click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True,
              help="torch/OpenMP threads in every worker process (the same on both sides).")
@device_option("Where the workloads run, on both sides: auto picks cuda when torch sees a GPU, else cpu; the "
               "figures name the device used (CUDA: wall-clock windows, synchronised).")
@click.option("--clock", type=click.Choice(["auto", "cpu", "wall"]), default="auto", show_default=True,
              help="What a window's seconds are: 'cpu' = CPU time of the worker process, which leaves out the "
                   "time other processes of a shared machine take (valid for one thread on the CPU); 'wall' = "
                   "wall-clock time; 'auto' = cpu with --threads 1 on the CPU, else wall.")
@click.option("--suite", default="mnist-small", show_default=True,
              help="Suite whose model settings define the workloads (its tiny flag is ignored).")
@click.option("--sample-batch", type=click.IntRange(min=1), default=None,
              help="Images per sample call (default: the evaluation's sample batch size, 500).")
@click.option("--eval-images", type=click.IntRange(min=2), default=2000, show_default=True,
              help="Training images scored by the eval workloads (as generated samples would be).")
@data_root_option()
@seed_option("Seeds models, data order and the round order.")
@json_option()
@no_progress_option()
@ci_options(bench_smaller=False)
def speed_command(against, tol_text, models, figures_text, seconds_per_figure, window_seconds, min_rounds, rounds,
                  threads, device, clock, suite, sample_batch, eval_images, data_root, seed, json_path,
                  no_progress, junit_xml, summary, bench_bigger) -> None:
    """Throughput of every model (training, sampling) and of genbench eval, as the median of many windows.

    \b
    genbench speed                         median img/s and its 95% interval, per model and figure
    genbench speed --against main          ratio working tree / main with its 95% interval and a verdict

    Without --against the current code is measured in a fresh worker process. With
    --against REV the working tree and REV run in two worker processes, interleaved
    window by window in an order shuffled every round, so that the load of a shared
    machine hits both alike. Each figure's ratio is the Hodges-Lehmann estimate over
    rounds with its Wilcoxon signed-rank 95% interval. Work counts (parameters, FLOPs
    per image) are compared exactly and reported as 'work changed' when they differ.

    Exit status: 1 when a figure regressed, 0 otherwise, 2 on unusable input
    (unknown revision, not a git checkout, unknown model).
    """
    from genbench.speed.bench import (
        SpeedConfig,
        compare,
        parse_figures,
        parse_tolerance,
        report_json,
        run_speed,
        summarise,
    )

    tol = parse_tolerance(tol_text) if against is not None else None
    if suite.endswith(".toml") and Path(suite).is_file():
        suite = str(Path(suite).resolve())  # the workers run in a scratch folder, so paths are made absolute
    data_root = str(resolve_data_root(data_root).absolute())  # a relative --data-root or $GENBENCH_DATA too
    import torch

    # A figure belongs to one named device: auto is resolved here, and the workers get its name.
    device = resolve_device_name(device, has_gpu=torch.cuda.is_available())
    config = SpeedConfig(
        models=tuple(split_items(models)) if models else None,
        figures=parse_figures(figures_text), window_seconds=window_seconds, seconds_per_figure=seconds_per_figure,
        min_rounds=min_rounds, rounds=rounds, threads=threads,
        device=device, suite=suite, sample_batch=sample_batch, eval_images=eval_images, data_root=data_root,
        seed=seed, clock=clock,
    )
    console = Console(stderr=json_path == "-")
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn(),
                  console=Console(stderr=True), disable=no_progress, transient=True) as bar:
        task = bar.add_task("genbench speed", total=None)

        def progress(description: str, done: int, total: int) -> None:
            bar.update(task, description=description, completed=done, total=total or None)

        measurement = run_speed(config, against=against, progress=progress)

    if against is None:
        rows = summarise(measurement)
        table = Table(title=f"genbench speed ({config.threads} thread(s), {config.device})")
        for col in ("model", "figure", "median", "95% interval", "windows"):
            table.add_column(col, justify="left" if col in ("model", "figure") else "right")
        for r in rows:
            table.add_row(r["model"], _short(r["figure"]), format_number(r["median"]),
                          _interval(r["ci_low"], r["ci_high"], "{:,.0f}"), str(r["windows"]))
        console.print(table)
        work = Table(title="work counts")
        for col in ("model", "count", "value"):
            work.add_column(col, justify="right" if col == "value" else "left")
        for model, per_side in measurement.work.items():
            for key, value in sorted((next(iter(per_side.values())) or {}).items()):
                work.add_row(model, key, format_number(value))
        console.print(work)
    else:
        rows = compare(measurement, tol)
        old, new = measurement.sides["old"], measurement.sides["new"]
        table = Table(title=f"genbench speed: working tree vs {against} ({(old['commit'] or '')[:12]}), "
                            f"tolerance {tol * 100:g}%")
        for col in ("model", "figure", "old", "new", "ratio", "95% interval", "rounds", "verdict"):
            table.add_column(col, justify="left" if col in ("model", "figure", "verdict") else "right")
        for r in rows:
            colour = COLOURS[r["verdict"]]
            table.add_row(r["model"], _short(r["figure"]), format_number(r["old"]), format_number(r["new"]),
                          "—" if r["ratio"] is None else f"{r['ratio']:.3f}",
                          _interval(r["ci_low"], r["ci_high"], "{:.3f}") if r["unit"] else "exact",
                          str(r["rounds"]) if r["unit"] else "",
                          f"[{colour}]{r['verdict']}[/]" if colour else r["verdict"])
        console.print(table)
        console.print(f"old: {old['genbench']}  new: {new['genbench']}", highlight=False)
    side = next(iter(measurement.sides.values()))
    console.print(f"{config.threads} thread(s) per worker, {side['clock']} clock, torch {side['torch']}; "
                  f"{_load_text(measurement.load_average)}; {measurement.seconds:.0f} s", highlight=False)

    payload = report_json(measurement, rows, tol)
    if json_path == "-":
        click.echo(json.dumps(payload, indent=2))
    elif json_path:
        from genbench.files.atomic import atomic_write_json

        try:
            atomic_write_json(json_path, payload)
        except OSError as exc:
            raise GenbenchError(f"cannot write {json_path}: {exc.strerror or exc}") from None
    conditions = (f"{config.threads} thread(s) per worker, {side['clock']} clock, {config.device}, "
                  f"torch {side['torch']}; {_load_text(measurement.load_average)}")
    counts = {v: sum(r["verdict"] == v for r in rows) for v in COLOURS} if against is not None else None
    _write_speed_reports(rows, against, tol, measurement.seconds, conditions, counts, junit_xml, summary,
                         bench_bigger)
    if counts is not None:
        console.print(", ".join(f"{n} {v}" for v, n in counts.items()), highlight=False)
        click.get_current_context().exit(1 if counts[Verdict.REGRESSED] else 0)


def _write_speed_reports(rows, against, tol, seconds, conditions, counts, junit_path, summary_path,
                         bigger_path) -> None:
    """speed's CI files (genbench.verify.ci): one JUnit case and one summary row per figure."""
    import os

    from genbench.verify import ci

    if against is None:
        cases = [ci.Case(r["model"], r["figure"], "measured", failed=False,
                         detail=f"median {format_number(r['median'])} {r['unit']}, 95% interval "
                                f"{_interval(r['ci_low'], r['ci_high'], '{:,.0f}')}, {r['windows']} windows",
                         properties={"median": r["median"], "ci_low": r["ci_low"], "ci_high": r["ci_high"],
                                     "unit": r["unit"]})
                 for r in rows]
        header = ("model", "figure", "median img/s", "95% interval", "windows")
        table = [(r["model"], _short(r["figure"]), format_number(r["median"]),
                  _interval(r["ci_low"], r["ci_high"], "{:,.0f}"), r["windows"]) for r in rows]
        bench = [ci.bench_entry(f"{r['model']} {_short(r['figure'])}", r["unit"], r["median"], r["ci_low"],
                                r["ci_high"]) for r in rows if r["unit"] and r["median"] is not None]
        title = "genbench speed"
        footer = [conditions]
    else:
        cases = [ci.Case(r["model"], r["figure"], r["verdict"], failed=r["verdict"] == Verdict.REGRESSED,
                         detail=f"{against} {format_number(r['old'])}, now {format_number(r['new'])}, ratio "
                                f"{'—' if r['ratio'] is None else format(r['ratio'], '.3f')}"
                                + (f", 95% interval {_interval(r['ci_low'], r['ci_high'], '{:.3f}')}"
                                   if r["unit"] else ""),
                         properties={"old": r["old"], "new": r["new"], "ratio": r["ratio"], "ci_low": r["ci_low"],
                                     "ci_high": r["ci_high"], "unit": r["unit"]})
                 for r in rows]
        header = ("model", "figure", "old", "new", "ratio", "95% interval", "verdict")
        table = [(r["model"], _short(r["figure"]), format_number(r["old"]), format_number(r["new"]),
                  "—" if r["ratio"] is None else f"{r['ratio']:.3f}",
                  _interval(r["ci_low"], r["ci_high"], "{:.3f}") if r["unit"] else "exact", r["verdict"])
                 for r in rows]
        bench = [ci.bench_entry(f"{r['model']} {_short(r['figure'])}", r["unit"], r["new"])
                 for r in rows if r["unit"] and r["new"] is not None]
        title = f"genbench speed: working tree vs {against}, tolerance {tol * 100:g}%"
        footer = [conditions, ", ".join(f"{n} {v}" for v, n in counts.items())]
    summary = (ci.markdown(title, header, table, footer)
               if summary_path or os.environ.get(ci.STEP_SUMMARY_ENV) else None)
    ci.write_outputs(junit=ci.junit_xml("speed", cases, seconds) if junit_path else None, junit_path=junit_path,
                     summary=summary, summary_path=summary_path, bench={bigger_path: bench} if bigger_path else {})
