"""ItemCF: item–item cosine similarity over the user–note matrix, the baseline i2i.

``s(i, j) = c_ij / (n_i^(1 - alpha) * n_j^alpha)`` where ``c_ij`` counts users who engaged with
both notes (optionally weighted, see ``user_weighting``) and ``n_i`` is the number of users of
``i``. ``alpha = 0.5`` is the plain cosine; ``alpha > 0.5`` penalises popular neighbours ``j``
(the popularity-penalised variant). The diagonal is dropped, and each row keeps its ``top_k``
largest entries (ties broken by the smaller note index).

Computed in blocks of rows so memory stays ``O(block * n_notes)`` rather than ``O(n_notes^2)``.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from graphrec._progress import progress
from graphrec._topk import topk_rows
from graphrec._validation import check_choice, check_float, check_int
from graphrec.exceptions import InvalidParameterError

__all__ = ["itemcf"]


def _engagement_matrix(user_note: sp.spmatrix, binary: bool) -> sp.csr_matrix:
    """A float32 CSR copy of ``user_note`` (0/1 with ``binary``), checked, without explicit zeros."""
    if not sp.issparse(user_note):
        raise InvalidParameterError(f"user_note must be a scipy sparse matrix; got {type(user_note).__name__}")
    x = sp.csr_matrix(user_note, dtype=np.float32, copy=True)
    if not binary and x.nnz and (not np.isfinite(x.data).all() or (x.data < 0).any()):
        raise InvalidParameterError("user_note weights must be finite and >= 0 when binary=False")
    if binary:
        x.data = (x.data > 0).astype(np.float32)
    x.eliminate_zeros()
    return x


def _neighbours(co: np.ndarray, top_k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows, columns and values of a dense similarity block's kept entries: every non-zero with
    ``top_k = 0``, else each row's ``top_k`` best positive ones."""
    if top_k == 0:
        r, c = np.nonzero(co)
        return r, c, co[r, c]
    co[co <= 0] = -np.inf  # only positive similarities are neighbours
    idx, v = topk_rows(co, min(top_k, co.shape[1]))
    r, j = np.nonzero(idx >= 0)
    return r, idx[r, j], v[r, j]


def itemcf(
    user_note: sp.spmatrix,
    *,
    top_k: int = 200,
    alpha: float = 0.5,
    user_weighting: str = "none",
    binary: bool = True,
    block_size: int | None = None,
    show_progress: bool | None = None,
) -> sp.csr_matrix:
    """Item–item similarity of the columns of a user × note matrix.

    Parameters
    ----------
    user_note : scipy sparse matrix, shape (n_users, n_notes)
        Engagements; with ``binary=True`` any positive entry counts as one.
    top_k : int
        Neighbours kept per note; 0 keeps all.
    alpha : float in [0, 1]
        Popularity penalty exponent (0.5 = cosine).
    user_weighting : {"none", "iuf"}
        ``"iuf"`` weights each co-engaging user by ``1 / log(1 + |I_u|)`` (heavy users count less).
    binary : bool
        If False, use the entries as weights: ``c_ij = sum_u x_ui x_uj`` and ``n_i = sum_u x_ui^2``
        (so ``alpha = 0.5`` is the cosine of the weighted columns); with 0/1 entries this is the
        same as ``binary=True``.
    block_size : int, optional
        Rows per block (default: about 16M dense entries per block).

    Returns
    -------
    scipy.sparse.csr_matrix, shape (n_notes, n_notes), float32

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> x = sp.csr_matrix([[1, 1, 0], [1, 1, 1]])
    >>> itemcf(x, top_k=0).toarray().astype(float).round(3).tolist()
    [[0.0, 1.0, 0.707], [1.0, 0.0, 0.707], [0.707, 0.707, 0.0]]
    """
    top_k = check_int("top_k", top_k, minimum=0)
    alpha = check_float("alpha", alpha, minimum=0.0, maximum=1.0)
    check_choice("user_weighting", user_weighting, ("none", "iuf"))
    x = _engagement_matrix(user_note, binary)
    n_notes = x.shape[1]
    n_i = np.asarray(x.multiply(x).sum(axis=0)).ravel()
    xw = x
    if user_weighting == "iuf":
        deg = np.diff(x.indptr)
        xw = sp.diags((1.0 / np.log1p(np.maximum(deg, 1))).astype(np.float32)) @ x
    xt = xw.T.tocsr()
    with np.errstate(divide="ignore"):
        left = np.where(n_i > 0, n_i ** -(1.0 - alpha), 0.0).astype(np.float32)
        right = np.where(n_i > 0, n_i**-alpha, 0.0).astype(np.float32)
    block = block_size or max(1, (1 << 24) // max(1, n_notes))
    rows, cols, vals = [], [], []
    for start in progress(range(0, n_notes, block), desc="itemcf", total=-(-n_notes // block), enable=show_progress):
        stop = min(start + block, n_notes)
        co = (xt[start:stop] @ x).toarray()
        co *= left[start:stop, None]
        co *= right[None, :]
        co[np.arange(stop - start), np.arange(start, stop)] = 0.0
        r, c, v = _neighbours(co, top_k)
        rows.append(r + start)
        cols.append(c)
        vals.append(v)
    return sp.csr_matrix(
        (np.concatenate(vals).astype(np.float32), (np.concatenate(rows), np.concatenate(cols))),
        shape=(n_notes, n_notes),
    )
