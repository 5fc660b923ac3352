"""Third-party chatter goes to the debug log, so a clean run prints nothing that reads as an error.

DoWhy logs ``ERROR ... Pygraphviz cannot be loaded`` (it then uses pydot, which works) and a
warning per refutation with few simulations; transformers draws a "Loading weights" bar each time
sentence-transformers opens the bundled model. Nothing is wrong in either case. :func:`quiet`
wraps such calls: while it is active the named libraries' records are dropped unless graphrec
itself logs at DEBUG (``graphrec -vv``), and transformers' progress bars are off.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

__all__ = ["quiet"]


@contextlib.contextmanager
def quiet(*libraries: str) -> Iterator[None]:
    """Silence ``libraries``' log records (e.g. ``"dowhy"``) for the block, unless graphrec logs DEBUG.

    The libraries' top loggers get a level above CRITICAL, which every child logger that keeps the
    default level inherits, including ones the library creates during the block. With the
    ``graphrec`` logger at DEBUG (``graphrec -vv``) nothing is hidden.
    """
    hf_bars = None
    if "transformers" in libraries:
        with contextlib.suppress(ImportError):
            from transformers.utils import logging as hf_logging

            hf_bars = hf_logging.is_progress_bar_enabled()
            hf_logging.disable_progress_bar()
    debug = logging.getLogger("graphrec").isEnabledFor(logging.DEBUG)
    saved = {name: logging.getLogger(name).level for name in libraries}
    if not debug:
        for name in libraries:
            logging.getLogger(name).setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)
        if hf_bars:
            from transformers.utils import logging as hf_logging

            hf_logging.enable_progress_bar()
