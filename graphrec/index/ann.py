"""faiss indexes over one embedding table, with exact re-scoring of the candidates.

Kinds
-----
* ``"flat"``: exact inner product (``IndexFlatIP``); the default up to ``exact_threshold`` rows.
* ``"ivf"``: ``IndexIVFFlat`` with ``nlist`` inverted lists (default: the power of two nearest
  ``4 * sqrt(n)``) searched with ``nprobe`` (default 16); the default above the threshold. On 1M
  x 64-d notes (4096 lists) it met the serving targets (``benchmarks/ann_serving.py``).
* ``"hnsw"``: ``IndexHNSWFlat`` (inner product), ``M`` links, ``efConstruction``/``efSearch``;
  on request (on clustered 1M data it needed more time per query for less recall than IVF).

Scores are inner products of the stored vectors (``normalise=True`` L2-normalises vectors and
queries first, making them cosines). All three kinds store the full float32 vectors, so scores
are exact for whatever candidates the index finds (no separate refine stage is needed; a
compressed index would add one). Results are sorted by (score descending, index ascending), and a
query's result never depends on which other queries share its batch: HNSW and IVF score each
candidate on its own, and the flat kind scores exactly in float64 with numpy (faiss's flat index
is kept for saving and loading only, since its batched path rounds differently). Rows that find
fewer than ``k`` results are padded with index -1 and score -inf.

Exact flat search in two passes
-------------------------------
Scoring every row in float64 reads twice the bytes of float32 and, for one query, runs several
times slower than float32 (``benchmarks/flat_search.py``). So the flat kind
first scores every row in float32 (one BLAS product) and keeps each query's ``k + max(16, k/4)``
best, then scores those again in float64, each product summed in order by a numba kernel (so a
query's scores never depend on its batch), and keeps the ``k`` best by (score, index). That is
the exact result whenever the float32 pass kept every row that could be in it, which is checked
per query from a rounding bound: a float32 inner product of ``d`` terms is within
``B = (d + 2) u |q| max|v|`` of the float64 one (``u = 2**-24``; the bound is doubled for
safety). If ``t`` is the ``k``-th best float32 score, the true ``k``-th best is at least
``t - B``, so every row of the exact top ``k`` scores at least ``t - 2B`` in float32. When the
last row kept scores below that, nothing outside the kept rows can enter; otherwise (many near
ties, or scores so large that float32 could overflow) that query is scored in float64 in full.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numba
import numpy as np

from graphrec._atomic import atomic_file
from graphrec._topk import topk_rows
from graphrec._validation import check_choice, check_int
from graphrec.exceptions import ArtifactError, InvalidParameterError, MissingDependencyError

__all__ = ["AnnIndex", "IndexConfig"]


def _faiss() -> Any:
    try:
        import faiss
    except ImportError as exc:  # pragma: no cover - faiss-cpu is a core dependency
        raise MissingDependencyError("ANN indexes need faiss: pip install faiss-cpu") from exc
    return faiss


@dataclass(frozen=True)
class IndexConfig:
    """How an :class:`AnnIndex` is built and searched (stored with it)."""

    kind: str = "auto"
    normalise: bool = False
    exact_threshold: int = 100_000
    hnsw_m: int = 32
    ef_construction: int = 200
    ef_search: int = 256
    nlist: int | None = None
    nprobe: int = 16
    seed: int = 0

    def __post_init__(self) -> None:
        check_choice("kind", self.kind, ("auto", "flat", "hnsw", "ivf"))
        for name in ("hnsw_m", "ef_construction", "ef_search", "nprobe"):
            check_int(name, getattr(self, name), minimum=1)
        check_int("exact_threshold", self.exact_threshold, minimum=0)
        if self.nlist is not None:
            check_int("nlist", self.nlist, minimum=1)


def _check_vectors(name: str, vectors: Any) -> np.ndarray:
    arr = np.asarray(vectors)
    if arr.ndim != 2 or arr.shape[1] == 0:
        raise InvalidParameterError(f"{name} must be a 2-D array (n, dim) with dim > 0; got shape {arr.shape}")
    if arr.dtype.kind not in "fiu":
        raise InvalidParameterError(f"{name} must be numeric; got dtype {arr.dtype}")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.isfinite(arr).all():
        raise InvalidParameterError(f"{name} holds NaN or inf")
    return arr


@numba.njit(cache=True)
def _exact_scores(v: np.ndarray, q64: np.ndarray, idx: np.ndarray) -> np.ndarray:  # pragma: no cover - numba
    """``out[r, j]``: the float64 inner product of query ``r`` and row ``idx[r, j]`` of ``v``,
    summed in order, so a pair's score is the same in every call (-inf where ``idx`` is -1)."""
    out = np.full(idx.shape, -np.inf)
    for r in range(idx.shape[0]):
        for j in range(idx.shape[1]):
            row = idx[r, j]
            if row < 0:
                continue
            acc = 0.0
            for t in range(v.shape[1]):
                acc += np.float64(v[row, t]) * q64[r, t]
            out[r, j] = acc
    return out


def _normalised(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.ascontiguousarray(x / np.maximum(norms, 1e-12), dtype=np.float32)


class AnnIndex:
    """Nearest neighbours by inner product over ``vectors`` (see the module docstring).

    Use :meth:`build` to make one and :meth:`load` to read one saved with :meth:`save`.

    Examples
    --------
    >>> import numpy as np
    >>> vecs = np.eye(4, dtype=np.float32)
    >>> idx = AnnIndex.build(vecs)
    >>> ids, scores = idx.search(np.array([[0.0, 1.0, 0.2, 0.0]]), k=2)
    >>> ids.tolist(), scores.astype(float).round(2).tolist()
    ([[1, 2]], [[1.0, 0.2]])
    """

    def __init__(self, index: Any, vectors: np.ndarray, params: IndexConfig, kind: str) -> None:
        self._index = index
        self.vectors = vectors
        self.params = params
        self.kind = kind
        # The largest row norm bounds the float32 pass's rounding (see "Exact flat search").
        self._max_norm = float(np.linalg.norm(vectors.astype(np.float64), axis=1).max()) if kind == "flat" else 0.0

    @property
    def dim(self) -> int:
        """Vector dimension."""
        return int(self.vectors.shape[1])

    def __len__(self) -> int:
        return int(self.vectors.shape[0])

    @classmethod
    def build(cls, vectors: Any, params: IndexConfig | None = None, **overrides: Any) -> AnnIndex:
        """Index ``vectors`` (shape ``(n, dim)``); ``overrides`` replace fields of ``params``.

        The one-shot build is the sharded build with one shard: :meth:`train_empty` on the rows
        :meth:`sample_rows` names, :meth:`fill_shard`, :meth:`merge_shards`.
        """
        p = IndexConfig(**{**asdict(params or IndexConfig()), **overrides})
        x = _check_vectors("vectors", vectors)
        if x.shape[0] == 0:
            raise InvalidParameterError("vectors is empty; nothing to index")
        empty = cls.train_empty(x[cls.sample_rows(x.shape[0], p)], x.shape[0], p)
        return cls.merge_shards([cls.fill_shard(empty, x, 0, p)], x, p)

    # ---- the sharded build: train on a sample, fill shards anywhere, merge --------------------

    @staticmethod
    def resolve(n: int, params: IndexConfig) -> tuple[str, int]:
        """The kind (``"auto"`` resolved) and IVF list count an index of ``n`` rows gets."""
        kind = params.kind if params.kind != "auto" else ("flat" if n <= params.exact_threshold else "ivf")
        # Default: the power of two nearest 4 * sqrt(n) (4096 lists for 1M rows), at least 39
        # training points per list.
        nlist = params.nlist or max(1, min(n // 39, 2 ** round(math.log2(4 * math.sqrt(max(n, 1))))))
        return kind, nlist

    @classmethod
    def sample_rows(cls, n: int, params: IndexConfig) -> np.ndarray:
        """The rows (sorted) an index of ``n`` rows is trained on: all of them, or ``256 x nlist``
        drawn with ``params.seed`` for IVF; none for the other kinds (nothing to train)."""
        kind, nlist = cls.resolve(n, params)
        if kind != "ivf":
            return np.arange(0)
        if n <= 256 * nlist:
            return np.arange(n)
        return np.sort(np.random.default_rng(params.seed).choice(n, 256 * nlist, replace=False))

    @classmethod
    def train_empty(cls, sample: Any, n: int, params: IndexConfig) -> Any:
        """An empty faiss index for ``n`` rows, trained on ``sample`` (the rows :meth:`sample_rows`
        names). Ship it to the workers that fill shards with ``faiss.serialize_index``."""
        faiss = _faiss()
        kind, nlist = cls.resolve(n, params)
        if kind == "flat":
            return None  # a flat index is its vectors (see merge_shards)
        x = _check_vectors("sample", sample)
        if params.normalise:
            x = _normalised(x)
        d = x.shape[1]
        if kind == "hnsw":  # nothing to train
            index = faiss.IndexHNSWFlat(d, params.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = params.ef_construction
            index.hnsw.efSearch = params.ef_search
            return index
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, nlist, faiss.METRIC_INNER_PRODUCT)
        index.cp.seed = params.seed
        index.train(x)
        index.nprobe = min(params.nprobe, nlist)
        return index

    @staticmethod
    def fill_shard(empty: Any, rows: Any, start: int, params: IndexConfig) -> Any:
        """A copy of ``empty`` holding ``rows``, the index's rows ``start, start + 1, ...``."""
        if empty is None:  # flat: nothing to fill (merge_shards takes the vectors)
            return None
        faiss = _faiss()
        x = _check_vectors("rows", rows)
        if params.normalise:
            x = _normalised(x)
        shard = faiss.clone_index(empty)
        if isinstance(shard, faiss.IndexIVF):
            shard.add_with_ids(x, np.arange(start, start + x.shape[0], dtype=np.int64))
        elif start == 0:
            shard.add(x)
        else:
            raise InvalidParameterError("HNSW indexes are built in one piece; use kind 'ivf' to build in shards")
        return shard

    @classmethod
    def merge_shards(cls, shards: list[Any], vectors: Any, params: IndexConfig) -> AnnIndex:
        """The index over ``vectors`` from its shards in row order: IVF shards' inverted lists are
        appended in order (faiss ``merge_from``), giving the lists, and so the search results, a
        one-shot build gives."""
        x = _check_vectors("vectors", vectors)
        stored = _normalised(x) if params.normalise else x
        kind, _ = cls.resolve(x.shape[0], params)
        if kind == "flat":
            index = _faiss().IndexFlatIP(stored.shape[1])
            index.add(stored)
            return cls(index, stored, params, kind)
        if kind == "hnsw" and len(shards) != 1:
            raise InvalidParameterError("HNSW indexes are built in one piece; use kind 'ivf' to build in shards")
        index = shards[0]
        for shard in shards[1:]:
            index.merge_from(shard, 0)
        if index.ntotal != stored.shape[0]:
            raise InvalidParameterError(f"the shards hold {index.ntotal} rows; vectors has {stored.shape[0]}")
        return cls(index, stored, params, kind)

    def _search_params(self) -> Any:
        # Per-call parameters, so indexes sharing one faiss object never race on its settings.
        faiss = _faiss()
        if self.kind == "hnsw":
            return faiss.SearchParametersHNSW(efSearch=self.params.ef_search)
        return faiss.SearchParametersIVF(nprobe=self.params.nprobe)

    def tuned(self, *, ef_search: int | None = None, nprobe: int | None = None) -> AnnIndex:
        """The same index searched with other ``ef_search`` / ``nprobe`` (no rebuild, no copy)."""
        changes: dict[str, int] = {}
        if ef_search is not None:
            changes["ef_search"] = check_int("ef_search", ef_search, minimum=1)
        if nprobe is not None:
            changes["nprobe"] = check_int("nprobe", nprobe, minimum=1)
        return AnnIndex(self._index, self.vectors, IndexConfig(**{**asdict(self.params), **changes}), self.kind)

    def search(self, queries: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` row indices and exact scores per query, shapes ``(n_queries, k)``."""
        k = check_int("k", k, minimum=1)
        q = _check_vectors("queries", np.atleast_2d(queries))
        if q.shape[1] != self.dim:
            raise InvalidParameterError(f"queries have dimension {q.shape[1]}; the index has {self.dim}")
        if self.params.normalise:
            q = _normalised(q)
        if self.kind == "flat":
            block = max(1, (1 << 22) // max(1, len(self)))  # bounds the score matrix's memory
            buffer = np.empty((min(block, q.shape[0]), len(self)), dtype=np.float32)  # one for all blocks
            parts = [self._flat_search(q[i : i + block], k, buffer) for i in range(0, q.shape[0], block)]
            return np.vstack([p[0] for p in parts]), np.vstack([p[1] for p in parts])
        # HNSW-flat and IVF-flat keep full vectors and score each candidate on its own, so their
        # inner products are exact and batch-independent already; only ties need ordering.
        dist, cand = self._index.search(q, min(len(self), k), params=self._search_params())
        cand = cand.astype(np.int64)
        valid = cand >= 0
        exact = dist.astype(np.float64)
        exact[~valid] = -np.inf
        order = np.lexsort((np.where(valid, cand, np.iinfo(np.int64).max), -exact), axis=1)[:, :k]
        ids = np.take_along_axis(cand, order, axis=1)
        scores = np.take_along_axis(exact, order, axis=1).astype(np.float32)
        ids[~np.isfinite(scores)] = -1
        if ids.shape[1] < k:
            pad = k - ids.shape[1]
            ids = np.hstack([ids, np.full((ids.shape[0], pad), -1, dtype=np.int64)])
            scores = np.hstack([scores, np.full((scores.shape[0], pad), -np.inf, dtype=np.float32)])
        return ids, scores

    def _flat_search(self, q: np.ndarray, k: int, buffer: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Exact top-``k`` of float32 queries ``q`` over all rows (see "Exact flat search");
        ``buffer`` holds the float32 scores (at least ``len(q)`` rows)."""
        v = self.vectors
        n, d = v.shape
        kk = min(k, n)
        wide = min(n, kk + max(16, kk // 4))
        with np.errstate(over="ignore"):  # overflowing rows are scored again below
            idx, val = topk_rows(np.matmul(q, v.T, out=buffer[: q.shape[0]]), wide)
        q64 = q.astype(np.float64)
        largest = np.linalg.norm(q64, axis=1) * self._max_norm  # no |score| nor partial sum exceeds it
        bound = 2.0 * (d + 2) * 2.0**-24 * largest + (d + 2) * float(np.finfo(np.float32).tiny)
        complete = (idx[:, -1] >= 0) & (largest < 1e37)  # float32 could not overflow
        if wide < n:
            complete &= val[:, -1] < val[:, kk - 1] - 2.0 * bound
        exact = _exact_scores(v, q64, idx)
        for r in np.flatnonzero(~complete):  # rare: score every row of this query in float64
            every = np.arange(n)
            exact_r = _exact_scores(v, q64[r : r + 1], every[None, :])[0]
            idx[r] = np.lexsort((every, -exact_r))[:wide]
            exact[r] = exact_r[idx[r]]
        order = np.lexsort((idx, -exact), axis=1)[:, :kk]
        ids = np.full((q.shape[0], k), -1, dtype=np.int64)
        scores = np.full((q.shape[0], k), -np.inf, dtype=np.float32)
        ids[:, :kk] = np.take_along_axis(idx, order, axis=1)
        with np.errstate(over="ignore"):  # a score beyond float32's range is returned as +-inf
            scores[:, :kk] = np.take_along_axis(exact, order, axis=1)
        return ids, scores

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the faiss index (faiss's own format) atomically."""
        faiss = _faiss()
        with atomic_file(path) as tmp:
            faiss.write_index(self._index, str(tmp))

    @classmethod
    def load(cls, path: str | os.PathLike[str], vectors: np.ndarray, params: IndexConfig, kind: str) -> AnnIndex:
        """Read a faiss index written by :meth:`save`; ``vectors`` are the rows it indexes.

        A flat index *is* its vectors, so it is rebuilt from ``vectors`` and the file is not
        parsed at all. HNSW and IVF files are parsed by faiss after their header is checked
        against ``kind`` and their size against the vectors; faiss's reader is not hardened
        against crafted files, so a bundle should come from a source you trust as much as the
        checksums in its manifest (see :mod:`graphrec._manifest`).
        """
        faiss = _faiss()
        p = Path(path)
        magic = {"flat": b"IxFI", "hnsw": b"IHNf", "ivf": b"IwFl"}
        if kind not in magic:
            raise ArtifactError(f"{p}: unknown index kind {kind!r}; expected one of {', '.join(magic)}")
        try:
            for name in ("hnsw_m", "ef_construction", "ef_search", "nprobe"):
                check_int(name, getattr(params, name), minimum=1)
        except InvalidParameterError as exc:
            raise ArtifactError(f"{p}: bad index parameters ({exc})") from None
        stored = _normalised(vectors) if params.normalise else np.ascontiguousarray(vectors, dtype=np.float32)
        try:
            with open(p, "rb") as fh:
                header = fh.read(4)
            size = p.stat().st_size
        except OSError as exc:
            raise ArtifactError(f"{p}: unreadable ({exc})") from None
        if header != magic[kind]:
            raise ArtifactError(f"{p}: not a faiss {kind} index (header {header!r})")
        if kind == "flat":
            index = faiss.IndexFlatIP(stored.shape[1])
            index.add(stored)
            return cls(index, stored, params, kind)
        if size < stored.nbytes:
            raise ArtifactError(f"{p}: {size} bytes cannot hold {stored.shape[0]} x {stored.shape[1]} vectors")
        try:
            index = faiss.read_index(str(p))
        except RuntimeError as exc:
            raise ArtifactError(f"{p}: not a readable faiss index ({str(exc).splitlines()[0][:200]})") from exc
        if index.ntotal != stored.shape[0] or index.d != stored.shape[1]:
            raise ArtifactError(
                f"{p}: index holds {index.ntotal} x {index.d} vectors; the embeddings are {stored.shape[0]} x {stored.shape[1]}"
            )
        return cls(index, stored, params, kind)
