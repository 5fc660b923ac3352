"""A seeded synthetic UGC platform with planted structure.

What is planted, so that metrics mean something:

* **Communities** (interest topics). Every note belongs to one; its tags, title and text are drawn
  mostly from that topic's vocabulary, and its author is a creator whose home is that topic.
* **Users** have sparse interest mixtures over topics (Dirichlet with a small concentration), so
  most users care about one or two topics. Each engagement picks a topic from the user's mixture,
  then a note of that topic by popularity; a share ``noise`` of engagements ignores interests and
  picks by global popularity (the popularity bias a recommender must see past).
* **Latent tastes** (optional, ``taste_groups > 1``): users and notes also carry a taste group
  that no side-info reveals; with probability ``taste_strength`` an engagement's note is drawn
  among the topic's notes of the user's taste group. Without it, who engages with a note depends
  on the note only through its topic (which its tags reveal); with it, an audience has structure
  that only feedback shows, what look-alike expansion is for.
* **Power laws**: user activity and note popularity are Pareto-distributed; creators' output too.
* **Time**: notes are published over ``days`` days; engagements follow publication with an
  exponential delay, so a temporal split has a meaningful future.
* **Events**: each engagement is a ``click`` (with dwell seconds in ``value``, longer when the note
  matches the user's main topic); ``like``, ``collect``, ``comment``, ``share``, ``follow_author``
  follow with fixed probabilities; optionally ``impression`` rows record exposure, driven by
  popularity rather than interest.

Authors are users: author ids are drawn from the user id space, as on a UGC platform.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from graphrec._validation import check_float, check_int

__all__ = ["TOPICS", "SyntheticUGC", "make_ugc_dataset"]

#: Topic vocabularies; the first word names the topic (and the category).
TOPICS: tuple[tuple[str, ...], ...] = (
    (
        "travel",
        "beach",
        "hotel",
        "flight",
        "island",
        "backpack",
        "itinerary",
        "museum",
        "sunset",
        "passport",
        "hostel",
        "roadtrip",
    ),
    (
        "food",
        "ramen",
        "recipe",
        "bakery",
        "noodle",
        "dumpling",
        "spicy",
        "brunch",
        "dessert",
        "coffee",
        "hotpot",
        "barbecue",
    ),
    (
        "beauty",
        "skincare",
        "lipstick",
        "serum",
        "foundation",
        "mascara",
        "sunscreen",
        "toner",
        "blush",
        "perfume",
        "nails",
        "moisturizer",
    ),
    (
        "fitness",
        "workout",
        "yoga",
        "running",
        "protein",
        "squat",
        "pilates",
        "marathon",
        "stretching",
        "gym",
        "cardio",
        "dumbbell",
    ),
    (
        "tech",
        "laptop",
        "smartphone",
        "keyboard",
        "headphones",
        "camera",
        "tablet",
        "charger",
        "monitor",
        "gadget",
        "software",
        "smartwatch",
    ),
    (
        "pets",
        "puppy",
        "kitten",
        "leash",
        "aquarium",
        "grooming",
        "vet",
        "hamster",
        "parrot",
        "catnip",
        "kibble",
        "adoption",
    ),
    (
        "home",
        "sofa",
        "kitchen",
        "storage",
        "lamp",
        "renovation",
        "plants",
        "curtain",
        "bedroom",
        "minimalist",
        "rug",
        "shelf",
    ),
    (
        "fashion",
        "outfit",
        "sneakers",
        "denim",
        "jacket",
        "handbag",
        "dress",
        "streetwear",
        "vintage",
        "scarf",
        "boots",
        "tailoring",
    ),
    (
        "parenting",
        "toddler",
        "stroller",
        "diaper",
        "bedtime",
        "toys",
        "preschool",
        "lullaby",
        "feeding",
        "nursery",
        "milestone",
        "playdate",
    ),
    (
        "finance",
        "savings",
        "budget",
        "stocks",
        "crypto",
        "pension",
        "mortgage",
        "index",
        "dividend",
        "taxes",
        "frugal",
        "invest",
    ),
    (
        "books",
        "novel",
        "poetry",
        "library",
        "bestseller",
        "fantasy",
        "memoir",
        "bookshelf",
        "reading",
        "author",
        "mystery",
        "classics",
    ),
    (
        "gaming",
        "console",
        "esports",
        "controller",
        "speedrun",
        "rpg",
        "multiplayer",
        "strategy",
        "indie",
        "quest",
        "arcade",
        "streamer",
    ),
    (
        "music",
        "guitar",
        "piano",
        "concert",
        "playlist",
        "vinyl",
        "drums",
        "singer",
        "festival",
        "melody",
        "karaoke",
        "album",
    ),
    (
        "photography",
        "lens",
        "portrait",
        "aperture",
        "tripod",
        "landscape",
        "film",
        "editing",
        "lighting",
        "shutter",
        "drone",
        "composition",
    ),
    (
        "outdoors",
        "hiking",
        "camping",
        "tent",
        "trail",
        "climbing",
        "kayak",
        "fishing",
        "summit",
        "forest",
        "compass",
        "campfire",
    ),
    (
        "cars",
        "engine",
        "sedan",
        "electric",
        "tires",
        "roadster",
        "garage",
        "horsepower",
        "suv",
        "detailing",
        "racing",
        "hybrid",
    ),
)
_GENERIC = (
    "my",
    "best",
    "new",
    "guide",
    "tips",
    "today",
    "favorite",
    "review",
    "first",
    "easy",
    "weekend",
    "ideas",
    "honest",
    "daily",
)
_GLOBAL_TAGS = ("daily", "lifestyle", "tips", "haul", "vlog")
_EXTRA_EVENTS = (("like", 0.30), ("collect", 0.10), ("comment", 0.05), ("share", 0.03), ("follow_author", 0.01))
_START = 1_767_225_600  # 2026-01-01T00:00:00Z


@dataclass(frozen=True)
class SyntheticUGC:
    """A generated dataset and the structure planted in it.

    Attributes
    ----------
    interactions : pandas.DataFrame
        ``user_id, note_id, event_type, timestamp, value`` (the interaction schema).
    notes : pandas.DataFrame
        ``note_id, author_id, tags, title, text, category, created_at`` (the note schema).
    users : pandas.DataFrame
        ``user_id, region, signup_at``.
    note_community : numpy.ndarray
        Planted topic index of each note, shape ``(n_notes,)`` aligned with ``notes``.
    user_interests : numpy.ndarray
        Planted topic mixture of each user, shape ``(n_users, n_communities)`` aligned with ``users``.
    note_popularity : numpy.ndarray
        Planted popularity weight of each note, shape ``(n_notes,)``.
    user_taste, note_taste : numpy.ndarray
        Planted latent taste group of each user and note (all zeros when ``taste_groups=1``).
    """

    interactions: pd.DataFrame
    notes: pd.DataFrame
    users: pd.DataFrame
    note_community: np.ndarray
    user_interests: np.ndarray
    note_popularity: np.ndarray
    user_taste: np.ndarray
    note_taste: np.ndarray


def _topic(c: int) -> tuple[str, ...]:
    base = TOPICS[c % len(TOPICS)]
    if c < len(TOPICS):
        return base
    return tuple(f"{w}{c // len(TOPICS)}" for w in base)


def _words(rng: np.random.Generator, vocab: tuple[str, ...], k: np.ndarray, *, generic_share: float) -> list[str]:
    out = []
    for n in k:
        words = [
            _GENERIC[rng.integers(len(_GENERIC))]
            if rng.random() < generic_share
            else vocab[1 + rng.integers(len(vocab) - 1)]
            for _ in range(int(n))
        ]
        out.append(" ".join(words))
    return out


def _by_popularity(rng: np.random.Generator, members: np.ndarray, popularity: np.ndarray, n: int) -> np.ndarray:
    """``n`` draws from ``members`` with probability proportional to their popularity."""
    cum = np.cumsum(popularity[members])
    return members[np.minimum(np.searchsorted(cum, rng.random(n) * cum[-1], side="right"), members.size - 1)]


def _plant_notes(
    rng: np.random.Generator,
    n_notes: int,
    main_topic: np.ndarray,
    n_communities: int,
    popularity_shape: float,
    creator_share: float,
    days: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Uneven topic sizes, heavy-tailed popularity, authors from the topic's creators, publication times."""
    n_users = main_topic.size
    topic_share = rng.dirichlet(np.full(n_communities, 3.0))
    note_topic = rng.choice(n_communities, size=n_notes, p=topic_share)
    popularity = rng.pareto(popularity_shape, n_notes) + 1.0
    n_creators = max(1, round(creator_share * n_users))
    creators = rng.choice(n_users, size=n_creators, replace=False)
    creator_output = rng.pareto(1.5, n_creators) + 1.0
    author = np.empty(n_notes, dtype=np.int64)
    for c in range(n_communities):
        idx = np.flatnonzero(note_topic == c)
        if idx.size == 0:
            continue
        pool = creators[main_topic[creators] == c]
        weights = creator_output[main_topic[creators] == c]
        if pool.size == 0:
            pool, weights = creators, creator_output
        author[idx] = rng.choice(pool, size=idx.size, p=weights / weights.sum())
    created_at = _START + rng.integers(0, days * 86_400, n_notes)
    return note_topic, popularity, author, created_at


def _draw_engagements(
    rng: np.random.Generator,
    n_engagements: int,
    interests: np.ndarray,
    activity: np.ndarray,
    note_topic: np.ndarray,
    popularity: np.ndarray,
    noise: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """User by activity; topic by interest (or global popularity with probability ``noise``); note by
    popularity within the topic. Returns users, notes and the positions drawn by interest."""
    n_users, n_communities = interests.shape
    n_notes = note_topic.size
    per_user = rng.multinomial(n_engagements, activity / activity.sum())
    e_user = np.repeat(np.arange(n_users), per_user)
    rng.shuffle(e_user)
    e_note = np.empty(n_engagements, dtype=np.int64)
    is_noise = rng.random(n_engagements) < noise
    cum_pop = np.cumsum(popularity)
    e_note[is_noise] = np.searchsorted(cum_pop, rng.random(int(is_noise.sum())) * cum_pop[-1], side="right")
    personal = np.flatnonzero(~is_noise)
    cum_int = np.cumsum(interests, axis=1)
    e_topic = np.empty(personal.size, dtype=np.int64)
    for start in range(0, personal.size, 1_000_000):
        sl = personal[start : start + 1_000_000]
        r = rng.random(sl.size)
        e_topic[start : start + sl.size] = np.minimum((r[:, None] > cum_int[e_user[sl]]).sum(axis=1), n_communities - 1)
    for c in range(n_communities):
        members = np.flatnonzero(note_topic == c)
        which = personal[e_topic == c]
        if which.size == 0:
            continue
        if members.size == 0:
            members = np.arange(n_notes)
        e_note[which] = _by_popularity(rng, members, popularity, which.size)
    return e_user, np.minimum(e_note, n_notes - 1), personal


def _apply_taste(
    rng: np.random.Generator,
    engagements: tuple[np.ndarray, np.ndarray, np.ndarray],
    n_users: int,
    note_topic: np.ndarray,
    popularity: np.ndarray,
    groups: int,
    strength: float,
) -> tuple[np.ndarray, np.ndarray]:
    """A ``strength`` share of the interest-driven engagements is redrawn within the user's latent
    taste group (``e_note`` is updated in place). Returns the users' and the notes' groups."""
    e_user, e_note, personal = engagements
    user_taste = rng.integers(0, groups, n_users)
    note_taste = rng.integers(0, groups, note_topic.size)
    within = personal[rng.random(personal.size) < strength]
    for c in range(int(note_topic.max(initial=-1)) + 1):
        for g in range(groups):
            members = np.flatnonzero((note_topic == c) & (note_taste == g))
            which = within[(note_topic[e_note[within]] == c) & (user_taste[e_user[within]] == g)]
            if which.size == 0 or members.size == 0:
                continue
            e_note[which] = _by_popularity(rng, members, popularity, which.size)
    return user_taste, note_taste


def _event_rows(
    rng: np.random.Generator,
    e_user: np.ndarray,
    e_note: np.ndarray,
    created_at: np.ndarray,
    match: np.ndarray,
    activity: np.ndarray,
    popularity: np.ndarray,
    impressions_per_engagement: float,
    median_delay_days: float,
) -> tuple[dict[str, np.ndarray], list[str]]:
    """Clicks (log-normal delay after publication, dwell by interest match), further events with a
    probability that grows with the match, and optional impressions by popularity."""
    n = e_user.size
    n_users, n_notes = activity.size, popularity.size
    delay = (rng.lognormal(np.log(median_delay_days * 86_400), 1.2, n)).astype(np.int64)
    e_time = created_at[e_note] + delay
    dwell = rng.lognormal(np.log(20.0) + 1.5 * match, 0.5).astype(np.float32)
    parts: dict[str, list[np.ndarray]] = {
        "user": [e_user],
        "note": [e_note],
        "event": [np.zeros(n, dtype=np.int8)],
        "timestamp": [e_time],
        "value": [dwell],
    }
    event_names = ["click"] + [name for name, _ in _EXTRA_EVENTS]
    for code, (_name, p) in enumerate(_EXTRA_EVENTS, start=1):
        hit = np.flatnonzero(rng.random(n) < p * (0.5 + match))
        parts["user"].append(e_user[hit])
        parts["note"].append(e_note[hit])
        parts["event"].append(np.full(hit.size, code, dtype=np.int8))
        parts["timestamp"].append(e_time[hit] + rng.integers(1, 600, hit.size))
        parts["value"].append(np.zeros(hit.size, dtype=np.float32))
    n_imp = round(impressions_per_engagement * n)
    if n_imp:
        event_names.append("impression")
        cum_pop = np.cumsum(popularity)
        i_user = rng.choice(n_users, size=n_imp, p=activity / activity.sum())
        i_note = np.minimum(np.searchsorted(cum_pop, rng.random(n_imp) * cum_pop[-1], side="right"), n_notes - 1)
        parts["user"].append(i_user)
        parts["note"].append(i_note)
        parts["event"].append(np.full(n_imp, len(event_names) - 1, dtype=np.int8))
        delays = rng.lognormal(np.log(median_delay_days * 86_400), 1.2, n_imp).astype(np.int64)
        parts["timestamp"].append(created_at[i_note] + delays)
        parts["value"].append(np.zeros(n_imp, dtype=np.float32))
    return {k: np.concatenate(v) for k, v in parts.items()}, event_names


def _note_table(
    rng: np.random.Generator,
    note_ids: np.ndarray,
    author_ids: np.ndarray,
    note_topic: np.ndarray,
    created_at: np.ndarray,
    tags_per_community: int,
    with_text: bool,
) -> pd.DataFrame:
    """Tags from the topic (Zipf over its tags), a global tag now and then, text from its vocabulary."""
    n_notes = note_ids.size
    tag_rank = 1.0 / np.arange(1, tags_per_community + 1)
    tag_p = tag_rank / tag_rank.sum()
    n_tags = rng.integers(1, 5, n_notes)
    tags: list[tuple[str, ...]] = []
    for i in range(n_notes):
        vocab = _topic(int(note_topic[i]))
        picks = np.unique(rng.choice(tags_per_community, size=n_tags[i], p=tag_p))
        t = [f"{vocab[0]}_{vocab[1 + k % (len(vocab) - 1)]}{'' if k < len(vocab) - 1 else k}" for k in picks]
        if rng.random() < 0.15:
            t.append(_GLOBAL_TAGS[rng.integers(len(_GLOBAL_TAGS))])
        tags.append(tuple(t))
    if with_text:
        titles = [_words(rng, _topic(int(c)), rng.integers(3, 7, 1), generic_share=0.35)[0] for c in note_topic]
        texts = [_words(rng, _topic(int(c)), rng.integers(10, 21, 1), generic_share=0.5)[0] for c in note_topic]
    else:
        titles = texts = [""] * n_notes
    return pd.DataFrame(
        {
            "note_id": note_ids,
            "author_id": author_ids,
            "tags": tags,
            "title": titles,
            "text": texts,
            "category": [_topic(int(c))[0] for c in note_topic],
            "created_at": created_at,
        }
    )


def make_ugc_dataset(
    *,
    n_users: int = 2_000,
    n_notes: int = 5_000,
    n_engagements: int = 60_000,
    n_communities: int = 16,
    tags_per_community: int = 12,
    creator_share: float = 0.1,
    noise: float = 0.1,
    popularity_shape: float = 1.5,
    activity_shape: float = 1.5,
    impressions_per_engagement: float = 0.0,
    days: int = 60,
    median_delay_days: float = 7.0,
    string_ids: bool = True,
    with_text: bool = True,
    taste_groups: int = 1,
    taste_strength: float = 0.5,
    seed: int = 0,
) -> SyntheticUGC:
    """Generate a UGC platform's logs and side-info with planted communities and power laws.

    Parameters
    ----------
    n_users, n_notes : int
        Population sizes.
    n_engagements : int
        Number of engagements (``click`` rows); further events (like, collect, ...) and optional
        impressions are added on top, so ``len(interactions) > n_engagements``.
    n_communities : int
        Planted interest topics (16 have real-word vocabularies; more reuse them with a suffix).
    tags_per_community : int
        Tags per topic (plus five global tags).
    creator_share : float
        Share of users who author notes.
    noise : float
        Share of engagements drawn by global popularity, ignoring interests.
    popularity_shape, activity_shape : float
        Pareto shapes of note popularity and user activity (smaller = heavier tail).
    impressions_per_engagement : float
        Extra ``impression`` rows per engagement, drawn by popularity (0 = none).
    days : int
        Length of the publication window.
    median_delay_days : float
        Median of the log-normal delay between a note's publication and an engagement (notes
        keep drawing engagements for weeks, with a long tail).
    string_ids : bool
        User ids as ``"u<i>"`` text (notes stay integers) to exercise both id kinds.
    with_text : bool
        Generate titles and texts (slow-ish in pure Python; turn off for millions of notes).
    taste_groups, taste_strength : int, float
        Latent taste groups (see the module docstring; 1 = none, and then the data are exactly
        what they were before the option existed) and the share of interest-driven engagements
        that stay within the user's group.
    seed : int
        Seed of the generator; the same arguments give identical data.

    Examples
    --------
    >>> data = make_ugc_dataset(n_users=100, n_notes=200, n_engagements=1_000, seed=1)
    >>> sorted(data.interactions.columns)
    ['event_type', 'note_id', 'timestamp', 'user_id', 'value']
    """
    n_users = check_int("n_users", n_users, minimum=2)
    n_notes = check_int("n_notes", n_notes, minimum=2)
    n_engagements = check_int("n_engagements", n_engagements, minimum=1)
    n_communities = check_int("n_communities", n_communities, minimum=1)
    tags_per_community = check_int("tags_per_community", tags_per_community, minimum=1)
    creator_share = check_float("creator_share", creator_share, minimum=0.0, maximum=1.0, exclusive_minimum=True)
    noise = check_float("noise", noise, minimum=0.0, maximum=1.0)
    popularity_shape = check_float("popularity_shape", popularity_shape, minimum=0.0, exclusive_minimum=True)
    activity_shape = check_float("activity_shape", activity_shape, minimum=0.0, exclusive_minimum=True)
    impressions_per_engagement = check_float("impressions_per_engagement", impressions_per_engagement, minimum=0.0)
    days = check_int("days", days, minimum=1)
    median_delay_days = check_float("median_delay_days", median_delay_days, minimum=0.0, exclusive_minimum=True)
    taste_groups = check_int("taste_groups", taste_groups, minimum=1)
    taste_strength = check_float("taste_strength", taste_strength, minimum=0.0, maximum=1.0)
    rng = np.random.default_rng(seed)
    # The phases draw from one stream in a fixed order: the same arguments give the same data.
    interests = rng.dirichlet(np.full(n_communities, 0.15), size=n_users)  # sparse interests
    activity = rng.pareto(activity_shape, n_users) + 1.0  # heavy-tailed activity
    note_topic, popularity, author, created_at = _plant_notes(
        rng, n_notes, interests.argmax(axis=1), n_communities, popularity_shape, creator_share, days
    )
    e_user, e_note, personal = _draw_engagements(rng, n_engagements, interests, activity, note_topic, popularity, noise)
    if taste_groups > 1:
        # Drawn after everything else, so that taste_groups=1 leaves the random stream untouched.
        user_taste, note_taste = _apply_taste(
            rng, (e_user, e_note, personal), n_users, note_topic, popularity, taste_groups, taste_strength
        )
    else:
        user_taste, note_taste = np.zeros(n_users, np.int64), np.zeros(n_notes, np.int64)
    match = interests[e_user, note_topic[e_note]]
    columns, event_names = _event_rows(
        rng, e_user, e_note, created_at, match, activity, popularity, impressions_per_engagement, median_delay_days
    )
    user_ids = np.array([f"u{i}" for i in range(n_users)]) if string_ids else np.arange(n_users, dtype=np.int64)
    note_ids = np.arange(n_notes, dtype=np.int64) + 100_000
    order = np.argsort(columns["timestamp"], kind="stable")
    interactions = pd.DataFrame(
        {
            "user_id": user_ids[columns["user"][order]],
            "note_id": note_ids[columns["note"][order]],
            "event_type": pd.Categorical.from_codes(columns["event"][order], categories=event_names),
            "timestamp": columns["timestamp"][order],
            "value": columns["value"][order],
        }
    )
    notes = _note_table(rng, note_ids, user_ids[author], note_topic, created_at, tags_per_community, with_text)
    users = pd.DataFrame(
        {
            "user_id": user_ids,
            "region": np.array(["north", "south", "east", "west", "central"])[rng.integers(0, 5, n_users)],
            "signup_at": _START - rng.integers(0, 730 * 86_400, n_users),
        }
    )
    return SyntheticUGC(interactions, notes, users, note_topic, interests, popularity, user_taste, note_taste)
