"""How many threads the native libraries of one process use (BLAS, OpenMP, torch, numba).

numpy's BLAS (OpenBLAS) and faiss's and torch's OpenMP each keep a thread pool sized to the
machine. That suits one large computation at a time (training, a batch job) and is wrong for a
service: there many small requests run at once in a thread pool, each one's matrix products fan
out over every core, and idle BLAS threads spin-wait for their next task, taking CPU from the
requests and the event loop. So the recall service runs each process with one native thread by
default (``graphrec serve --threads``) and scales with ``--workers`` processes; what that does to
the service's tail latency is measured by ``benchmarks/serve_load.py --threads`` (figures in
benchmarks/README.md).

:func:`limit_native_threads` sets the limit three ways:

* for the libraries already loaded, through threadpoolctl (and ``torch.set_num_threads`` when
  torch is imported);
* for the ones loaded later and for child processes (``--workers``), through the usual
  environment variables (:data:`THREAD_VARIABLES`);
* for numba: its pool size, while its threads have not started yet (``NUMBA_NUM_THREADS``, read
  at import, and the size numba's parallel module took from it, which numba offers no public way
  to change), so every thread gets at most ``n``; and ``numba.set_num_threads`` for the calling
  thread, since numba's limit is per thread and its pool may already run.

An OpenMP runtime (faiss's, torch's) gives the threads started later the pool size it read from
``OMP_NUM_THREADS`` when it loaded; a limit set after it loaded holds only in the calling thread.
numba's pool behaves the same way. So ``graphrec serve`` sets the limit before it loads anything,
and its request threads see it. graphrec's parallel numba kernels run in batch work; in the
service, only a request for more than :data:`graphrec._topk.FEW_ROWS` users uses numba's pool.
"""

from __future__ import annotations

import os
import sys

from graphrec._validation import check_int

__all__ = ["THREAD_VARIABLES", "limit_native_threads", "native_threads"]

#: Environment variables the native thread pools read when they start.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def limit_native_threads(n: int) -> None:
    """Use at most ``n`` threads in this process's BLAS, OpenMP and torch pools, and in numba's:
    in every thread while its pool has not started, else in the calling thread (see the module
    docstring)."""
    n = check_int("threads", n, minimum=1)
    for var in THREAD_VARIABLES:
        os.environ[var] = str(n)
    _size_numba_pool(n)
    import numba
    from threadpoolctl import threadpool_limits

    # numba first: setting its limit starts its threading layer, which may load another OpenMP
    # runtime that threadpoolctl must then see.
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))  # type: ignore[attr-defined]
    threadpool_limits(limits=n)  # not used as a context manager: the limit stays
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(n)


def native_threads() -> dict[str, int]:
    """The largest thread pool per kind of native library loaded in this process (``blas``,
    ``openmp``), as threadpoolctl reads them now, and numba's limit in the calling thread
    (``numba``, when numba is loaded; its limit is per thread)."""
    from threadpoolctl import threadpool_info

    pools: dict[str, int] = {}
    for lib in threadpool_info():
        pools[lib["user_api"]] = max(pools.get(lib["user_api"], 0), int(lib["num_threads"]))
    if "numba" in sys.modules:
        pools["numba"] = int(sys.modules["numba"].get_num_threads())
    return pools


def _size_numba_pool(n: int) -> None:
    """Make numba's pool at most ``n`` threads if its threads have not started yet.

    numba reads ``NUMBA_NUM_THREADS`` at import into ``numba.config`` and into its parallel
    module's ``NUM_THREADS``, the size it starts its pool with; a thread's default limit is that
    size. ``graphrec serve``'s parser imports numba (through the Swing options), so setting the
    variable alone comes too late there. Once the pool runs nothing is changed: numba's compiler
    rereads the variable and refuses a new pool size then. tests/test_threads.py checks a new
    thread's limit, so a numba release that moves these names fails that test rather than the
    service's latency.
    """
    if "numba" not in sys.modules:
        os.environ["NUMBA_NUM_THREADS"] = str(n)  # read when numba loads
        return
    from numba.core import config
    from numba.np.ufunc import parallel

    if not getattr(parallel, "_is_initialized", True) and n < config.NUMBA_NUM_THREADS:  # type: ignore[attr-defined]
        os.environ["NUMBA_NUM_THREADS"] = str(n)
        config.NUMBA_NUM_THREADS = n  # type: ignore[attr-defined]
        parallel.NUM_THREADS = n
