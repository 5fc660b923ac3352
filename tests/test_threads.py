"""limit_native_threads: every native pool of a fresh process is limited, bad values refused."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from graphrec._threads import THREAD_VARIABLES, limit_native_threads
from graphrec.exceptions import InvalidParameterError

_PROBE = """
import json, os, numpy, numba, threadpoolctl, torch
from graphrec._threads import THREAD_VARIABLES, limit_native_threads
limit_native_threads(1)
print(json.dumps({
    "pools": [p["num_threads"] for p in threadpoolctl.threadpool_info()],
    "torch": torch.get_num_threads(),
    "numba": numba.get_num_threads(),
    "env": [os.environ[v] for v in THREAD_VARIABLES],
}))
"""


# A thread started after the limit (a request thread) gets one numba thread too, not only the
# caller, whether numba loads after the limit or before it (as in `graphrec serve`, whose parser
# loads it). numba's default is the machine's core count.
_LATER_THREAD_PROBE = """
import json, sys, threading
if sys.argv[1] == "before":
    import numba
from graphrec._threads import limit_native_threads
limit_native_threads(1)
import numba
seen = {}
t = threading.Thread(target=lambda: seen.update(numba=numba.get_num_threads()))
t.start(); t.join()
print(json.dumps({"numba_in_new_thread": seen["numba"], "pool": numba.config.NUMBA_NUM_THREADS}))
"""


def _probe(code: str, *args: str) -> dict:
    # A fresh interpreter: the limit is process-wide and would slow the rest of the test run.
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120, check=True)
    return json.loads(out.stdout)


def test_limits_every_loaded_pool_and_the_environment_for_later_ones():
    got = _probe(_PROBE)
    assert got["pools"] and set(got["pools"]) == {1}
    assert got["torch"] == 1 and got["numba"] == 1
    assert got["env"] == ["1"] * len(THREAD_VARIABLES)


@pytest.mark.parametrize("numba_loaded", ["before", "after"])
def test_numba_has_one_thread_in_threads_started_after_the_limit(numba_loaded):
    assert _probe(_LATER_THREAD_PROBE, numba_loaded) == {"numba_in_new_thread": 1, "pool": 1}


@pytest.mark.parametrize("bad", [0, -2, 1.5, "2"])
def test_refuses_a_thread_count_below_one_or_not_an_integer(bad):
    with pytest.raises(InvalidParameterError, match="`threads` must be an int >= 1"):
        limit_native_threads(bad)


def test_a_running_numba_pool_is_left_alone_and_later_compiles_still_work():
    # numba's compiler rereads NUMBA_NUM_THREADS and refuses a new pool size once its threads run.
    code = """
import json, numba
numba.get_num_threads()  # starts the pool at its default size
from graphrec._threads import limit_native_threads
limit_native_threads(1)
f = numba.njit(lambda x: x + 1)
print(json.dumps({"compiled": f(1), "numba": numba.get_num_threads()}))
"""
    assert _probe(code) == {"compiled": 2, "numba": 1}
