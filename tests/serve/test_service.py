"""The recall service, tested as users run it: a real uvicorn server on a free port, real HTTP."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
from _helpers import write_encoder_bundle

from graphrec.graph import build_graph
from graphrec.jobs.bundle import bundle_from_graph
from graphrec.recall import ChannelConfig, RecallEngine
from graphrec.serve import EngineHolder


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def _server(*args: str) -> Iterator[httpx.Client]:
    """``graphrec serve ARGS`` on a free port, and a client once ``/health`` answers."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "graphrec.cli", "serve", *args, "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
    try:
        for _ in range(300):
            try:
                if client.get("/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            proc.kill()
            pytest.fail(f"server did not start: {proc.stderr.read()}")
        yield client
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        client.close()


@pytest.fixture(scope="module")
def service(small_tables, tmp_path_factory):
    interactions, notes = small_tables
    root = tmp_path_factory.mktemp("serve")
    graph = build_graph(interactions, notes)
    # The first bundle has a note encoder (cold start); reloads swap in PureSVD bundles.
    write_encoder_bundle(root / "bundle", graph, interactions)
    with _server("--bundle", str(root / "bundle")) as client:
        yield {"client": client, "root": root, "graph": graph, "interactions": interactions}


def test_recall_similar_audience_and_history(service):
    client, graph = service["client"], service["graph"]
    users = [str(u) for u in graph.id_map("user").ids[:3]]
    notes = graph.id_map("note").ids[:2].tolist()
    r = client.post("/recall", json={"users": users, "k": 5})
    assert r.status_code == 200, r.text
    body = r.json()
    assert [row["user"] for row in body["results"]] == users
    assert all(len(row["notes"]) == 5 and not row["fallback"] for row in body["results"])
    assert body["bundle"]["config_hash"]
    r = client.post("/recall", json={"users": ["new-user"], "k": 5, "history": [[*notes, "no-such-note"]]})
    row = r.json()["results"][0]
    assert r.status_code == 200 and not row["fallback"] and row["unknown_history"] == 1
    assert not set(notes) & set(row["notes"])
    assert client.post("/recall", json={"users": ["new-user"], "k": 5}).json()["results"][0]["fallback"]
    for path, key in (("/similar", "notes"), ("/audience", "users")):
        r = client.post(path, json={"notes": notes, "k": 4})
        assert r.status_code == 200 and all(len(row[key]) == 4 for row in r.json()["results"])
    schema = client.get("/openapi.json").json()
    assert {"/recall", "/similar", "/audience", "/health", "/admin/reload"} <= set(schema["paths"])


def test_coldstart_endpoint(service):
    client, graph = service["client"], service["graph"]
    tag = str(graph.id_map("tag").ids[0])
    author = str(graph.id_map("user").ids[1])
    payload = {
        "notes": [
            {"note_id": "fresh-1", "author_id": author, "tags": [tag], "title": "new"},
            {"note_id": "fresh-2", "author_id": "", "tags": []},
        ],
        "budget": 7,
    }
    r = client.post("/coldstart", json=payload)
    assert r.status_code == 200, r.text
    first, second = r.json()["results"]
    assert first["note"] == "fresh-1" and len(first["users"]) == 7 and not first["fallback"]
    assert second["fallback"]  # no usable side-info: the documented fallback, flagged
    warm = {"notes": [{"note_id": str(graph.id_map("note").ids[0])}], "budget": 3}
    r = client.post("/coldstart", json=warm)
    assert r.status_code == 400 and "already trained notes" in r.text
    r = client.post("/coldstart", json={"notes": [{"note_id": "x", "tags": [""]}], "budget": 3})
    assert r.status_code == 422
    # Precomputed text vectors reach the encoder (this bundle's was trained without text: a clear 400).
    vec = {"notes": [{"note_id": "fresh-3", "tags": [tag], "text_vector": [0.1] * 8}]}
    for path, extra in (("/coldstart", {"budget": 3}), ("/notes", {})):
        r = client.post(path, json={**vec, **extra})
        assert r.status_code == 400 and "trained without text" in r.text, r.text
    mixed = {"notes": [*vec["notes"], {"note_id": "fresh-4", "tags": [tag]}]}
    r = client.post("/notes", json=mixed)
    assert r.status_code == 400 and "for every note of the request or for none" in r.text


def test_live_events_and_notes(service):
    client, graph = service["client"], service["graph"]
    notes = [str(n) for n in graph.id_map("note").ids[:3]]
    events = [{"user_id": "live-user", "note_id": n, "timestamp": 2_000_000_000 + i} for i, n in enumerate(notes)]
    r = client.post("/events", json={"events": events})
    assert r.status_code == 200 and r.json()["applied"]["events"] == 3, r.text
    row = client.post("/recall", json={"users": ["live-user"], "k": 5}).json()["results"][0]
    assert not row["fallback"] and not {int(n) for n in notes} & set(row["notes"])
    tag = str(graph.id_map("tag").ids[0])
    r = client.post("/notes", json={"notes": [{"note_id": 7_000_001, "tags": [tag], "title": "posted a second ago"}]})
    assert r.status_code == 200 and r.json()["applied"]["notes"] == 1, r.text
    sim = client.post("/similar", json={"notes": [7_000_001], "k": 3}).json()["results"][0]
    assert not sim["fallback"] and len(sim["notes"]) == 3
    r = client.post("/notes/remove", json={"notes": [7_000_001]})
    assert r.status_code == 200 and r.json()["applied"]["removed"] == 1
    assert client.post("/similar", json={"notes": [7_000_001], "k": 3}).json()["results"][0]["fallback"]
    bad = client.post("/events", json={"events": [{"user_id": "u", "note_id": "n", "timestamp": -1}]})
    assert bad.status_code == 422
    bad = client.post(
        "/events", json={"events": [{"user_id": "u", "note_id": "n", "event_type": "teleport", "timestamp": 1}]}
    )
    assert bad.status_code == 400 and "teleport" in bad.text


@pytest.mark.parametrize(
    ("payload", "status", "message"),
    [
        ({"users": ["u1"], "k": 0}, 422, "greater than or equal to 1"),
        ({"users": ["u1"], "k": 10_001}, 422, "less than or equal to 10000"),
        ({"users": [], "k": 5}, 422, "at least 1 item"),
        ({"users": ["u1"], "k": 5, "bogus": 1}, 422, "Extra inputs are not permitted"),
        ({"users": ["x" * 2000], "k": 5}, 422, "at most 1024 characters"),
        ({"users": ["u1"], "k": 5, "channels": ["telepathy"]}, 400, r"unknown channel\(s\) \['telepathy'\]"),
        ({"users": ["u1", "u2"], "k": 5, "history": [["n1"]]}, 400, "one sequence of note ids per user"),
    ],
)
def test_bad_requests_get_clear_4xx(service, payload, status, message):
    import re

    r = service["client"].post("/recall", json=payload)
    assert r.status_code == status and re.search(message, r.text), r.text


def test_malformed_and_oversized_bodies(service):
    client = service["client"]
    r = client.post("/recall", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422 and "JSON" in r.text
    r = client.post("/recall", content=b"[" + b"1," * 600_000 + b"1]", headers={"content-type": "application/json"})
    assert r.status_code == 413 and "request body over" in r.text

    def chunks():  # streamed without Content-Length: the limit still holds
        yield b'{"users": ["'
        for _ in range(40):
            yield b"x" * 50_000
        yield b'"], "k": 5}'

    r = client.post("/recall", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413 and "request body over" in r.text
    assert 'graphrec_requests_total{endpoint="/recall",status="413"} 2.0' in client.get("/metrics").text
    assert client.get("/health").status_code == 200  # still serving


def test_metrics(service):
    client = service["client"]
    client.post("/recall", json={"users": ["u1"], "k": 3})
    text = client.get("/metrics").text
    assert 'graphrec_requests_total{endpoint="/recall",status="200"}' in text
    assert "graphrec_request_seconds_bucket" in text


def test_hot_reload_under_load_drops_nothing_and_survives_a_bad_bundle(service):
    client, root, graph = service["client"], service["root"], service["graph"]
    users = [str(u) for u in graph.id_map("user").ids[:20]]
    statuses: list[int] = []
    stop = threading.Event()

    def hammer() -> None:
        with httpx.Client(base_url=str(client.base_url), timeout=30) as c:
            while not stop.is_set():
                statuses.append(c.post("/recall", json={"users": users, "k": 50}).status_code)

    workers = [threading.Thread(target=hammer) for _ in range(4)]
    for w in workers:
        w.start()
    versions = set()
    try:
        for v in range(2, 5):
            bundle_from_graph(graph, service["interactions"], root / "bundle", dim=16, config={"version": v})
            r = client.post("/admin/reload")
            assert r.status_code == 200, r.text
            versions.add(r.json()["bundle"]["config_hash"])
            time.sleep(0.3)
    finally:
        stop.set()
        for w in workers:
            w.join()
    assert len(versions) == 3 and statuses and set(statuses) == {200}, (len(statuses), set(statuses))
    # A broken bundle in place: the reload is refused and the last good bundle keeps serving.
    manifest = root / "bundle" / "manifest.json"
    good = manifest.read_text()
    manifest.write_text(json.dumps({**json.loads(good), "files": {"../../etc/passwd": "0" * 64}}))
    try:
        r = client.post("/admin/reload")
        assert r.status_code == 409 and "still serving the last good bundle" in r.text
        assert client.post("/recall", json={"users": users[:1], "k": 5}).status_code == 200
        assert client.get("/health").json()["bundle"]["config_hash"] in versions
    finally:
        manifest.write_text(good)


@pytest.mark.parametrize(
    ("extra", "message"),
    [([], "manifest.json: missing"), (["--threads", "0"], "`--threads` must be an int >= 1")],
)
def test_serve_refuses_a_bad_bundle_or_option_in_one_line(tmp_path, extra, message):
    proc = subprocess.run(
        [sys.executable, "-m", "graphrec.cli", "serve", "--bundle", str(tmp_path / "none"), *extra],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and message in proc.stderr, proc.stderr


def test_serve_runs_one_native_thread_per_process_by_default(service):
    # BLAS, OpenMP and numba pools of one thread (graphrec._threads), as a request thread sees
    # them (/health runs in one): concurrent requests do not fan out.
    pools = service["client"].get("/health").json()["native_threads"]
    assert pools.get("blas") == 1 and pools.get("numba") == 1 and set(pools.values()) == {1}, pools


def test_serves_the_levers_of_a_channels_file_warmed_before_the_first_request(service, tmp_path, monkeypatch):
    graph, interactions = service["graph"], service["interactions"]
    bundle = bundle_from_graph(graph, interactions, tmp_path / "bundle", dim=16)
    levers = {
        "popularity_penalty": 0.3,
        "popularity_basis": "exposure",
        "popularity_penalty_scaling": "niche",
        "diversity": "dpp",
        "diversity_weight": 0.05,
    }
    (tmp_path / "levers.json").write_text(json.dumps(levers))
    users = [str(u) for u in graph.id_map("user").ids[:6]]
    expected = RecallEngine.load(bundle, ChannelConfig(**levers)).recall(users, 10)
    plain = RecallEngine.load(bundle).recall(users, 10)
    assert (expected.ids != plain.ids).any()  # the levers change what this bundle serves
    with _server("--bundle", str(bundle), "--channels", str(tmp_path / "levers.json")) as client:
        health = client.get("/health").json()
        assert {k: health["channels"][k] for k in levers} == levers
        rows = client.post("/recall", json={"users": users, "k": 10}).json()["results"]
        assert [row["notes"] for row in rows] == expected.ids.tolist()
        np.testing.assert_allclose([row["scores"] for row in rows], expected.scores, rtol=1e-6)
        # A live update swaps in a derived engine that keeps the levers.
        gone = int(expected.ids[0, 0])
        assert client.post("/notes/remove", json={"notes": [gone]}).status_code == 200
        rows = client.post("/recall", json={"users": users, "k": 10}).json()["results"]
        assert all(gone not in row["notes"] and len(row["notes"]) == 10 for row in rows)
    # The holder warms the engine before it serves it: a request never counts exposure.
    holder = EngineHolder(bundle, ChannelConfig(**levers))
    monkeypatch.setattr(RecallEngine, "_count_exposure", lambda self: pytest.fail("exposure counted on a request"))
    np.testing.assert_array_equal(holder.engine.recall(users, 10).ids, expected.ids)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"popularity_penalty": -1}', "`popularity_penalty` must be a finite float >= 0.0"),
        ('{"popularity_basis": "clicks", "extra": 1}', "unknown option(s) extra"),
        ('{"popularity_penalty": ', "not valid JSON"),
    ],
)
def test_serve_refuses_a_bad_channels_file_in_one_line(service, tmp_path, text, message):
    bad = tmp_path / "levers.json"
    bad.write_text(text)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "graphrec.cli",
            "serve",
            "--bundle",
            str(service["root"] / "bundle"),
            "--channels",
            str(bad),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert str(bad) in proc.stderr and message in proc.stderr, proc.stderr
