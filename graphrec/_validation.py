"""Parameter checks shared by public entry points (never ``assert`` on user input)."""

from __future__ import annotations

import math
import numbers
from typing import Any

from graphrec.exceptions import InvalidParameterError

__all__ = ["check_choice", "check_float", "check_int"]


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
