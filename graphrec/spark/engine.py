"""PySpark implementations of the graph build and Swing (see the package docstring)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from graphrec.exceptions import InvalidParameterError, MissingDependencyError, SchemaError
from graphrec.graph import AUTHORED, ENGAGES, HAS_TAG, HeteroGraph
from graphrec.io import DEFAULT_EVENT_WEIGHTS, IdMap, TableSource, normalise_ids, table_format
from graphrec.io.ids import as_text
from graphrec.io.interactions import normalise_event_name
from graphrec.weights.swing import SwingConfig

__all__ = ["build_edges", "build_graph_spark", "get_spark", "swing_dataframe", "swing_spark"]


def _sql() -> Any:
    try:
        from pyspark.sql import functions as F
    except ImportError as exc:
        raise MissingDependencyError("the Spark engine needs pyspark: pip install 'graphrec[spark]'") from exc
    return F


def get_spark(app_name: str = "graphrec", master: str | None = None) -> Any:
    """The active SparkSession, or a new one (``local[*]`` unless ``master`` or a cluster says otherwise)."""
    _sql()
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    builder = SparkSession.builder.appName(app_name).config(
        "spark.sql.shuffle.partitions", os.environ.get("GRAPHREC_SPARK_PARTITIONS", "8")
    )
    builder = builder.config("spark.ui.enabled", "false")
    if master or "SPARK_MASTER" not in os.environ:
        builder = builder.master(master or "local[*]")
    return builder.getOrCreate()


def _read(spark: Any, data: Any, *, columns: tuple[str, ...]) -> Any:
    """A Spark DataFrame from a DataFrame or a parquet/CSV/JSONL path, with ``columns`` checked."""
    if isinstance(data, str | os.PathLike):
        path = str(data)
        if not os.path.exists(path) and "://" not in path:
            raise SchemaError(f"{path}: no such file")
        fmt = "parquet" if os.path.isdir(path) else table_format(path)  # a directory: a parquet dataset
        if fmt == "parquet":
            df = spark.read.parquet(path)
        elif fmt == "csv":
            df = spark.read.option("header", True).csv(path)  # all columns as text
        else:
            df = spark.read.json(path)
        name = os.path.basename(path)
    else:
        df, name = data, "input"
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise SchemaError(
            f"{name}: missing required column(s) {', '.join(missing)}; found {', '.join(df.columns) or 'none'}"
        )
    return df


def _ids_as_text(df: Any, *cols: str) -> Any:
    """Cast id columns to trimmed text; graphrec's int rule is applied when results come back."""
    F = _sql()
    for c in cols:
        df = df.withColumn(c, F.trim(F.col(c).cast("string")))
    bad = df.filter(" OR ".join(f"{c} IS NULL OR {c} = ''" for c in cols)).limit(1).collect()
    if bad:
        raise SchemaError(f"input: a row has an empty id in {', '.join(cols)}: {bad[0].asDict()}")
    return df


def _normalise(values: np.ndarray) -> np.ndarray:
    """graphrec's id rule (:func:`graphrec.io.normalise_ids`) on the text ids Spark hands back."""
    return normalise_ids(pa.array(as_text(values).tolist(), type=pa.string()), name="id", source=TableSource("spark"))


def _swing_users(df: Any, p: SwingConfig) -> tuple[Any, Any, Any]:
    """Users after the filters with their sorted note lists and weights; their (user, note) pairs;
    those pairs with heavy notes sampled by a seeded hash of the user id."""
    F = _sql()
    from pyspark.sql import Window

    users = df.groupBy("user_id").agg(F.sort_array(F.collect_list("note_id")).alias("items"), F.count("*").alias("deg"))
    users = users.filter(F.col("deg") >= p.min_items_per_user)
    if p.max_items_per_user is not None:
        users = users.filter(F.col("deg") <= p.max_items_per_user)
    users = users.withColumn("w", F.pow(F.col("deg").cast("double") + F.lit(p.user_alpha), F.lit(-p.beta)))
    kept = df.join(users.select("user_id"), "user_id")
    item_users = kept
    if p.max_users_per_item is not None:
        order = Window.partitionBy("note_id").orderBy(F.xxhash64(F.col("user_id"), F.lit(p.seed)), "user_id")
        item_users = (
            kept.withColumn("_r", F.row_number().over(order)).filter(F.col("_r") <= p.max_users_per_item).drop("_r")
        )
    return users, kept, item_users


def _swing_scores(users: Any, item_users: Any, alpha: float) -> Any:
    """``i, j, score``: each unordered user pair of note ``i`` adds ``w_u w_v / (alpha + |I_u & I_v|)``
    to every other note ``j`` the two share."""
    F = _sql()
    a, b = item_users.alias("a"), item_users.alias("b")
    triples = a.join(b, (F.col("a.note_id") == F.col("b.note_id")) & (F.col("a.user_id") < F.col("b.user_id"))).select(
        F.col("a.note_id").alias("i"), F.col("a.user_id").alias("u"), F.col("b.user_id").alias("v")
    )
    uu, vv = users.alias("uu"), users.alias("vv")
    pair_w = (
        triples.select("u", "v")
        .distinct()
        .join(uu, F.col("u") == F.col("uu.user_id"))
        .join(vv, F.col("v") == F.col("vv.user_id"))
        .select(
            "u",
            "v",
            F.array_intersect(F.col("uu.items"), F.col("vv.items")).alias("common"),
            (F.col("uu.w") * F.col("vv.w")).alias("ww"),
        )
        .withColumn("c", F.col("ww") / (F.lit(alpha) + F.size("common")))
    )
    return (
        triples.join(pair_w, ["u", "v"])
        .select("i", F.explode("common").alias("j"), "c")
        .filter(F.col("i") != F.col("j"))
        .groupBy("i", "j")
        .agg(F.sum("c").alias("score"))
    )


def swing_dataframe(pairs: Any, config: SwingConfig | None = None, **options: Any) -> Any:
    """Swing on Spark: ``note_id, neighbour_id, score`` rows from a DataFrame with ``user_id, note_id``.

    Same definition and parameters as :func:`graphrec.weights.swing` (unordered user pairs,
    ``w_u = (|I_u| + user_alpha) ** -beta``). Heavy notes are sampled by a seeded hash of the
    user id.
    """
    F = _sql()
    from pyspark.sql import Window

    p = SwingConfig.of(config, **options)
    df = _ids_as_text(pairs.select("user_id", "note_id"), "user_id", "note_id").distinct()
    users, kept, item_users = _swing_users(df, p)
    scored = _swing_scores(users, item_users, p.alpha)
    top_k, min_cooccurrence = p.top_k, p.min_cooccurrence
    if min_cooccurrence > 1:
        cooc = (
            item_users.alias("s")
            .join(kept.alias("k"), "user_id")
            .select(F.col("s.note_id").alias("i"), F.col("k.note_id").alias("j"))
            .groupBy("i", "j")
            .count()
        )
        scored = scored.join(cooc, ["i", "j"]).filter(F.col("count") >= min_cooccurrence).drop("count")
    if top_k:
        rank = Window.partitionBy("i").orderBy(F.col("score").desc(), F.col("j"))
        scored = scored.withColumn("_r", F.row_number().over(rank)).filter(F.col("_r") <= top_k).drop("_r")
    return scored.select(F.col("i").alias("note_id"), F.col("j").alias("neighbour_id"), F.col("score"))


def swing_spark(
    interactions: Any, config: SwingConfig | None = None, *, spark: Any = None, **options: Any
) -> pd.DataFrame:
    """Run :func:`swing_dataframe` on a path or DataFrame and collect ``note_id, neighbour_id, score``
    to pandas (each note's neighbours best first, ids by graphrec's id rule)."""
    session = spark or get_spark()
    df = _read(session, interactions, columns=("user_id", "note_id"))
    if not df.limit(1).collect():
        raise SchemaError("input: the table has no rows")
    rows = swing_dataframe(df, config, **options).collect()
    out = pd.DataFrame(rows, columns=["note_id", "neighbour_id", "score"])
    ids = _normalise(np.concatenate([out["note_id"].to_numpy(dtype=str), out["neighbour_id"].to_numpy(dtype=str)]))
    out["note_id"], out["neighbour_id"] = ids[: len(out)], ids[len(out) :]
    out["score"] = out["score"].astype(np.float32)
    order = np.lexsort((out["neighbour_id"].to_numpy(), -out["score"].to_numpy(), out["note_id"].to_numpy()))
    return out.iloc[order].reset_index(drop=True)


def build_edges(
    interactions: Any,
    notes: Any = None,
    *,
    event_weights: Mapping[str, float] | None = None,
    spark: Any = None,
) -> dict[str, Any]:
    """The graph's relations as Spark DataFrames, by the embedded builder's rules.

    Duplicate events (equal user, note, event type, timestamp) count once; a pair's weight is the
    sum of its events' weights; zero-weight pairs are not edges. Returns ``{"engages": (user_id,
    note_id, weight), "has_tag": (note_id, tag), "authored": (user_id, note_id)}`` (the last two
    only with ``notes``; ``tags`` must be an array column).
    """
    F = _sql()
    session = spark or get_spark()
    weights = {normalise_event_name(k): float(v) for k, v in (event_weights or DEFAULT_EVENT_WEIGHTS).items()}
    for k, v in weights.items():
        if not np.isfinite(v) or v < 0:
            raise InvalidParameterError(f"event_weights[{k!r}] must be a finite float >= 0; got {v!r}")
    df = _read(session, interactions, columns=("user_id", "note_id", "event_type", "timestamp"))
    df = _ids_as_text(df, "user_id", "note_id")
    df = df.withColumn("event_type", F.regexp_replace(F.lower(F.trim(F.col("event_type"))), "[- ]", "_"))
    unknown = df.select("event_type").distinct().filter(~F.col("event_type").isin(list(weights))).limit(3).collect()
    if unknown:
        raise SchemaError(f"input: event_type {unknown[0][0]!r} is not a configured event type ({', '.join(weights)})")
    wmap = F.create_map(*[x for k, v in weights.items() for x in (F.lit(k), F.lit(v))])
    engages = (
        df.dropDuplicates(["user_id", "note_id", "event_type", "timestamp"])
        .withColumn("w", wmap[F.col("event_type")])
        .groupBy("user_id", "note_id")
        .agg(F.sum("w").alias("weight"))
        .filter(F.col("weight") > 0)
    )
    out = {"engages": engages, "users": df.select("user_id").distinct(), "notes": df.select("note_id").distinct()}
    if notes is not None:
        nd = _read(session, notes, columns=("note_id",))
        nd = _ids_as_text(nd, "note_id")
        out["notes"] = out["notes"].union(nd.select("note_id")).distinct()
        if "tags" in nd.columns:
            out["has_tag"] = (
                nd.select("note_id", F.explode("tags").alias("tag")).withColumn("tag", F.trim("tag")).distinct()
            )
        if "author_id" in nd.columns:
            authored = nd.filter(F.col("author_id").isNotNull()).select(
                F.trim(F.col("author_id").cast("string")).alias("user_id"), "note_id"
            )
            out["authored"] = authored.filter(F.col("user_id") != "")
            out["users"] = out["users"].union(out["authored"].select("user_id")).distinct()
    return out


def build_graph_spark(
    interactions: Any, notes: Any = None, *, event_weights: Mapping[str, float] | None = None, spark: Any = None
) -> HeteroGraph:
    """:func:`build_edges`, collected into a :class:`HeteroGraph` (same ids and weights as
    :func:`graphrec.graph.build_graph` with ``weighting="sum"``)."""
    import scipy.sparse as sp

    edges = build_edges(interactions, notes, event_weights=event_weights, spark=spark)
    user_map = IdMap(_normalise(np.array([r[0] for r in edges["users"].collect()], dtype=str)))
    note_map = IdMap(_normalise(np.array([r[0] for r in edges["notes"].collect()], dtype=str)))

    def index(values: list[Any], m: IdMap, *, ids: bool = True) -> np.ndarray:
        arr = np.array(values, dtype=str)
        return m.index(_normalise(arr) if ids else arr)

    def matrix(name: str, src: tuple[str, IdMap], dst: tuple[str, IdMap], *, dst_ids: bool = True) -> sp.csr_matrix:
        rows = edges[name].collect()
        r = index([x[src[0]] for x in rows], src[1])
        c = index([x[dst[0]] for x in rows], dst[1], ids=dst_ids)
        data = np.array([x["weight"] for x in rows] if name == "engages" else np.ones(len(rows)), dtype=np.float32)
        return sp.csr_matrix((data, (r, c)), shape=(len(src[1]), len(dst[1])))

    id_maps = {"user": user_map, "note": note_map}
    relations = {ENGAGES: matrix("engages", ("user_id", user_map), ("note_id", note_map))}
    if "has_tag" in edges:
        tag_map = IdMap(np.array([r[0] for r in edges["has_tag"].select("tag").distinct().collect()], dtype=str))
        id_maps["tag"] = tag_map
        relations[HAS_TAG] = matrix("has_tag", ("note_id", note_map), ("tag", tag_map), dst_ids=False)
    if "authored" in edges:
        relations[AUTHORED] = matrix("authored", ("user_id", user_map), ("note_id", note_map))
    return HeteroGraph(id_maps, relations, meta={"engine": "spark", "weighting": "sum"})
