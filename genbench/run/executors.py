"""The executors: where the runs of a plan execute, behind one interface (:class:`Executor`).

:class:`LocalExecutor` runs them one after another in this process. :class:`RayExecutor`
runs each (model, seed) as a Ray task: one machine, a multi-GPU node or a cluster.

Each Ray task calls :func:`genbench.run.task.execute_run`, so a run is trained, checkpointed,
evaluated and recorded exactly as the local executor does it. Ray reserves
``cpus_per_run`` CPUs and ``gpus_per_run`` GPUs per task and packs tasks onto the
nodes. A worker that dies (killed, out of memory, node lost) is retried by Ray; the
retry finds the run's checkpoint in the run folder and continues from it.

Files: tasks write their run folders straight under ``--out``. On a single node that
is the local disk; on a multi-node cluster ``--out`` (and the data root) must be a
path that every node reaches (a shared filesystem), which is also what lets a retry
on another node resume from the checkpoint. The driver writes the leaderboard once,
from the records.

Progress: tasks put ``(run key, fraction, info)`` on a Ray queue; the driver drains it
into its :class:`~genbench.run.progress.ProgressBoard`. Ctrl-C on the driver cancels every
outstanding task; finished records stay intact and interrupted runs continue with
``--resume``.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
from typing import Any, Protocol

from rich.console import Console

from genbench.device import resolve_device, resolve_device_name
from genbench.errors import ConfigError
from genbench.results import RunRecord
from genbench.run.progress import ProgressBoard
from genbench.run.task import Evaluator, RunSpec, execute_run

MAX_RETRIES = 3  # Ray's own default for tasks whose worker dies
POLL_SECONDS = 0.25


def _import_ray():
    try:
        import ray
    except ImportError:
        raise ConfigError(
            "--executor ray needs Ray, which is not installed: pip install -e '.[ray]'"
        ) from None
    return ray


def _check_reachable(address: str) -> None:
    """``host:port`` must accept a TCP connection (ray.init would otherwise wait for minutes)."""
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        raise ConfigError(f"--ray-address expects auto or HOST:PORT, got {address!r}")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as exc:
        raise ConfigError(f"cannot reach a Ray cluster at {address}: {exc.strerror or exc}") from None


def _task(spec: RunSpec, queue: Any, evaluator: Evaluator | None) -> dict[str, Any]:
    """Body of one Ray task; returns the record as JSON (plain data travels best)."""

    def progress(fraction: float, info: str) -> None:
        # Fire and forget: Queue.put* waits with ray.get, and a task blocked in ray.get lends
        # its CPUs back to the scheduler, which then starts more runs than --cpus-per-run allows.
        with contextlib.suppress(Exception):  # a vanished queue never stops a run
            queue.actor.put_nowait.remote((spec.key, fraction, info))

    return execute_run(spec, executor="ray", evaluator=evaluator, progress=progress).to_json()


class Executor(Protocol):
    """Schedules runs; each run itself is ``genbench.run.task.execute_run``, wherever it executes."""

    def resolve_device(self, device: str) -> str:
        """``--device`` as the device every run will use (``auto`` resolved where the runs execute)."""
        ...

    def run(self, specs: list[RunSpec], board: ProgressBoard, *, evaluator: Evaluator | None, cpus_per_run: int,
            gpus_per_run: float) -> list[RunRecord]:
        """Execute every spec, report progress on ``board``, return the records."""
        ...

    def close(self) -> None:
        """Release what the executor started."""
        ...


class LocalExecutor:
    """Runs the specs one after another in this process (``--executor local``)."""

    def resolve_device(self, device: str) -> str:
        return str(resolve_device(device))

    def run(self, specs: list[RunSpec], board: ProgressBoard, *, evaluator: Evaluator | None, cpus_per_run: int,
            gpus_per_run: float) -> list[RunRecord]:
        records = []
        for spec in specs:
            rec = execute_run(spec, executor="local", evaluator=evaluator,
                              progress=lambda fraction, info, key=spec.key: board.update(key, fraction, info))
            board.finish(spec.key, rec.status)
            records.append(rec)
        return records

    def close(self) -> None:
        pass


class RayExecutor:
    """Connects to (or starts) Ray on construction; :meth:`close` shuts down what it started."""

    def __init__(self, address: str | None, console: Console) -> None:
        ray = self.ray = _import_ray()
        self.console = console
        self.started = False
        if address not in (None, "", "auto", "local"):
            _check_reachable(address)  # also when this process already holds a Ray connection
        if ray.is_initialized():
            return
        kwargs: dict[str, Any] = {"logging_level": "WARNING", "log_to_driver": False}
        try:
            if address in (None, "", "local"):
                import torch

                ray.init(num_cpus=os.cpu_count(), num_gpus=torch.cuda.device_count(), include_dashboard=False,
                         **kwargs)
            else:
                ray.init(address=address, **kwargs)
        except ConnectionError as exc:
            raise ConfigError(f"cannot join a Ray cluster at {address}: {str(exc).splitlines()[0]}") from None
        self.started = True

    def resolve_device(self, device: str) -> str:
        """``auto`` is cuda when the Ray cluster has GPUs; ``cuda`` without any is an error."""
        gpus = self.ray.cluster_resources().get("GPU", 0)
        return resolve_device_name(device, has_gpu=bool(gpus), lacking="the Ray cluster has no GPU")

    def run(
        self,
        specs: list[RunSpec],
        board: ProgressBoard,
        *,
        evaluator: Evaluator | None,
        cpus_per_run: int,
        gpus_per_run: float,
    ) -> list[RunRecord]:
        """Submit one task per spec, show progress until all are done, return their records."""
        if not specs:
            return []
        ray = self.ray
        from ray.util.queue import Queue

        self._pickle_user_code(specs, evaluator)
        available = ray.cluster_resources()
        if cpus_per_run > available.get("CPU", 0) or gpus_per_run > available.get("GPU", 0):
            raise ConfigError(
                f"one run asks for {cpus_per_run} CPU(s) and {gpus_per_run:g} GPU(s) but the Ray cluster has "
                f"{available.get('CPU', 0):g} CPU(s) and {available.get('GPU', 0):g} GPU(s); "
                f"lower --cpus-per-run/--gpus-per-run"
            )
        queue = Queue()
        remote = ray.remote(_task).options(
            num_cpus=cpus_per_run, num_gpus=gpus_per_run, max_retries=MAX_RETRIES, retry_exceptions=False,
        )
        pending = {remote.remote(spec, queue, evaluator): spec for spec in specs}
        done: dict[str, RunRecord] = {}
        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=POLL_SECONDS)
                self._drain(queue, board)
                for ref in ready:
                    spec = pending.pop(ref)
                    rec = RunRecord.from_json(self._get(ref, spec))
                    done[spec.key] = rec
                    board.finish(spec.key, rec.status)
            self._drain(queue, board)
        except KeyboardInterrupt:
            for ref in pending:
                ray.cancel(ref, force=True)
            raise
        finally:
            with contextlib.suppress(Exception):
                ray.kill(queue.actor)
        return [done[s.key] for s in specs]

    def _get(self, ref: Any, spec: RunSpec) -> dict[str, Any]:
        try:
            return self.ray.get(ref)
        except self.ray.exceptions.RayTaskError as exc:
            cause = exc.cause if getattr(exc, "cause", None) is not None else exc
            if isinstance(cause, ConfigError):  # a held run lock, an unusable spec: the driver's one-line error
                raise ConfigError(str(cause)) from None
            raise
        except self.ray.exceptions.WorkerCrashedError:
            raise ConfigError(
                f"{spec.key}: its worker died {MAX_RETRIES + 1} times; continue it with --resume"
            ) from None

    @staticmethod
    def _drain(queue: Any, board: ProgressBoard) -> None:
        try:
            events = queue.get_nowait_batch(queue.qsize())
        except Exception:
            return
        for key, fraction, info in events:
            board.update(key, fraction, info)

    def _pickle_user_code(self, specs: list[RunSpec], evaluator: Evaluator | None) -> None:
        """Ship classes loaded with ``--model file.py:Class`` by value: workers cannot import their module."""
        from ray import cloudpickle

        modules = {spec.generator.__module__ for spec in specs}
        if evaluator is not None:
            modules.add(getattr(evaluator, "__module__", ""))
        for name in modules:
            module = sys.modules.get(name)
            if module is not None and name.startswith("genbench_user_"):
                cloudpickle.register_pickle_by_value(module)

    def close(self) -> None:
        if self.started and self.ray.is_initialized():
            self.ray.shutdown()
