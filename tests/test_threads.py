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


def test_limits_every_loaded_pool_and_the_environment_for_later_ones():
    # A fresh interpreter: the limit is process-wide and would slow the rest of the test run.
    out = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=120, check=True)
    got = json.loads(out.stdout)
    assert got["pools"] and set(got["pools"]) == {1}
    assert got["torch"] == 1 and got["numba"] == 1
    assert got["env"] == ["1"] * len(THREAD_VARIABLES)


@pytest.mark.parametrize("bad", [0, -2, 1.5, "2"])
def test_refuses_a_thread_count_below_one_or_not_an_integer(bad):
    with pytest.raises(InvalidParameterError, match="`threads` must be an int >= 1"):
        limit_native_threads(bad)
