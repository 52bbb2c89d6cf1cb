"""Your own metric: a function of the samples, registered as a one-key metric group.

The function takes the samples as a ``uint8 [n,1,28,28]`` numpy array (read-only) and
returns a number; it may also take the dataset's reference images (the same
``test-reference`` images FID is measured against, ``uint8 [m,1,28,28]``) through a
parameter named ``reference``. Its key is the function's name. Give it as
``--metric FILE.py:FUNCTION`` to ``genbench run`` and ``genbench eval``
(``load_user_metric``), or as ``--metric NAME`` where an installed package declares the function
as entry point ``NAME`` of the group ``genbench.metrics``, or register it in Python with ``register_user_metric``;
either way it is computed in every evaluation of the process, whatever ``--metrics`` picks.

A failure inside it, or a return value that is not a finite number, makes its value null
with a one-line reason naming its source, also kept in the evaluation's ``errors``; every
other metric is computed as usual.
"""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from genbench.errors import ConfigError
from genbench.metrics.group import _GROUPS, GroupValues, MetricGroup, Null, register_metric_group
from genbench.metrics.inputs import MetricInputs
from genbench.metrics.spec import _METRICS, MetricSpec, register_metric
from genbench.plugin_file import import_plugin_file, is_entry_point_name, load_entry_point

REFERENCE_PARAMETER = "reference"


@dataclass(frozen=True)
class UserMetric:
    """A registered user metric: its key, function and where it came from (``file.py:FUNCTION``)."""

    key: str
    function: Callable[..., float]
    source: str
    takes_reference: bool


_USER_METRICS: dict[str, UserMetric] = {}


def user_metrics() -> Mapping[str, UserMetric]:
    """The user metrics registered in this process, by key (read-only)."""
    return MappingProxyType(_USER_METRICS)


def _takes_reference(function: Callable, source: str) -> bool:
    try:
        params = list(inspect.signature(function).parameters.values())
    except (TypeError, ValueError):
        raise ConfigError(f"{source}: cannot read the function's parameters; define it with def") from None
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    if not params or params[0].kind not in positional:
        raise ConfigError(f"{source}: a metric takes the samples as its first parameter: def NAME(samples)")
    extra = [p.name for p in params[1:] if p.name != REFERENCE_PARAMETER and p.default is inspect.Parameter.empty]
    if extra:
        raise ConfigError(f"{source}: parameter(s) {', '.join(extra)} are not passed by genbench; a metric takes the "
                          f"samples and optionally '{REFERENCE_PARAMETER}'")
    return any(p.name == REFERENCE_PARAMETER for p in params[1:])


def _read_only(images: np.ndarray) -> np.ndarray:
    view = images.view()
    view.flags.writeable = False  # one metric cannot change what the next one sees
    return view


def _failure(source: str, what: str) -> str:
    return " ".join(f"{source}: {what}".split())  # one line, whatever the exception's message holds


def register_user_metric(
    function: Callable[..., float],
    *,
    key: str | None = None,
    higher_is_better: bool | None = None,
    unit: str = "",
    description: str | None = None,
    source: str | None = None,
) -> MetricGroup:
    """Register ``function`` (samples ``uint8 [n,1,28,28]`` numpy -> float) as metric ``key`` (default:
    its name). ``higher_is_better`` gives it a direction (None: reported, not compared by
    ``genbench check``); ``source`` names it in errors (default: its module and name)."""
    key = key or getattr(function, "__name__", "")
    source = source or f"{getattr(function, '__module__', '?')}:{key}"
    if not callable(function):
        raise ConfigError(f"{source}: is not a function")
    if not key.isidentifier():
        raise ConfigError(f"{source}: the metric key must be an identifier, got {key!r}; pass key=")
    takes_reference = _takes_reference(function, source)
    known = _USER_METRICS.get(key)
    # The same file named twice (relative and absolute: a plug-in file's module name is fixed by its
    # resolved path), or loaded again in a worker: the metric registered already.
    same_function = known is not None and (known.function.__module__, known.function.__qualname__) == (
        getattr(function, "__module__", None), getattr(function, "__qualname__", None))
    if known is not None and (known.source == source or same_function):
        return _GROUPS[key]
    if key in _METRICS:
        raise ConfigError(f"{source}: a metric named {key!r} exists already; rename the function")
    first_line = (inspect.getdoc(function) or "").strip().splitlines()
    register_metric(MetricSpec(key, description or (first_line[0] if first_line else f"user metric {source}"),
                               unit=unit, higher_is_better=higher_is_better))
    metric = UserMetric(key, function, source, takes_reference)
    _USER_METRICS[key] = metric
    return register_metric_group(_group(metric))


def _group(metric: UserMetric) -> MetricGroup:
    """The one-key group that calls ``metric`` and checks what it returns, the first time and every time."""
    def compute(inputs: MetricInputs) -> GroupValues:
        kwargs = {REFERENCE_PARAMETER: _read_only(inputs.reference_images.numpy())} if metric.takes_reference else {}
        try:
            with inputs.timer(metric.key):
                value = metric.function(_read_only(inputs.samples.numpy()), **kwargs)
        except Exception as exc:  # a plug-in's bug costs its own value, never the other metrics
            return {metric.key: _error(inputs, _failure(metric.source, f"raised {type(exc).__name__}: {exc}"))}
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            return {metric.key: _error(inputs, _failure(
                metric.source, f"returned {type(value).__name__}, not a number; return a float"))}
        if not math.isfinite(value):
            return {metric.key: _error(inputs, _failure(
                metric.source, f"returned {value}; a metric must return a finite number"))}
        return {metric.key: float(value)}

    needs = {"pixels", "reference_images"} if metric.takes_reference else {"pixels"}
    return MetricGroup(metric.key, (metric.key,), compute, frozenset(needs), f"your own metric ({metric.source})")


def _error(inputs: MetricInputs, message: str) -> Null:
    inputs.errors.append(message)
    return Null(message)


METRIC_ENTRY_POINTS = "genbench.metrics"


def load_user_metric(spec: str) -> MetricGroup:
    """Import ``path/to/file.py:FUNCTION``, or load the entry point ``spec`` of group ``genbench.metrics``
    (an installed package's metric, keyed by the entry point's name), and register the function
    (``register_user_metric``)."""
    if is_entry_point_name(spec):
        function, source = load_entry_point(spec, METRIC_ENTRY_POINTS, "--metric")
        if not callable(function):
            raise ConfigError(f"{source}: is not a function")
        if not spec.isidentifier():
            raise ConfigError(f"{source}: the entry point's name is the metric key; name it with letters, digits "
                              f"and _")
        return register_user_metric(function, key=spec, source=source)
    path, module, name = import_plugin_file(spec, "--metric", "FUNCTION")
    function = getattr(module, name, None)
    if function is None or not callable(function):
        raise ConfigError(f"--metric: {path} has no function {name!r}")
    return register_user_metric(function, key=name, source=f"--metric {path}:{name}")
