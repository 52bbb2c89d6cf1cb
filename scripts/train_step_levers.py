"""Training-step levers on this machine: eager against fused Adam, torch.compile and one thread.

Usage:

    python scripts/train_step_levers.py iddpm [--rounds 2] [--steps 30] [--levers eager,fused,compile,threads1]

Each (round, lever) is a fresh process that builds the model with the suite's config
(``mnist-small``'s settings for it), runs a few warm-up steps (timed separately: torch.compile's
compilation is paid there, inside the training budget of a real run), then times
``--steps`` training steps on one fixed batch. Levers alternate within each round so
that the machine's load falls on all of them alike; the table gives the median per-step
time of each lever and its ratio to eager in the same rounds. ``--profile`` prints
torch.profiler's top operators of the eager step instead: where the step's time goes.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

LEVERS = ("eager", "fused", "compile", "threads1")


def _child(model_name: str, lever: str, steps: int, profile: bool) -> dict:
    import torch

    import genbench_baselines  # noqa: F401  (registers the baselines)
    from genbench.registry import get_generator

    torch.set_num_threads(1 if lever == "threads1" else 2)
    from genbench.suite import load_suite

    entry = load_suite("mnist-small").model(model_name)
    cls = get_generator(model_name)
    overrides = dict(entry.settings) if entry is not None else {}
    torch.manual_seed(0)
    model = cls(cls.Config(**overrides))
    if lever == "fused":
        for name, opt in vars(model).items():
            if isinstance(opt, torch.optim.Adam):
                setattr(model, name, torch.optim.Adam(
                    opt.param_groups[0]["params"], **{**opt.defaults, "foreach": None, "fused": True}))
    if lever == "compile":
        for name, mod in list(model.named_children()):
            if name in ("net", "G", "D", "generator", "discriminator", "encoder", "decoder", "model"):
                setattr(model, name, torch.compile(mod))
    bs = int(model.config.batch_size)
    g = torch.Generator().manual_seed(0)
    batch = torch.randint(0, 256, (bs, 1, 28, 28), generator=g).float() / 255
    t0 = time.perf_counter()
    for i in range(5):
        model.train_step(batch, i)
    warm = time.perf_counter() - t0
    if profile:
        from torch.profiler import profile as prof
        with prof() as p:
            for i in range(steps):
                model.train_step(batch, i)
        print(p.key_averages().table(sort_by="self_cpu_time_total", row_limit=12))
        return {}
    t0 = time.perf_counter()
    for i in range(steps):
        model.train_step(batch, 5 + i)
    return {"lever": lever, "warmup_s": warm, "step_ms": (time.perf_counter() - t0) / steps * 1000, "batch": bs}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--levers", default=",".join(LEVERS))
    p.add_argument("--profile", action="store_true")
    p.add_argument("--child", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        print(json.dumps(_child(a.model, a.child, a.steps, a.profile)))
        return
    if a.profile:
        _child(a.model, "eager", a.steps, True)
        return
    levers = [x for x in a.levers.split(",") if x]
    bad = sorted(set(levers) - set(LEVERS))
    if bad:
        raise SystemExit(f"error: unknown lever(s) {', '.join(bad)}; valid: {', '.join(LEVERS)}")
    rows: dict[str, list[dict]] = {lv: [] for lv in levers}
    for r in range(a.rounds):
        for lv in levers:
            out = subprocess.run([sys.executable, __file__, a.model, "--child", lv, "--steps", str(a.steps)],
                                 capture_output=True, text=True, check=True, env={**os.environ})
            res = json.loads(out.stdout.strip().splitlines()[-1])
            rows[lv].append(res)
            print(f"round {r}: {lv:9s} {res['step_ms']:7.1f} ms/step (warm-up {res['warmup_s']:.1f} s)", flush=True)
    base = [x["step_ms"] for x in rows.get("eager", [])]
    print(f"\n{a.model}, batch {rows[levers[0]][0]['batch']}, {a.steps} steps, {a.rounds} alternated rounds, "
          f"load average {os.getloadavg()[0]:.2f} at the end")
    print("| lever | median ms/step | eager / lever, same round | warm-up s |")
    print("|---|---|---|---|")
    for lv in levers:
        ms = [x["step_ms"] for x in rows[lv]]
        ratio = (f"{statistics.median(b / m for b, m in zip(base, ms, strict=True)):.2f}x" if base else "—")
        warm = statistics.median(x["warmup_s"] for x in rows[lv])
        print(f"| {lv} | {statistics.median(ms):.1f} | {ratio} | {warm:.1f} |")


if __name__ == "__main__":
    main()
