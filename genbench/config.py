"""Model settings: a generator's Config built from suite files (TOML-typed), ``--set`` (text) or Python,
converted to each field's annotated type and checked against the ranges every generator and each Config declares."""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

from genbench.errors import ConfigError
from genbench.kv import split_items, split_pair
from genbench.protocol import Generator
from genbench.validation import (
    describe,
    expect_bool,
    expect_int,
    expect_number,
    expect_str,
)

# -- model settings ------------------------------------------------------------------
#
# A setting reaches a Config from a suite file (TOML-typed), from --set (text) or from
# Python. Text is converted to the field's annotated type; every other value must already
# have that type: a bool is not an int, a float is not an int, a string is not a number.
# Then the generic ranges apply to every generator, followed by the ones a Config declares:
#
#   field metadata   lr: float = field(default=1e-3, metadata={"gt": 0, "le": 1})
#                    sampler: str = field(default="ddpm", metadata={"choices": ("ddpm", "ddim")})
#   a method         def validate(self) -> None: raise ValueError("...") for cross-field rules

_BOUNDS = {"gt": (lambda v, b: v > b, ">"), "ge": (lambda v, b: v >= b, ">="),
           "lt": (lambda v, b: v < b, "<"), "le": (lambda v, b: v <= b, "<=")}
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _field_types(config_cls: type) -> dict[str, Any]:
    """Field name -> annotated type, resolved where possible (string annotations otherwise)."""
    try:
        hints = typing.get_type_hints(config_cls)
    except (NameError, TypeError):  # an annotation its module cannot resolve: check by the string
        hints = {}
    return {f.name: hints.get(f.name, f.type) for f in dataclasses.fields(config_cls)}


def _type_name(typ: Any) -> str:
    return typ if isinstance(typ, str) else getattr(typ, "__name__", None) or str(typ).replace("typing.", "")


def _base(typ: Any) -> Any:
    """``int`` for ``int`` or ``"int"``; builtins only, so unresolved string annotations still check."""
    return {"int": int, "float": float, "bool": bool, "str": str}.get(typ, typ) if isinstance(typ, str) else typ


def _optional(typ: Any) -> tuple[bool, Any]:
    """``(True, X)`` for ``X | None``; ``(False, typ)`` otherwise."""
    if typing.get_origin(typ) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(typ) if a is not type(None)]
        if len(args) == 1 and len(args) < len(typing.get_args(typ)):
            return True, args[0]
    return False, typ


def _typed(value: Any, typ: Any, where: str) -> Any:
    """``value`` checked against ``typ`` (no coercion except int -> float and list -> tuple)."""
    optional, typ = _optional(typ)
    if value is None and optional:
        return None
    typ = _base(typ)
    if typ is bool:
        return expect_bool(value, where)
    if typ is int:
        return expect_int(value, where)
    if typ is float:
        return expect_number(value, where)
    if typ is str:
        return expect_str(value, where)
    origin, args = typing.get_origin(typ), typing.get_args(typ)
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where} must be a list, got {describe(value)}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise ConfigError(f"{where} must have {len(args)} entries, got {len(value)}")
            item_types = list(args)
        else:
            item_types = [args[0] if args else Any] * len(value)
        items = [v if t is Any else _typed(v, t, f"{where}[{i}]")
                 for i, (v, t) in enumerate(zip(value, item_types, strict=True))]
        return tuple(items) if origin is tuple else items
    return value  # a type genbench does not know: the Config's own validate() is its judge


def _from_text(text: str, typ: Any, where: str) -> Any:
    """Command-line text -> a value of ``typ`` (strict: "64.7" is not an int, "nan" not a number)."""
    optional, typ = _optional(typ)
    if optional and text.strip().lower() in ("none", "null"):
        return None
    typ = _base(typ)
    stripped = text.strip()
    try:
        if typ is bool:
            if stripped.lower() in _TRUE + _FALSE:
                return stripped.lower() in _TRUE
            raise ValueError(text)
        if typ is int:
            return int(stripped)
        if typ is float:
            return float(stripped)
        if typ is str:
            return text
        origin, args = typing.get_origin(typ), typing.get_args(typ)
        if origin in (tuple, list) and args:
            parts = split_items(stripped.strip("()[] "))
            item_types = list(args) if args[-1] is not Ellipsis and len(args) == len(parts) else [args[0]] * len(parts)
            return [_from_text(p, t, f"{where}[{i}]") for i, (p, t) in enumerate(zip(parts, item_types, strict=True))]
    except ValueError:
        raise ConfigError(f"{where}: cannot convert {text!r} to {_type_name(typ)}") from None
    raise ConfigError(f"{where}: fields of type {_type_name(typ)} cannot be set from the command line")


def make_config(cls: type[Generator], overrides: dict[str, Any] | None = None, *, text: bool = True) -> Any:
    """Build ``cls.Config`` with overrides, checked by type and by :func:`validate_config`.

    With ``text`` (``--set``), strings given for non-string fields are converted to the
    field's type; without it (suite files, JSON), such a string is a type error.
    """
    types_ = _field_types(cls.Config)
    kwargs: dict[str, Any] = {}
    for key, value in (overrides or {}).items():
        if key not in types_:
            raise ConfigError(f"{cls.name} has no setting {key!r}; valid: {', '.join(sorted(types_))}")
        where = f"{cls.name}.{key}"
        if text and isinstance(value, str) and _base(_optional(types_[key])[1]) is not str:
            value = _from_text(value, types_[key], where)
        kwargs[key] = _typed(value, types_[key], where)
    try:
        config = cls.Config(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{cls.name}: invalid settings: {exc}") from None
    validate_config(cls, config)
    return config


def validate_config(cls: type[Generator], config: Any, train_size: int | None = None) -> None:
    """Raise :class:`ConfigError` unless ``config`` (a ``cls.Config``) can train.

    Applies, in order: every field's annotated type (floats also finite); the generic
    ranges of every generator (``batch_size`` >= 1 and, given ``train_size`` (images in
    the training split), <= ``train_size``; ``lr`` and ``*_lr`` > 0); the bounds and
    choices in each field's metadata; and ``config.validate()`` if the Config defines it.
    Nothing is built or trained: call it when planning runs.
    """
    types_ = _field_types(cls.Config)
    for f in dataclasses.fields(config):
        where = f"{cls.name}.{f.name}"
        value = _typed(getattr(config, f.name), types_[f.name], where)
        if f.name == "batch_size":
            expect_int(value, where, minimum=1)
            if train_size is not None and value > train_size:
                raise ConfigError(f"{where} must be at most {train_size} (images in the training split), got {value}")
        if (f.name == "lr" or f.name.endswith("_lr")) and value is not None:
            expect_number(value, where, positive=True)
        for key, (ok, symbol) in _BOUNDS.items():
            if key in f.metadata and value is not None and not ok(value, f.metadata[key]):
                raise ConfigError(f"{where} must be {symbol} {f.metadata[key]}, got {value}")
        choices = f.metadata.get("choices")
        if choices is not None and value not in choices:
            raise ConfigError(f"{where} must be one of {', '.join(map(str, choices))}; got {value!r}")
    check = getattr(config, "validate", None)
    if callable(check):
        try:
            check()
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{cls.name}: invalid settings: {exc}") from None


def parse_set_options(items: list[str] | tuple[str, ...]) -> dict[str, dict[str, str]]:
    """``["dcgan.lr=1e-4", ...]`` -> ``{"dcgan": {"lr": "1e-4"}}``."""
    out: dict[str, dict[str, str]] = {}
    for item in items:
        lhs, value = split_pair(item) or ("", "")
        model, dot, key = lhs.partition(".")
        if not dot or not model or not key:
            raise ConfigError(f"--set expects MODEL.FIELD=VALUE, got {item!r}")
        out.setdefault(model, {})[key] = value
    return out
