"""Cold start for new notes: seed users with tuned boosts, then look-alike expansion."""

from graphrec.coldstart.audience import FEATURES, Boosts, Candidates, ColdStart
from graphrec.coldstart.tuning import TuningResult, tune_boosts, tune_lookalike

__all__ = ["FEATURES", "Boosts", "Candidates", "ColdStart", "TuningResult", "tune_boosts", "tune_lookalike"]
