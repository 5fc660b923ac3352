"""The trained side-info encoder as plain numpy arrays: embeds brand-new notes at serving time.

:meth:`graphrec.model.GNNRecommender.note_encoder` exports it; a serving bundle stores it as
``encoder.npz`` (no pickle) and :class:`graphrec.coldstart.ColdStart` loads it from there. It
computes exactly what :class:`graphrec.model.gnn.SideInfoEncoder` computes in torch::

    h = P text + mean(tag0[tags]) + user0[author]
    s = h + W_out relu(W_h h + b_h) + b_out      (then s / |s| when ``normalise``)

where ``tag0`` / ``user0`` are the GNN's layer-0 tag and user embeddings. Notes with no usable
side-info (:meth:`~graphrec.graph.side_info.SideInfo.usable`) get a zero vector.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from graphrec._atomic import atomic_file
from graphrec._manifest import float_matrix, load_npz
from graphrec.exceptions import ArtifactError, InvalidParameterError
from graphrec.graph.side_info import SideInfo

__all__ = ["NoteEncoder"]

_ARRAYS = ("user0", "tag0", "w_hidden", "b_hidden", "w_out", "b_out")


@dataclass(frozen=True)
class NoteEncoder:
    """Numpy side-info encoder (see the module docstring); ``w_text`` is None without text."""

    user0: np.ndarray
    tag0: np.ndarray
    w_hidden: np.ndarray
    b_hidden: np.ndarray
    w_out: np.ndarray
    b_out: np.ndarray
    w_text: np.ndarray | None = None
    #: Return unit vectors (models trained with cosine similarity).
    normalise: bool = False

    @property
    def dim(self) -> int:
        return int(self.w_out.shape[0])

    @property
    def text_dim(self) -> int:
        """Dimension of the text vectors it expects (0 = trained without text)."""
        return 0 if self.w_text is None else int(self.w_text.shape[1])

    def __call__(self, side: SideInfo) -> np.ndarray:
        """Embeddings ``(side.n_notes, dim)`` float32."""
        h = np.zeros((side.n_notes, self.dim), dtype=np.float64)
        if side.text is not None and self.w_text is not None:
            if side.text.shape[1] != self.text_dim:
                raise InvalidParameterError(
                    f"text vectors have {side.text.shape[1]} dims; the encoder expects {self.text_dim}"
                )
            h += side.text.astype(np.float64) @ self.w_text.T.astype(np.float64)
        if side.tags is not None and self.tag0.shape[0]:
            if side.tags.shape[1] != self.tag0.shape[0]:
                raise InvalidParameterError(
                    f"tags have {side.tags.shape[1]} columns; the encoder knows {self.tag0.shape[0]} tags"
                )
            t = sp.csr_matrix(side.tags, dtype=np.float64)
            t.data[:] = 1.0
            t = sp.diags(1.0 / np.maximum(np.diff(t.indptr), 1)) @ t
            h += t @ self.tag0.astype(np.float64)
        if side.authors is not None:
            a = np.asarray(side.authors, dtype=np.int64)
            if a.size and a.max(initial=-1) >= self.user0.shape[0]:
                raise InvalidParameterError(
                    f"author index {a.max()} is outside the encoder's {self.user0.shape[0]} users"
                )
            known = a >= 0
            h[known] += self.user0[a[known]]
        hidden = np.maximum(h @ self.w_hidden.T + self.b_hidden, 0.0)
        out = h + hidden @ self.w_out.T + self.b_out
        if self.normalise:
            out = out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        out = out.astype(np.float32)
        out[~side.usable()] = 0.0
        return out

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write ``path`` (``.npz``) atomically."""
        arrays = {name: getattr(self, name) for name in _ARRAYS}
        if self.w_text is not None:
            arrays["w_text"] = self.w_text
        arrays["normalise"] = np.array(self.normalise)
        with atomic_file(path) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, **arrays)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> NoteEncoder:
        """Read an encoder written by :meth:`save`; shape mismatches are :class:`ArtifactError`."""
        p = Path(path)
        arrays = load_npz(p)
        missing = [k for k in _ARRAYS if k not in arrays]
        if missing:
            raise ArtifactError(f"{p}: note encoder lacks {missing}")
        for k in (*_ARRAYS, "w_text"):
            if k in arrays:
                arrays[k] = float_matrix(arrays[k], f"{p} ({k})", shape=(None,) * arrays[k].ndim)
        norm = arrays.get("normalise", arrays.get("normalize", np.array(False)))  # "normalize": older bundles
        if arrays["user0"].ndim != 2 or arrays["tag0"].ndim != 2 or norm.dtype != np.bool_ or norm.size != 1:
            raise ArtifactError(f"{p}: note encoder arrays have inconsistent shapes or dtypes")
        enc = cls(
            **{k: arrays[k] for k in _ARRAYS},
            w_text=arrays.get("w_text"),
            normalise=bool(norm),
        )
        d = enc.dim
        shapes_ok = (
            enc.user0.shape[1:] == (d,)
            and enc.tag0.shape[1:] == (d,)
            and enc.w_hidden.shape == (d, d)
            and enc.b_hidden.shape == (d,)
            and enc.w_out.shape == (d, d)
            and enc.b_out.shape == (d,)
            and (enc.w_text is None or enc.w_text.shape[0] == d)
        )
        if not shapes_ok:
            raise ArtifactError(f"{p}: note encoder arrays have inconsistent shapes")
        return enc
