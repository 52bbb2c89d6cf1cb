"""The metric gate's mutation score: inject training bugs, rerun the gated suite, see whether `genbench check` fails.

    python scripts/gate_mutations.py --out DIR [--only NAME,...] [--baseline results/baselines/gate.json]

For each mutation below this script copies the code (genbench/ and baselines/, as they are
in the working tree) to a scratch folder, applies one source edit there, checks that the
edit applied exactly once, trains the affected models of the gated suite with that copy
(`genbench run --suite gate --models ... --seeds 0`, in a fresh process whose imports are
asserted to come from the copy), and runs `genbench check --models ...` against the
committed baseline. A mutation is *caught* when check exits 1 naming every affected model.
Each mutated run is also judged as `genbench reproduce` judges a rerun of the committed
seed-0 record (``--records``, default results/gate): it must read ``different``, not
``consistent``. The table (markdown and JSON) goes to DIR, with the metrics each catch
came from.

The bugs are of the kind that ship: an optimizer that never steps, a learning rate off by
1,000, a term dropped from a loss, an autoregressive model that sees the pixel it predicts,
a sampler that uses the wrong weights or the wrong timestep. Each leaves the config and
the recorded spec unchanged, so check compares and does not refuse.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutation:
    name: str
    bug: str
    file: str  # relative to the repository root
    old: str  # exact source text, found exactly once
    new: str
    models: tuple[str, ...]  # models of the gated suite that run the mutated code


MUTATIONS = (
    Mutation("g-optimizer-never-steps", "the generator's optimizer never steps (seed-gan)",
             "baselines/seed_gan.py", "        loss_g.backward()\n        self.opt_g.step()\n",
             "        loss_g.backward()\n", ("seed-gan",)),
    Mutation("lr-1000x-too-small", "both optimizers get lr / 1000 (dcgan family: sn-dcgan)",
             "baselines/dcgan.py",
             "        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=config.lr, betas=betas)\n"
             "        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=config.lr, betas=betas)\n",
             "        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=config.lr / 1000, betas=betas)\n"
             "        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=config.lr / 1000, betas=betas)\n",
             ("sn-dcgan",)),
    Mutation("wgan-generator-loss-sign", "the generator minimises the critic's score instead of maximising it "
             "(wgan-gp)", "baselines/wgan_gp.py", "            loss_g = -self.D(fake).mean()\n",
             "            loss_g = self.D(fake).mean()\n", ("wgan-gp",)),
    Mutation("vae-kl-dropped", "the KL term is dropped from the training loss (vae)", "baselines/vae.py",
             "        return self.log_px_given_z(x, z) - kl\n", "        return self.log_px_given_z(x, z)\n",
             ("vae",)),
    Mutation("pixelcnn-sees-own-pixel", "PixelCNN's first layer sees the pixel it predicts (mask B instead of A "
             "in the horizontal stack)", "baselines/pixelcnn.py",
             "        h = self.h_in(F.pad(x, (self.kw0, -1, 0, 0)))\n",
             "        h = self.h_in(F.pad(x, (self.kw0 - 1, 0, 0, 0)))\n", ("pixelcnn",)),
    Mutation("pixel-lstm-sees-own-pixel", "the LSTM's neighbourhood includes the pixel it predicts (pixel-lstm)",
             "baselines/pixel_lstm.py", "NEIGHBOURS = ((0, -1), (-1, -1), (-1, 0), (-1, 1))\n",
             "NEIGHBOURS = ((0, 0), (-1, -1), (-1, 0), (-1, 1))\n", ("pixel-lstm",)),
    Mutation("diffusion-samples-raw-weights", "the sampler uses the raw network instead of its EMA (iddpm)",
             "baselines/ddpm.py", "        return self._split(self.ema(x_t, t))\n",
             "        return self._split(self.net(x_t, t))\n", ("iddpm",)),
    Mutation("diffusion-sampler-wrong-timestep", "each reverse step gives the network the next step's timestep "
             "(iddpm)", "baselines/ddpm.py", "            eps, frac = self._predict(x, tt)\n",
             "            eps, frac = self._predict(x, tp.clamp(min=0))\n", ("iddpm",)),
    Mutation("flow-coupling-log-det-dropped", "each affine coupling's log-determinant is left out of the "
             "density (glow): the mistake of a first flow, which then reads as a better likelihood",
             "baselines/glow.py",
             "dim=1), log_scale.flatten(1).sum(1)\n", "dim=1), 0 * log_scale.flatten(1).sum(1)\n",
             ("glow",)),
    Mutation("harness-half-range-pixels", "genbench.to_signed maps uint8 images to [-1, 0] instead of [-1, 1] "
             "(shared by the GANs; run here for two of them)",
             "genbench/protocol.py", "    return to_unit(x).mul_(2.0).sub_(1.0)\n",
             "    return to_unit(x).sub_(1.0)\n", ("seed-gan", "sn-dcgan")),
)


def copy_code(dest: Path) -> None:
    """genbench/ and baselines/ of the working tree, importable from ``dest`` (baselines/ under its import name)."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(REPO / "genbench", dest / "genbench", ignore=ignore)
    shutil.copytree(REPO / "baselines", dest / "genbench_baselines", ignore=ignore)


def apply(m: Mutation, root: Path) -> None:
    """Edit the copy under ``root``; refuses a mutation whose text no longer occurs exactly once."""
    path = root / m.file.replace("baselines/", "genbench_baselines/", 1)
    text = path.read_text()
    if text.count(m.old) != 1:
        raise SystemExit(f"mutation {m.name}: the text to replace occurs {text.count(m.old)} times in {m.file}; "
                         f"update the mutation to the code")
    path.write_text(text.replace(m.old, m.new))


def reproduce_verdicts(records_dir: Path, runs_dir: Path, models: tuple[str, ...]) -> dict[str, str]:
    """Per model, `genbench reproduce`'s verdict for the mutated run as a rerun of the committed seed-0 record."""
    from genbench.results import read_run_record
    from genbench.verify.reproduce import compare_records, load_records, seed_values_by_model

    out = {}
    if not records_dir.is_dir():
        return {model: f"no committed records in {records_dir}" for model in models}
    for model in models:
        committed = [rec for _, rec in load_records(records_dir, [model])]
        recorded = next(rec for rec in committed if rec.seed == 0)
        path = runs_dir / model / "seed0" / "run.json"
        if not path.exists():
            out[model] = "no rerun record"
            continue
        verdict, *_ = compare_records(recorded, read_run_record(path),
                                      seed_values=seed_values_by_model(committed)[model])
        out[model] = str(verdict)
    return out


def genbench(root: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """`genbench ARGS` with the code under ``root`` (asserted: an editable install must not shadow it)."""
    code = ("import sys, genbench, genbench_baselines\n"
            f"assert genbench.__file__.startswith({str(root)!r}), genbench.__file__\n"
            f"assert genbench_baselines.__file__.startswith({str(root)!r}), genbench_baselines.__file__\n"
            "from genbench.cli import main\n"
            "main(sys.argv[1:])\n")
    return subprocess.run([sys.executable, "-c", code, *args], cwd=root, env={**env, "PYTHONPATH": str(root)},
                          capture_output=True, text=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, type=Path, help="folder for the table and each mutation's runs")
    parser.add_argument("--only", help="comma-separated mutation names (default: all)")
    parser.add_argument("--baseline", type=Path, default=REPO / "results" / "baselines" / "gate.json")
    parser.add_argument("--suite", default="gate")
    parser.add_argument("--cpus-per-run", type=int, default=None, help="torch threads of the mutated runs")
    parser.add_argument("--check-only", action="store_true",
                        help="judge the mutated runs already in DIR again (e.g. against a refreshed baseline)")
    parser.add_argument("--records", type=Path, default=REPO / "results" / "gate",
                        help="committed records of the suite, for the reproduce verdict of each mutated run")
    args = parser.parse_args()
    chosen = [m for m in MUTATIONS if not args.only or m.name in args.only.split(",")]
    args.out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    rows = []
    for m in chosen:
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix=f"gate-mutation-{m.name}-") as tmp:
            root = Path(tmp)
            copy_code(root)
            apply(m, root)
            runs = args.out / m.name
            models = ",".join(m.models)
            if args.check_only:
                run = subprocess.CompletedProcess([], 0 if (runs / args.suite).is_dir() else 1, "", "no runs in DIR")
            else:
                shutil.rmtree(runs, ignore_errors=True)
                threads = ["--cpus-per-run", str(args.cpus_per_run)] if args.cpus_per_run else []
                run = genbench(root, "run", "--suite", args.suite, "--models", models, "--seeds", "0",
                               "--out", str(runs), "--no-progress", *threads, env=env)
            check_json = args.out / f"{m.name}.check.json"
            check = genbench(root, "check", str(runs / args.suite), "--baseline", str(args.baseline.resolve()),
                             "--models", models, "--json", str(check_json), env=env)
        payload = json.loads(check_json.read_text()) if check_json.exists() else {}
        failing = [c for c in payload.get("comparisons", [])
                   if c["verdict"] in ("regressed", "improved", "work changed")]
        caught = check.returncode == 1 and set(m.models) <= set(payload.get("failed_models", []))
        reproduce = reproduce_verdicts(args.records, runs / args.suite, m.models)
        rows.append({**asdict(m), "run_exit": run.returncode, "check_exit": check.returncode, "caught": caught,
                     "reproduce": reproduce,
                     "flagged": [f"{c['model']} {c['metric']} {c['verdict']} ({c['baseline']:.4g} -> {c['value']:.4g})"
                                 for c in failing if c["value"] is not None],
                     "seconds": round(time.monotonic() - started, 1),
                     "error": (run.stderr.strip().splitlines() or [""])[-1] if run.returncode not in (0,) else None})
        print(f"{m.name}: {'caught' if caught else 'NOT caught'} (run exit {run.returncode}, check exit "
              f"{check.returncode}, {len(failing)} comparisons failed; reproduce: {reproduce}; "
              f"{rows[-1]['seconds']} s)", flush=True)
        (args.out / "mutations.json").write_text(json.dumps(rows, indent=2) + "\n")
    lines = ["| mutation | bug | models | caught by check | flagged by (first 4) | reproduce of seed 0 |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        flagged = "; ".join(r["flagged"][:4]) + (f"; +{len(r['flagged']) - 4} more" if len(r["flagged"]) > 4 else "")
        verdicts = ", ".join(f"{k}: {v}" for k, v in r["reproduce"].items())
        lines.append(f"| `{r['name']}` | {r['bug']} | {', '.join(r['models'])} | "
                     f"{'yes' if r['caught'] else '**no**'} | {flagged or (r['error'] or '—')} | {verdicts} |")
    score = sum(r["caught"] for r in rows)
    lines.append(f"\n{score} of {len(rows)} caught.")
    (args.out / "mutations.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    sys.exit(0 if score == len(rows) else 1)


if __name__ == "__main__":
    main()
