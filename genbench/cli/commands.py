"""Command line: a thin shell over the Python API (``genbench.run_suite`` and friends).

Every :class:`~genbench.errors.GenbenchError` becomes a one-line ``Error: ...`` on
stderr with exit code 2, like click's own usage errors.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

import genbench
from genbench.cli.options import (
    OUT_DEFAULT,
    allow_dirty_option,
    ci_options,
    cpus_per_run_option,
    csv_list,
    data_root_option,
    device_option,
    json_option,
    no_progress_option,
    parse_seeds,
    write_json,
)
from genbench.errors import GenbenchError
from genbench.term import format_number, plain, table_console, text

COMPARE_HELP = ("Also show, without rerunning them, the runs of another results folder of the same suite version "
                "(e.g. results/mnist-small); rows from it are marked. A model's row comes from the first folder "
                "that has it: the results folder, then the --compare folders in order. Repeatable.")


class GenbenchGroup(click.Group):
    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except GenbenchError as exc:
            click.echo(f"Error: {plain(exc)}", err=True)
            ctx.exit(2)


@click.group(cls=GenbenchGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(genbench.__version__, prog_name="genbench")
def main() -> None:
    """genbench: train generative image models under fixed budgets and score them.

    \b
    genbench run --suite mnist-small        train + evaluate every baseline
    genbench list                           suites, generators, datasets, metrics
    genbench reproduce results/mnist-small  rerun committed records, compare
    genbench tune --suite S --models a,b --trials K   equal-effort tuning
    """


@main.command()
@click.option("--suite", "suite", default="mnist-small", show_default=True,
              help="Built-in suite name (see `genbench list`) or path to a suite .toml file.")
@click.option("--models", help="Comma-separated subset of the suite's models (or other registered generators).")
@click.option("--model", "model_files", multiple=True, metavar="FILE.py:CLASS",
              help="Also run your own Generator subclass from a Python file (imports that file). Repeatable.")
@click.option("--seeds", help="Comma-separated seeds, e.g. 0,1,2 (default: the suite's).")
@click.option("--budget", help="Replace every model's whole budget: images=N,steps=N,seconds=S (first reached "
                                "stops); a kind not given is unset, so images=N alone has no seconds cap.")
@click.option("--set", "set_items", multiple=True, metavar="MODEL.FIELD=VALUE",
              help="Override one hyperparameter, validated against the model's config, e.g. vae.lr=1e-4. Repeatable.")
@device_option()
@data_root_option()
@click.option("--out", type=click.Path(file_okay=False), default=OUT_DEFAULT, show_default=True,
              help="Results folder; runs go to OUT/SUITE/MODEL/seedK/. The committed records are in results/; "
                   "the default never touches them.")
@click.option("--resume", is_flag=True, help="Keep finished runs and continue interrupted ones from their checkpoints.")
@click.option("--overwrite", is_flag=True, help="Start over runs that already have results in OUT.")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="local: one run after another in this process. ray: one Ray task per (model, seed), "
                   "packed onto the CPUs/GPUs of this machine or of a cluster (pip install -e '.[ray]').")
@click.option("--ray-address", default=None, metavar="ADDR",
              help="With --executor ray: omit to start a local Ray instance sized to this machine; 'auto' joins "
                   "the running cluster (ray start --head); HOST:PORT joins that one. On several nodes --out "
                   "and the data root must be on a filesystem every node reaches.")
@cpus_per_run_option()
@click.option("--gpus-per-run", type=click.FloatRange(min=0), default=None,
              help="GPUs Ray reserves per run [default: 1 with --device cuda, else 0].")
@click.option("--tensorboard", "tensorboard_dir", type=click.Path(file_okay=False), default=None, metavar="DIR",
              help="Also log each run's losses, training img/s, final metrics and sample grid for TensorBoard "
                   "under DIR/SUITE/MODEL/seedK (pip install -e '.[tensorboard]'; view: tensorboard --logdir DIR).")
@click.option("--compare", "compare", multiple=True, type=click.Path(file_okay=False), metavar="DIR",
              help=COMPARE_HELP)
@no_progress_option()
@allow_dirty_option()
@json_option("Also write every run's status, budget and metrics as JSON to this file ('-': the JSON on stdout, "
             "the table on stderr).")
@click.option("--metric", "metric_files", multiple=True, metavar="FILE.py:FUNCTION|NAME",
              help="Also compute your own metric in every run: FUNCTION(samples) -> float of uint8 [n,1,28,28] "
                   "samples, optionally taking the reference images as 'reference'; NAME: an installed package's "
                   "entry point in the group genbench.metrics. Repeatable.")
@click.option("--lens", "lens_files", multiple=True, metavar="FILE.py:CLASS|NAME",
              help="Also compute the feature-based metrics in your own lens in every run (keys suffixed _<its name>): "
                   "an nn.Module class with a 'name', built with no arguments, [n,1,28,28] in [0,1] -> [n,d]. "
                   "NAME: an installed package's entry point in the group genbench.lenses. Repeatable.")
def run(suite, models, model_files, seeds, budget, set_items, device, data_root, out, resume, overwrite, executor,
        ray_address, cpus_per_run, gpus_per_run, tensorboard_dir, compare, no_progress, allow_dirty, json_path,
        metric_files, lens_files):
    """Train every (model, seed) of a suite under its budget, evaluate, and write results + leaderboard.

    Prints each model's effective budget first. A run whose images/steps budget was cut
    short by its seconds cap ends `capped`: evaluated, but left out of means and checks,
    and named in a closing warning.

    Exit code 0 when every run ended ok, capped or diverged (a measured outcome), 1 when
    any run failed (a model or harness error, named in the output), 2 on unusable input,
    130 after Ctrl-C (finished runs are kept; continue with --resume).
    """
    from genbench.config import parse_set_options
    from genbench.likelihood_contract import implausible_bpd
    from genbench.registry import load_generator_from_file
    from genbench.run.options import RunOptions
    from genbench.run.plan import run_suite

    options = RunOptions(  # checks every option, as it does for a call from Python
        models=csv_list(models), extra_models=[load_generator_from_file(spec) for spec in model_files],
        seeds=parse_seeds(seeds), budget=budget, set_overrides=parse_set_options(set_items),
        device=device, data_root=data_root, out=out, resume=resume, overwrite=overwrite, executor=executor,
        ray_address=ray_address, cpus_per_run=cpus_per_run, gpus_per_run=gpus_per_run,
        tensorboard_dir=tensorboard_dir, compare=compare, allow_dirty=allow_dirty, metric_files=metric_files,
        lens_files=lens_files,
    )
    console = Console(stderr=True)
    t0 = time.perf_counter()
    try:
        records = run_suite(suite, options, console=console, show_progress=not no_progress)
    except KeyboardInterrupt:
        click.echo("Interrupted: finished runs are kept; continue the others with --resume.", err=True)
        click.get_current_context().exit(130)
    wall = time.perf_counter() - t0
    table = Table(title=f"{len(records)} run(s) in {wall:.0f} s")
    for col in ("model", "seed", "status", "images", "train img/s", "fid", "is", "nll_bpd"):
        table.add_column(col, justify="right" if col not in ("model", "status") else "left")
    for rec in records:
        m = rec.metrics
        ach = rec.budget.get("achieved") or {}
        table.add_row(
            text(rec.model_name), str(rec.seed), rec.status, f"{ach.get('images', 0):,}",
            *(format_number(m.get(key)) for key in ("train_images_per_s", "fid", "is", "nll_bpd")),
        )
    # The result on stdout, progress and problems on stderr: `genbench run ... > summary.txt`.
    summary = Console(stderr=json_path == "-")
    summary.print(table)
    suite_name = records[0].suite_name if records else suite
    leaderboard = Path(out) / suite_name / "leaderboard.md"
    also = f" (with the runs of {', '.join(compare)})" if compare else ""
    summary.print(text(f"Leaderboard: {leaderboard}{also}"))
    if json_path:
        from genbench.results import json_safe

        write_json(json_path, json_safe({
            "suite": suite_name, "out": str(out), "leaderboard": str(leaderboard), "seconds": round(wall, 1),
            "runs": [{"model": rec.model_name, "seed": rec.seed, "status": rec.status, "error": rec.error,
                      "budget": rec.budget, "metrics": rec.metrics} for rec in records]}))
    for rec in records:
        if rec.status not in ("ok", "capped"):
            console.print(text(f"{rec.model_name} seed {rec.seed}: {rec.status}: {rec.error}", "red"))
    for rec in records:
        if rec.status == "capped":
            console.print(text(f"Warning: {rec.model_name} seed {rec.seed} capped: {rec.error}. {_finish_hint(rec)}",
                               "yellow"), soft_wrap=True)
        unit_warning = implausible_bpd(rec.metrics.get("nll_bpd"))
        if unit_warning:  # kept in the record and marked in the leaderboard, and said here where it is seen
            console.print(text(f"Warning: {rec.model_name} seed {rec.seed}: {unit_warning}", "yellow"), soft_wrap=True)
    if any(rec.status == "failed" for rec in records):
        click.get_current_context().exit(1)


def _finish_hint(rec) -> str:
    """How to finish a capped run: rerun it on an idle machine, or continue it from its checkpoint with a higher cap."""
    asked = rec.budget.get("asked") or {}
    work = ",".join(f"{k}={int(asked[k])}" for k in ("images", "steps") if isinstance(asked.get(k), (int, float)))
    which = f"--models {rec.model_name} --seeds {rec.seed}"
    return (f"Finish it on an idle machine with `{which} --overwrite`, or continue it with a higher cap: "
            f"`{which} --resume --budget {work},seconds=S`")


@main.command("list")
def list_cmd():
    """Show suites, generators, datasets and metrics."""
    from genbench.data.datasets import dataset_names
    from genbench.metrics import metric_specs
    from genbench.registry import generator_names, get_generator
    from genbench.suite import load_suite, suite_names

    console = table_console()  # piped (`genbench list | grep ...`) or in a file, nothing is cut
    t = Table(title="suites")
    for col in ("name", "version", "dataset", "models", "seeds", "description"):
        t.add_column(col)
    for name in suite_names():
        s = load_suite(name)
        t.add_row(text(name), str(s.version), s.dataset, text(", ".join(m.name for m in s.models)),
                  ",".join(map(str, s.seeds)), text(s.description))
    console.print(t)
    t = Table(title="generators")
    from genbench.search_space import describe_distribution

    for col in ("name", "capabilities", "likelihood", "tune (metric: search space)", "docs"):
        t.add_column(col)
    for name in generator_names():
        cls = get_generator(name)
        doc = (cls.__module__ and (sys.modules[cls.__module__].__doc__ or "")).strip().splitlines()
        lik = "bound" if cls.likelihood_is_bound else "exact" if cls.has(genbench.Capability.LOG_LIKELIHOOD) else "—"
        space = (f"{cls.primary_metric}: " + ", ".join(f"{k} {describe_distribution(d)}"
                                                       for k, d in cls.search_space.items())
                 if cls.search_space else "—")
        t.add_row(text(name), str(cls.capabilities.name), lik, text(space), text(doc[0] if doc else ""))
    console.print(t)
    console.print("datasets: " + ", ".join(dataset_names()))
    t = Table(title="metrics")
    for col in ("key", "unit", "better", "kind", "requires", "description"):
        t.add_column(col, no_wrap=col == "key")
    specs = metric_specs()
    for key in sorted(specs):
        spec = specs[key]
        t.add_row(key, spec.unit, spec.arrow or "—", spec.kind, str(spec.requires.name), spec.description)
    console.print(t)


@main.command()
@click.argument("results", type=click.Path(file_okay=False))
@click.option("--compare", "compare", multiple=True, type=click.Path(file_okay=False), metavar="DIR",
              help=COMPARE_HELP)
def report(results, compare):
    """Rebuild leaderboard.{md,csv,json,html} of one suite folder (e.g. results/mnist-small) from its run records.

    Takes the folder's leaderboard lock, as `genbench run` does, so a report never
    overwrites a newer leaderboard; the four files are replaced together or not at all.
    """
    from genbench.report.leaderboard import write_report
    from genbench.run.lock import leaderboard_lock

    if not Path(results).is_dir():
        raise click.BadParameter(f"{plain(results)} is not a folder", param_hint="RESULTS")
    import warnings

    with warnings.catch_warnings(record=True) as caught, leaderboard_lock(Path(results)):
        warnings.simplefilter("always")
        paths = write_report(results, compare)
    for w in caught:
        click.echo(f"Warning: {plain(w.message)}", err=True)
    for path in paths.values():
        click.echo(plain(path))


@main.command()
@click.argument("results", type=click.Path(file_okay=False))
@click.option("--baseline", "baseline_path", required=True, type=click.Path(dir_okay=False),
              help="Baseline JSON written by `genbench baseline save`.")
@click.option("--models", help="Comma-separated subset of the baseline's models to check (default: all of them).")
@click.option("--tol", help="Tolerances replacing the measured bands: METRIC=N% (relative) or METRIC=N (absolute), "
                            "comma-separated, e.g. fid=10%,train_images_per_s=25%.")
@json_option()
@ci_options(bench_smaller=True)
def check(results, baseline_path, models, tol, json_path, junit_xml, summary, bench_bigger, bench_smaller):
    """Compare a suite's results with a baseline. Exit 1 on a change beyond tolerance, 0 otherwise, 2 on unusable input.

    Each metric has a band made from the baseline's seeds: the 99% prediction interval
    for a new run, never narrower than the floor of the metric's kind (distances and
    scores relative, fractions, class counts and bits/dim absolute). Outside it a
    value is 'regressed', or 'improved' beyond what unchanged code gives, which fails
    too: refresh the baseline on purpose once the change is understood. Work counts
    must match exactly ('work changed'). Uncertainty estimates are reported, not
    gated; wall-clock speed gates only when --tol names it (gate speed with `genbench
    speed --against`). Results made with another config, budget, evaluation or
    likelihood convention than the baseline are refused.
    """
    from genbench.verdict import Verdict
    from genbench.verify.check import CHECK_FAILING, compare, comparisons_json, parse_tolerances

    t0 = time.perf_counter()
    comparisons, problems = compare(results, baseline_path, parse_tolerances(tol), models=csv_list(models))
    console = Console(stderr=json_path == "-")
    table = Table(title=text(f"genbench check: {results} vs {baseline_path}"))
    for col in ("model", "metric", "baseline", "now", "tolerance", "verdict"):
        table.add_column(col, justify="right" if col in ("baseline", "now") else "left")
    colour = {Verdict.REGRESSED: "red", Verdict.IMPROVED: "yellow", Verdict.HELD: "", Verdict.MISSING: "yellow",
              Verdict.WORK_CHANGED: "red"}
    for c in comparisons:
        shown = "improved beyond tolerance" if c.verdict == Verdict.IMPROVED else c.verdict
        table.add_row(text(c.model), text(c.metric), format_number(c.baseline), format_number(c.value), c.tolerance,
                      f"[{colour[c.verdict]}]{shown}[/]" if colour[c.verdict] else shown)
    console.print(table)
    failing = [c for c in comparisons if c.verdict in CHECK_FAILING]
    if json_path:
        write_json(json_path, comparisons_json(comparisons, problems))
    count = {v: sum(c.verdict == v for c in comparisons) for v in Verdict}
    counts = (f"{count[Verdict.REGRESSED]} regressed, {count[Verdict.IMPROVED]} improved beyond tolerance, "
              f"{count[Verdict.WORK_CHANGED]} work changed, {count[Verdict.HELD]} held")
    failed_line = ""
    if failing:
        names = ", ".join(dict.fromkeys(c.model for c in failing))
        failed_line = (f"Failed: {names}. A regression is a bug to fix; an improvement beyond tolerance must be "
                       f"understood, then the baseline refreshed on purpose (docs/gate.md).")
    _write_check_reports(results, baseline_path, comparisons, problems, [counts, failed_line],
                         time.perf_counter() - t0, junit_xml, summary, bench_bigger, bench_smaller)
    for problem in problems:
        console.print(text(f"unusable: {problem}", "yellow"))
    if problems:
        entries = "entry is" if len(problems) == 1 else "entries are"
        click.echo(f"Error: {len(problems)} baseline {entries} missing from the results "
                   f"(first: {plain(problems[0])})", err=True)
        click.get_current_context().exit(2)
    console.print(counts)
    if failing:
        console.print(text(failed_line, "red"))
    click.get_current_context().exit(1 if failing else 0)


def _write_check_reports(results, baseline_path, comparisons, problems, footer, seconds, junit_path, summary_path,
                         bigger_path, smaller_path) -> None:
    """check's CI files (genbench.verify.ci): JUnit XML, Markdown summary, benchmark JSON."""
    from genbench.metrics import metric_specs
    from genbench.verdict import Verdict
    from genbench.verify import ci
    from genbench.verify.check import CHECK_FAILING

    suite = Path(results).name
    cases = [ci.Case(c.model, c.metric, c.verdict, failed=c.verdict in CHECK_FAILING,
                     error=c.verdict == Verdict.MISSING,
                     detail=f"baseline {format_number(c.baseline)}, now {format_number(c.value)}, "
                            f"tolerance {c.tolerance}",
                     properties={"baseline": c.baseline, "value": c.value, "low": c.low, "high": c.high,
                                 "seeds": c.seeds, "kind": c.kind})
             for c in comparisons]
    cases += [ci.Case("baseline", f"problem {i + 1}", "unusable", failed=True, error=True, detail=problem)
              for i, problem in enumerate(problems)]
    specs = metric_specs()
    bench: dict[str, list[dict]] = {}
    for path, bigger in ((bigger_path, True), (smaller_path, False)):
        if path:
            bench[path] = [ci.bench_entry(f"{c.model} {c.metric}", specs[c.metric].unit, c.value)
                           for c in comparisons if c.value is not None and c.metric in specs
                           and specs[c.metric].higher_is_better is bigger]
    summary = None
    if summary_path or os.environ.get(ci.STEP_SUMMARY_ENV):
        rows = [(c.model, c.metric, format_number(c.baseline), format_number(c.value), c.tolerance,
                 "improved beyond tolerance" if c.verdict == Verdict.IMPROVED else c.verdict) for c in comparisons]
        rows += [("—", "—", "", "", "", f"unusable: {problem}") for problem in problems]
        summary = ci.markdown(f"genbench check: {results} vs {baseline_path}",
                              ("model", "metric", "baseline", "now", "tolerance", "verdict"), rows,
                              [line for line in footer if line])
    ci.write_outputs(junit=ci.junit_xml(suite, cases, seconds) if junit_path else None, junit_path=junit_path,
                     summary=summary, summary_path=summary_path, bench=bench)


@main.group()
def baseline():
    """Save baselines for `genbench check`."""


@baseline.command("save")
@click.argument("results", type=click.Path(file_okay=False))
@click.argument("file", type=click.Path(dir_okay=False))
def baseline_save(results, file):
    """Write a baseline FILE (JSON) from the run records of one suite folder RESULTS.

    It keeps each ok seed's value of every compared metric and what the runs were made
    with. Run several seeds (e.g. --seeds 0,1,2,3,4) so that `genbench check` can measure
    how far each metric moves without a code change; with one seed only the floors of
    the metric kinds apply.
    """
    from genbench.verify.check import save_baseline

    b = save_baseline(results, file)
    n = sum(len(m["metrics"]) for m in b["models"].values())
    seeds = sorted({len(m["seeds"]) for m in b["models"].values()})
    click.echo(f"baseline for suite {plain(b['suite'])}: {len(b['models'])} model(s), {n} metric(s), "
               f"{'/'.join(map(str, seeds))} seed(s) each -> {plain(file)}")


# Attached after `main` exists; cli_eval holds the metric-side commands.
from genbench.cli.eval import eval_command, features_group  # noqa: E402

main.add_command(eval_command, "eval")
main.add_command(features_group, "features")
from genbench.cli.speed import speed_command  # noqa: E402

main.add_command(speed_command, "speed")
from genbench.cli.reproduce import reproduce_command  # noqa: E402

main.add_command(reproduce_command, "reproduce")
from genbench.cli.tune import tune_command  # noqa: E402

main.add_command(tune_command, "tune")
from genbench.cli.sanity import sanity_command  # noqa: E402

main.add_command(sanity_command, "sanity")


if __name__ == "__main__":  # pragma: no cover
    main()
