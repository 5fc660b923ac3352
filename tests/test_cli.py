from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from graphrec.cli import main
from graphrec.exceptions import InvalidParameterError
from graphrec.graph import HeteroGraph

REPO = Path(__file__).resolve().parents[1]


def test_synth_build_and_info(tmp_path, capsys):
    assert (
        main(
            [
                "synth",
                "--out",
                str(tmp_path / "d"),
                "--users",
                "80",
                "--notes",
                "120",
                "--engagements",
                "800",
                "--impressions",
                "0.5",
            ]
        )
        == 0
    )
    d = tmp_path / "d"
    code = main(
        [
            "build-graph",
            "--interactions",
            str(d / "interactions.parquet"),
            "--notes",
            str(d / "notes.jsonl"),
            "--users",
            str(d / "users.csv"),
            "--out",
            str(tmp_path / "g"),
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "user__engages__note" in out
    g = HeteroGraph.load(tmp_path / "g")
    assert g.num_nodes("user") == 80
    assert main(["graph-info", str(tmp_path / "g"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["nodes"]["note"] == 120


def test_errors_are_one_line_exit_2(tmp_path, capsys):
    bad = tmp_path / "interactions.csv"
    bad.write_text("user_id,note_id,event_type,timestamp\n1,2,teleport,3\n")
    assert main(["build-graph", "--interactions", str(bad), "--out", str(tmp_path / "g")]) == 2
    err = capsys.readouterr().err
    assert "interactions.csv line 2: event_type 'teleport'" in err
    assert not (tmp_path / "g").exists()


def test_demo_on_bundled_sample(demo_run):
    cmd, proc = demo_run
    out = Path(cmd[-1])
    assert "recall@20" in proc.stdout and "cold start: first audience" in proc.stdout
    # Nothing is wrong, so nothing on stderr may read as an error (third-party chatter is debug-only).
    assert proc.stderr.strip() == "", proc.stderr
    report = json.loads((out / "metrics.json").read_text())
    metrics = report["metrics"]
    assert set(metrics) == {
        "popularity",
        "itemcf (alpha=0.2)",
        "swing",
        "gnn (embeddings)",
        "recall engine (all channels)",
        "recall engine + levers",
    }
    for m in metrics.values():
        assert {"recall@20", "ndcg@20", "long_tail_recall@20", "coverage@20", "gini@20"} <= set(m)
        assert {"ilad@20", "ilmd@20", "novelty@20", "long_tail_share@20", "creator_gini@20"} <= set(m)
    assert (out / "weights" / "debias_report.json").is_file()
    assert "example recalls from the bundle" in proc.stdout
    assert "a user the bundle has never seen, given 3 clicks at request time" in proc.stdout
    assert report["new_user"]["notes"] and not set(report["new_user"]["history"]) & set(report["new_user"]["notes"])
    from graphrec.recall import RecallEngine

    engine = RecallEngine.load(out / "bundle")
    assert engine.recall(list(engine.known_users()[:2]), k=5).ids.shape == (2, 5)
    # The evaluated levers, written for `graphrec serve --channels` (as the demo's last line says).
    from graphrec._validation import load_config
    from graphrec.jobs.chain import DEFAULT_LEVERS
    from graphrec.recall import ChannelConfig

    levers = out / "evaluate" / "levers.json"
    assert json.loads(levers.read_text()) == DEFAULT_LEVERS and f"--channels {levers}" in proc.stdout
    served = RecallEngine(engine.bundle, load_config(ChannelConfig, levers)).warm()
    assert served.recall(list(engine.known_users()[:2]), k=5).ids.shape == (2, 5)
    # The planted structure is there to be found: the GNN beats popularity and ItemCF.
    assert metrics["gnn (embeddings)"]["recall@20"] > 1.5 * metrics["popularity"]["recall@20"]
    assert metrics["gnn (embeddings)"]["recall@20"] > metrics["itemcf (alpha=0.2)"]["recall@20"]
    audience = report["cold_start"]["audience"]
    assert len(audience) == 10 and not any(a["fallback"] for a in audience)
    HeteroGraph.load(out / "graph")
    # A second run finds every step up to date.
    again = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=True, timeout=600)
    assert again.stdout.count("up to date (skipped)") == 6


def test_import_is_cheap():
    code = "import sys, graphrec; graphrec.__version__; print(sorted(m for m in ('torch', 'torch_geometric', 'faiss', 'dowhy', 'pandas', 'scipy') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_recall_cli_on_demo_bundle(tmp_path, capsys, small_tables):
    from graphrec.graph import build_graph
    from graphrec.jobs.bundle import bundle_from_graph

    interactions, notes = small_tables
    bundle_from_graph(build_graph(interactions, notes), interactions, tmp_path / "b", dim=8, swing_top_k=10)
    user = str(interactions["user_id"].iloc[0])
    assert main(["recall", "--bundle", str(tmp_path / "b"), "--users", f"{user},nobody", "-k", "3"]) == 0
    out = capsys.readouterr().out
    assert "channel" in out and "popularity fallback" in out and user in out
    assert main(["recall", "--bundle", str(tmp_path / "b"), "--users", user, "-k", "0"]) == 2
    assert "`k` must be an int >= 1" in capsys.readouterr().err
    # --channels: the levers in a YAML, TOML or JSON file; a bad one is refused in one line naming it.
    (tmp_path / "levers.yaml").write_text("weights: {embedding: 1.0}\npopularity_penalty: 0.5\n")
    assert (
        main(
            [
                "recall",
                "--bundle",
                str(tmp_path / "b"),
                "--users",
                user,
                "-k",
                "3",
                "--channels",
                str(tmp_path / "levers.yaml"),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "embedding" in out and "swing" not in out
    (tmp_path / "levers.toml").write_text('diversity = "mmr"\n')
    assert (
        main(["recall", "--bundle", str(tmp_path / "b"), "--users", user, "--channels", str(tmp_path / "levers.toml")])
        == 2
    )
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{tmp_path / 'levers.toml'}: `diversity` must be one of" in err, err


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("a.yaml", b"weights: [1,\n  2\n", "not valid YAML (while parsing a flow sequence"),
        ("b.json", b"[1, 2]", "expected a mapping of options; got list"),
        ("c.toml", b"x = ", "not valid TOML"),
        ("d.json", b"\xff\xfe", "not UTF-8 text"),
        ("e.txt", b"{}", "config files are .yaml, .yml, .toml or .json"),
        ("f.json", b'{"seen_cap": -1}', "`seen_cap` must be an int >= 0; got -1"),
    ],
)
def test_config_files_are_read_strictly_with_one_line_errors(tmp_path, name, data, message):
    from graphrec._validation import load_config
    from graphrec.recall import ChannelConfig

    (tmp_path / name).write_bytes(data)
    with pytest.raises(InvalidParameterError) as info:
        load_config(ChannelConfig, tmp_path / name)
    assert str(info.value).startswith(f"{tmp_path / name}: ") and message in str(info.value)
    assert "\n" not in str(info.value)
    (tmp_path / "ok.json").write_text('{"popularity_penalty": 0.2, "weights": {"embedding": 1.0}}')
    assert load_config(ChannelConfig, tmp_path / "ok.json") == ChannelConfig(
        popularity_penalty=0.2, weights={"embedding": 1.0}
    )
    with pytest.raises(InvalidParameterError, match="no such config file"):
        load_config(ChannelConfig, tmp_path)
