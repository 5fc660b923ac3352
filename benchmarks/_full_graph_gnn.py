"""The full-graph trainer graphrec used before 0.2, kept as a peer for ``gnn_scaling.py``.

Every mini-batch of ``batch`` engagements propagates the *whole* graph ``layers`` times forward
and backward (LightGCN's layer mean over ``A``), then takes the sampled-softmax loss of the batch
(in-batch + ``extra`` uniform negatives, logQ correction, temperature 0.15) plus L2 on the
batch's layer-0 rows, with dense Adam over all embeddings. An epoch therefore costs
``(E / batch) x layers x nnz(A) x dim``: quadratic in the number of engagements. No side-info,
no validation: this is the cost model the package's trainer replaced, nothing more.
"""

from __future__ import annotations

import math
import time

import numpy as np
import scipy.sparse as sp
import torch
from torch.nn import functional as F

from graphrec.graph import ENGAGES, HeteroGraph
from graphrec.io.ids import IdMap
from graphrec.model.gnn.propagation import propagate, propagation_matrix, torch_csr


def step_seconds(
    engages: sp.csr_matrix,
    *,
    steps: int,
    dim: int = 64,
    layers: int = 3,
    batch: int = 4096,
    extra: int = 1024,
    seed: int = 0,
) -> dict[str, float]:
    """Train ``steps`` full-graph steps; their mean time and the implied seconds per epoch."""
    r = sp.csr_matrix(engages, dtype=np.float32)
    r.data[:] = 1.0
    nu, ni = r.shape
    graph = HeteroGraph({"user": IdMap(np.arange(nu)), "note": IdMap(np.arange(ni))}, {ENGAGES: r})
    a, _ = propagation_matrix(graph)
    adj = torch_csr(a, torch.device("cpu"))
    torch.manual_seed(seed)
    table = torch.nn.Parameter(torch.randn(nu + ni, dim) * 0.1)
    opt = torch.optim.Adam([table], lr=2e-3)
    log_pop = torch.from_numpy(np.log(np.asarray(r.sum(axis=0)).ravel() + 1.0).astype(np.float32))
    pos_u = np.repeat(np.arange(nu), np.diff(r.indptr))
    pos_i = r.indices.astype(np.int64)
    rng = np.random.default_rng(seed)
    order = rng.permutation(r.nnz)
    times = []
    for s in range(steps):
        t = time.perf_counter()
        idx = order[s * batch : (s + 1) * batch]
        u, i = torch.from_numpy(pos_u[idx]), torch.from_numpy(pos_i[idx])
        final = propagate(table, adj, layers)
        ue, ie = final[u], final[nu + i]
        neg = torch.from_numpy(rng.integers(0, ni, size=extra))
        logits = ue @ torch.cat([ie, final[nu + neg]]).T / 0.15
        logits[:, : idx.size] -= (log_pop[i] - log_pop[i].mean()).unsqueeze(0)
        same = i.unsqueeze(0) == i.unsqueeze(1)
        same.fill_diagonal_(False)
        logits[:, : idx.size] = logits[:, : idx.size].masked_fill(same, -torch.inf)
        loss = F.cross_entropy(logits, torch.arange(idx.size))
        reg = table[u].pow(2).sum() + table[nu + torch.cat([i, neg])].pow(2).sum()
        loss = loss + 0.1 * reg / idx.size
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t)
    per_step = float(np.mean(times[1:] if len(times) > 1 else times))
    return {
        "steps_timed": steps,
        "seconds_per_step": per_step,
        "seconds_per_epoch": per_step * math.ceil(r.nnz / batch),
    }
