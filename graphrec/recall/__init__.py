"""The recall engine: multi-channel recall, similar notes and audiences over a serving bundle."""

from graphrec.recall.engine import CHANNELS, ChannelConfig, RecallEngine, RecallResult, fold_in

__all__ = ["CHANNELS", "ChannelConfig", "RecallEngine", "RecallResult", "fold_in"]
