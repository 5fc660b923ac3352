"""Cold start for new notes: seed users with tuned boosts, then look-alike expansion."""

from graphrec.coldstart.audience import ColdStart
from graphrec.coldstart.features import FEATURES, Boosts, Candidates, UserFeatures
from graphrec.coldstart.lookalike import LookalikeConfig, LookalikeExpander
from graphrec.coldstart.seeds import SeedRanker
from graphrec.coldstart.tuning import TuningResult, tune_boosts, tune_lookalike

__all__ = [
    "FEATURES",
    "Boosts",
    "Candidates",
    "ColdStart",
    "LookalikeConfig",
    "LookalikeExpander",
    "SeedRanker",
    "TuningResult",
    "UserFeatures",
    "tune_boosts",
    "tune_lookalike",
]
