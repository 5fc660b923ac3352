"""The GNN's losses and optimisers against loop references."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from graphrec.model.gnn.losses import bpr, candidate_bias, ccl, sampled_softmax
from graphrec.model.gnn.optim import ParamAdam, RowAdam


def test_candidate_bias_matches_a_loop_reference():
    pos_col = np.array([0, 2, 0, 1, 0])
    log_pop = np.log(np.array([5.0, 1.0, 2.0, 4.0, 3.0]))  # 3 in-batch candidates, 2 uniform draws
    got = candidate_bias(torch.tensor(pos_col), 3, torch.tensor(log_pop), logq=True, pda_gamma=0.5)
    mean_lp = np.mean([log_pop[c] for c in pos_col])
    expected = []
    for j in range(5):
        b = 0.5 * log_pop[j]
        if j < 3:
            b += np.log(sum(c == j for c in pos_col)) - (log_pop[j] - mean_lp)
        expected.append(b)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12)
    plain = candidate_bias(torch.tensor(pos_col), 3, torch.tensor(log_pop), logq=False)
    np.testing.assert_allclose(plain.numpy(), [np.log(3), 0, 0, 0, 0], atol=1e-12)


def test_sampled_softmax_matches_a_loop_reference():
    rng = np.random.default_rng(0)
    users, cands = rng.normal(size=(3, 4)), rng.normal(size=(6, 4))
    pos_row = np.array([0, 0, 1, 2, 2])
    pos_col = np.array([1, 3, 0, 3, 4])
    bias = rng.normal(size=6)
    tau = 0.5
    tensors = [torch.tensor(x) for x in (users, cands, pos_row, pos_col, bias)]
    loss = sampled_softmax(*tensors, temperature=tau)
    expected = []
    for r, c in zip(pos_row, pos_col, strict=True):
        engaged = {int(cc) for rr, cc in zip(pos_row, pos_col, strict=True) if rr == r}
        logit = [users[r] @ cands[j] / tau + bias[j] for j in range(6)]
        denominator = np.exp(logit[c]) + sum(np.exp(logit[j]) for j in range(6) if j not in engaged)
        expected.append(np.log(denominator) - logit[c])
    assert float(loss) == pytest.approx(np.mean(expected), rel=1e-9)
    # cosine: the same on unit vectors
    unit = sampled_softmax(*tensors, temperature=tau, cosine=True)
    again = sampled_softmax(
        torch.nn.functional.normalize(torch.tensor(users), dim=1),
        torch.nn.functional.normalize(torch.tensor(cands), dim=1),
        torch.tensor(pos_row),
        torch.tensor(pos_col),
        torch.tensor(bias),
        temperature=tau,
    )
    assert float(unit) == pytest.approx(float(again), rel=1e-12)


def test_bpr_and_ccl_match_loop_references():
    rng = np.random.default_rng(1)
    u, i, j = (rng.normal(size=(3, 4)) for _ in range(3))
    expected = np.mean([-np.log(1 / (1 + np.exp(-(u[r] @ i[r] - u[r] @ j[r])))) for r in range(3)])
    assert float(bpr(torch.tensor(u), torch.tensor(i), torch.tensor(j))) == pytest.approx(expected, rel=1e-9)

    def cos(a, b):
        return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))

    neg = rng.normal(size=(5, 4))
    expected = np.mean(
        [1 - cos(u[r], i[r]) + 3.0 * np.mean([max(0.0, cos(u[r], n) - 0.2) for n in neg]) for r in range(3)]
    )
    got = ccl(torch.tensor(u), torch.tensor(i), torch.tensor(neg), margin=0.2, negative_weight=3.0)
    assert float(got) == pytest.approx(expected, rel=1e-9)


def test_row_adam_equals_torch_adam_on_the_rows_it_touches():
    rng = np.random.default_rng(2)
    start = torch.tensor(rng.normal(size=(6, 3)), dtype=torch.float32)
    ours = start.clone()
    opt = RowAdam(ours, lr=0.1)
    ref = torch.nn.Parameter(start.clone())
    ref_opt = torch.optim.Adam([ref], lr=0.1)
    rows = torch.tensor([1, 4])
    for _ in range(3):  # the same rows every step: lazy Adam is dense Adam on them
        g = torch.tensor(rng.normal(size=(2, 3)), dtype=torch.float32)
        opt.step(rows, g)
        full = torch.zeros(6, 3)
        full[rows] = g
        ref.grad = full
        ref_opt.step()
    torch.testing.assert_close(ours[rows], ref.detach()[rows], rtol=1e-5, atol=1e-6)
    untouched = torch.tensor([0, 2, 3, 5])
    torch.testing.assert_close(ours[untouched], start[untouched])


def test_row_adam_torch_path_equals_the_fused_kernel():
    rng = np.random.default_rng(4)
    start = torch.tensor(rng.normal(size=(5, 3)), dtype=torch.float32)
    fused = start.clone()
    strided = start.t().contiguous().t()  # same values, not C-contiguous: takes the torch path (as on GPU)
    assert not strided.is_contiguous()
    a, b = RowAdam(fused, lr=0.05), RowAdam(strided, lr=0.05)
    for rows in ([0, 3], [3, 4, 1], [0]):
        g = torch.tensor(rng.normal(size=(len(rows), 3)), dtype=torch.float32)
        a.step(torch.tensor(rows), g)
        b.step(torch.tensor(rows), g)
    torch.testing.assert_close(fused, strided, rtol=1e-5, atol=1e-6)


def test_row_adam_step_summed_equals_summing_repeats_first():
    """Rows repeated across shards: the fused marker kernel against a plain dict of sums."""
    rng = np.random.default_rng(5)
    start = torch.tensor(rng.normal(size=(8, 3)), dtype=torch.float32)
    fused, ref = start.clone(), start.clone()
    a, b = RowAdam(fused, lr=0.05), RowAdam(ref, lr=0.05)
    for rows in ([1, 4, 1, 7, 4, 4], [0], [6, 6], [2, 3, 5, 2]):
        g = torch.tensor(rng.normal(size=(len(rows), 3)), dtype=torch.float32)
        a.step_summed(torch.tensor(rows), g)
        sums: dict[int, torch.Tensor] = {}
        for r, gr in zip(rows, g, strict=True):
            sums[r] = sums[r] + gr if r in sums else gr.clone()
        b.step(torch.tensor(list(sums)), torch.stack(list(sums.values())))
        assert (a._mark == -1).all()  # the marker is left clean for the next step
    torch.testing.assert_close(fused, ref, rtol=0, atol=0)


def test_param_adam_equals_torch_adam():
    rng = np.random.default_rng(3)
    a = torch.nn.Parameter(torch.tensor(rng.normal(size=(4, 2)), dtype=torch.float32))
    b = torch.nn.Parameter(a.detach().clone())
    ours, ref = ParamAdam([a], lr=0.05), torch.optim.Adam([b], lr=0.05)
    for _ in range(4):
        g = torch.tensor(rng.normal(size=(4, 2)), dtype=torch.float32)
        a.grad, b.grad = g.clone(), g.clone()
        ours.step()
        ref.step()
    torch.testing.assert_close(a, b)
