"""Progress bars for long loops: tqdm on an interactive terminal, silent otherwise."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

__all__ = ["progress"]


def progress(iterable: Iterable[T], *, desc: str, total: int | None = None, enable: bool | None = None) -> Iterator[T]:
    """Wrap ``iterable`` in a tqdm bar; ``enable=None`` shows it only when stderr is a terminal."""
    if enable is False:
        yield from iterable
        return
    from tqdm.auto import tqdm

    yield from tqdm(iterable, desc=desc, total=total, disable=None if enable is None else not enable, leave=False)
