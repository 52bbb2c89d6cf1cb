"""Strict value checks shared by suite files, budgets, model settings and baselines.

Values come from TOML, JSON or Python callers. Nothing is coerced: ``true`` is not an
integer, ``64.7`` is not a batch size, ``"12"`` is not a list of seeds. Each check
raises one line naming where the value came from, what was expected and what was got.
"""

from __future__ import annotations

import math
import re
from typing import Any

from genbench.errors import ConfigError, GenbenchError

_PLAIN_NAME = re.compile(r"[A-Za-z0-9._-]+")
MAX_SEED = 2**63 - 1  # torch.manual_seed takes 64-bit seeds; TOML integers are signed 64-bit


def describe(value: Any) -> str:
    """``"a string ('x')"``, ``"a boolean"``, ...: what a value is, for error messages."""
    import datetime

    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"a string ({shown!r})"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, datetime.datetime):
        return "a date-time"
    if isinstance(value, datetime.date):
        return "a date"
    if isinstance(value, datetime.time):
        return "a time"
    if value is None:
        return "nothing (null)"
    return f"a {type(value).__name__}"


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def expect_int(value: Any, what: str, minimum: int | None = None, maximum: int | None = None,
               error: type[GenbenchError] = ConfigError) -> int:
    """``value`` itself if it is an integer (not a bool, not a float) within the bounds."""
    if not is_int(value):
        raise error(f"{what} must be an integer, got {describe(value)}")
    if minimum is not None and value < minimum:
        raise error(f"{what} must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise error(f"{what} must be at most {maximum}, got {value}")
    return value


def expect_number(value: Any, what: str, positive: bool = False, error: type[GenbenchError] = ConfigError) -> float:
    """``float(value)`` for a finite int or float (not a bool); ``positive``: also > 0."""
    if not is_number(value):
        raise error(f"{what} must be a number, got {describe(value)}")
    try:
        number = float(value)
    except OverflowError:  # an int beyond float range
        number = math.inf
    if not math.isfinite(number):
        raise error(f"{what} must be a finite number, got {value}")
    if positive and number <= 0:
        raise error(f"{what} must be > 0, got {value}")
    return number


def expect_bool(value: Any, what: str, error: type[GenbenchError] = ConfigError) -> bool:
    if not isinstance(value, bool):
        raise error(f"{what} must be true or false, got {describe(value)}")
    return value


def expect_str(value: Any, what: str, error: type[GenbenchError] = ConfigError) -> str:
    if not isinstance(value, str):
        raise error(f"{what} must be a string, got {describe(value)}")
    return value


def expect_table(value: Any, what: str, example: str = "", error: type[GenbenchError] = ConfigError) -> dict:
    if not isinstance(value, dict):
        raise error(f"{what}: expected a table{' like ' + example if example else ''}, got {describe(value)}")
    return value


def is_plain_name(value: Any) -> bool:
    """Letters, digits, ``-``, ``_`` and ``.`` only, and not ``.`` or ``..``: safe as one folder name."""
    return isinstance(value, str) and _PLAIN_NAME.fullmatch(value) is not None and value not in (".", "..")


def expect_plain_name(value: Any, what: str, error: type[GenbenchError] = ConfigError) -> str:
    if not is_plain_name(value):
        shown = describe(value) if not isinstance(value, str) else repr(value)
        raise error(f"{what} must be a plain name (letters, digits, '-', '_', '.'; not '.' or '..'), got {shown}")
    return value


def expect_seeds(value: Any, what: str = "seeds") -> tuple[int, ...]:
    """A non-empty list of distinct integer seeds in ``0..MAX_SEED``: each seed is one run folder."""
    if not isinstance(value, (list, tuple)):
        raise ConfigError(f"{what} must be a list of integers, got {describe(value)}")
    if not value:
        raise ConfigError(f"{what} must not be empty")
    seen: set[int] = set()
    for seed in value:
        if not is_int(seed):
            raise ConfigError(f"{what} must be a list of integers, got {describe(seed)} in it")
        if not 0 <= seed <= MAX_SEED:
            raise ConfigError(f"{what}: a seed must be between 0 and {MAX_SEED}, got {seed}")
        if seed in seen:
            raise ConfigError(f"{what} lists {seed} twice; each seed is one run, and a repeat would overwrite it")
        seen.add(seed)
    return tuple(value)
