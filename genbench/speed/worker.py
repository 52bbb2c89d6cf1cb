"""The workloads of ``genbench speed``, run in a fresh process against one source tree.

``genbench speed`` copies this file into a temporary folder and starts it with
the same interpreter, ``PYTHONPATH`` pointing at the tree under test (the working
tree or an exported git revision), so that the measuring code is the same on both
sides and only the code under test differs, as in asv. It must therefore import
nothing of genbench at module level and use only long-standing public APIs of
the code under test: ``genbench.registry`` (``generator_names``, ``get_generator``),
``genbench.config.make_config``, ``genbench.suite.load_suite``, ``genbench.data.datasets.load_split``,
``genbench.process.seed_everything``, ``genbench.run.efficiency.train_flops_per_image``
(in trees from before the subpackages: ``genbench.data``, ``genbench.harness``, ``genbench.efficiency``,
``genbench.registry.make_config``),
``genbench.features`` (``load_extractor``, ``load_reference``) and
``genbench.evaluate`` (``EvalConfig``, ``distribution_metrics``).

Protocol: one JSON object per line on stdin, one reply per line on the original
stdout (anything the code under test prints goes to stderr instead):

- ``{"op": "setup", ...}`` builds every generator asked for (``generators: null``:
  every registered one) at its suite config, and the eval workloads if asked for;
  counts their work and warms them up; replies with the registered generators,
  work counts and the seconds one call of each workload took;
- ``{"op": "window", "model": M, "figure": F, "calls": K}`` runs ``K`` calls of one
  workload and replies ``{"images": N, "wall": S, "cpu": S}``: wall-clock and process
  CPU seconds inside the calls only;
- ``{"op": "quit"}``.

A failure replies ``{"error": "one line"}``.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
import traceback
from pathlib import Path

TRAIN, SAMPLE = "train_images_per_s", "sample_images_per_s"
FEATURES, METRICS = "feature_images_per_s", "metric_images_per_s"
EVAL = "eval"  # pseudo-model: the `genbench eval` workloads (features + metrics on fixed images)
SAMPLE_PROBE = 8  # images in the warm-up sample call that estimates the cost of a full one
FULL_WARMUP_SECONDS = 2.0  # a full sample call estimated to take longer is not run in warm-up


def _flat_or_nested(nested: str, flat: str, name: str, *older: str):
    """``name`` from the module ``nested``, or from ``flat`` (then each of ``older``) where it does not exist.

    ``genbench speed --against REV`` runs this file against old revisions too, whose
    modules sat flat in ``genbench/`` before the subpackages (``genbench.harness`` before
    ``genbench.run.process``, which is ``genbench.process`` again now): a comparison with
    such a revision must still run.
    """
    import importlib

    for candidate in (nested, flat, *older):
        try:
            module = importlib.import_module(candidate)
        except ImportError:
            continue
        if hasattr(module, name):
            return getattr(module, name)
    raise ImportError(f"{name} is in none of {', '.join((nested, flat, *older))}")


class Clock:
    """Wall-clock and process CPU seconds of a block (CPU time leaves out time other processes took)."""

    def __enter__(self) -> Clock:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu

    @property
    def seconds(self) -> dict:
        return {"wall": self.wall, "cpu": self.cpu}


def _is_competitor(cls: type) -> bool:
    role = getattr(cls, "role", "competitor")
    return getattr(role, "value", role) == "competitor"


class Workloads:
    """Models, data and extractor of one tree, and the calls that are timed."""

    def __init__(self, msg: dict) -> None:
        import torch

        threads = int(msg["threads"])
        torch.set_num_threads(threads)
        # Fixed already if an earlier parallel region ran; OMP_NUM_THREADS covers that case.
        with contextlib.suppress(RuntimeError):
            torch.set_num_interop_threads(threads)
        import genbench

        try:  # each side's allocator setting, as its own runs would have it
            from genbench.allocator import keep_freed_memory
        except ImportError:  # a revision from before genbench.allocator
            pass
        else:
            keep_freed_memory()
        self.torch = torch
        self.genbench_file = str(Path(genbench.__file__).resolve())
        expect = msg.get("expect_genbench")
        if expect and Path(self.genbench_file) != Path(expect).resolve():
            raise RuntimeError(f"imported genbench from {self.genbench_file}, expected {expect}")
        from genbench.registry import generator_names, get_generator
        from genbench.suite import load_suite

        load_split = _flat_or_nested("genbench.data.datasets", "genbench.data", "load_split")
        seed_everything = _flat_or_nested("genbench.process", "genbench.run.process", "seed_everything",
                                          "genbench.harness")

        self.device = torch.device(msg["device"])
        self.seed_everything = seed_everything
        self.sample_n = int(msg["sample_batch"])
        self.suite = load_suite(msg["suite"])
        self.data_root = msg.get("data_root")
        train = load_split(self.suite.dataset, "train", self.data_root).images
        perm = torch.randperm(len(train), generator=torch.Generator().manual_seed(int(msg["seed"])))
        self.train_images = train[perm].to(self.device)  # fixed order: both sides see the same batches
        self.seed = int(msg["seed"])
        self.registered = set(generator_names())
        self.models: dict[str, dict] = {}
        self.reply: dict = {"genbench_file": self.genbench_file, "torch": torch.__version__,
                            "threads": torch.get_num_threads(), "generators": sorted(self.registered), "models": {}}
        # By default the competitors: the reference rows (floor, ceiling, memorizer) train
        # nothing worth timing. Trees from before roles existed have competitors only.
        names = msg["generators"] if msg["generators"] is not None else sorted(
            n for n in self.registered if _is_competitor(get_generator(n)))
        for name in names:
            if name in self.registered:
                self.reply["models"][name] = self._setup_model(name)
            else:
                self.reply["models"][name] = {"registered": False}
        if msg["eval"]:
            self.reply["models"][EVAL] = self._setup_eval(msg)

    def _sync(self) -> None:
        if self.device.type == "cuda":
            self.torch.cuda.synchronize(self.device)

    # -- generators ----------------------------------------------------------------
    def _setup_model(self, name: str) -> dict:
        from genbench.registry import get_generator

        make_config = _flat_or_nested("genbench.config", "genbench.registry", "make_config")
        train_flops_per_image = _flat_or_nested("genbench.run.efficiency", "genbench.efficiency",
                                                "train_flops_per_image")

        cls = get_generator(name)
        entry = next((e for e in self.suite.models if e.name == name), None)
        config = make_config(cls, dict(entry.settings) if entry is not None else {})
        self.seed_everything(self.seed)
        model = cls(config).to(self.device)
        if hasattr(model, "setup"):  # reference rows read their data here (trees with RunContext)
            from genbench.protocol import RunContext

            model.setup(RunContext(self.suite.dataset, self.data_root))
        state = {"model": model, "batch": int(config.batch_size), "pos": 0, "step": 0, "sample_seed": 0}
        self.models[name] = state
        flops = train_flops_per_image(model, self.train_images[: state["batch"]])
        model.train()
        self._train_call(state)  # first step: lazy initialisation, allocator growth
        train = self._train_call(state).seconds
        probe = self._sample_call(state, SAMPLE_PROBE).seconds
        sample = {k: v * self.sample_n / SAMPLE_PROBE for k, v in probe.items()}
        if max(sample.values()) <= FULL_WARMUP_SECONDS:  # cheap enough: time a real call (and warm it up)
            sample = self._sample_call(state, self.sample_n).seconds
        return {
            "registered": True,
            "work": {"num_parameters": int(model.num_parameters()), "train_flops_per_image": float(flops)},
            "call_seconds": {TRAIN: train, SAMPLE: sample},
            "images_per_call": {TRAIN: state["batch"], SAMPLE: self.sample_n},
        }

    def _train_call(self, state: dict) -> Clock:
        b, n = state["batch"], len(self.train_images)
        if state["pos"] + b > n:
            state["pos"] = 0
        batch = self.train_images[state["pos"]: state["pos"] + b]
        state["pos"] += b
        with Clock() as clock:
            state["model"].train_step(batch, state["step"])
            self._sync()
        state["step"] += 1
        return clock

    def _sample_call(self, state: dict, n: int) -> Clock:
        model = state["model"]
        gen = self.torch.Generator(self.device).manual_seed(state["sample_seed"])
        state["sample_seed"] += 1
        model.eval()
        try:
            with self.torch.no_grad(), Clock() as clock:
                model.sample(n, gen)
                self._sync()
            return clock
        finally:
            model.train()

    # -- genbench eval ---------------------------------------------------------------
    def _setup_eval(self, msg: dict) -> dict:
        from torch.utils.flop_counter import FlopCounterMode

        from genbench.evaluate import EvalConfig, distribution_metrics
        from genbench.features import load_extractor, load_reference

        self.eval_config = EvalConfig()
        self.distribution_metrics = distribution_metrics
        self.extractor = load_extractor("genbench", self.suite.dataset, self.device)
        self.reference = load_reference(self.suite.dataset, self.extractor, data_root=self.data_root)
        # Training images scored as if they were samples: a fixed, realistic input.
        self.eval_images = self.train_images[: int(msg["eval_images"])].cpu()
        with FlopCounterMode(display=False) as counter, self.torch.no_grad():
            self.extractor.module(self.eval_images[:1].to(self.device))
        n_params = sum(p.numel() for p in self.extractor.module.parameters())
        self._features_call()
        features = self._features_call().seconds
        metrics = self._metrics_call().seconds
        return {
            "registered": True,
            "work": {"num_parameters": int(n_params), "feature_flops_per_image": float(counter.get_total_flops())},
            "call_seconds": {FEATURES: features, METRICS: metrics},
            "images_per_call": {FEATURES: len(self.eval_images), METRICS: len(self.eval_images)},
        }

    def _features_call(self) -> Clock:
        with Clock() as clock:
            self.features = self.extractor.extract(self.eval_images, self.eval_config.feature_batch_size)
            self._sync()
        return clock

    def _metrics_call(self) -> Clock:
        with Clock() as clock:
            self.distribution_metrics(self.features, self.reference, seed=self.seed, config=self.eval_config,
                                      domain_classifier=self.extractor.is_domain_classifier)
        return clock

    # -- windows -------------------------------------------------------------------
    def window(self, model: str, figure: str, calls: int) -> dict:
        if figure in (TRAIN, SAMPLE):
            state = self.models[model]
            if figure == TRAIN:
                clocks = [self._train_call(state) for _ in range(calls)]
                images = calls * state["batch"]
            else:
                clocks = [self._sample_call(state, self.sample_n) for _ in range(calls)]
                images = calls * self.sample_n
        elif figure in (FEATURES, METRICS):
            call = self._features_call if figure == FEATURES else self._metrics_call
            clocks = [call() for _ in range(calls)]
            images = calls * len(self.eval_images)
        else:
            raise ValueError(f"unknown figure {figure!r}")
        return {"images": images, "wall": sum(c.wall for c in clocks), "cpu": sum(c.cpu for c in clocks)}


def _one_line(exc: BaseException) -> str:
    where = traceback.extract_tb(exc.__traceback__)
    last = f" (at {Path(where[-1].filename).name}:{where[-1].lineno})" if where else ""
    return " ".join(f"{type(exc).__name__}: {exc}".split()) + last


def main() -> None:
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # prints of the code under test must not corrupt the protocol
    workloads: Workloads | None = None
    for line in sys.stdin:
        msg = json.loads(line)
        try:
            if msg["op"] == "quit":
                break
            if msg["op"] == "setup":
                workloads = Workloads(msg)
                reply = workloads.reply
            elif msg["op"] == "window" and workloads is not None:
                reply = workloads.window(msg["model"], msg["figure"], int(msg["calls"]))
            else:
                reply = {"error": f"unexpected request {msg.get('op')!r}"}
        except Exception as exc:  # reported to the driver, which stops with one line
            traceback.print_exc(file=sys.stderr)
            reply = {"error": _one_line(exc)}
        proto.write(json.dumps(reply) + "\n")


if __name__ == "__main__":
    main()
