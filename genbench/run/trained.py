"""Load the trained generator of a finished run back: :func:`load_run` (``genbench.load_run``)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import torch

from genbench.errors import ConfigError, GenbenchError
from genbench.protocol import Generator, RunContext

_PLUGIN_MODULE = "genbench_user_"  # module prefix registry.load_generator_from_file gives --model files
_HAS_CLASS = re.compile(r":[A-Za-z_]\w*$")


def _generator_class(run_dir: Path, name: str, class_path: str, model_file: str | os.PathLike | None
                     ) -> type[Generator]:
    from genbench.registry import GENERATORS, generator_names, load_generator_from_file

    class_name = class_path.rpartition(".")[2]
    if model_file is not None:
        spec = str(model_file) if _HAS_CLASS.search(str(model_file)) else f"{model_file}:{class_name}"
        cls = load_generator_from_file(spec)
        if cls.name != name:
            raise ConfigError(f"{spec} is generator {cls.name!r}, but {run_dir} trained {name!r}")
        if class_name and cls.__qualname__ != class_name:  # a sibling class sharing the name is other code
            raise ConfigError(f"{spec} is class {cls.__qualname__}, but {run_dir} trained class {class_name}: "
                              f"pass model_file='{spec.rpartition(':')[0]}:{class_name}'")
        return cls
    generator_names()  # loads the built-in and entry-point generators
    cls = GENERATORS.get(name)
    plugin = class_path.startswith(_PLUGIN_MODULE)
    if cls is None or cls.__qualname__ != class_name or (plugin and not cls.__module__.startswith(_PLUGIN_MODULE)):
        raise ConfigError(
            f"{run_dir} was trained with {name!r} (class {class_name}{', from a --model file' if plugin else ''}), "
            f"which is not registered: pass its file, load_run(run_dir, model_file='path/to/file.py')"
        )
    return cls


def load_run(
    run_dir: str | os.PathLike,
    model_file: str | os.PathLike | None = None,
    *,
    device: torch.device | str = "cpu",
    data_root: str | os.PathLike | None = None,
) -> Generator:
    """The trained generator of a finished run folder (status ``ok``), in eval mode on ``device``.

    The model is rebuilt as the run built it: its class, the config in ``run.json``,
    ``setup`` with the run's dataset (and ``data_root``, None: ``$GENBENCH_DATA`` or the
    cache), then the weights of ``checkpoint.pt``, checked against the record's model,
    config and seed (``genbench.run.train.load_trained_run``).

    ``model_file``: for a run of a ``--model file.py:Class`` plug-in, the file the class
    comes from (``file.py``, or ``file.py:Class``); it is imported the way ``--model``
    does. Registered generators need none. Returns the model only; the run's record is
    ``genbench.results.read_run_record(run_dir / "run.json")``.

    Raises ``genbench.errors.GenbenchError`` subclasses with one-line messages.
    """
    from genbench.results import RUN_FILE, read_run_record
    from genbench.run.train import load_trained_run

    run_dir = Path(run_dir)
    try:
        record = read_run_record(run_dir / RUN_FILE)
    except FileNotFoundError:
        raise ConfigError(f"{run_dir}: no {RUN_FILE}; give a run folder (results/SUITE/MODEL/seedK)") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{run_dir / RUN_FILE}: {exc}") from None
    if record.status != "ok":
        raise GenbenchError(f"{run_dir} ended with status {record.status} ({record.error}); "
                            f"only a run that finished ok has a trained model to load")
    cls = _generator_class(run_dir, record.model["name"], record.model.get("class", ""), model_file)
    context = RunContext(record.dataset, None if data_root is None else str(data_root))
    model, _ = load_trained_run(run_dir, generator=cls, device=device, context=context)
    return model
