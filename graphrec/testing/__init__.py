"""Synthetic data with planted structure, for tests, the demo and benchmarks."""

from graphrec.testing.synthetic import TOPICS, SyntheticUGC, make_ugc_dataset

__all__ = ["TOPICS", "SyntheticUGC", "make_ugc_dataset"]
