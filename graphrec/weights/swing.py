"""Swing note–note similarity (Yang et al. 2020, "Large Scale Product Graph Construction for
Recommendation in E-commerce").

Definition
----------
For notes ``i != j`` with user sets ``U_i``, ``U_j`` and users' note sets ``I_u``::

    s(i, j) = sum over unordered pairs {u, v}, u != v, u and v in U_i & U_j, of
              w_u * w_v / (alpha + |I_u & I_v|)

    w_u = (|I_u| + user_alpha) ** -beta          (beta = 0 gives the plain form)

Pairs are **unordered**: each pair of distinct users counts once (not twice). ``|I_u & I_v|``
counts every note the two share, ``i`` and ``j`` included. (recfarm, LibRecommender's Rust
Swing, uses ``alpha + |I_u & I_v| - 1``, i.e. our ``alpha`` is its ``alpha - 1``, and
``w_u = |I_u| ** -0.5``.) ``s`` is symmetric; a note's neighbours are the notes with ``s > 0``.

Options and caps
----------------
* ``min_items_per_user`` / ``max_items_per_user``: users outside the range are left out entirely
  (too little signal / bots and crawlers).
* ``max_users_per_item``: a note with more users has its pair enumeration done over a seeded
  uniform sample of that many users (``I_u`` stay complete). This bounds the ``O(|U_i|^2)``
  cost of heavy notes; the result is exact whenever no cap binds.
* ``min_cooccurrence``: keep ``s(i, j)`` only if at least that many (sampled) users of ``i``
  also engaged ``j``.
* ``top_k``: keep each note's ``top_k`` best neighbours (ties to the smaller index); 0 keeps all.
  Rows are then each note's own list, so the kept edge set need not be symmetric; pass
  ``symmetrize=True`` to keep the union (the values agree up to float rounding).

Cost and memory
---------------
Time is ``sum_i sum_{u<v in U_i} |I_v|``; it runs in a numba kernel over notes in parallel (see
``_swing_kernel.py``). Memory is ``O(n_workers * n_notes)`` scratch plus the output, produced in
blocks of notes; there is never an ``n_notes x n_notes`` dense array.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np
import scipy.sparse as sp

from graphrec._progress import progress
from graphrec._validation import check_float, check_int
from graphrec.exceptions import InvalidParameterError
from graphrec.graph.build import ENGAGES, SIMILAR
from graphrec.graph.hetero import HeteroGraph

__all__ = ["SwingConfig", "filter_users", "swing", "swing_rows", "with_swing"]

_BLOCK_ENTRIES = 1 << 24


@dataclass(frozen=True)
class SwingConfig:
    """Swing's options: the one object :func:`swing`, :func:`graphrec.spark.swing_dataframe`, the
    Swing job and the ``graphrec swing`` command (whose flags are derived from these fields and
    their ``help``) all take. Validated on construction."""

    alpha: float = field(default=1.0, metadata={"help": "smoothing in 1/(alpha + |I_u & I_v|)"})
    user_alpha: float = field(default=0.0, metadata={"help": "offset C of the user weight (|I_u| + C)^-beta"})
    beta: float = field(default=0.5, metadata={"help": "user weight exponent; 0 = no user weighting"})
    top_k: int = field(default=100, metadata={"help": "neighbours kept per note; 0 keeps all"})
    max_users_per_item: int | None = field(default=None, metadata={"help": "cap users per note by seeded sampling"})
    min_items_per_user: int = field(default=1, metadata={"help": "leave out users with fewer notes"})
    max_items_per_user: int | None = field(default=None, metadata={"help": "leave out users with more notes"})
    min_cooccurrence: int = field(default=1, metadata={"help": "minimum co-engaging users for a kept pair"})
    seed: int = field(default=0, metadata={"help": "seed of the user sampling"})

    def __post_init__(self) -> None:
        check_float("alpha", self.alpha, minimum=0.0)
        check_float("user_alpha", self.user_alpha, minimum=0.0)
        check_float("beta", self.beta, minimum=0.0)
        check_int("top_k", self.top_k, minimum=0)
        check_int("min_items_per_user", self.min_items_per_user, minimum=1)
        check_int("min_cooccurrence", self.min_cooccurrence, minimum=1)
        if self.max_users_per_item is not None:
            check_int("max_users_per_item", self.max_users_per_item, minimum=2)
        if self.max_items_per_user is not None:
            check_int("max_items_per_user", self.max_items_per_user, minimum=self.min_items_per_user)
        check_int("seed", self.seed)

    @classmethod
    def of(cls, config: SwingConfig | None = None, **options: Any) -> SwingConfig:
        """``config`` (default: the defaults) with ``options``, field names, replaced; validated."""
        names = [f.name for f in fields(SwingConfig)]
        unknown = sorted(set(options) - set(names))
        if unknown:
            raise InvalidParameterError(f"unknown Swing option(s) {unknown}; expected some of {names}")
        base = config if config is not None else cls()
        return SwingConfig(**{n: options.get(n, getattr(base, n)) for n in names})


def filter_users(user_note: sp.csr_matrix, *, min_items: int = 1, max_items: int | None = None) -> sp.csr_matrix:
    """Binary copy of ``user_note`` with the rows of users outside ``[min_items, max_items]`` emptied."""
    x = sp.csr_matrix(user_note, dtype=np.float32, copy=True)
    x.data = (x.data > 0).astype(np.float32)
    x.eliminate_zeros()
    deg = np.diff(x.indptr)
    drop = deg < min_items
    if max_items is not None:
        drop |= deg > max_items
    if drop.any():
        x = sp.diags((~drop).astype(np.float32)) @ x
        x.eliminate_zeros()
    return sp.csr_matrix(x)


def _sample_users(item_user: sp.csr_matrix, cap: int, seed: int) -> sp.csr_matrix:
    deg = np.diff(item_user.indptr)
    heavy = np.flatnonzero(deg > cap)
    if heavy.size == 0:
        return item_user
    rng = np.random.default_rng(seed)
    rows, cols = [], []
    keep_rows = np.repeat(np.arange(item_user.shape[0]), deg)
    light = np.repeat(deg <= cap, deg)
    rows.append(keep_rows[light])
    cols.append(item_user.indices[light])
    for i in heavy:
        users = item_user.indices[item_user.indptr[i] : item_user.indptr[i + 1]]
        rows.append(np.full(cap, i))
        cols.append(np.sort(rng.choice(users, size=cap, replace=False)))
    data = np.ones(sum(r.size for r in rows), dtype=np.float32)
    return sp.csr_matrix((data, (np.concatenate(rows), np.concatenate(cols))), shape=item_user.shape)


def _user_item_matrices(user_note: sp.spmatrix, p: SwingConfig) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """The binary user x note matrix after the user filters, and its note x user transpose (heavy
    notes sampled), both with sorted indices."""
    if not sp.issparse(user_note):
        raise InvalidParameterError(f"user_note must be a scipy sparse matrix; got {type(user_note).__name__}")
    x = filter_users(sp.csr_matrix(user_note), min_items=p.min_items_per_user, max_items=p.max_items_per_user)
    if x.nnz == 0:
        raise InvalidParameterError("user_note has no engagements (after the user filters)")
    item_user = x.T.tocsr()
    if p.max_users_per_item is not None:
        item_user = _sample_users(item_user, p.max_users_per_item, p.seed)
    item_user.sort_indices()
    x.sort_indices()
    return x, item_user


def _block_plan(
    item_user: sp.csr_matrix, deg: np.ndarray, top_k: int, rows: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Notes (all, or ``rows``) in decreasing cost order, each one's output bound, and block
    boundaries over them."""
    n_notes = item_user.shape[0]
    # Upper bound of each note's neighbour count, to size its output segment.
    co_items = np.asarray(item_user @ deg).ravel()
    bound = np.minimum(co_items, n_notes - 1).astype(np.int64)
    if top_k:
        bound = np.minimum(bound, top_k)
    users_per_item = np.diff(item_user.indptr)
    cost = users_per_item.astype(np.float64) ** 2 * (co_items / np.maximum(users_per_item, 1))
    order = np.argsort(-cost, kind="stable")
    order = order[users_per_item[order] >= 2]  # a note needs two users to have a neighbour
    if rows is not None:
        order = order[np.isin(order, rows)]
    # Blocks of notes whose segments fit the entry budget.
    block_of = (np.cumsum(bound[order]) - 1) // _BLOCK_ENTRIES
    edges = np.concatenate([[0], np.flatnonzero(np.diff(block_of)) + 1, [order.size]]).astype(np.int64)
    return order, bound, edges


def swing(
    user_note: sp.spmatrix,
    config: SwingConfig | None = None,
    *,
    symmetrize: bool = False,
    n_threads: int | None = None,
    show_progress: bool | None = None,
    **options: Any,
) -> sp.csr_matrix:
    """Swing similarity between the columns (notes) of a user x note matrix.

    Parameters
    ----------
    user_note : scipy sparse matrix, shape (n_users, n_notes)
        Engagements; any positive entry counts as one.
    config : SwingConfig, optional
        The parameters (see the module docstring); ``**options`` (its field names, e.g.
        ``top_k=50``) replace single fields: ``swing(x, top_k=50)`` is
        ``swing(x, SwingConfig(top_k=50))``.
    symmetrize : bool
        Return ``max(S, S.T)``: the union of both notes' kept neighbours.
    n_threads : int, optional
        Threads for the kernel (default: numba's, i.e. the CPU count).

    Returns
    -------
    scipy.sparse.csr_matrix, shape (n_notes, n_notes), float32
        Row ``i`` holds note ``i``'s neighbours and scores (sorted indices; no diagonal).

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> x = sp.csr_matrix([[1, 1, 0], [1, 1, 1], [0, 1, 1]])
    >>> s = swing(x, alpha=1.0, beta=0.0, top_k=0)
    >>> float(s[0, 1])  # users 0 and 1 share notes {0, 1}: 1 / (1 + 2)
    0.3333333432674408
    """
    p = SwingConfig.of(config, **options)
    s = _swing_matrix(user_note, p, rows=None, n_threads=n_threads, show_progress=show_progress)
    if symmetrize:
        s = sp.csr_matrix(s.maximum(s.T))
        s.sort_indices()
    return s


def swing_rows(
    user_note: sp.spmatrix, notes: np.ndarray, config: SwingConfig | None = None, **options: Any
) -> sp.csr_matrix:
    """The rows of :func:`swing` for ``notes`` only, shape ``(len(notes), n_notes)``: each note's own
    neighbour list, exactly as the full computation gives it, at the cost of those notes alone
    (live updates recompute the notes that new events touch)."""
    p = SwingConfig.of(config, **options)
    notes = np.asarray(notes, dtype=np.int64)
    if notes.ndim != 1 or (notes.size and (notes.min() < 0 or notes.max() >= user_note.shape[1])):
        raise InvalidParameterError(f"notes must be a 1-d array of note indices in [0, {user_note.shape[1]})")
    return sp.csr_matrix(_swing_matrix(user_note, p, rows=notes, n_threads=None, show_progress=False)[notes])


def _swing_matrix(
    user_note: sp.spmatrix,
    p: SwingConfig,
    *,
    rows: np.ndarray | None,
    n_threads: int | None,
    show_progress: bool | None,
) -> sp.csr_matrix:
    """Swing's note x note matrix; with ``rows``, only those notes' rows are computed (the rest empty)."""
    alpha, top_k, min_cooccurrence = p.alpha, p.top_k, p.min_cooccurrence
    # alpha may be 0: a contributing pair shares i and j, so |I_u & I_v| >= 2 and no 0 denominator.
    x, item_user = _user_item_matrices(user_note, p)
    n_notes = x.shape[1]
    deg = np.diff(x.indptr).astype(np.float64)
    with np.errstate(divide="ignore"):
        user_w = np.where(deg > 0, (deg + p.user_alpha) ** -p.beta, 0.0)

    import numba

    from graphrec.weights._swing_kernel import swing_block

    if n_threads is not None:
        numba.set_num_threads(check_int("n_threads", n_threads, minimum=1))
    n_workers = numba.get_num_threads()

    order, bound, edges = _block_plan(item_user, deg, top_k, rows)
    out_rows: list[np.ndarray] = []
    cols, vals = [], []
    item_ptr = item_user.indptr.astype(np.int64)
    item_users = item_user.indices.astype(np.int64)
    user_ptr = x.indptr.astype(np.int64)
    user_items = x.indices.astype(np.int64)
    blocks = list(itertools.pairwise(edges.tolist()))
    for lo, hi in progress(blocks, desc="swing", total=len(blocks), enable=show_progress):
        items = order[lo:hi].astype(np.int64)
        offsets = np.concatenate([[0], np.cumsum(bound[items])]).astype(np.int64)
        out_idx = np.empty(offsets[-1], dtype=np.int64)
        out_val = np.empty(offsets[-1], dtype=np.float32)
        out_len = np.zeros(items.size, dtype=np.int64)
        swing_block(
            items,
            item_ptr,
            item_users,
            user_ptr,
            user_items,
            user_w,
            alpha,
            top_k,
            min_cooccurrence,
            n_notes,
            offsets,
            out_idx,
            out_val,
            out_len,
            n_workers,
        )
        first = np.cumsum(out_len) - out_len
        take = np.repeat(offsets[:-1], out_len) + np.arange(int(out_len.sum())) - np.repeat(first, out_len)
        out_rows.append(np.repeat(items, out_len))
        cols.append(out_idx[take])
        vals.append(out_val[take])
    if out_rows:
        s = sp.csr_matrix(
            (np.concatenate(vals), (np.concatenate(out_rows), np.concatenate(cols))),
            shape=(n_notes, n_notes),
            dtype=np.float32,
        )
    else:
        s = sp.csr_matrix((n_notes, n_notes), dtype=np.float32)
    s.sum_duplicates()
    return s


def with_swing(graph: HeteroGraph, config: SwingConfig | None = None, **options: Any) -> HeteroGraph:
    """``graph`` plus ``("note", "similar", "note")`` edges weighted by :func:`swing` over its
    user–engages–note relation (the parameters as :func:`swing` takes them; kept in ``meta``)."""
    if not graph.has_relation(ENGAGES):
        raise InvalidParameterError(f"the graph has no {ENGAGES} relation to compute Swing from")
    p = SwingConfig.of(config, **options)
    similarity = swing(graph.relation(ENGAGES), p)
    return graph.with_relation(SIMILAR, similarity, meta={"similar": {"method": "swing", **asdict(p)}})
