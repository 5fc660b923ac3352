"""GNN embeddings: LightGCN-style propagation over the weighted heterogeneous graph, trained at a
cost linear in the graph, with an inductive side-info encoder so that new notes get an embedding.

Design
------
**Model.** Users, notes and tags form one node set; the weighted relations (engagements, note–tag
edges times ``tag_weight``, Swing neighbours times ``similar_weight``) are blocks of one symmetric
normalised matrix ``A`` and a node's embedding is LightGCN's layer mean
``F = (x + A x + ... + A^L x) / (L + 1)`` of its layer-0 vector ``x`` (:mod:`.propagation`).
Layer 0 of a note is its ID embedding plus a gated side-info vector ``s(n)`` (text, tags,
author); a brand-new note is ``s(n)`` alone (:mod:`.modules`). A *cold view* loss (weight
``cold_weight``) scores every positive note by ``s(n)`` too, so ``s`` lives in the space of the
propagated notes (DropoutNet's idea). Without side-info the model is a weighted LightGCN.

**Why training is linear in the graph.** Full-graph training propagates the whole graph, forward
and backward, for every mini-batch: an epoch costs ``(E / batch) x L x E``. Here a step never
touches more than its batch's neighbourhood:

* *Historical embeddings* (:class:`.History`): the exact propagation of a snapshot of ``x`` is
  recomputed ``refreshes`` times per epoch; a step evaluates its targets as the snapshot's output
  plus the exact layer-0 and (sampled) one-hop terms of the change since the snapshot. At refresh
  time that is exactly LightGCN's forward pass; between refreshes only the deeper terms lag.
* *One-hop blocks* (:class:`.NeighbourSampler`): a target's neighbours are all taken when there
  are at most ``fanout``, otherwise ``fanout`` weighted draws with importance weights, so the
  block is an unbiased estimate and a step's cost is bounded by ``targets x fanout``.
* *User rows* (:func:`.epoch_rows`): a step scores ``batch_size / user_positives`` users, each
  with up to ``user_positives`` of their engagements, against the batch's distinct notes and
  ``extra_negatives`` uniform ones, so the softmax costs rows x candidates, not engagements x
  candidates.
* *Row-wise Adam* (:class:`.RowAdam`): only the table rows a step gathered are updated.

Alternatives measured before this choice (``benchmarks/README.md``, "Choosing the training
scheme"): Monte-Carlo random-walk estimates of all ``L`` hops per step (unbiased, but their
gradient noise cost far more quality than they saved), and exact full-graph propagation per step
(the same quality per epoch as the historical scheme on Last.fm-2k, at ``O(E)`` per step).
Not chosen without a run: SGC / SIGN-style precomputed propagation needs fixed input features,
while here layer 0 *is* the learned ID table; UltraGCN's constraint loss replaces the propagation
by a user–note-only approximation, which would drop the tag and Swing relations and the side-info
path through them. There is no full-graph mode: at a refresh the historical scheme *is* the
full-graph forward pass, and refreshing before every step would give the full-graph trainer's
forward at ``O(E)`` per step (``benchmarks/gnn_scaling.py`` keeps that trainer as its peer).

**Losses** (:mod:`.losses`): sampled softmax over in-batch + uniform candidates (default; logQ
correction, a row's own engagements never its negatives), BPR, or SimpleX's CCL; L2 on the batch's
layer-0 vectors; PDA's popularity term (``pda_gamma``) at training time only.

**Schedule** (:mod:`.trainer`): a held-out ``valid_fraction`` of engagements (or
``ColdValidation`` notes held out whole, recalled from side-info alone) drives early stopping
whose patience is measured against the trend of the validation curve; on a plateau the learning
rate drops (``lr_decay``, at most ``lr_decays`` times) before training stops; the best weights are kept;
``refit`` trains again on all engagements for the best epoch count. ``checkpoint_dir`` holds the
state after every epoch (``.npz`` + JSON, atomic, no pickle) and ``fit`` resumes from it exactly.

**Data-parallel** (:mod:`.collective`): inside a ``torch.distributed`` process group each rank
computes one shard of every step (``batch_size`` engagements with its own negatives and neighbour
samples), the row-sparse table gradients are all-gathered and summed identically on every rank,
and the encoder's dense gradients all-reduced, so the ranks' tables stay equal;
``LocalShards(W)`` computes the same W shards in one process (the reference). Launchers:
:mod:`graphrec.jobs.train`.

Runs are seeded; ``fit`` returns ``self``; embeddings come out as numpy arrays
(``user_embeddings_``, ``note_embeddings_``, ``tag_embeddings_``) and
:meth:`GNNRecommender.embed_new_notes` embeds side-info of unseen notes.
"""

from graphrec.model.gnn.collective import Collective, LocalShards, ProcessGroup
from graphrec.model.gnn.config import GNNConfig
from graphrec.model.gnn.estimator import GNNRecommender
from graphrec.model.gnn.propagation import propagation_matrix
from graphrec.model.gnn.sampling import split_validation
from graphrec.model.gnn.trainer import ColdValidation, TrainingLog

__all__ = [
    "ColdValidation",
    "Collective",
    "GNNConfig",
    "GNNRecommender",
    "LocalShards",
    "ProcessGroup",
    "TrainingLog",
    "propagation_matrix",
    "split_validation",
]
