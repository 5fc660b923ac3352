"""Hyper-parameters of :class:`~graphrec.model.gnn.GNNRecommender` (one frozen dataclass).

Defaults are the settings the benchmarks report (``benchmarks/README.md``, section
``lightgcn_protocol.py``), chosen on splits of the *training* data only; the module docstring of
:mod:`graphrec.model.gnn` explains what each group of fields does.
"""

from __future__ import annotations

from dataclasses import dataclass

from graphrec._validation import check_choice, check_float, check_int
from graphrec.exceptions import InvalidParameterError

__all__ = ["GNNConfig"]


@dataclass(frozen=True)
class GNNConfig:
    """Hyper-parameters of :class:`~graphrec.model.gnn.GNNRecommender`.

    Model: ``dim``, ``layers`` (propagation depth), ``tag_weight`` / ``similar_weight``
    (relation coefficients), ``similarity``. Loss: ``loss``, ``temperature``,
    ``extra_negatives``, ``logq``, ``l2``, ``cold_weight``, ``cold_extra_negatives``,
    ``ccl_margin``, ``ccl_negative_weight``, ``pda_gamma``. Sampler: ``batch_size`` (engagements
    per step and worker: ``W`` data-parallel workers take ``W`` times as many), ``user_positives``
    (at most this many of one user's engagements per batch row), ``fanout`` (neighbours per node
    in a step's one-hop block), ``refreshes`` (historical
    embeddings recomputed this many times per epoch). Schedule: ``lr``, ``epochs``,
    ``valid_fraction``, ``valid_users``, ``eval_every``, ``patience``, ``lr_decay`` /
    ``lr_decays`` (on a plateau the learning rate is multiplied by ``lr_decay``, at most
    ``lr_decays`` times, before training stops), ``time_budget`` (seconds: no epoch starts after
    it is spent; ``None`` = no limit; a refit then replays the epochs that fitted), ``refit``.
    ``seed``, ``device``. Data-parallel: ``grad_wire`` (``"bfloat16"`` or ``"float32"``), the
    precision each shard's table gradients travel in (:mod:`.collective`); one process ignores it.
    """

    dim: int = 64
    layers: int = 4
    loss: str = "softmax"
    similarity: str = "dot"
    temperature: float = 0.15
    extra_negatives: int = 1024
    logq: bool = True
    batch_size: int = 4096
    user_positives: int = 8
    fanout: int = 32
    refreshes: int = 4
    lr: float = 5e-3
    l2: float = 0.1
    epochs: int = 100
    tag_weight: float = 1.0
    similar_weight: float = 0.0
    cold_weight: float = 0.5
    cold_extra_negatives: int = 0
    ccl_margin: float = 0.9
    ccl_negative_weight: float = 150.0
    pda_gamma: float = 0.0
    valid_fraction: float = 0.05
    valid_users: int = 10_000
    refit: bool = False
    eval_every: int = 1
    patience: int = 2
    lr_decay: float = 0.3
    lr_decays: int = 2
    time_budget: float | None = None
    seed: int = 0
    device: str = "auto"
    grad_wire: str = "bfloat16"

    def __post_init__(self) -> None:
        """Check every field; raise :class:`InvalidParameterError` naming the first bad one."""
        check_int("dim", self.dim, minimum=1)
        check_int("layers", self.layers, minimum=1)
        check_choice("loss", self.loss, ("softmax", "bpr", "ccl"))
        check_choice("similarity", self.similarity, ("dot", "cosine"))
        if self.loss == "ccl" and self.similarity != "cosine":
            raise InvalidParameterError("loss='ccl' is a cosine loss; set similarity='cosine' with it")
        check_float("ccl_margin", self.ccl_margin, minimum=-1.0, maximum=1.0)
        check_int("extra_negatives", self.extra_negatives, minimum=1 if self.loss == "ccl" else 0)
        check_int("cold_extra_negatives", self.cold_extra_negatives, minimum=0)
        check_float("temperature", self.temperature, minimum=0.0, exclusive_minimum=True)
        check_int("batch_size", self.batch_size, minimum=2)
        check_int("user_positives", self.user_positives, minimum=1)
        if self.user_positives > self.batch_size:
            raise InvalidParameterError(
                f"`user_positives` ({self.user_positives}) must be <= batch_size ({self.batch_size})"
            )
        check_int("fanout", self.fanout, minimum=1)
        check_int("refreshes", self.refreshes, minimum=1)
        check_float("lr", self.lr, minimum=0.0, exclusive_minimum=True)
        check_float("l2", self.l2, minimum=0.0)
        check_int("epochs", self.epochs, minimum=1)
        for name in ("tag_weight", "similar_weight", "cold_weight", "ccl_negative_weight", "pda_gamma"):
            check_float(name, getattr(self, name), minimum=0.0)
        check_float("valid_fraction", self.valid_fraction, minimum=0.0, maximum=0.5)
        check_int("valid_users", self.valid_users, minimum=1)
        check_int("eval_every", self.eval_every, minimum=1)
        check_int("patience", self.patience, minimum=1)
        check_float("lr_decay", self.lr_decay, minimum=0.0, maximum=1.0, exclusive_minimum=True)
        check_int("lr_decays", self.lr_decays, minimum=0)
        if self.time_budget is not None:
            check_float("time_budget", self.time_budget, minimum=0.0, exclusive_minimum=True)
        check_int("seed", self.seed, minimum=0)
        check_choice("device", self.device, ("auto", "cpu", "cuda"))
        check_choice("grad_wire", self.grad_wire, ("bfloat16", "float32"))
        if not isinstance(self.logq, bool) or not isinstance(self.refit, bool):
            raise InvalidParameterError("`logq` and `refit` must be True or False")
