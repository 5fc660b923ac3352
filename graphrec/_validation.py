"""Parameter checks shared by public entry points (never ``assert`` on user input), and the
reader of config files (YAML, TOML or JSON) into frozen dataclasses with unknown keys rejected:
the jobs' configs and the service's channel configuration."""

from __future__ import annotations

import json
import math
import numbers
import os
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from graphrec.exceptions import InvalidParameterError

__all__ = ["check_choice", "check_float", "check_int", "from_mapping", "load_config"]

T = TypeVar("T")


def check_int(name: str, value: Any, *, minimum: int | None = None) -> int:
    """Return ``value`` as an int, or raise naming ``name``, the bound and what was got."""
    bound = f" >= {minimum}" if minimum is not None else ""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InvalidParameterError(f"`{name}` must be an int{bound}; got {value!r}")
    if minimum is not None and value < minimum:
        raise InvalidParameterError(f"`{name}` must be an int{bound}; got {value!r}")
    return int(value)


def check_float(
    name: str,
    value: Any,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    exclusive_minimum: bool = False,
) -> float:
    """Return ``value`` as a finite float within the bounds, or raise naming ``name``."""
    parts = []
    if minimum is not None:
        parts.append(f"{'>' if exclusive_minimum else '>='} {minimum}")
    if maximum is not None:
        parts.append(f"<= {maximum}")
    expected = f"a finite float{(' ' + ' and '.join(parts)) if parts else ''}"
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise InvalidParameterError(f"`{name}` must be {expected}; got {value!r}")
    v = float(value)
    too_low = minimum is not None and (v <= minimum if exclusive_minimum else v < minimum)
    if too_low or (maximum is not None and v > maximum):
        raise InvalidParameterError(f"`{name}` must be {expected}; got {value!r}")
    return v


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    """Return ``value`` if it is one of ``choices``, else raise listing them."""
    if value not in choices:
        raise InvalidParameterError(f"`{name}` must be one of {', '.join(map(repr, choices))}; got {value!r}")
    return str(value)


def _type_ok(value: Any, hint: Any) -> bool:
    """Whether ``value`` fits the annotation ``hint`` (the shapes config fields use)."""
    import types
    import typing

    if hint is Any:
        return True
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, h) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, numbers.Real) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if origin is dict or hint is dict:
        args = typing.get_args(hint)
        return isinstance(value, dict) and (
            not args or all(_type_ok(k, args[0]) and _type_ok(v, args[1]) for k, v in value.items())
        )
    if origin is tuple:
        args = typing.get_args(hint)
        item = args[0] if args else Any
        return isinstance(value, tuple | list) and all(_type_ok(v, item) for v in value)
    return True  # annotations configs do not use are left to the class's own checks


def _type_name(hint: Any) -> str:
    """How a config annotation reads to a person: ``a list of str``, ``a float or null`` ..."""
    import types
    import typing

    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join("null" if a is type(None) else _type_name(a) for a in args)
    if origin is tuple:
        plural = {str: "strings", int: "ints", float: "numbers"}
        return f"a list of {plural.get(args[0], 'values') if args else 'values'}"
    if origin is dict or hint is dict:
        return "a mapping"
    names = {bool: "true or false", int: "an int", float: "a number", str: "a string"}
    return names.get(hint, str(hint))


def from_mapping(cls: type[T], data: Any, *, source: str = "config") -> T:
    """Build dataclass ``cls`` from a mapping read from a config file, checking every key and type.

    Unknown keys, missing required keys and values of the wrong type (``debias: "no"`` for a
    bool, ``steps: evaluate`` for a list) are :class:`InvalidParameterError` naming ``source``
    and the key; lists become tuples where the field is a tuple.
    """
    import dataclasses
    import typing

    if not isinstance(data, dict):
        raise InvalidParameterError(f"{source}: expected a mapping of options; got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    unknown = sorted(map(str, set(data) - set(fields)))
    if unknown:
        raise InvalidParameterError(f"{source}: unknown option(s) {', '.join(unknown)}; expected {', '.join(fields)}")
    missing = [
        n
        for n, f in fields.items()
        if n not in data and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise InvalidParameterError(f"{source}: missing required option(s) {', '.join(missing)}")
    values = {}
    for name, value in data.items():
        hint = hints.get(name, Any)
        if not _type_ok(value, hint):
            raise InvalidParameterError(
                f"{source}: option `{name}` must be {_type_name(hint)}; got {value!r} ({type(value).__name__})"
            )
        values[name] = tuple(value) if typing.get_origin(hint) is tuple and isinstance(value, list) else value
    try:
        return cls(**values)
    except InvalidParameterError as exc:  # the class's own checks: say where the bad value came from
        raise InvalidParameterError(f"{source}: {exc}") from None


def load_config(cls: type[T], path: str | os.PathLike[str]) -> T:
    """Read a ``.yaml``/``.yml``/``.toml``/``.json`` file into dataclass ``cls``."""
    p = Path(path)
    if not p.is_file():
        raise InvalidParameterError(f"{p}: no such config file")
    if p.suffix not in (".yaml", ".yml", ".toml", ".json"):
        raise InvalidParameterError(f"{p}: config files are .yaml, .yml, .toml or .json")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InvalidParameterError(f"{p}: not UTF-8 text") from None
    import yaml

    parsers: dict[str, tuple[str, Callable[[str], Any], type[Exception]]] = {
        ".toml": ("TOML", tomllib.loads, tomllib.TOMLDecodeError),
        ".json": ("JSON", json.loads, json.JSONDecodeError),
    }
    kind, parse, errors = parsers.get(p.suffix, ("YAML", yaml.safe_load, yaml.YAMLError))
    try:
        data = parse(text)
    except errors as exc:  # one line: the parsers' messages span several
        raise InvalidParameterError(f"{p}: not valid {kind} ({' '.join(str(exc).split())})") from None
    return from_mapping(cls, data or {}, source=str(p))
