"""Hyperparameter search spaces: the distributions a model declares next to its Config.

A generator declares ``search_space = {"lr": LogUniform(1e-5, 1e-2), "beta1": Uniform(0.0, 0.9),
"batch_size": Choice((32, 64, 128))}``; a suite file may replace it per model::

    [model.vae.search_space]
    lr = { log_uniform = [1e-4, 1e-2] }
    batch_size = { choice = [64, 128] }

Every value a distribution can produce is checked against the Config like a suite-file
setting (:func:`genbench.config.make_config`): an unknown field, a wrong type or a value
outside the field's bounds is one error before anything trains. The random searcher draws
trial ``i``'s values from a generator seeded by ``(seed, i)`` alone, so the same trials come
out whatever the executor, the order trials finish in, or where a resumed tune restarts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from genbench.config import make_config
from genbench.errors import ConfigError
from genbench.validation import describe


@dataclass(frozen=True)
class Uniform:
    """A float drawn uniformly from ``[low, high]``."""

    low: float
    high: float

    def sample(self, rng: np.random.Generator) -> float:
        return float(rng.uniform(self.low, self.high))

    def endpoints(self) -> tuple[Any, ...]:
        return (self.low, self.high)

    def to_toml(self) -> dict[str, list]:
        return {"uniform": [self.low, self.high]}


@dataclass(frozen=True)
class LogUniform:
    """A float whose logarithm is uniform on ``[log low, log high]`` (learning rates); ``low > 0``."""

    low: float
    high: float

    def sample(self, rng: np.random.Generator) -> float:
        return float(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))

    def endpoints(self) -> tuple[Any, ...]:
        return (self.low, self.high)

    def to_toml(self) -> dict[str, list]:
        return {"log_uniform": [self.low, self.high]}


@dataclass(frozen=True)
class Choice:
    """One of ``values``, each equally likely (batch sizes, widths, n_critic, tuples of layer widths)."""

    values: tuple[Any, ...]

    def sample(self, rng: np.random.Generator) -> Any:
        return self.values[int(rng.integers(len(self.values)))]

    def endpoints(self) -> tuple[Any, ...]:
        return tuple(self.values)

    def to_toml(self) -> dict[str, list]:
        return {"choice": [list(v) if isinstance(v, tuple) else v for v in self.values]}


Distribution = Uniform | LogUniform | Choice
_KINDS = {"uniform": Uniform, "log_uniform": LogUniform, "choice": Choice}


def describe_distribution(dist: Distribution) -> str:
    """``log-uniform[1e-05, 0.01]``, ``uniform[0, 0.9]``, ``choice{32, 64}`` (for ``genbench list``)."""
    if isinstance(dist, Choice):
        return "choice{" + ", ".join(str(v) for v in dist.values) + "}"
    kind = "log-uniform" if isinstance(dist, LogUniform) else "uniform"
    return f"{kind}[{dist.low:g}, {dist.high:g}]"


def _check_distribution(dist: Any, where: str) -> None:
    if isinstance(dist, (Uniform, LogUniform)):
        for bound in (dist.low, dist.high):
            if isinstance(bound, bool) or not isinstance(bound, (int, float)) or not math.isfinite(bound):
                raise ConfigError(f"{where}: bounds must be finite numbers, got {describe(bound)}")
        if not dist.low < dist.high:
            raise ConfigError(f"{where}: low must be below high, got [{dist.low}, {dist.high}]")
        if isinstance(dist, LogUniform) and dist.low <= 0:
            raise ConfigError(f"{where}: a log-uniform range needs low > 0, got {dist.low}")
    elif isinstance(dist, Choice):
        if not isinstance(dist.values, tuple):
            raise ConfigError(f"{where}: a choice takes a tuple of values, got {describe(dist.values)}")
        if not dist.values:
            raise ConfigError(f"{where}: a choice needs at least one value")
        if len(set(map(repr, dist.values))) != len(dist.values):
            raise ConfigError(f"{where}: a choice lists a value twice: {list(dist.values)}")
    else:
        raise ConfigError(f"{where}: expected Uniform, LogUniform or Choice, got {describe(dist)}")


def validate_search_space(
    cls: type, space: Mapping[str, Any], base: Mapping[str, Any] | None = None, where: str = ""
) -> None:
    """Raise :class:`ConfigError` unless every value ``space`` can draw builds a valid ``cls.Config``.

    ``base``: the settings the sampled values are laid over (tiny config, suite settings).
    Checks each distribution's own shape, then each endpoint (ranges) or each value
    (choices) through :func:`genbench.config.make_config`, so field names, types and
    declared bounds are judged exactly as for a suite-file setting.
    """

    where = where or f"{cls.__name__}.search_space"
    if not isinstance(space, Mapping) or not space:
        raise ConfigError(f"{where} must be a non-empty table of field = distribution, got {describe(space)}")
    for name, dist in space.items():
        _check_distribution(dist, f"{where}.{name}")
        for value in dist.endpoints():
            try:
                make_config(cls, {**(base or {}), name: value}, text=False)
            except ConfigError as exc:
                raise ConfigError(f"{where}.{name}: {exc}") from None


def parse_search_space(table: Any, where: str) -> dict[str, Distribution]:
    """A suite file's ``[model.X.search_space]`` table -> distributions (shapes only; fields are checked later)."""
    if not isinstance(table, dict) or not table:
        raise ConfigError(f"{where} must be a non-empty table such as {{ lr = {{ log_uniform = [1e-5, 1e-2] }} }}")
    out: dict[str, Distribution] = {}
    for name, spec in table.items():
        if not isinstance(spec, dict) or len(spec) != 1 or next(iter(spec)) not in _KINDS:
            raise ConfigError(f"{where}.{name} must be one of {{ uniform = [LOW, HIGH] }}, "
                              f"{{ log_uniform = [LOW, HIGH] }}, {{ choice = [V1, V2, ...] }}; got {describe(spec)}")
        kind, args = next(iter(spec.items()))
        if not isinstance(args, list):
            raise ConfigError(f"{where}.{name}.{kind} must be a list, got {describe(args)}")
        if kind == "choice":
            dist: Distribution = Choice(tuple(tuple(v) if isinstance(v, list) else v for v in args))
        else:
            if len(args) != 2:
                raise ConfigError(f"{where}.{name}.{kind} must be [LOW, HIGH], got {args}")
            dist = _KINDS[kind](*args)
        _check_distribution(dist, f"{where}.{name}")
        out[name] = dist
    return out


def sample_config(space: Mapping[str, Distribution], seed: int, index: int) -> dict[str, Any]:
    """Trial ``index``'s values under random search: a function of ``(seed, index)`` only."""
    rng = np.random.default_rng([int(seed), int(index)])
    return {name: _plain(dist.sample(rng)) for name, dist in space.items()}


def _plain(value: Any) -> Any:
    """numpy scalars -> Python ones, so values round-trip through JSON and TOML unchanged."""
    return value.item() if isinstance(value, np.generic) else value


def to_optuna(space: Mapping[str, Distribution]) -> dict[str, Any]:
    """The same space as Optuna distributions (for TPE), in declaration order.

    Choices go to Optuna by index: its categorical distribution takes only scalars,
    and a tuple of layer widths is a valid choice here.
    """
    import optuna

    out: dict[str, Any] = {}
    for name, dist in space.items():
        if isinstance(dist, Choice):
            out[name] = optuna.distributions.CategoricalDistribution(list(range(len(dist.values))))
        else:
            out[name] = optuna.distributions.FloatDistribution(
                float(dist.low), float(dist.high), log=isinstance(dist, LogUniform))
    return out


def from_optuna(space: Mapping[str, Distribution], params: Mapping[str, Any]) -> dict[str, Any]:
    """Optuna's parameters (choices as indices) -> the values a Config takes."""
    return {name: (dist.values[int(params[name])] if isinstance(dist, Choice) else float(params[name]))
            for name, dist in space.items()}
