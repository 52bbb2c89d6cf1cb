"""One-call device check: the smoke suite, `genbench speed` for every model and `genbench eval` at 10k/50k images.

Usage::

    python benchmarks/device_check.py --device cuda --out device-check     # a GPU machine (about 8 min at most)
    python benchmarks/device_check.py --device cpu --quick --out /tmp/dc   # the CPU fallback (benchmarks/)

Every step is the command a user runs, in a fresh process, so the figures include what a user
pays (start-up, imports, caches). It writes ``OUT/device_check.md`` (the table to commit, with the
machine and the commands) and ``OUT/device_check.json`` (every raw result), and prints the table.

The eval inputs are real MNIST training images saved as one ``.npy`` array per size (scoring real
images measures the pipeline, not a model). The first eval call fills the reference-statistics and
copy-calibration caches and is reported apart as ``cold``; the sizes are then timed with warm caches.
Steps that fail are reported in the table with their exit status; the script exits 1 if any did.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def _load() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def _run(cmd: list[str], log: Path, timeout: float) -> dict[str, Any]:
    """Run one genbench command in a fresh process; its output goes to ``log``."""
    print(f"$ {shlex.join(cmd)}", flush=True)
    t0 = time.perf_counter()
    load_start = _load()
    with log.open("w") as f:
        try:
            rc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, timeout=timeout, check=False).returncode
        except subprocess.TimeoutExpired:
            rc = 124
    seconds = time.perf_counter() - t0
    print(f"  exit {rc} in {seconds:.1f} s (log {log})", flush=True)
    return {"command": shlex.join(cmd), "exit": rc, "seconds": round(seconds, 2), "load_start": load_start,
            "load_end": _load(), "log": str(log)}


def _machine(device: str) -> dict[str, Any]:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    info: dict[str, Any] = {"python": platform.python_version(), "torch": torch.__version__, "cpu": cpu,
                            "cores": os.cpu_count()}
    if device == "cuda" and torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1),
                    cuda=torch.version.cuda, gpus=torch.cuda.device_count())
    return info


def _eval_inputs(sizes: list[int], data_root: str | None, folder: Path) -> dict[int, Path]:
    import numpy as np

    from genbench.data.datasets import load_split

    images = load_split("mnist", "train", data_root).images.numpy()
    paths = {}
    for n in sizes:
        if n > len(images):
            raise SystemExit(f"--eval-sizes: {n} is more than the {len(images)} training images")
        paths[n] = folder / f"mnist-train-{n}.npy"
        np.save(paths[n], images[:n])
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--out", type=Path, default=Path("device-check"))
    parser.add_argument("--quick", action="store_true",
                        help="small sizes for the CPU fallback: smoke for two models, short speed windows, "
                             "eval of 500 and 1,000 images")
    parser.add_argument("--eval-sizes", default=None, help="comma-separated image counts (default 10000,50000)")
    parser.add_argument("--speed-seconds", type=float, default=None, help="measured seconds per speed figure")
    parser.add_argument("--data-root", default=None, help="dataset folder (default: $GENBENCH_DATA)")
    args = parser.parse_args(argv)

    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print("Error: --device cuda but torch sees no CUDA device; use --device cpu for the fallback", file=sys.stderr)
        return 2
    sizes = [int(s) for s in (args.eval_sizes or ("500,1000" if args.quick else "10000,50000")).split(",")]
    speed_seconds = args.speed_seconds or (0.3 if args.quick else 3.0)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    logs = out / "logs"
    logs.mkdir(exist_ok=True)
    data = ["--data-root", args.data_root] if args.data_root else []
    started = time.perf_counter()
    steps: dict[str, Any] = {}
    table: list[str] = []

    with tempfile.TemporaryDirectory(prefix="genbench-device-check-") as tmp:
        scratch = Path(tmp)
        # 1. the smoke suite, as CI runs it, on the device
        smoke = ["genbench", "run", "--suite", "smoke", "--device", args.device, "--out", str(scratch / "smoke"),
                 "--no-progress", *data]
        if args.quick:
            smoke += ["--models", "seed-gan,vae"]
        steps["smoke"] = _run(smoke, logs / "smoke.log", timeout=1800)
        runs = []
        for rec_path in sorted((scratch / "smoke" / "smoke").glob("*/seed*/run.json")):
            rec = json.loads(rec_path.read_text())
            m = rec.get("metrics", {})
            runs.append({"model": rec["model"]["name"], "status": rec["status"],
                         "train_img_s": m.get("train_images_per_s"), "sample_img_s": m.get("sample_images_per_s"),
                         "train_s": rec.get("timings", {}).get("train_seconds"),
                         "eval_s": rec.get("timings", {}).get("eval_seconds"),
                         "fid": m.get("fid"), "nll_bpd": m.get("nll_bpd")})
        steps["smoke"]["runs"] = runs

        # 2. genbench speed: every competitor's train/sample figures and the eval workloads
        speed_json = scratch / "speed.json"
        speed = ["genbench", "speed", "--device", args.device, "--seconds", str(speed_seconds), "--no-progress",
                 "--json", str(speed_json), *data]
        if args.quick:
            speed += ["--models", "seed-gan,eval", "--sample-batch", "64", "--eval-images", "200"]
        steps["speed"] = _run(speed, logs / "speed.log", timeout=1800)
        steps["speed"]["results"] = json.loads(speed_json.read_text())["results"] if speed_json.exists() else []

        # 3. genbench eval of real images: a cold call (fills the caches), then each size warm
        inputs = _eval_inputs(sizes, args.data_root, scratch)
        evals = []
        first = min(sizes)
        cold = ["genbench", "eval", "--samples", str(inputs[first]), "--device", args.device, "--json",
                str(scratch / "eval-cold.json"), *data]
        steps["eval_cold"] = _run(cold, logs / "eval-cold.log", timeout=1800)
        for n in sizes:
            target = scratch / f"eval-{n}.json"
            cmd = ["genbench", "eval", "--samples", str(inputs[n]), "--device", args.device, "--json", str(target),
                   *data]
            step = _run(cmd, logs / f"eval-{n}.log", timeout=1800)
            if target.exists():
                result = json.loads(target.read_text())
                step.update(n=n, fid=result.get("fid"), timings=result.get("timings"))
            evals.append(step)
        steps["eval"] = evals

    total = time.perf_counter() - started
    machine = _machine(args.device)
    failed = [name for name, s in steps.items() if isinstance(s, dict) and s.get("exit")]
    failed += [f"eval {s.get('n')}" for s in steps["eval"] if s.get("exit")]

    table.append(f"# genbench device check ({args.device}{', quick' if args.quick else ''})\n")
    table.append(f"Machine: {json.dumps(machine)}  ")
    table.append(f"Command: `python benchmarks/device_check.py {shlex.join(sys.argv[1:] if argv is None else argv)}`  ")
    table.append(f"Total wall time: {total:.0f} s; failed steps: {', '.join(failed) or 'none'}\n")
    table.append(f"## Smoke suite on {args.device} (`{steps['smoke']['command']}`: {steps['smoke']['seconds']} s, "
                 f"exit {steps['smoke']['exit']})\n")
    table.append("| model | status | train [img/s] | sample [img/s] | train [s] | eval [s] | FID | NLL [bits/dim] |")
    table.append("|---|---|---:|---:|---:|---:|---:|---:|")
    for r in runs:
        cells = [r["model"], r["status"]] + [
            "—" if r[k] is None else f"{r[k]:,.4g}" for k in ("train_img_s", "sample_img_s", "train_s", "eval_s",
                                                               "fid", "nll_bpd")]
        table.append("| " + " | ".join(cells) + " |")
    table.append(f"\n## genbench speed on {args.device} (`{steps['speed']['command']}`: {steps['speed']['seconds']} s,"
                 f" exit {steps['speed']['exit']})\n")
    table.append("| model | figure | median [img/s] | 95% interval | windows |")
    table.append("|---|---|---:|---|---:|")
    for r in steps["speed"]["results"]:
        ci = "—" if r.get("ci_low") is None else f"{r['ci_low']:,.4g} to {r['ci_high']:,.4g}"
        table.append(f"| {r['model']} | {r['figure']} | {r['median']:,.4g} | {ci} | {r['windows']} |")
    table.append(f"\n## genbench eval of MNIST training images on {args.device} (default metrics; cold call "
                 f"{steps['eval_cold']['seconds']} s at {first:,} images fills the caches)\n")
    table.append("| images | wall [s] | images/s | read [s] | features [s] | FID vs test | exit |")
    table.append("|---:|---:|---:|---:|---:|---:|---:|")
    for s in evals:
        t = s.get("timings") or {}
        feats = t.get("features_seconds")
        fid = "—" if s.get("fid") is None else f"{s['fid']:.4g}"
        table.append(f"| {s['n']:,} | {s['seconds']} | {s['n'] / s['seconds']:,.0f} | {t.get('read_seconds', '—')} | "
                     f"{'—' if feats is None else feats} | {fid} | {s['exit']} |")
    text = "\n".join(table) + "\n"
    (out / "device_check.md").write_text(text)
    (out / "device_check.json").write_text(json.dumps({"machine": machine, "total_seconds": round(total, 1),
                                                        "steps": steps}, indent=2, default=str))
    print(text)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
