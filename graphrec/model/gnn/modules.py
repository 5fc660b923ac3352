"""Layer 0 of the GNN: ID embeddings for every node, plus a side-info vector for notes.

Layer 0 of note ``n`` is ``id(n) + g * s(n)``: its ID embedding plus a gated (per-dimension
sigmoid ``g``) side-info vector from :class:`SideInfoEncoder`::

    h = P text(n) + mean(id(t) for t in tags(n)) + id(author(n))
    s = h + W_out relu(W_h h + b_h) + b_out

(the numpy twin, :class:`graphrec.index.encoder.NoteEncoder`, computes the same for new notes at
serving time). Users and tags are their ID embeddings. The ID embeddings of all nodes live in one
table ``[users | notes | tags]`` that the trainer updates row by row (:mod:`.optim`); the encoder
and the gate are ordinary dense parameters.

:class:`NoteSide` turns the graph's :class:`~graphrec.graph.side_info.SideInfo` into encoder
inputs for any subset of notes, naming the tag and author nodes whose ID embeddings the encoder
reads, so a step gathers exactly the table rows it needs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn
from torch.nn import functional as F

from graphrec.graph.side_info import SideInfo
from graphrec.model.gnn.propagation import torch_csr

__all__ = ["NoteSide", "SideBatch", "SideInfoEncoder"]


class SideInfoEncoder(nn.Module):
    """``s = h + W_out relu(W_h h + b_h) + b_out``, ``h = P text + mean(tag ids) + author id``; and the gate."""

    def __init__(self, dim: int, text_dim: int) -> None:
        super().__init__()
        self.text = nn.Linear(text_dim, dim, bias=False) if text_dim else None
        self.hidden = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self.gate = nn.Parameter(torch.zeros(dim))

    def forward(self, h: torch.Tensor, text: torch.Tensor | None) -> torch.Tensor:
        """``s`` from ``h`` (tag mean + author vector, ``(n, dim)``) and the notes' text vectors."""
        if text is not None and self.text is not None:
            h = h + self.text(text)
        return h + self.out(F.relu(self.hidden(h)))

    def gated(self, s: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.gate) * s


@dataclass(frozen=True)
class SideBatch:
    """Encoder inputs for ``n`` notes: text rows, tag means over ``tag_nodes``, author nodes."""

    text: torch.Tensor | None  # (n, text_dim)
    tags: torch.Tensor | None  # (n, k) sparse CSR, each non-empty row sums to 1
    tag_nodes: np.ndarray  # (k,) node ids of the tags those columns stand for
    authors: np.ndarray  # (n,) author node id, -1 for none

    def nodes(self) -> np.ndarray:
        """Node ids whose ID embeddings the encoder reads (tags and authors)."""
        return np.concatenate([self.tag_nodes, self.authors[self.authors >= 0]])


class NoteSide:
    """The graph's note side-info, ready to encode any subset of notes.

    ``tag_offset`` is the node id of tag 0 (``None`` when tags are not graph nodes: their
    embeddings then do not exist and tags are ignored, as in training without tag relations).
    """

    def __init__(self, side: SideInfo, *, tag_offset: int | None, device: torch.device) -> None:
        self.n_notes = side.n_notes
        self.device = device
        self.text = (
            torch.from_numpy(np.ascontiguousarray(side.text, dtype=np.float32)).to(device)
            if side.text is not None
            else None
        )
        self.text_dim = 0 if side.text is None else int(side.text.shape[1])
        self.tags = None
        if side.tags is not None and tag_offset is not None:
            t = sp.csr_matrix(side.tags, dtype=np.float32)
            t.data[:] = 1.0
            self.tags = sp.csr_matrix(sp.diags(1.0 / np.maximum(np.diff(t.indptr), 1).astype(np.float32)) @ t)
        self.tag_offset = tag_offset
        self.authors = (
            np.asarray(side.authors, dtype=np.int64) if side.authors is not None else np.full(side.n_notes, -1)
        )

    def batch(self, notes: np.ndarray | None = None) -> SideBatch:
        """Inputs for ``notes`` (indices into the side-info's notes; ``None`` = all of them)."""
        every = notes is None
        idx = np.arange(self.n_notes) if every else np.asarray(notes, dtype=np.int64)
        text = None
        if self.text is not None:
            text = self.text if every else self.text[torch.from_numpy(idx).to(self.device)]
        tags, tag_nodes = None, np.empty(0, np.int64)
        if self.tags is not None and self.tag_offset is not None:
            rows = self.tags if every else self.tags[idx]
            used, local = np.unique(rows.indices, return_inverse=True)
            compact = sp.csr_matrix((rows.data, local.reshape(-1), rows.indptr), shape=(idx.size, used.size))
            tags = torch_csr(compact, self.device)
            tag_nodes = used.astype(np.int64) + self.tag_offset
        return SideBatch(text, tags, tag_nodes, self.authors[idx])

    @staticmethod
    def encode(encoder: SideInfoEncoder, batch: SideBatch, vectors: torch.Tensor) -> torch.Tensor:
        """``s`` for the batch's notes; ``vectors`` are the ID embeddings of ``batch.nodes()``, in order."""
        n = batch.authors.size
        k = batch.tag_nodes.size
        h = vectors.new_zeros((n, vectors.shape[1]))
        if batch.tags is not None and k:
            h = h + batch.tags @ vectors[:k]
        known = batch.authors >= 0
        if known.any():
            rows = torch.from_numpy(np.flatnonzero(known)).to(vectors.device)
            h = h.index_add(0, rows, vectors[k:])
        return encoder(h, batch.text)
