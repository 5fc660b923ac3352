"""The exception hierarchy: everything graphrec raises on purpose is a :class:`GraphRecError`.

Messages name the thing, what was expected, what was got and, where there is one, the fix,
e.g. ``"interactions.csv line 1043: user_id is empty"``.
"""

from __future__ import annotations

__all__ = [
    "ArtifactError",
    "GraphRecError",
    "InvalidParameterError",
    "MissingDependencyError",
    "NotFittedError",
    "SchemaError",
]


class GraphRecError(Exception):
    """Base class of every error graphrec raises deliberately."""


class SchemaError(GraphRecError, ValueError):
    """Input data does not match the expected schema (missing column, wrong type, bad value)."""


class InvalidParameterError(GraphRecError, ValueError):
    """A function or estimator was given an invalid option."""


class NotFittedError(GraphRecError, AttributeError):
    """A learned component was used before ``fit``."""


class ArtifactError(GraphRecError, OSError):
    """A saved artifact is missing, truncated, corrupt or does not match its manifest."""


class MissingDependencyError(GraphRecError, ImportError):
    """An optional dependency needed for this feature is not installed."""
