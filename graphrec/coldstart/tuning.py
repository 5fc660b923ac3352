"""Tune the seed boosts by Bayesian optimisation (optuna's TPE) on notes replayed as new.

:func:`tune_boosts`: the objective is mean audience recall at a fixed budget over *tuning notes*: historical notes
held out of the GNN's training (so they are as new to the model as tomorrow's notes), with their
held-out engagements as ground truth. ``embedding`` stays 1 (the scale reference); ``author``,
``tag``, ``activity`` and ``recency`` are searched on ``[0.001, max_weight]`` (log scale). Candidate features
are computed once; each trial only re-weights them, so a trial costs milliseconds.

:func:`tune_lookalike`: with the boosts fixed, searches the look-alike weights
(``seed_weight``, ``embedding_weight``, ``cf_weight`` on ``[0, max_weight]``) for the best mean
cumulative recall after two rounds (seeds, then look-alikes) on the tuning notes. The search
starts from the current weights and from pure seed continuation (``seed_weight`` only, i.e. the
2N-seeds baseline), so the tuned weights are never worse than that on the tuning notes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from graphrec._validation import check_float, check_int
from graphrec.coldstart.audience import ColdStart
from graphrec.coldstart.features import FEATURES, Boosts
from graphrec.coldstart.lookalike import LookalikeConfig
from graphrec.coldstart.simulation import simulate_rounds
from graphrec.evaluate.audience import audience_metrics
from graphrec.exceptions import MissingDependencyError
from graphrec.graph.side_info import SideInfo

__all__ = ["TuningResult", "tune_boosts", "tune_lookalike"]


@dataclass(frozen=True)
class TuningResult:
    """The best parameters, their objective, the starting parameters' objective and every trial."""

    params: dict[str, float]
    best_recall: float
    default_recall: float
    trials: list[dict[str, Any]]

    @property
    def boosts(self) -> Boosts:
        """The parameters as :class:`Boosts` (for :func:`tune_boosts` results)."""
        return Boosts(**self.params)

    @property
    def lookalike(self) -> LookalikeConfig:
        """The parameters as :class:`LookalikeConfig` (for :func:`tune_lookalike` results)."""
        return LookalikeConfig(**self.params)


def _checked(budget: int, n_trials: int, max_weight: float) -> tuple[int, int, float]:
    return (
        check_int("budget", budget, minimum=1),
        check_int("n_trials", n_trials, minimum=1),
        check_float("max_weight", max_weight, minimum=0.0, exclusive_minimum=True),
    )


def _study(seed: int) -> Any:
    try:
        import optuna
    except ImportError as exc:
        raise MissingDependencyError("tuning needs optuna: pip install 'graphrec[coldstart]'") from exc
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))


def tune_boosts(
    cold: ColdStart,
    side: SideInfo,
    truth: Sequence[np.ndarray],
    *,
    budget: int,
    n_trials: int = 40,
    max_weight: float = 10.0,
    seed: int = 0,
) -> TuningResult:
    """Search boost weights that maximise mean recall@``budget`` of round-1 seeds on ``truth``.

    ``cold`` is not changed; apply the result with ``cold.with_params(boosts=result.boosts)``.
    """
    budget, n_trials, max_weight = _checked(budget, n_trials, max_weight)
    cands = cold.candidate_features(side)
    keep = [j for j, t in enumerate(truth) if len(t)]
    if not keep:
        raise ValueError("no tuning note has a non-empty ground truth")

    def recall(b: Boosts) -> float:
        w = b.vector()
        vals = [np.isin(cands[j].rank(w, budget)[0], truth[j]).sum() / len(truth[j]) for j in keep]
        return float(np.mean(vals))

    def objective(trial: Any) -> float:
        # log scale: relative weights matter; 1e-3 is "off" next to the embedding's 1
        values = {f: trial.suggest_float(f, 1e-3, max_weight, log=True) for f in FEATURES[1:]}
        return recall(Boosts(embedding=1.0, **values))

    study = _study(seed)
    # Start from the current boosts (clamped into the search range).
    study.enqueue_trial({f: min(max(getattr(cold.boosts, f), 1e-3), max_weight) for f in FEATURES[1:]})
    study.optimize(objective, n_trials=n_trials)
    best = {"embedding": 1.0, **study.best_params}
    trials = [{"number": t.number, "value": t.value, **t.params} for t in study.trials]
    return TuningResult(best, float(study.best_value), recall(cold.boosts), trials)


LOOKALIKE_PARAMS = ("seed_weight", "embedding_weight", "cf_weight")


def tune_lookalike(
    cold: ColdStart,
    side: SideInfo,
    truth: Sequence[np.ndarray],
    *,
    budget: int,
    n_trials: int = 30,
    max_weight: float = 5.0,
    seed: int = 0,
) -> TuningResult:
    """Search the look-alike weights for the best cumulative recall after two rounds.

    ``cold`` is not changed; apply the result with ``cold.with_params(lookalike=result.lookalike)``.
    """
    budget, n_trials, max_weight = _checked(budget, n_trials, max_weight)
    cands = cold.candidate_features(side)
    start = {p: getattr(cold.lookalike, p) for p in LOOKALIKE_PARAMS}
    temperature = cold.lookalike.attention_temperature

    def cumulative(params: dict[str, float]) -> float:
        trial = cold.with_params(lookalike=LookalikeConfig(attention_temperature=temperature, **params))
        r = simulate_rounds(trial, side, truth, budget=budget, rounds=2, candidates=cands)
        both = [np.concatenate([a, b]) for a, b in zip(r[0], r[1])]
        return audience_metrics(both, truth, budget=2 * budget)[f"recall@{2 * budget}"]

    study = _study(seed)
    study.enqueue_trial(start)
    # "Keep going down the seed ranking" is a point of the space: tuning never ends below 2N seeds.
    study.enqueue_trial({"seed_weight": max_weight, "embedding_weight": 0.0, "cf_weight": 0.0})
    study.optimize(
        lambda t: cumulative({p: t.suggest_float(p, 0.0, max_weight) for p in LOOKALIKE_PARAMS}), n_trials=n_trials
    )
    default = cumulative(start)
    trials = [{"number": t.number, "value": t.value, **t.params} for t in study.trials]
    best = {"attention_temperature": temperature, **study.best_params}
    return TuningResult(best, float(study.best_value), default, trials)
