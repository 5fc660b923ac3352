"""The reliability table: every case found by trying graphrec as a careless or hostile user would.

Each case builds its inputs under ``tmp_path`` (copies of the session world when it breaks them),
runs the real CLI entry point, and asserts the exit status, that a refusal is one line naming the
thing, and that no file under ``tmp_path`` or the world changed unless the case names it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from reliability._world import World, copy_into, edit_manifest, rechecksum, rewrite_npz, snapshot

from graphrec.cli import main


@dataclass(frozen=True)
class Case:
    id: str
    #: Prepares files under the case directory; returns the argv.
    setup: Callable[[Path, World], list[str]]
    rc: int
    #: Regex the one-line error must match (rc 2), or that stdout must match (rc 0).
    message: str
    #: Paths (relative to the case directory) a successful run may create or change.
    changes: tuple[str, ...] = ()


def _interactions(w: World) -> str:
    return str(w.data / "interactions.parquet")


def _build(out: Path, w: World, *extra: str) -> list[str]:
    return ["build-graph", "--interactions", _interactions(w), "--out", str(out), *extra]


# ---- 1. data loss ---------------------------------------------------------------------------


def out_holds_inputs(d: Path, w: World) -> list[str]:
    copy_into(w.data, d / "data")
    return ["build-graph", "--interactions", str(d / "data" / "interactions.parquet"), "--out", str(d / "data")]


def out_is_users_dir(d: Path, w: World) -> list[str]:
    (d / "mine").mkdir()
    (d / "mine" / "thesis.txt").write_text("years of work")
    return _build(d / "mine", w)


def foreign_file_in_graph(d: Path, w: World) -> list[str]:
    copy_into(w.graph, d / "g")
    (d / "g" / "my_notes.csv").write_text("keep me")
    return _build(d / "g", w)


def out_is_a_bundle(d: Path, w: World) -> list[str]:
    copy_into(w.bundle, d / "b")
    return _build(d / "b", w)


def swing_out_is_input(d: Path, w: World) -> list[str]:
    copy_into(w.data, d / "data")
    p = str(d / "data" / "interactions.parquet")
    return ["swing", "--interactions", p, "--out", p]


def coldstart_out_is_notes(d: Path, w: World) -> list[str]:
    copy_into(w.data, d / "data")
    p = str(d / "data" / "notes.jsonl")
    return ["coldstart", "--bundle", str(w.cold_bundle), "--notes", p, "--budget", "5", "--out", p]


def synth_into_users_dir(d: Path, w: World) -> list[str]:
    (d / "mine").mkdir()
    (d / "mine" / "interactions.parquet").write_text("the user's real log")
    return ["synth", "--out", str(d / "mine"), "--users", "10", "--notes", "10", "--engagements", "50"]


def rebuild_own_graph(d: Path, w: World) -> list[str]:
    copy_into(w.graph, d / "g")
    return _build(d / "g", w)


# ---- 2. long ids ------------------------------------------------------------------------------


def _long_id_log(d: Path) -> Path:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "user_id": [f"u{i % 300}" for i in range(3000)],
            "note_id": [f"n{j}" for j in rng.integers(0, 400, 3000)],
            "event_type": "click",
            "timestamp": np.arange(3000) + 1_700_000_000,
        }
    )
    frame.loc[1234, "user_id"] = "x" * 1_000_000
    frame.to_parquet(d / "long.parquet")
    return d / "long.parquet"


def long_id_build(d: Path, w: World) -> list[str]:
    return ["build-graph", "--interactions", str(_long_id_log(d)), "--out", str(d / "g")]


def long_id_swing(d: Path, w: World) -> list[str]:
    return ["swing", "--interactions", str(_long_id_log(d)), "--out", str(d / "s.parquet")]


def long_id_recall(d: Path, w: World) -> list[str]:
    return ["recall", "--bundle", str(w.bundle), "--users", f"{w.first_user},{'y' * 1_000_000}"]


# ---- 4/5. crafted bundles and graphs -----------------------------------------------------------


def _bundle_copy(d: Path, w: World) -> Path:
    return copy_into(w.bundle, d / "b")


def _recall(b: Path, w: World) -> list[str]:
    return ["recall", "--bundle", str(b), "--users", w.first_user, "-k", "5"]


def similar_col_out_of_range(d: Path, w: World) -> list[str]:
    b = _bundle_copy(d, w)
    rewrite_npz(
        b, "similar.npz", lambda a: {**a, "indices": np.where(np.arange(a["indices"].size) == 0, 10**6, a["indices"])}
    )
    return _recall(b, w)


def history_indptr_not_monotone(d: Path, w: World) -> list[str]:
    b = _bundle_copy(d, w)

    def change(a):
        indptr = a["indptr"].copy()
        indptr[3], indptr[4] = indptr[4] + 5, indptr[3]
        return {**a, "indptr": indptr}

    rewrite_npz(b, "history.npz", change)
    return _recall(b, w)


def nan_embeddings(d: Path, w: World) -> list[str]:
    b = _bundle_copy(d, w)

    def change(a):
        note = a["note"].copy()
        note[7, 2] = np.nan
        return {**a, "note": note}

    rewrite_npz(b, "embeddings.npz", change)
    return _recall(b, w)


def text_embeddings(d: Path, w: World) -> list[str]:
    b = _bundle_copy(d, w)
    rewrite_npz(b, "embeddings.npz", lambda a: {**a, "user": a["user"].astype(str)})
    return _recall(b, w)


def manifest_reads_etc_passwd(d: Path, w: World) -> list[str]:
    b = _bundle_copy(d, w)
    edit_manifest(b, lambda m: m["files"].update({"../../../../etc/passwd": "0" * 64}))
    return _recall(b, w)


def manifest_index_outside(d: Path, w: World) -> list[str]:
    b = _bundle_copy(d, w)
    (d / "outside").mkdir()
    (d / "outside" / "evil.faiss").write_bytes((b / "note.faiss").read_bytes())
    edit_manifest(b, lambda m: m["indexes"].update({"../outside/evil": m["indexes"]["note"]}))
    return _recall(b, w)


def manifest_unlisted_file(d: Path, w: World) -> list[str]:
    b = _bundle_copy(d, w)
    edit_manifest(b, lambda m: m["files"].pop("history.npz"))
    return _recall(b, w)


def manifest_wrong_types(d: Path, w: World) -> list[str]:
    b = _bundle_copy(d, w)
    edit_manifest(b, lambda m: m.update(counts=["user", "note"]))
    return _recall(b, w)


def manifest_files_not_a_mapping(d: Path, w: World) -> list[str]:
    b = _bundle_copy(d, w)
    edit_manifest(b, lambda m: m.update(files=["ids.npz"]))
    return _recall(b, w)


def npz_header_claims_terabytes(d: Path, w: World) -> list[str]:
    import zipfile

    b = _bundle_copy(d, w)
    with zipfile.ZipFile(b / "popularity_bomb.npz", "w") as zf, zf.open("note.npy", "w") as fh:
        np.lib.format.write_array_header_1_0(fh, {"descr": "<f4", "fortran_order": False, "shape": (10**12, 8)})
        fh.write(b"\0" * 64)
    (b / "embeddings.npz").write_bytes((b / "popularity_bomb.npz").read_bytes())
    (b / "popularity_bomb.npz").unlink()
    rechecksum(b)
    return _recall(b, w)


def delta_note_out_of_range(d: Path, w: World) -> list[str]:
    from graphrec.recall import RecallEngine

    engine = RecallEngine.load(w.bundle)
    note = engine.bundle.ids["note"].ids[0]
    events = pd.DataFrame(
        {"user_id": ["live"], "note_id": [note], "event_type": ["click"], "timestamp": [1_700_000_000]}
    )
    engine.update(events).save(d / "b")
    rewrite_npz(d / "b", "delta.npz", lambda a: {**a, "indices": a["indices"] + 10**6})
    return _recall(d / "b", w)


def ids_not_a_zip(d: Path, w: World) -> list[str]:
    b = _bundle_copy(d, w)
    (b / "ids.npz").write_bytes(b"PK\x03\x04 this is not a zip archive at all")
    rechecksum(b)
    return _recall(b, w)


def truncated_history(d: Path, w: World) -> list[str]:
    b = _bundle_copy(d, w)
    data = (b / "history.npz").read_bytes()
    (b / "history.npz").write_bytes(data[: len(data) // 2])
    return _recall(b, w)


def graph_relation_absolute_path(d: Path, w: World) -> list[str]:
    g = copy_into(w.graph, d / "g")
    target = str((g / "relations").resolve() / next(p.name for p in (g / "relations").iterdir()))

    def change(m):
        m["relations"][0]["file"] = target
        m["files"][target] = m["files"].pop(next(k for k in m["files"] if k.startswith("relations/")))

    edit_manifest(g, change)
    return ["graph-info", str(g)]


def graph_negative_weights(d: Path, w: World) -> list[str]:
    g = copy_into(w.graph, d / "g")
    name = "relations/" + next(p.name for p in (g / "relations").iterdir())
    rewrite_npz(g, name, lambda a: {**a, "data": -a["data"]})
    return ["graph-info", str(g)]


def graph_shape_lies(d: Path, w: World) -> list[str]:
    g = copy_into(w.graph, d / "g")
    name = "relations/" + next(p.name for p in (g / "relations").iterdir())
    rewrite_npz(g, name, lambda a: {**a, "shape": a["shape"] + 10})
    return ["graph-info", str(g)]


def graph_ids_offsets_broken(d: Path, w: World) -> list[str]:
    g = copy_into(w.graph, d / "g")

    def change(a):
        key = next(k for k in a if k.endswith(".offsets"))
        off = a[key].copy()
        off[2] = off[-1] + 100
        return {**a, key: off}

    rewrite_npz(g, "ids.npz", change)
    return ["graph-info", str(g)]


# ---- 6. k ---------------------------------------------------------------------------------------


def huge_k(d: Path, w: World) -> list[str]:
    return ["recall", "--bundle", str(w.bundle), "--users", w.first_user, "-k", "1000000000"]


# ---- 7/9. paths -----------------------------------------------------------------------------------


def out_parent_is_a_file(d: Path, w: World) -> list[str]:
    (d / "afile").write_text("x")
    return _build(d / "afile" / "g", w)


def coldstart_out_is_a_directory(d: Path, w: World) -> list[str]:
    (d / "outdir").mkdir()
    return [
        "coldstart",
        "--bundle",
        str(w.cold_bundle),
        "--notes",
        str(w.data / "notes.jsonl"),
        "--budget",
        "3",
        "--out",
        str(d / "outdir"),
    ]


def build_through_symlink(d: Path, w: World) -> list[str]:
    copy_into(w.graph, d / "real")
    (d / "link").symlink_to(d / "real")
    return _build(d / "link", w)


# ---- 9. configs -----------------------------------------------------------------------------------


def _run_config(d: Path, w: World, extra: str) -> list[str]:
    (d / "c.yaml").write_text(f"interactions: {_interactions(w)}\nwork: {d / 'work'}\n{extra}\n")
    return ["run", str(d / "c.yaml")]


def config_unknown_gnn_key(d: Path, w: World) -> list[str]:
    return _run_config(d, w, "gnn: {foo: 1}")


def config_debias_string(d: Path, w: World) -> list[str]:
    return _run_config(d, w, 'debias: "no"')


def config_steps_string(d: Path, w: World) -> list[str]:
    return _run_config(d, w, "steps: evaluate")


def config_unknown_key(d: Path, w: World) -> list[str]:
    return _run_config(d, w, "bogus: 1")


def config_wrong_type(d: Path, w: World) -> list[str]:
    return _run_config(d, w, "k: twenty")


def config_not_a_mapping(d: Path, w: World) -> list[str]:
    (d / "c.yaml").write_text("- just\n- a list\n")
    return ["run", str(d / "c.yaml")]


def chain_input_inside_step_dir(d: Path, w: World) -> list[str]:
    (d / "work" / "ingest").mkdir(parents=True)
    copy_into(w.data, d / "work" / "ingest" / "data")
    (d / "c.yaml").write_text(
        f"interactions: {d / 'work' / 'ingest' / 'data' / 'interactions.parquet'}\nwork: {d / 'work'}\n"
    )
    return ["run", str(d / "c.yaml")]


# ---- 12. small ----------------------------------------------------------------------------------------


def bad_timestamp_row(d: Path, w: World) -> list[str]:
    (d / "log.csv").write_text("user_id,note_id,event_type,timestamp\nu1,n1,click,1700000000\nu2,n1,click,yesterday\n")
    return ["build-graph", "--interactions", str(d / "log.csv"), "--out", str(d / "g")]


def absurd_timestamp(d: Path, w: World) -> list[str]:
    (d / "log.csv").write_text(f"user_id,note_id,event_type,timestamp\nu1,n1,click,1700000000\nu2,n1,click,{2**62}\n")
    return ["build-graph", "--interactions", str(d / "log.csv"), "--out", str(d / "g")]


def negative_timestamp(d: Path, w: World) -> list[str]:
    (d / "log.csv").write_text("user_id,note_id,event_type,timestamp\nu1,n1,click,-5\n")
    return ["build-graph", "--interactions", str(d / "log.csv"), "--out", str(d / "g")]


def milliseconds_timestamp(d: Path, w: World) -> list[str]:
    (d / "log.csv").write_text("user_id,note_id,event_type,timestamp\nu1,n1,click,1700000000000\n")
    return ["build-graph", "--interactions", str(d / "log.csv"), "--out", str(d / "g")]


def budget_zero_before_loading(d: Path, w: World) -> list[str]:
    # The bundle does not even exist: the budget is refused first, not after seconds of loading.
    return [
        "coldstart",
        "--bundle",
        str(d / "nope"),
        "--notes",
        str(w.data / "notes.jsonl"),
        "--budget",
        "0",
        "--out",
        str(d / "a.csv"),
    ]


def _new_notes(d: Path, rows: list[dict]) -> Path:
    pd.DataFrame(rows).to_json(d / "new.jsonl", orient="records", lines=True)
    return d / "new.jsonl"


def coldstart_empty_author(d: Path, w: World) -> list[str]:
    notes = _new_notes(
        d, [{"note_id": "fresh-1", "author_id": "", "tags": [], "title": "hello", "text": "", "category": ""}]
    )
    return [
        "coldstart",
        "--bundle",
        str(w.cold_bundle),
        "--notes",
        str(notes),
        "--budget",
        "5",
        "--out",
        str(d / "a.csv"),
    ]


def coldstart_warm_note(d: Path, w: World) -> list[str]:
    notes = _new_notes(d, [{"note_id": w.warm_note, "title": "an old note"}])
    return [
        "coldstart",
        "--bundle",
        str(w.cold_bundle),
        "--notes",
        str(notes),
        "--budget",
        "5",
        "--out",
        str(d / "a.csv"),
    ]


def coldstart_budget_too_large(d: Path, w: World) -> list[str]:
    notes = _new_notes(d, [{"note_id": "fresh-2", "title": "a note about everything"}])
    return [
        "coldstart",
        "--bundle",
        str(w.cold_bundle),
        "--notes",
        str(notes),
        "--budget",
        "100000",
        "--out",
        str(d / "a.csv"),
    ]


def recall_id_with_spaces(d: Path, w: World) -> list[str]:
    return ["recall", "--bundle", str(w.bundle), "--users", f"  {w.first_user}  ", "-k", "3"]


CASES = [
    Case("out-holds-inputs", out_holds_inputs, 2, r"data: the output would overwrite the input .*interactions.parquet"),
    Case(
        "out-is-users-dir", out_is_users_dir, 2, r"mine: is a non-empty directory graphrec did not write \(thesis.txt\)"
    ),
    Case("foreign-file-in-graph", foreign_file_in_graph, 2, r"holds files graphrec did not write \(my_notes.csv\)"),
    Case("out-is-a-bundle", out_is_a_bundle, 2, r"holds a graphrec.bundle artifact, not a graphrec.graph"),
    Case("swing-out-is-input", swing_out_is_input, 2, r"the output would overwrite the input"),
    Case("coldstart-out-is-notes", coldstart_out_is_notes, 2, r"the output would overwrite the input"),
    Case("synth-into-users-dir", synth_into_users_dir, 2, r"non-empty directory graphrec did not write"),
    Case("rebuild-own-graph", rebuild_own_graph, 0, r"wrote .*g", changes=("g",)),
    Case(
        "long-id-build",
        long_id_build,
        2,
        r"long.parquet row 1235: user_id is 1,000,000 characters long; ids may have at most 1024",
    ),
    Case("long-id-swing", long_id_swing, 2, r"long.parquet row 1235: user_id is 1,000,000 characters long"),
    Case("long-id-recall", long_id_recall, 2, r"user_ids\[1\] is 1,000,000 characters long"),
    Case("similar-col-out-of-range", similar_col_out_of_range, 2, r"similar.npz: a column index is outside"),
    Case("history-indptr-not-monotone", history_indptr_not_monotone, 2, r"history.npz: indptr is not monotone"),
    Case("nan-embeddings", nan_embeddings, 2, r"embeddings.npz \(note\): holds NaN or inf"),
    Case("text-embeddings", text_embeddings, 2, r"embeddings.npz \(user\): expected a numeric array"),
    Case(
        "manifest-etc-passwd",
        manifest_reads_etc_passwd,
        2,
        r"'../../../../etc/passwd' points outside the artifact directory",
    ),
    Case(
        "manifest-index-outside",
        manifest_index_outside,
        2,
        r"'../outside/evil.faiss' points outside the artifact directory",
    ),
    Case("manifest-unlisted-file", manifest_unlisted_file, 2, r"'history.npz' is used but not listed"),
    Case("manifest-wrong-types", manifest_wrong_types, 2, r"counts, dims, optional and indexes must be mappings"),
    Case(
        "manifest-files-not-mapping",
        manifest_files_not_a_mapping,
        2,
        r"`files` must map relative paths to SHA-256 digests",
    ),
    Case(
        "npz-header-claims-terabytes",
        npz_header_claims_terabytes,
        2,
        r"embeddings.npz: unreadable \(ValueError: member 'note.npy' claims more data",
    ),
    Case("delta-note-out-of-range", delta_note_out_of_range, 2, r"delta.npz: a note index is outside"),
    Case("ids-not-a-zip", ids_not_a_zip, 2, r"ids.npz: unreadable \(BadZipFile"),
    Case("truncated-history", truncated_history, 2, r"history.npz: checksum mismatch"),
    Case("graph-relation-absolute-path", graph_relation_absolute_path, 2, r"points outside the artifact directory"),
    Case("graph-negative-weights", graph_negative_weights, 2, r"data holds negative weights"),
    Case("graph-shape-lies", graph_shape_lies, 2, r"shape \(\d+, \d+\); expected \(\d+, \d+\) from the id counts"),
    Case("graph-ids-offsets-broken", graph_ids_offsets_broken, 2, r"ids.npz: \w+ ids: offsets are not a monotone"),
    Case("huge-k", huge_k, 2, r"`k` must be at most 10,000; got 1,000,000,000"),
    Case("out-parent-is-a-file", out_parent_is_a_file, 2, r"afile is a file, not a directory"),
    Case(
        "coldstart-out-is-a-directory", coldstart_out_is_a_directory, 2, r"outdir: is a directory; expected a file path"
    ),
    Case("build-through-symlink", build_through_symlink, 0, r"wrote .*link", changes=("real",)),
    Case("config-unknown-gnn-key", config_unknown_gnn_key, 2, r"gnn: unknown option\(s\) foo"),
    Case("config-debias-string", config_debias_string, 2, r"option `debias` must be true or false; got 'no'"),
    Case("config-steps-string", config_steps_string, 2, r"option `steps` must be a list of strings; got 'evaluate'"),
    Case("config-unknown-key", config_unknown_key, 2, r"unknown option\(s\) bogus"),
    Case("config-wrong-type", config_wrong_type, 2, r"option `k` must be an int; got 'twenty'"),
    Case("config-not-a-mapping", config_not_a_mapping, 2, r"expected a mapping of options; got list"),
    Case(
        "chain-input-inside-step-dir", chain_input_inside_step_dir, 2, r"ingest: the output would overwrite the input"
    ),
    Case("bad-timestamp-row", bad_timestamp_row, 2, r"log.csv line 3: timestamp 'yesterday' is neither"),
    Case("absurd-timestamp", absurd_timestamp, 2, r"log.csv line 3: timestamp 4611686018427387904 is outside"),
    Case("negative-timestamp", negative_timestamp, 2, r"log.csv line 2: timestamp -5 is outside"),
    Case("milliseconds-timestamp", milliseconds_timestamp, 2, r"is outside .* \(milliseconds\? give seconds\)"),
    Case("budget-zero-before-loading", budget_zero_before_loading, 2, r"`--budget` must be an int >= 1; got 0"),
    Case("coldstart-empty-author", coldstart_empty_author, 0, r"a.csv: 5 rows for 1 note", changes=("a.csv",)),
    Case("coldstart-warm-note", coldstart_warm_note, 2, r"already trained notes"),
    Case(
        "coldstart-budget-too-large", coldstart_budget_too_large, 0, r"a.csv: \d+ rows for 1 note", changes=("a.csv",)
    ),
    Case("recall-id-with-spaces", recall_id_with_spaces, 0, r"embedding|swing|tag|popular"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_case(case: Case, world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = case.setup(tmp_path, world)
    before, world_before = snapshot(tmp_path), snapshot(world.root)
    capsys.readouterr()
    rc = main(argv)
    out, err = capsys.readouterr()
    assert rc == case.rc, f"rc {rc}; stderr: {err[-2000:]}"
    assert "Traceback" not in err
    if case.rc == 2:
        lines = err.strip().splitlines()
        assert len(lines) == 1, err
        assert lines[0].startswith(f"graphrec {argv[0]}: error: ") and re.search(case.message, lines[0]), lines[0]
    else:
        assert re.search(case.message, out), out
    after = snapshot(tmp_path)
    allowed = [tmp_path / c for c in case.changes]

    def may_change(rel: str) -> bool:
        p = tmp_path / rel
        return any(p == a or a in p.parents for a in allowed)

    changed = sorted(r for r in set(before) | set(after) if before.get(r) != after.get(r) and not may_change(r))
    assert changed == [], f"files changed: {changed}"
    assert snapshot(world.root) == world_before
