"""The final embeddings computed in node-row partitions, in memory bounded by a buffer.

The model's output is ``F = (x + A x + ... + A^L x) / (L + 1)`` (:func:`.propagate`). Computed in
one piece it holds four ``N x d`` tables besides the model (``x``, the running sum, the layer and
its product); a data-parallel run also all-gathers every layer (:class:`.ProcessGroup`). Here
every table lives in ``.npy`` files, cut by node rows into one *part* per shard, and only a block
of rows is in memory at a time:

* The node rows ``[0, N)`` are cut into ``W`` contiguous parts, one per shard of the
  :class:`.Collective` (the same cut as :meth:`.ProcessGroup.propagate`); shard ``r`` writes
  ``layer{l}-part{r}.npy`` and ``sum-part{r}.npy`` for its rows only.
* Layer ``l`` of a block of rows is ``A[rows] @ h_{l-1}[cols]``, where ``cols`` are the distinct
  columns the block's nonzeros name; those rows of the previous layer are read from whichever
  parts hold them (memory-mapped, so only the pages named are read). A block holds at most
  ``buffer_mb`` of nonzeros, gathered rows and output rows, so peak memory is the model and the
  graph plus that buffer, whatever ``N`` is. The previous layer's files are deleted once every
  shard has finished the next one (a barrier between layers), so disk holds two layers and the sum.
* Finally each shard divides its sum by ``L + 1`` (and L2-normalises rows for cosine models), and
  the writer (rank 0) concatenates the parts into ``user.npy``, ``note.npy`` and ``tag.npy``,
  copying block by block.

Under :class:`.ProcessGroup` each rank computes its own part (the directory must be shared by the
ranks: one machine, or a shared filesystem), so the export costs ``1 / W`` of the work per rank
and no collective moves embeddings; under :class:`.LocalShards` one process writes every part;
the plain :class:`.Collective` writes one part. The arithmetic is the one-piece propagation's (the
same sum in the same order, each block's product by torch's CSR kernel), so results agree with
:meth:`.Trainer.embed` to float32 rounding (tested; bit-equal in ``benchmarks/export_index.py``).

Memory-mapped pages are dropped from the process (``madvise(MADV_DONTNEED)``; dirty pages stay in
the page cache and reach the file) once a block is done, and every few hundred gathered rows while
reading, because a read fault maps up to 64 kB of cached neighbours too. So the resident set, not
only what is allocated, stays near the buffer (``benchmarks/export_index.py`` measures the peak).
"""

from __future__ import annotations

import mmap
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

from graphrec.exceptions import InvalidParameterError
from graphrec.model.gnn.collective import Collective
from graphrec.model.gnn.propagation import torch_csr

__all__ = ["export_propagation"]

_CPU = torch.device("cpu")
_MARKER = ".graphrec-export"  # an export directory is replaced only when it carries this
_FAULT_AROUND = 64 << 10  # Linux maps up to 64 kB of cached pages around a read fault


class _Mapped:
    """An ``.npy`` file as an array over an ``mmap`` whose pages can be dropped from this process."""

    def __init__(self, path: Path, writable: bool) -> None:
        with open(path, "r+b" if writable else "rb") as fh:
            version = np.lib.format.read_magic(fh)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = read(fh)
            self.offset = fh.tell()
            self.mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_WRITE if writable else mmap.ACCESS_READ)
        self.array = np.ndarray(shape, dtype, buffer=self.mm, offset=self.offset)
        self.writable = writable

    def release(self, first: int = 0, stop: int | None = None) -> None:
        """Drop the pages of rows ``[first, stop)`` (all rows by default) from this process. Dirty
        pages of a shared mapping stay in the page cache (written back by the kernel, or by
        :meth:`flush`), so nothing is lost."""
        row = self.array.strides[0] if self.array.ndim else 0
        end = len(self.mm) if stop is None else min(len(self.mm), self.offset + stop * row)
        start = (self.offset + first * row) // mmap.PAGESIZE * mmap.PAGESIZE if first else 0
        if end > start:
            self.mm.madvise(mmap.MADV_DONTNEED, start, end - start)

    def flush(self) -> None:
        if self.writable:
            self.mm.flush()


class _Parts:
    """Rows ``[0, N)`` of one ``N x d`` table stored as one ``.npy`` part per shard.

    Parts are memory-mapped; their pages are dropped from this process as a block is done
    (:meth:`release`, and during :meth:`take`), so what a block read or wrote does not stay resident.
    """

    def __init__(self, directory: Path, stem: str, bounds: np.ndarray, dim: int, chunk: int) -> None:
        self.directory, self.stem, self.bounds, self.dim = directory, stem, bounds, dim
        self.chunk = chunk  # rows gathered between page releases
        self._maps: dict[tuple[int, bool], _Mapped] = {}

    def path(self, part: int) -> Path:
        return self.directory / f"{self.stem}-part{part}.npy"

    def _mapped(self, part: int, writable: bool) -> _Mapped:
        if (part, writable) not in self._maps:
            self._maps[(part, writable)] = _Mapped(self.path(part), writable)
        return self._maps[(part, writable)]

    def array(self, part: int, *, writable: bool = False, create: bool = False) -> np.ndarray:
        if create:
            rows = int(self.bounds[part + 1] - self.bounds[part])
            np.lib.format.open_memmap(self.path(part), mode="w+", dtype=np.float32, shape=(rows, self.dim)).flush()
        return self._mapped(part, writable).array

    def take(self, rows: np.ndarray) -> np.ndarray:
        """The given rows (sorted, distinct) as one in-memory array. The pages read are released
        every ``chunk`` rows: a read fault maps the cached pages around it too (up to 64 kB), so
        scattered rows would otherwise leave most of a layer resident."""
        out = np.empty((rows.size, self.dim), np.float32)
        which = np.searchsorted(self.bounds, rows, side="right") - 1
        cuts = np.flatnonzero(np.diff(which)) + 1
        for lo, hi in zip(np.r_[0, cuts], np.r_[cuts, rows.size], strict=True):
            if hi == lo:
                continue
            p = int(which[lo])
            src = self._mapped(p, False)
            for a in range(lo, hi, self.chunk):
                b = min(hi, a + self.chunk)
                local = rows[a:b] - self.bounds[p]
                out[a:b] = src.array[local]
                src.release(int(local[0]), int(local[-1]) + 1)
        return out

    def blocks(self, lo: int, hi: int, block_rows: int) -> Iterator[np.ndarray]:
        """Rows ``[lo, hi)`` in order, ``block_rows`` at a time."""
        for a in range(lo, hi, block_rows):
            yield self.take(np.arange(a, min(hi, a + block_rows)))

    def release(self) -> None:
        for m in self._maps.values():
            m.release()

    def close(self) -> None:
        """Write dirty pages back (other processes may read the files next) and unmap."""
        for m in self._maps.values():
            m.flush()
            m.release()
        self._maps.clear()

    def remove(self, part: int) -> None:
        self.path(part).unlink(missing_ok=True)


def _row_blocks(indptr: np.ndarray, lo: int, hi: int, max_nnz: int, max_rows: int) -> Iterator[tuple[int, int]]:
    """Cut rows ``[lo, hi)`` into blocks of at most ``max_nnz`` nonzeros and ``max_rows`` rows; a
    row with more nonzeros is a block of its own (see :func:`_block_product`)."""
    a = lo
    while a < hi:
        b = int(np.searchsorted(indptr, indptr[a] + max_nnz, side="right")) - 1
        b = min(hi, a + max_rows, max(b, a + 1))
        yield a, b
        a = b


def _block_product(
    indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, a: int, b: int, max_nnz: int, prev: _Parts
) -> np.ndarray:
    """``A[a:b] @ prev``, reading only the rows of ``prev`` the block's nonzeros name. A block
    has at most ``max_nnz`` nonzeros unless it is one hub row, whose nonzeros are then taken
    ``max_nnz`` at a time and the partial products summed."""
    s, e = int(indptr[a]), int(indptr[b])
    rows: np.ndarray | None = None
    for p in range(s, e, max_nnz) if e > s else (s,):
        q = min(e, p + max_nnz)
        cols, inverse = np.unique(indices[p:q], return_inverse=True)
        local = np.clip(indptr[a : b + 1], p, q) - p
        block = sp.csr_matrix((data[p:q], inverse.reshape(-1), local), shape=(b - a, cols.size))
        part = (torch_csr(block, _CPU) @ torch.from_numpy(prev.take(cols))).numpy()
        rows = part if rows is None else rows + part
    assert rows is not None
    return rows


def export_propagation(
    x: np.ndarray,
    adj: tuple[np.ndarray, np.ndarray, np.ndarray],
    layers: int,
    directory: str | Path,
    *,
    offsets: dict[str, int],
    collective: Collective | None = None,
    normalise: bool = False,
    buffer_mb: float = 256,
) -> dict[str, Path]:
    """Write ``F = (x + A x + ... + A^layers x) / (layers + 1)`` in partitions (module docstring).

    ``x`` is the ``(N, d)`` layer-0 table, ``adj`` the ``(N, N)`` matrix ``A`` as CSR arrays
    ``(indptr, indices, data)`` (a scipy matrix would copy its indices to int32) and ``offsets`` the
    node ranges (``{"user", "note", "tag", "end"}``, :func:`.propagation_matrix`). Returns the
    paths of ``user.npy``, ``note.npy`` and ``tag.npy`` in ``directory`` (written by the writer
    process; every process gets the paths after a final barrier). ``directory`` must be empty,
    new, or an earlier export (which is replaced).
    """
    comm = collective or Collective()
    if not buffer_mb > 0:
        raise InvalidParameterError(f"buffer_mb must be > 0; got {buffer_mb!r}")
    n, dim = x.shape
    indptr, indices, data = adj
    if indptr.size != n + 1:
        raise InvalidParameterError(f"adj has {indptr.size - 1} rows; x has {n}")
    out = Path(directory)
    # Every rank looks before the writer touches anything, and all agree (the all-reduce is also
    # the barrier), so a refused directory fails on every rank instead of leaving the others
    # waiting at a barrier the writer never reaches.
    foreign = out.exists() and any(out.iterdir()) and not (out / _MARKER).exists()
    if comm.weighted_mean(float(foreign), 1.0) > 0:
        raise InvalidParameterError(f"{out} is not empty and not an earlier export; choose an empty directory")
    if comm.is_writer:
        if out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True)
        (out / _MARKER).touch()
    comm.barrier()
    budget = int(buffer_mb * 2**20)
    # A block's allocations: the gathered rows (<= one per nonzero, 4 d bytes) and about 40 bytes
    # of index work per nonzero (unique, inverse, torch's int64 copies) in half the budget; its
    # product rows (4 d bytes each) in a quarter; the pages it maps in the rest.
    max_nnz = max(1, budget // 2 // (4 * dim + 40))
    max_rows = max(1, budget // 4 // (4 * dim))
    chunk = min(4096, max(256, budget // 4 // _FAULT_AROUND))
    bounds = np.array([n * r // comm.shards for r in range(comm.shards + 1)], dtype=np.int64)
    mine = list(comm.local_shards())

    prev = _Parts(out, "layer0", bounds, dim, chunk)
    total = _Parts(out, "sum", bounds, dim, chunk)
    for r in mine:
        lo, hi = int(bounds[r]), int(bounds[r + 1])
        for parts in (prev, total):
            dest = parts.array(r, writable=True, create=True)
            for a in range(lo, hi, max_rows):
                dest[a - lo : min(hi, a + max_rows) - lo] = x[a : min(hi, a + max_rows)]
                parts.release()
            del dest
            parts.close()
    comm.barrier()
    for layer in range(1, layers + 1):
        cur = _Parts(out, f"layer{layer}", bounds, dim, chunk)
        for r in mine:
            lo = int(bounds[r])
            h, acc = cur.array(r, writable=True, create=True), total.array(r, writable=True)
            for a, b in _row_blocks(indptr, lo, int(bounds[r + 1]), max_nnz, max_rows):
                rows = _block_product(indptr, indices, data, a, b, max_nnz, prev)
                h[a - lo : b - lo] = rows
                acc[a - lo : b - lo] += rows
                for parts in (prev, cur, total):
                    parts.release()
            del h, acc
            cur.close()
            total.close()
        comm.barrier()  # every shard has read the previous layer
        prev.close()
        for r in mine:
            prev.remove(r)
        prev = cur
    for r in mine:
        prev.remove(r)
        acc = total.array(r, writable=True)
        for a in range(0, acc.shape[0], max_rows):
            block = acc[a : a + max_rows] / np.float32(layers + 1)
            if normalise:
                block /= np.maximum(np.linalg.norm(block, axis=1, keepdims=True), np.float32(1e-12))
            acc[a : a + max_rows] = block
            total.release()
        del acc
        total.close()
    comm.barrier()
    paths = {name: out / f"{name}.npy" for name in ("user", "note", "tag")}
    if comm.is_writer:
        ranges = {"user": (offsets["user"], offsets["note"]), "note": (offsets["note"], offsets["tag"])}
        ranges["tag"] = (offsets["tag"], offsets["end"])
        for name, (lo, hi) in ranges.items():
            np.lib.format.open_memmap(paths[name], mode="w+", dtype=np.float32, shape=(hi - lo, dim)).flush()
            final = _Mapped(paths[name], writable=True)
            at = 0
            for block in total.blocks(lo, hi, max_rows):
                final.array[at : at + block.shape[0]] = block
                final.release(at, at + block.shape[0])
                at += block.shape[0]
            final.flush()
            del final
        total.close()
        for r in range(comm.shards):
            total.remove(r)
    comm.barrier()
    return paths
