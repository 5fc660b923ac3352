"""Job configs: frozen dataclasses read from YAML or TOML, with unknown keys rejected."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import TypeVar

from graphrec._validation import from_mapping
from graphrec.exceptions import InvalidParameterError

T = TypeVar("T")

__all__ = ["from_mapping", "load_config"]


def load_config(cls: type[T], path: str | os.PathLike[str]) -> T:
    """Read a ``.yaml``/``.yml``/``.toml`` file into dataclass ``cls``."""
    p = Path(path)
    if not p.is_file():
        raise InvalidParameterError(f"{p}: no such config file")
    text = p.read_text()
    if p.suffix in (".yaml", ".yml"):
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise InvalidParameterError(f"{p}: not valid YAML ({exc})") from exc
    elif p.suffix == ".toml":
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise InvalidParameterError(f"{p}: not valid TOML ({exc})") from exc
    else:
        raise InvalidParameterError(f"{p}: config files are .yaml, .yml or .toml")
    return from_mapping(cls, data or {}, source=str(p))
