"""The numba kernel behind :func:`graphrec.weights.swing` (private; see swing.py for the maths).

Work is split across ``n_workers`` parallel workers, each owning dense scratch arrays of length
``n_notes`` (a score accumulator, a co-user counter and a membership mark), so no two threads
write the same memory. A worker takes the notes ``w, w + n_workers, ...`` of the (cost-sorted)
block. For note ``i`` and every unordered pair of its users ``u < v`` it marks ``I_u``, walks
``I_v`` to collect the intersection, and adds ``w_u * w_v / (alpha + |I_u & I_v|)`` to every
other note in it. Results go to per-note segments of flat output buffers (offsets precomputed
from an upper bound), best first, ties by the smaller note index.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True, nogil=True)
def _emit(i, acc, cnt, touched, n_touched, min_cooc, top_k, out_idx, out_val, start, limit):  # type: ignore[no-untyped-def]
    cand = np.empty(n_touched, dtype=np.int64)
    m = 0
    for t in range(n_touched):
        j = touched[t]
        if cnt[j] >= min_cooc:
            cand[m] = j
            m += 1
    cand = np.sort(cand[:m])
    vals = np.empty(m, dtype=np.float64)
    for t in range(m):
        vals[t] = -acc[cand[t]]
    order = np.argsort(vals, kind="mergesort")  # stable: ties keep the smaller index first
    keep = m if top_k == 0 else min(m, top_k)
    keep = min(keep, limit)
    for t in range(keep):
        out_idx[start + t] = cand[order[t]]
        out_val[start + t] = -vals[order[t]]
    return keep


@njit(parallel=True, cache=True)
def swing_block(  # type: ignore[no-untyped-def]
    items,
    item_ptr,
    item_users,
    user_ptr,
    user_items,
    user_w,
    alpha,
    top_k,
    min_cooc,
    n_notes,
    offsets,
    out_idx,
    out_val,
    out_len,
    n_workers,
):
    n = items.size
    for w in prange(n_workers):
        acc = np.zeros(n_notes, dtype=np.float64)
        cnt = np.zeros(n_notes, dtype=np.int32)
        mark = np.zeros(n_notes, dtype=np.bool_)
        touched = np.empty(n_notes, dtype=np.int64)
        buf = np.empty(n_notes, dtype=np.int64)
        for t in range(w, n, n_workers):
            i = items[t]
            users = item_users[item_ptr[i] : item_ptr[i + 1]]
            n_touched = 0
            for a in range(users.size):
                u = users[a]
                iu = user_items[user_ptr[u] : user_ptr[u + 1]]
                for x in iu:
                    mark[x] = True
                    if x != i:
                        if cnt[x] == 0:
                            touched[n_touched] = x
                            n_touched += 1
                        cnt[x] += 1
                for b in range(a + 1, users.size):
                    v = users[b]
                    m = 0
                    for y in user_items[user_ptr[v] : user_ptr[v + 1]]:
                        if mark[y]:
                            buf[m] = y
                            m += 1
                    c = user_w[u] * user_w[v] / (alpha + m)
                    for q in range(m):
                        j = buf[q]
                        if j != i:
                            acc[j] += c
                for x in iu:
                    mark[x] = False
            # Notes co-engaged by a single user only (no pair) have acc == 0: they are dropped.
            for q in range(n_touched):
                j = touched[q]
                if acc[j] <= 0.0:
                    cnt[j] = 0
            start = offsets[t]
            out_len[t] = _emit(
                i, acc, cnt, touched, n_touched, min_cooc, top_k, out_idx, out_val, start, offsets[t + 1] - start
            )
            for q in range(n_touched):
                j = touched[q]
                acc[j] = 0.0
                cnt[j] = 0
