"""Batch jobs: each reads a config, calls graphrec's public API and writes artifacts atomically.

No algorithms live here; a job is the glue a scheduler runs.
"""
