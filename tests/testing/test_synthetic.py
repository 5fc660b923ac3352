from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from graphrec.exceptions import InvalidParameterError
from graphrec.io import validate_interactions, validate_notes
from graphrec.testing import make_ugc_dataset


def test_seeded_and_valid():
    a = make_ugc_dataset(n_users=100, n_notes=150, n_engagements=1_500, seed=5)
    b = make_ugc_dataset(n_users=100, n_notes=150, n_engagements=1_500, seed=5)
    pd.testing.assert_frame_equal(a.interactions, b.interactions)
    pd.testing.assert_frame_equal(a.notes, b.notes)
    validate_interactions(a.interactions)
    validate_notes(a.notes)
    assert (a.interactions["event_type"] == "click").sum() == 1_500


def test_planted_structure(small_ugc):
    d = small_ugc
    clicks = d.interactions[d.interactions["event_type"] == "click"]
    note_pos = pd.Series(np.arange(len(d.notes)), index=d.notes["note_id"])
    user_pos = pd.Series(np.arange(len(d.users)), index=d.users["user_id"])
    topic = d.note_community[note_pos[clicks["note_id"]].to_numpy()]
    interest = d.user_interests[user_pos[clicks["user_id"]].to_numpy(), topic]
    # Engagements follow interests: the engaged topic's planted weight is far above uniform.
    assert interest.mean() > 3.0 / d.user_interests.shape[1]
    # Power laws: the top 10% of notes take a large share of clicks; activity is skewed too.
    per_note = clicks.groupby("note_id").size().sort_values(ascending=False)
    assert per_note.iloc[: len(per_note) // 10].sum() / per_note.sum() > 0.3
    per_user = clicks.groupby("user_id").size()
    assert per_user.max() > 5 * per_user.median()
    # Notes' tags come from their topic's vocabulary.
    first_tags = d.notes["tags"].map(lambda t: t[0].split("_")[0])
    assert (first_tags == d.notes["category"]).mean() > 0.95
    # Engagements come after publication.
    created = d.notes.set_index("note_id")["created_at"]
    assert (clicks["timestamp"].to_numpy() >= created[clicks["note_id"]].to_numpy()).all()
    # Authors are users.
    assert set(d.notes["author_id"]) <= set(d.users["user_id"])


def test_impressions_and_int_ids():
    d = make_ugc_dataset(
        n_users=50,
        n_notes=60,
        n_engagements=500,
        impressions_per_engagement=1.0,
        string_ids=False,
        with_text=False,
        seed=2,
    )
    assert (d.interactions["event_type"] == "impression").sum() == 500
    assert d.interactions["user_id"].dtype == np.int64
    assert (d.notes["title"] == "").all()


def test_latent_tastes():
    plain = make_ugc_dataset(n_users=300, n_notes=400, n_engagements=6_000, with_text=False, seed=4)
    assert not plain.user_taste.any() and not plain.note_taste.any()
    d = make_ugc_dataset(
        n_users=300, n_notes=400, n_engagements=6_000, with_text=False, taste_groups=4, taste_strength=0.8, seed=4
    )
    clicks = d.interactions[d.interactions["event_type"] == "click"]
    users = d.users.reset_index().set_index("user_id")["index"][clicks["user_id"]].to_numpy()
    notes = d.notes.reset_index().set_index("note_id")["index"][clicks["note_id"]].to_numpy()
    same = (d.user_taste[users] == d.note_taste[notes]).mean()
    # by chance 1/4; 0.8 of the ~90% interest-driven clicks stay in the group
    assert same > 0.6
    # tastes change who engages, not the notes' topics (which their tags and text are drawn from)
    np.testing.assert_array_equal(plain.note_community, d.note_community)
    with pytest.raises(InvalidParameterError, match="taste_groups"):
        make_ugc_dataset(taste_groups=0)


def test_parameter_errors():
    with pytest.raises(InvalidParameterError, match=r"`n_users` must be an int >= 2; got 1"):
        make_ugc_dataset(n_users=1)
    with pytest.raises(InvalidParameterError, match=r"`noise`"):
        make_ugc_dataset(noise=1.5)
