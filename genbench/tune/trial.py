"""One trial: train on ``train-fit`` under the trial budget, score on ``train-validation`` by the
model's primary metric, return the trial's record (failures recorded, never raised)."""

from __future__ import annotations

import hashlib
import math
import time
import traceback
from typing import Any

import numpy as np
import torch

from genbench.allocator import keep_freed_memory
from genbench.cache import DiskCache
from genbench.data.splits import FIT, VALIDATION, split_images
from genbench.errors import GenbenchError
from genbench.protocol import Generator, RunContext
from genbench.results import cap_reason
from genbench.tune.plan import TrialTask, _jsonable

# -- one trial ---------------------------------------------------------------------------------

# memo key: the file; its blobs hold mu and sigma alone (no version or key: the name says what they are of)
VALIDATION_CACHE: DiskCache[tuple[np.ndarray, np.ndarray]] = DiskCache("validation statistics cache")


def validation_statistics(dataset: str, data_root: str | None, extractor: Any) -> tuple[np.ndarray, np.ndarray]:
    """FID statistics ``(mu [D], sigma [D,D])`` of the validation images in ``extractor``'s space.

    Cached under the stats folder by the images' content hash and the extractor's weights
    hash, so other data under the same name never meets stale statistics.
    """
    from genbench.features.reference import stats_dir
    from genbench.metrics._fidelity_math import fid_features_to_statistics

    images = split_images(dataset, VALIDATION, data_root)
    digest = hashlib.sha256(images.numpy().tobytes()).hexdigest()[:16]
    path = stats_dir() / f"{dataset}-{VALIDATION}-{digest}-{extractor.name}-{extractor.sha256[:16]}.pt"

    def compute() -> tuple[np.ndarray, np.ndarray]:
        s = fid_features_to_statistics(extractor.extract(images).features.float())
        return np.asarray(s["mu"]), np.asarray(s["sigma"])

    return VALIDATION_CACHE.get(
        path, path, key=None, compute=compute,
        encode=lambda stats: {"mu": torch.from_numpy(stats[0]), "sigma": torch.from_numpy(stats[1])},
        decode=lambda blob: (blob["mu"].numpy(), blob["sigma"].numpy()))


def validation_score(model: Generator, task: TrialTask, device: torch.device) -> float | None:
    """The model's ``primary_metric`` on the validation split (lower is better); None if not finite.

    ``fid``: the suite's ``n_samples`` samples against the validation images' statistics in
    the domain features. ``nll_bpd``: mean NLL of the first ``nll_images`` validation images
    (all 10,000 when the suite sets none).
    """
    from genbench.evaluate import draw_samples, log_likelihoods
    from genbench.features import load_extractor
    from genbench.metrics.fid import fid_from_features
    from genbench.metrics.likelihood import KEY_NLL_BPD, nll_summary

    model.eval()
    dataset = task.suite.dataset
    if task.metric == "nll_bpd":
        images = split_images(dataset, VALIDATION, task.data_root)
        n = task.suite.eval.nll_images
        images = images if n is None else images[:n]
        ll = log_likelihoods(model, images, task.seed, device)
        return nll_summary(ll)[KEY_NLL_BPD] if bool(torch.isfinite(ll).all()) else None
    n = task.suite.eval.n_samples
    samples = draw_samples(model, n, task.seed, device)
    extractor = load_extractor("genbench", dataset, device)
    mu, sigma = validation_statistics(dataset, task.data_root, extractor)
    fid = fid_from_features(extractor.extract(samples).features, mu, sigma)
    return fid if math.isfinite(fid) else None


def run_trial(task: TrialTask, index: int, values: dict[str, Any]) -> dict[str, Any]:
    """Train one configuration on ``train-fit`` under the task's budget and score it on ``train-validation``.

    Returns the trial's record (:data:`TRIAL_FIELDS`); a model's own error or a diverged
    loss is recorded (status ``failed``/``diverged``, score None), never raised.
    """
    from genbench.config import make_config, validate_config
    from genbench.device import resolve_device
    from genbench.process import seed_everything
    from genbench.run.train import train

    t0 = time.perf_counter()
    rec: dict[str, Any] = {"trial": int(index), "config": _jsonable(values), "metric": task.metric, "score": None,
                           "status": "failed", "error": None, "images": 0, "steps": 0, "train_seconds": None,
                           "eval_seconds": None, "seconds": None}
    keep_freed_memory()  # in this process, be it the CLI's or a Ray worker's
    threads_before = torch.get_num_threads()
    torch.set_num_threads(task.threads)
    try:
        device = resolve_device(task.device)
        config = make_config(task.generator, {**task.base, **values}, text=False)
        fit = split_images(task.suite.dataset, FIT, task.data_root)
        validate_config(task.generator, config, train_size=len(fit))
        seed_everything(task.seed)
        model = task.generator(config).to(device)
        model.setup(RunContext(task.suite.dataset, task.data_root))
        result = train(model, fit, task.budget, seed=task.seed)
        rec.update(status=result.status, error=result.error, images=result.achieved["images"],
                   steps=result.achieved["steps"], train_seconds=result.achieved["seconds"])
        capped = cap_reason({"asked": task.budget.to_dict(), "achieved": result.achieved})
        if result.status == "ok" and capped:
            # As in `genbench run`: the seconds limit is a guard. A trial it cut short did less work than the
            # others, so it is not scored (a spent trial, like a failed one) and never selected.
            rec.update(status="capped", error=capped)
        elif result.status == "ok":
            t1 = time.perf_counter()
            score = validation_score(model, task, device)
            rec["eval_seconds"] = round(time.perf_counter() - t1, 3)
            if score is None:
                rec.update(status="diverged", error=f"validation {task.metric} is not finite")
            else:
                rec["score"] = float(score)
    except (KeyboardInterrupt, SystemExit):
        raise
    except GenbenchError as exc:
        rec["error"] = str(exc)
    except Exception as exc:  # a failing configuration is a measured outcome of the search, not a crash
        rec["error"] = f"{type(exc).__name__}: {exc}"
        rec["traceback"] = traceback.format_exc(limit=6)
    finally:
        torch.set_num_threads(threads_before)
    rec["seconds"] = round(time.perf_counter() - t0, 3)
    return rec


def failed_record(task: TrialTask, index: int, values: dict[str, Any], error: str) -> dict[str, Any]:
    return {"trial": index, "config": _jsonable(values), "metric": task.metric, "score": None, "status": "failed",
            "error": error, "images": 0, "steps": 0, "train_seconds": None, "eval_seconds": None, "seconds": None}
