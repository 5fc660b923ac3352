"""The recall engine: multi-channel recall, similar notes and audiences over a serving bundle."""

from graphrec.recall.engine import CHANNELS, ChannelConfig, RecallEngine, RecallResult

__all__ = ["CHANNELS", "ChannelConfig", "RecallEngine", "RecallResult"]
