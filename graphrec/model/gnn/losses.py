"""Training losses as pure functions of embedding tensors (the tests call them directly).

A step scores ``R`` batch rows (one user each, holding some of that user's engagements) against
``C`` candidate notes: the distinct notes engaged in the batch, then ``extra_negatives`` uniform
draws. :func:`sampled_softmax` is the default loss: for each engagement ``(r, i)``::

    loss = log(exp(l_ri) + sum_{j not engaged in row r} exp(l_rj)) - l_ri,
    l_rj = <u_r, c_j> / temperature + b_j

so the row's other engagements are never its negatives. :func:`candidate_bias` gives ``b``: an
in-batch candidate engaged ``m`` times in the batch gets ``log m`` (it stands for ``m`` in-batch
negatives, as when every engagement's note is its own column), minus, with the logQ correction,
its centred log-popularity (in-batch negatives are drawn in proportion to popularity); PDA adds
``gamma * log popularity`` to every candidate at training time only. Without the ``log m`` term
the candidates would be a set corrected as if drawn with replacement, which over-corrects
popular notes (measured in ``benchmarks/README.md``, "Choosing the training scheme").

:func:`bpr` (one uniform negative per engagement) and :func:`ccl` (SimpleX's cosine contrastive
loss over the shared uniform negatives) are the alternatives.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

__all__ = ["bpr", "candidate_bias", "ccl", "sampled_softmax"]


def candidate_bias(
    pos_col: torch.Tensor,
    n_batch: int,
    log_pop: torch.Tensor,
    *,
    logq: bool,
    pda_gamma: float = 0.0,
) -> torch.Tensor:
    """Per-candidate logit offsets ``(C,)``.

    ``pos_col`` (``(P,)``) is each engagement's candidate column, ``n_batch`` the number of
    in-batch candidates (columns ``0..n_batch-1``; the rest are uniform draws) and ``log_pop``
    (``(C,)``) each candidate's log-popularity.
    """
    mult = torch.bincount(pos_col, minlength=n_batch).to(log_pop.dtype)
    bias = torch.zeros_like(log_pop)
    bias[:n_batch] = torch.log(mult.clamp(min=1.0))
    if logq:
        bias[:n_batch] -= log_pop[:n_batch] - log_pop[pos_col].mean()
    if pda_gamma:
        bias = bias + pda_gamma * log_pop
    return bias


def sampled_softmax(
    users: torch.Tensor,
    candidates: torch.Tensor,
    pos_row: torch.Tensor,
    pos_col: torch.Tensor,
    bias: torch.Tensor,
    *,
    temperature: float,
    cosine: bool = False,
    known: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """Mean sampled-softmax loss of the engagements ``(pos_row[k], pos_col[k])`` (module docstring).

    ``users`` ``(R, d)``, ``candidates`` ``(C, d)``, ``bias`` ``(C,)``. Each ``(row, column)``
    pair must occur at most once. ``known`` (rows, columns): further pairs that are no row's
    negatives (the row user's other engagements among the candidates).
    """
    if cosine:
        users, candidates = F.normalize(users, dim=1), F.normalize(candidates, dim=1)
    logits = torch.addmm(bias, users * (1.0 / temperature), candidates.T)
    positive = logits[pos_row, pos_col]
    negatives = logits.index_put((pos_row, pos_col), logits.new_tensor(-torch.inf))
    if known is not None:
        negatives = negatives.index_put(known, logits.new_tensor(-torch.inf))
    rest = torch.logsumexp(negatives, dim=1)
    return (torch.logaddexp(positive, rest[pos_row]) - positive).mean()


def bpr(users: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor) -> torch.Tensor:
    """BPR: mean ``-log sigmoid(<u, i> - <u, j>)`` over aligned rows ``(P, d)``."""
    return -F.logsigmoid((users * positives).sum(1) - (users * negatives).sum(1)).mean()


def ccl(
    users: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor, *, margin: float, negative_weight: float
) -> torch.Tensor:
    """SimpleX's cosine contrastive loss: ``1 - cos(u, i) + w * mean_j relu(cos(u, j) - margin)``.

    ``users`` and ``positives`` are aligned ``(P, d)``; ``negatives`` ``(N, d)`` are shared.
    """
    u, i = F.normalize(users, dim=1), F.normalize(positives, dim=1)
    neg = F.relu(u @ F.normalize(negatives, dim=1).T - margin).mean(1)
    return (1.0 - (u * i).sum(1) + negative_weight * neg).mean()
