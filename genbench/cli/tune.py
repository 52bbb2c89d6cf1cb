"""``genbench tune``: equal hyperparameter-search effort per model (a thin shell over :mod:`genbench.tune`)."""

from __future__ import annotations

import time
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from genbench.cli.options import (
    OUT_DEFAULT,
    allow_dirty_option,
    cpus_per_run_option,
    data_root_option,
    device_option,
    json_option,
    seed_option,
    write_json,
)
from genbench.device import resolve_device
from genbench.kv import split_items
from genbench.term import plain, text


@click.command("tune")
@click.option("--suite", "suite", default="mnist-small", show_default=True,
              help="Built-in suite name (see `genbench list`) or path to a suite .toml file (models' "
                   "tiny/settings/search_space).")
@click.option("--models", default=None, help="Comma-separated models to tune (each gets the same trials and budget).")
@click.option("--model", "model_files", multiple=True, metavar="FILE.py:CLASS",
              help="Also tune your own Generator subclass (it declares a search_space). Repeatable.")
@click.option("--trials", type=click.IntRange(min=1), required=True, help="Trials K per model (the same for all).")
@click.option("--budget", default=None,
              help="Per-trial budget, the same for every model: images=N or steps=N, with seconds=S as a guard "
                   "(a trial it stops before the work is done is recorded as capped) [default: the suite's "
                   "default budget].")
@click.option("--search", type=click.Choice(["random", "tpe"]), default="random", show_default=True,
              help="random: trial i's values are a function of (seed, i). tpe: Optuna's TPE, one trial at a time.")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="local: trials one after another in this process. ray: Ray Tune trials packed onto this "
                   "machine's CPUs or a cluster (pip install -e '.[tune]'); the same trials either way.")
@click.option("--ray-address", default=None, metavar="ADDR",
              help="With --executor ray: omit to start a local Ray instance; 'auto' or HOST:PORT joins a cluster.")
@cpus_per_run_option()
@device_option()
@data_root_option()
@click.option("--out", type=click.Path(file_okay=False), default=OUT_DEFAULT, show_default=True,
              help="Results folder; a tune goes to OUT/SUITE-tune/: MODEL/trials.jsonl, MODEL/expected_best.png, "
                   "SUITE-tuned.toml. The committed tunes are in results/; the default never touches them.")
@click.option("--resume", is_flag=True, help="Keep the finished trials and run only the missing ones.")
@click.option("--overwrite", is_flag=True, help="Start over models that already have trials in OUT.")
@seed_option("Seed of the search and of every trial.")
@json_option("Also write each model's trials and best trial as JSON to this file ('-': the JSON on stdout, the "
             "table on stderr).")
@allow_dirty_option()
def tune_command(suite, models, model_files, trials, budget, search, executor, ray_address, cpus_per_run, device,
                 data_root, out, resume, overwrite, seed, json_path, allow_dirty):
    """Tune each model with the same number of trials and the same per-trial budget; select on validation data.

    Trials train on the first 50,000 training images and are scored on the last 10,000
    (FID in the domain features, or NLL for likelihood models); the test split is never
    read. Writes every trial, the expected-best-vs-k curve and a tuned suite file for
    `genbench run --suite`. Exit 2 on unusable input, 130 after Ctrl-C (resume with --resume).
    """
    from genbench.registry import load_generator_from_file
    from genbench.run.plan import check_clean_revision, default_threads, describe_budget
    from genbench.suite import load_suite
    from genbench.tune.plan import plan_tune
    from genbench.tune.tuned import tuned_suite_path
    from genbench.tune.tuner import run_tune

    if executor != "ray" and ray_address is not None:
        raise click.UsageError("--ray-address needs --executor ray")
    if resume and overwrite:
        raise click.UsageError("--resume and --overwrite exclude each other")
    extra = [load_generator_from_file(spec) for spec in model_files]
    dev = str(resolve_device(device)) if executor == "local" else device
    threads = cpus_per_run if cpus_per_run is not None else default_threads(str(dev))
    suite_obj = load_suite(suite)
    out_dir = Path(out) / f"{suite_obj.name}-tune"
    check_clean_revision(out_dir, allow_dirty)
    plan = plan_tune(suite_obj, split_items(models) if models else [], trials=trials, budget=budget, search=search,
                     seed=seed, out=out_dir, extra_models=extra, device=dev, data_root=data_root,
                     threads=threads, resume=resume, overwrite=overwrite)
    console = Console(stderr=True)
    source = "--budget" if budget is not None else f"suite {plan.suite.name}'s default budget"
    console.print(text(f"per-trial budget: {describe_budget(plan.tasks[0].budget)} ({source}, the same for every "
                       f"model); {threads} thread(s) per trial; trials in {plan.out}"), soft_wrap=True)

    def on_done(task, rec) -> None:
        score = "—" if rec["score"] is None else f"{rec['score']:.4g}"
        line = (f"{task.model} trial {rec['trial'] + 1}/{trials}: {rec['status']}, {task.metric} {score}, "
                f"{rec['images']:,} images, {rec['seconds']} s")
        console.print(text(line + (f" ({rec['error']})" if rec["error"] else "")))

    t0 = time.perf_counter()
    try:
        results = run_tune(plan, executor=executor, ray_address=ray_address, cpus_per_run=threads,
                           on_done=on_done, console=console)
    except KeyboardInterrupt:
        click.echo(f"Interrupted: finished trials are kept in {plain(plan.out)}; continue with the same "
                   f"command and --resume.", err=True)
        click.get_current_context().exit(130)
    from genbench.tune.tuned import best_trial

    table = Table(title=f"genbench tune: {trials} trial(s) per model in {time.perf_counter() - t0:.0f} s")
    for col in ("model", "metric", "ok", "capped", "failed", "best trial", "best score", "trial seconds"):
        table.add_column(col, justify="left" if col in ("model", "metric") else "right")
    for task in plan.tasks:
        recs = results[task.model]
        best = best_trial(recs)
        table.add_row(text(task.model), task.metric, str(sum(r["status"] == "ok" for r in recs)),
                      str(sum(r["status"] == "capped" for r in recs)),
                      str(sum(r["status"] not in ("ok", "capped") for r in recs)),
                      "—" if best is None else str(best["trial"]),
                      "—" if best is None else f"{best['score']:.4g}",
                      f"{sum(r['seconds'] or 0 for r in recs):.0f}")
    (Console(stderr=json_path == "-") if json_path else console).print(table)
    path = tuned_suite_path(plan)
    if path.exists() and all(best_trial(results[t.model]) is not None for t in plan.tasks):
        console.print(text(f"Tuned suite: {path}  (genbench run --suite {path})"))
    elif path.exists():
        console.print(text(f"Tuned suite (models with a scored trial only): {path}", "yellow"))
    else:
        console.print(text("No model had a scored trial: no tuned suite written.", "red"))
    if json_path:
        from genbench.results import json_safe

        write_json(json_path, json_safe({
            "suite": plan.suite.name, "out": str(plan.out), "trials": trials, "search": search, "seed": seed,
            "tuned_suite": str(path) if path.exists() else None,
            "models": {t.model: {"metric": t.metric, "best": best_trial(results[t.model]),
                                 "trials": results[t.model]} for t in plan.tasks}}))
