"""Causal popularity debiasing of user–engages–note edges, estimated and refuted with DoWhy.

Popularity confounds engagement: popular notes are shown more and clicked more whatever their
fit. We make that explicit and correct the edge weights for it.

Causal model
------------
* Unit: a (user, note) exposure: every engaged edge (outcome 1) plus, as non-engaged units
  (outcome 0), the user's impressions without engagement when an exposure matrix is given, else
  ``negatives_per_edge`` sampled exposures per edge, notes drawn in proportion to popularity (a
  feed's exposure model) and kept only where the user did not engage.
* Treatment ``popular``: the note is in the head, the top ``head_share`` of notes by training
  popularity (the same head as the long-tail metric).
* Outcome ``engaged``.
* Common causes (each affects both which notes a user meets and whether they engage):
  ``user_activity`` = log(1 + the user's engaged notes); ``note_age`` = days from the note's
  ``created_at`` to the reference time; ``category`` = one-hot of the most frequent categories.
  Those that the data cannot provide are left out (and the report says so) unless asked for
  explicitly, in which case their absence is an error.

The graph ``common causes -> popular -> engaged`` and ``common causes -> engaged`` is given to
DoWhy as DOT; the effect is identified by the backdoor criterion and estimated with
``backdoor.propensity_score_weighting`` (IPS weights). Refutations: a random common cause (the
estimate should not move), a placebo treatment (permuted; the effect should vanish) and a data
subset (the estimate should hold). The estimate, refutations and weight statistics form a JSON
report.

Edge weights
------------
DoWhy's estimate and refutations say whether popularity drives engagement once the common causes
are adjusted for; the edge weights then undo that with inverse propensity weights from one of two
propensity models (``propensity``):

* ``"popularity"`` (the default): the exposure propensity of a note is its share of the most
  popular note's exposures, ``e_i = pop_i / max pop`` (training engagements standing in for
  impressions, as in popularity-based IPS), and ``ipw = (1 / e_i) ** strength``, at most
  ``max pop ** strength``. Every edge of a note gets the same factor, so within a user the weight
  moves from popular notes to the tail in proportion to how much more often the popular ones
  were shown. Default strength 0.15.
* ``"covariates"``: the fitted DoWhy propensity ``e(W) = P(popular | W)`` of every engaged edge,
  clipped to ``[clip, 1 - clip]`` and inverted for the treatment level actually observed:
  ``ipw = (1 / e) ** strength`` for a head note, ``(1 / (1 - e)) ** strength`` for a tail note
  (so at most ``(1 / clip) ** strength``). ``e`` depends on the common causes only; where notes
  have no age or category it is the user's activity alone, and a user's head and tail notes
  are then reweighted as two blocks. Default strength 1.

``strength`` is the exponent on the IPS factor (1 = the full correction; smaller values correct
part of the way; 0 leaves the weights unchanged). Normalisation: per user, the reweighted edges
are rescaled so that the user's total edge weight is unchanged; only how it is spread over popular
and tail notes moves. The new edge weight is ``old_weight * ipw * user_scale``.

Why two models, and the defaults (``benchmarks/debias_effect.py``: weighted ItemCF on the
debiased weights, the strength chosen on a validation split as the strongest whose validation
recall@20 stays within 2%): the covariate model raised Gowalla's long-tail recall but lowered
Last.fm-2k's, where its propensity depends on user activity alone (two blocks per user); the
popularity model acts within every user's history and raised long-tail recall and coverage on
both. Its default strength is the value that rule picked on both (figures in benchmarks/README.md).

PDA
---
Popularity-deconfounded training (Zhang et al. 2021, "Causal Intervention for Leveraging
Popularity Bias in Recommendation") is not here but in the GNN's loss, its one implementation:
``GNNConfig(pda_gamma=...)`` multiplies each candidate's training score by ``popularity ** gamma``
(``+ gamma * log popularity`` on the softmax logits, :func:`graphrec.model.gnn.losses.candidate_bias`);
inference uses the score alone.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from graphrec._atomic import atomic_file
from graphrec._logging import quiet
from graphrec._validation import check_choice, check_float, check_int
from graphrec.evaluate.metrics import long_tail_mask
from graphrec.exceptions import InvalidParameterError, MissingDependencyError, NotFittedError, SchemaError
from graphrec.graph import ENGAGES, HeteroGraph

__all__ = ["COMMON_CAUSES", "PROPENSITY_MODELS", "PopularityDebiaser"]

logger = logging.getLogger("graphrec")

COMMON_CAUSES = ("user_activity", "note_age", "category")
#: Propensity models of the edge weights, and the default strength of each (see "Edge weights").
PROPENSITY_MODELS = ("popularity", "covariates")
DEFAULT_STRENGTH = {"popularity": 0.15, "covariates": 1.0}


@dataclass(frozen=True)
class _Units:
    """The units DoWhy sees: engaged edges and non-engaged exposures, subsampled to ``max_units``."""

    users: np.ndarray
    notes: np.ndarray
    engaged: np.ndarray
    summary: dict[str, Any]

    @classmethod
    def draw(
        cls,
        x: sp.csr_matrix,
        exposures: sp.spmatrix | None,
        popularity: np.ndarray,
        neg_rate: float,
        max_units: int,
        rng: np.random.Generator,
    ) -> _Units:
        pos_u = np.repeat(np.arange(x.shape[0]), np.diff(x.indptr))
        neg_u, neg_i, negatives = _non_engaged_units(x, exposures, popularity, neg_rate, rng)
        users = np.concatenate([pos_u, neg_u])
        notes = np.concatenate([x.indices.astype(np.int64), neg_i])
        outcome = np.concatenate([np.ones(pos_u.size, dtype=int), np.zeros(neg_u.size, dtype=int)])
        if users.size > max_units:
            pick = np.sort(rng.choice(users.size, size=max_units, replace=False))
        else:
            pick = np.arange(users.size)
        summary = {
            "total": int(users.size),
            "used": int(pick.size),
            "engaged": int(outcome[pick].sum()),
            "non_engaged_from": negatives,
        }
        return cls(users[pick], notes[pick], outcome[pick], summary)


def _non_engaged_units(
    x: sp.csr_matrix, exposures: sp.spmatrix | None, popularity: np.ndarray, neg_rate: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, str]:
    """The non-engaged units (users, notes) and where they come from: the exposure log when given,
    else sampled exposures."""
    if exposures is not None:
        e = sp.csr_matrix(exposures, dtype=np.float32)
        if e.shape != x.shape:
            raise InvalidParameterError(f"exposures have shape {e.shape}; the graph's engagements {x.shape}")
        e = e - e.multiply(x > 0)
        e.eliminate_zeros()
        neg_u = np.repeat(np.arange(x.shape[0]), np.diff(e.indptr))
        return neg_u, e.indices.astype(np.int64), "exposures without engagement"
    # No exposure log: model a feed that shows notes in proportion to their popularity (the
    # exposure bias at issue), drawing exposures for users as active as they are.
    pos_u = np.repeat(np.arange(x.shape[0]), np.diff(x.indptr))
    n_neg = round(neg_rate * pos_u.size)
    neg_u = rng.choice(pos_u, size=n_neg)
    cum = np.cumsum(popularity.astype(np.float64))
    neg_i = np.minimum(np.searchsorted(cum, rng.random(n_neg) * cum[-1], side="right"), x.shape[1] - 1)
    keep = np.asarray(x[neg_u, neg_i]).ravel() == 0
    return neg_u[keep], neg_i[keep], "sampled exposures without engagement (notes drawn by popularity)"


def _covariates(activity: np.ndarray | None, note_cov: dict[str, Any], u: np.ndarray, i: np.ndarray) -> pd.DataFrame:
    """The common causes of units ``(u, i)``: user activity, note age, category dummies."""
    cols: dict[str, np.ndarray] = {}
    if activity is not None:
        cols["user_activity"] = activity[u]
    if "note_age" in note_cov:
        cols["note_age"] = note_cov["note_age"][i]
    for name, values in note_cov.get("category", {}).items():
        cols[name] = values[i]
    return pd.DataFrame(cols)


def _estimate_and_refute(
    causal_model: Any, data: pd.DataFrame, dot: str, sims: int, seed: int
) -> tuple[Any, dict[str, Any]]:
    """DoWhy: identify, estimate by propensity-score weighting, and run three refuters."""
    with warnings.catch_warnings(), quiet("dowhy"):
        warnings.simplefilter("ignore")
        model = causal_model(data=data.copy(), treatment="popular", outcome="engaged", graph=dot)
        estimand = model.identify_effect(proceed_when_unidentifiable=True)
        estimate = model.estimate_effect(
            estimand,
            method_name="backdoor.propensity_score_weighting",
            method_params={"weighting_scheme": "ips_weight"},
        )
        # DoWhy 0.14 leaves the fitted propensity column in the model's data and its placebo
        # refuter then reuses it instead of refitting (py-why/dowhy#1728): drop it first.
        col = estimate.estimator.propensity_score_column
        if col in model._data.columns:
            model._data = model._data.drop(columns=[col])
        refutations = {}
        for name, kwargs in (
            ("random_common_cause", {}),
            ("placebo_treatment_refuter", {"placebo_type": "permute"}),
            ("data_subset_refuter", {"subset_fraction": 0.8}),
        ):
            r = model.refute_estimate(
                estimand, estimate, method_name=name, num_simulations=sims, random_seed=seed, **kwargs
            )
            if col in model._data.columns:
                model._data = model._data.drop(columns=[col])
            result = r.refutation_result or {}
            refutations[name] = {
                "new_effect": float(np.asarray(r.new_effect).mean()),
                "p_value": float(result.get("p_value", np.nan)),
                "significant": bool(result.get("is_statistically_significant", False)),
            }
    return estimate, refutations


def _ipw(model: str, e: np.ndarray, treated: np.ndarray, clip: float) -> np.ndarray:
    """Inverse propensity factors at strength 1 (see "Edge weights")."""
    if model == "popularity":
        return 1.0 / e
    e = np.clip(e, clip, 1.0 - clip)
    return np.where(treated, 1.0 / e, 1.0 / (1.0 - e))


def _weight_report(
    x: sp.csr_matrix,
    weights: sp.csr_matrix,
    e_edge: np.ndarray,
    treated: np.ndarray,
    *,
    model: str,
    clip: float,
    strength: float,
) -> dict[str, Any]:
    """Propensity and weight statistics of the fitted debiaser."""
    ipw_full = _ipw(model, e_edge, treated, clip)
    return {
        "propensity": {
            "model": model,
            "min": float(e_edge.min()),
            "mean": float(e_edge.mean()),
            "max": float(e_edge.max()),
            "strength": strength,
            **(
                {"clip": clip, "clipped_share": float(((e_edge < clip) | (e_edge > 1 - clip)).mean())}
                if model == "covariates"
                else {}
            ),
        },
        "weights": {
            "ipw_max_at_strength_1": float(ipw_full.max()),
            "normalisation": "per user: total edge weight preserved",
            "tail_weight_share_before": float(x.data[~treated].sum() / x.data.sum()),
            "tail_weight_share_after": float(weights.data[~treated].sum() / weights.data.sum()),
        },
    }


class PopularityDebiaser:
    """Estimate popularity's effect on engagement with DoWhy and reweight edges by IPS.

    Parameters
    ----------
    head_share : float
        Share of notes (by training popularity) that count as popular (the treatment).
    common_causes : sequence of str, optional
        Subset of :data:`COMMON_CAUSES`; default: all the data can provide.
    negatives_per_edge : float
        Sampled non-engaged exposures per engaged edge when no exposure matrix is given.
    propensity : {"popularity", "covariates"}
        The propensity model of the edge weights (see "Edge weights").
    clip : float in (0, 0.5)
        ``"covariates"``: propensities are clipped to ``[clip, 1 - clip]`` (weights at most
        ``1 / clip``).
    strength : float in [0, 1], optional
        Exponent on the IPS factor: 1 is the full correction, 0 leaves the weights unchanged;
        in between trades long-tail reach against overall accuracy (choose it on validation data).
        Default: 0.15 for ``"popularity"``, 1 for ``"covariates"``.
    max_units : int
        Units given to DoWhy (a seeded sample when there are more); propensities of all edges
        come from the fitted model.
    n_categories : int
        Most frequent categories one-hot encoded (others are the baseline).
    refute_simulations : int
        Simulations per refuter.
    seed : int

    Attributes
    ----------
    report_ : dict
        Estimate, refutations, units, propensity and weight statistics (JSON-serialisable).
    edge_weights_ : scipy.sparse.csr_matrix
        The debiased user–engages–note weights.
    edge_propensity_ : numpy.ndarray
        The propensity of each engaged edge, in CSR order of ``edge_weights_``: ``pop_i / max pop``
        (``"popularity"``) or the unclipped ``P(popular | W)`` (``"covariates"``).
    popular_ : numpy.ndarray of bool
        The treatment of each note (head by training popularity).
    """

    def __init__(
        self,
        *,
        head_share: float = 0.2,
        common_causes: Sequence[str] | None = None,
        negatives_per_edge: float = 1.0,
        propensity: str = "popularity",
        clip: float = 0.05,
        strength: float | None = None,
        max_units: int = 200_000,
        n_categories: int = 8,
        refute_simulations: int = 10,
        seed: int = 0,
    ) -> None:
        self.head_share = head_share
        self.common_causes = common_causes
        self.negatives_per_edge = negatives_per_edge
        self.propensity = propensity
        self.clip = clip
        self.strength = strength
        self.max_units = max_units
        self.n_categories = n_categories
        self.refute_simulations = refute_simulations
        self.seed = seed

    # -- covariates ------------------------------------------------------------------------
    def _note_covariates(
        self, graph: HeteroGraph, notes: pd.DataFrame | None, reference_time: int | None
    ) -> dict[str, Any]:
        wanted = None if self.common_causes is None else list(self.common_causes)
        if wanted is not None:
            unknown = sorted(set(wanted) - set(COMMON_CAUSES))
            if unknown:
                raise InvalidParameterError(f"unknown common cause(s) {unknown}; choose from {list(COMMON_CAUSES)}")
        n_notes = graph.num_nodes("note")
        out: dict[str, Any] = {}
        aligned = None
        if notes is not None:
            if "note_id" not in notes.columns:
                raise SchemaError("debias: notes table has no note_id column")
            pos = graph.id_map("note").index(notes["note_id"].to_numpy(), missing="ignore")
            aligned = (pos[pos >= 0], notes.loc[pos >= 0])
        for cause, column in (("note_age", "created_at"), ("category", "category")):
            asked = wanted is not None and cause in wanted
            if wanted is not None and not asked:
                continue
            if aligned is None or column not in aligned[1].columns or aligned[1][column].isna().all():
                if asked:
                    raise SchemaError(
                        f"debias: common cause {cause} needs column {column} in the notes table, which is "
                        f"{'not given' if notes is None else 'missing or empty'}; provide it or leave {cause} out"
                    )
                continue
            rows, frame = aligned
            if cause == "note_age":
                created = frame["created_at"].astype("Float64").to_numpy(dtype=float, na_value=np.nan)
                ref = reference_time if reference_time is not None else np.nanmax(created)
                age = np.full(n_notes, np.nan)
                age[rows] = np.maximum(ref - created, 0) / 86_400.0
                out["note_age"] = np.nan_to_num(age, nan=float(np.nanmedian(age)) if np.isfinite(age).any() else 0.0)
            else:
                cats = np.full(n_notes, "", dtype=object)
                cats[rows] = frame["category"].fillna("").astype(str).to_numpy()
                top = pd.Series(cats[cats != ""]).value_counts().index[: self.n_categories].tolist()
                if len(top) < 2:
                    if asked:
                        raise SchemaError("debias: category needs at least two distinct categories")
                    continue
                out["category"] = {f"category_{i}": (cats == c).astype(float) for i, c in enumerate(top[1:])}
        return out

    # -- fit -------------------------------------------------------------------------------
    def fit(
        self,
        graph: HeteroGraph,
        *,
        notes: pd.DataFrame | None = None,
        exposures: sp.spmatrix | None = None,
        reference_time: int | None = None,
    ) -> PopularityDebiaser:
        """Estimate, refute and compute debiased edge weights for ``graph``'s engagements."""
        try:
            from dowhy import CausalModel
        except ImportError as exc:  # pragma: no cover - dowhy is a core dependency
            raise MissingDependencyError("debiasing needs dowhy (pip install dowhy)") from exc
        head_share = check_float("head_share", self.head_share, minimum=0.0, maximum=1.0, exclusive_minimum=True)
        model = check_choice("propensity", self.propensity, PROPENSITY_MODELS)
        clip = check_float("clip", self.clip, minimum=0.0, maximum=0.5, exclusive_minimum=True)
        strength = self._strength(None, model)
        neg_rate = check_float("negatives_per_edge", self.negatives_per_edge, minimum=0.0, exclusive_minimum=True)
        max_units = check_int("max_units", self.max_units, minimum=100)
        sims = check_int("refute_simulations", self.refute_simulations, minimum=1)
        if not graph.has_relation(ENGAGES):
            raise InvalidParameterError(f"the graph has no {ENGAGES} relation to debias")
        x = graph.relation(ENGAGES)
        if x.nnz == 0:
            raise InvalidParameterError(f"relation {ENGAGES} has no edges")
        rng = np.random.default_rng(self.seed)
        popularity = np.diff(x.tocsc().indptr)
        popular = ~long_tail_mask(popularity, head_share=head_share)
        activity: np.ndarray | None = np.log1p(np.diff(x.indptr)).astype(float)
        note_cov = self._note_covariates(graph, notes, reference_time)
        if self.common_causes is not None and "user_activity" not in self.common_causes:
            activity = None

        units = _Units.draw(x, exposures, popularity, neg_rate, max_units, rng)
        w_units = _covariates(activity, note_cov, units.users, units.notes)
        if w_units.shape[1] == 0:
            raise InvalidParameterError("no common causes left to adjust for; keep user_activity or provide notes")
        data = w_units.assign(popular=popular[units.notes].astype(int), engaged=units.engaged)
        if data["popular"].nunique() < 2:
            raise InvalidParameterError("every unit has the same treatment; adjust head_share")
        causes = list(w_units.columns)
        dot = "digraph {" + " ".join(f"{c} -> popular; {c} -> engaged;" for c in causes) + " popular -> engaged; }"
        estimate, refutations = _estimate_and_refute(CausalModel, data, dot, sims, self.seed)
        ps_model = estimate.estimator.propensity_score_model

        # Propensities of every engaged edge (see "Edge weights"), then IPS weights.
        pos_u, pos_i = np.repeat(np.arange(x.shape[0]), np.diff(x.indptr)), x.indices.astype(np.int64)
        if model == "popularity":
            e_edge = popularity[pos_i] / float(popularity.max())
        else:
            features = _covariates(activity, note_cov, pos_u, pos_i)
            # The propensity model was fitted on DoWhy's own ordering of the common causes.
            names = list(getattr(ps_model, "feature_names_in_", estimate.estimator._observed_common_causes.columns))
            e_edge = ps_model.predict_proba(features[names])[:, 1]
        self._engages = x
        self._model = model  # edge_propensity_ means what this model makes of it
        self.edge_propensity_ = e_edge
        self.popular_ = popular
        self.edge_weights_ = self.edge_weights(strength)
        self.report_ = {
            "causal_graph": dot,
            "treatment": f"popular: note in the top {head_share:.0%} by training popularity",
            "outcome": "engaged",
            "common_causes": causes,
            "units": units.summary,
            "estimand": "backdoor",
            "estimator": "backdoor.propensity_score_weighting (ips_weight)",
            "estimate_ate": float(estimate.value),
            "refutations": refutations,
            **_weight_report(x, self.edge_weights_, e_edge, popular[pos_i], model=model, clip=clip, strength=strength),
            "seed": self.seed,
        }
        shares = self.report_["weights"]
        logger.info(
            "debias: ATE of popularity on engagement %.4f; tail weight share %.3f -> %.3f",
            estimate.value,
            shares["tail_weight_share_before"],
            shares["tail_weight_share_after"],
        )
        return self

    def _strength(self, strength: float | None, model: str) -> float:
        """``strength``, else the configured one, else ``model``'s default."""
        value = strength if strength is not None else self.strength
        return check_float("strength", DEFAULT_STRENGTH[model] if value is None else value, minimum=0.0, maximum=1.0)

    def edge_weights(self, strength: float | None = None) -> sp.csr_matrix:
        """Debiased weights for ``strength`` (default: the fitted one) from the fitted propensities.

        ``old_weight * ipw ** strength``, rescaled per user to the user's original total (see
        "Edge weights" for ``ipw`` under each propensity model).
        """
        if not hasattr(self, "edge_propensity_"):
            raise NotFittedError("PopularityDebiaser is not fitted; call fit(graph) first")
        s = self._strength(strength, self._model)
        x = self._engages
        rows = np.repeat(np.arange(x.shape[0]), np.diff(x.indptr))
        ipw = _ipw(self._model, self.edge_propensity_, self.popular_[x.indices], self.clip) ** s
        new = x.data.astype(np.float64) * ipw
        old_sum = np.bincount(rows, weights=x.data.astype(np.float64), minlength=x.shape[0])
        new_sum = np.bincount(rows, weights=new, minlength=x.shape[0])
        scale = np.divide(old_sum, new_sum, out=np.ones(x.shape[0]), where=new_sum > 0)
        return sp.csr_matrix(((new * scale[rows]).astype(np.float32), x.indices.copy(), x.indptr.copy()), shape=x.shape)

    def transform(self, graph: HeteroGraph) -> HeteroGraph:
        """``graph`` with its user–engages–note weights replaced by the debiased ones."""
        if not hasattr(self, "edge_weights_"):
            raise NotFittedError("PopularityDebiaser is not fitted; call fit(graph) first")
        if (
            graph.relation(ENGAGES).shape != self.edge_weights_.shape
            or ((graph.relation(ENGAGES) > 0) != (self.edge_weights_ > 0)).nnz
        ):
            raise InvalidParameterError("the graph's engagements differ from those the debiaser was fitted on")
        meta = {
            "debias": {
                "method": "ips",
                "propensity": self._model,
                "clip": self.clip,
                "strength": self._strength(None, self._model),
            }
        }
        return graph.with_relation(ENGAGES, self.edge_weights_, meta=meta)

    def write_report(self, path: str | os.PathLike[str]) -> None:
        """Write :attr:`report_` as JSON, atomically."""
        if not hasattr(self, "report_"):
            raise NotFittedError("PopularityDebiaser is not fitted; call fit(graph) first")
        with atomic_file(path) as tmp:
            tmp.write_text(json.dumps(self.report_, indent=2, sort_keys=True))
