"""Readers and validators for interaction logs, note/user side-info and public dataset formats."""

from graphrec.io._tables import TableSource, read_table, table_format, write_table
from graphrec.io.datasets import (
    interactions_from_pairs,
    load_citeulike,
    load_lastfm_hetrec,
    load_lightgcn_split,
    load_movielens,
)
from graphrec.io.ids import MAX_ID_LENGTH, IdMap, normalise_ids
from graphrec.io.interactions import (
    DEFAULT_EVENT_WEIGHTS,
    INTERACTION_COLUMNS,
    collapse_duplicates,
    read_interactions,
    read_user_note_pairs,
    validate_interactions,
)
from graphrec.io.notes import NOTE_COLUMNS, read_notes, read_users, validate_notes, validate_users

__all__ = [
    "DEFAULT_EVENT_WEIGHTS",
    "INTERACTION_COLUMNS",
    "MAX_ID_LENGTH",
    "NOTE_COLUMNS",
    "IdMap",
    "TableSource",
    "collapse_duplicates",
    "interactions_from_pairs",
    "load_citeulike",
    "load_lastfm_hetrec",
    "load_lightgcn_split",
    "load_movielens",
    "normalise_ids",
    "read_interactions",
    "read_notes",
    "read_table",
    "read_user_note_pairs",
    "read_users",
    "table_format",
    "validate_interactions",
    "validate_notes",
    "validate_users",
    "write_table",
]
