"""Benchmark: the recall service under load (``graphrec serve``), with a hot reload under load.

Builds a synthetic bundle (20k users, 50k notes, 500k engagements; PureSVD embeddings, Swing,
tags), starts the real server
(``python -m graphrec.cli serve``, one uvicorn worker) and drives ``POST /recall`` (one user per
request, ``k`` = 100) with closed-loop httpx clients in threads: ``c`` clients each send a request,
wait for the answer and send the next, for ``--seconds`` per level, ``c`` in ``--clients``. The
load generator runs on the same 2 cores as the server, so the rates are what this machine gives
both together. Reported per level: requests/s, p50/p99/max latency, failures. Then one level is
rerun while the bundle is rewritten and ``POST /admin/reload`` is called every second: failed
requests during reloads must be 0.

Target (issue 22): p99 <= 20 ms at k = 100 at the highest rate sustained without errors.

``--levers`` serves the chain's operating point (``graphrec.jobs.chain.DEFAULT_LEVERS``: the
popularity penalty on predicted exposure, niche-scaled, with DPP) through ``serve --channels``,
as a user serving the evaluated levers would. The service then counts the predicted exposure
before it answers (``RecallEngine.warm``), at start and on every reload, so the script also reports
the start-up time (server process start to the first ``/health`` answer) and the reloads' times.

``--threads`` is the server's ``--threads`` (native BLAS/OpenMP threads, default 1, as
``graphrec serve``); ``--threads 2`` gives the server what it had before that option existed.
The in-process timing above it runs in this process with the machine's default pools.

Usage::

    python benchmarks/serve_load.py --out benchmarks/results/serve_load.json
    python benchmarks/serve_load.py --levers --out benchmarks/results/serve_load_levers.json
    python benchmarks/serve_load.py [--levers] --threads 2 --out ...  # the server's pools as before
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _measure import write_json

from graphrec._table import format_table
from graphrec.graph import ENGAGES, HAS_TAG, build_graph, recency_matrix
from graphrec.index import write_bundle
from graphrec.io import validate_interactions, validate_notes
from graphrec.model import PureSVD
from graphrec.recall import ChannelConfig, RecallEngine
from graphrec.testing import make_ugc_dataset
from graphrec.weights import swing


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def drive(url: str, users: list[str], clients: int, seconds: float, k: int, *, during: Any = None) -> dict[str, Any]:
    import httpx

    latencies: list[float] = []
    failures = [0]
    stop = threading.Event()
    lock = threading.Lock()

    def client(seed: int) -> None:
        rng = np.random.default_rng(seed)
        with httpx.Client(base_url=url, timeout=30) as c:
            while not stop.is_set():
                body = {"users": [users[int(rng.integers(len(users)))]], "k": k}
                t = time.perf_counter()
                try:
                    ok = c.post("/recall", json=body).status_code == 200
                except httpx.HTTPError:
                    ok = False
                dt = time.perf_counter() - t
                with lock:
                    latencies.append(dt)
                    failures[0] += not ok

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    if during is not None:
        during(seconds)
    else:
        time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    lat = np.array(latencies) * 1000
    return {
        "clients": clients,
        "requests": int(lat.size),
        "rate": lat.size / elapsed,
        "p50_ms": float(np.percentile(lat, 50)),
        "p99_ms": float(np.percentile(lat, 99)),
        "max_ms": float(lat.max()),
        "failures": int(failures[0]),
    }


def main() -> None:
    import httpx

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--notes", type=int, default=50_000)
    parser.add_argument("--engagements", type=int, default=500_000)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("-k", type=int, default=100)
    parser.add_argument("--levers", action="store_true", help="serve the chain's DEFAULT_LEVERS (serve --channels)")
    parser.add_argument("--threads", type=int, default=1, help="serve --threads: native threads of the server")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    data = make_ugc_dataset(n_users=args.users, n_notes=args.notes, n_engagements=args.engagements, seed=0)
    interactions, notes = validate_interactions(data.interactions), validate_notes(data.notes)
    graph = build_graph(interactions, notes)
    # What a rebuild hands the service: the same arrays under a new version (computed once here, so
    # the reload loop measures the swap, not PureSVD and Swing competing for the 2 cores).
    engages = graph.relation(ENGAGES)
    svd = PureSVD(dim=64).fit(engages)
    ids = {t: graph.id_map(t) for t in graph.node_types}
    arrays = {
        "ids": ids,
        "embeddings": {"user": svd.user_embeddings_, "note": svd.note_embeddings_},
        "history": recency_matrix(interactions, ids["user"], ids["note"]),
        "similar": swing(engages, top_k=100),
        "note_tags": graph.relation(HAS_TAG),
    }
    with tempfile.TemporaryDirectory() as tmp_name:
        bundle = Path(tmp_name) / "bundle"
        write_bundle(bundle, **arrays, config={"version": 0})
        channels_args: list[str] = []
        channels = None
        if args.levers:
            from graphrec.jobs.chain import DEFAULT_LEVERS

            (Path(tmp_name) / "levers.json").write_text(json.dumps(DEFAULT_LEVERS))
            channels_args = ["--channels", str(Path(tmp_name) / "levers.json")]
            channels = ChannelConfig(**DEFAULT_LEVERS)
        # The engine alone, in this process: one user per call, k as below (no HTTP, no client).
        engine = RecallEngine.load(bundle, channels)
        t = time.perf_counter()
        engine.warm()
        warm_s = time.perf_counter() - t
        print(f"in-process warm-up: {warm_s:.1f} s", flush=True)
        sample = [str(u) for u in graph.id_map("user").ids[:300]]
        engine.recall(sample[:5], args.k)
        t = time.perf_counter()
        for u in sample:
            engine.recall([u], args.k)
        in_process_ms = 1000 * (time.perf_counter() - t) / len(sample)
        print(f"in-process recall: {in_process_ms:.2f} ms per single-user request at k = {args.k}", flush=True)
        port = _port()
        url = f"http://127.0.0.1:{port}"
        t = time.perf_counter()
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "graphrec.cli",
                "serve",
                "--bundle",
                str(bundle),
                "--port",
                str(port),
                "--threads",
                str(args.threads),
                *channels_args,
            ],
            stderr=subprocess.PIPE,
        )
        try:
            for _ in range(6000):
                try:
                    if httpx.get(f"{url}/health").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            startup_s = time.perf_counter() - t
            print(f"server start-up (process start to the first /health answer): {startup_s:.1f} s", flush=True)
            users = [str(u) for u in graph.id_map("user").ids]
            drive(url, users, 2, 2.0, args.k)  # warm-up
            levels = [drive(url, users, c, args.seconds, args.k) for c in args.clients]
            for row in levels:
                print(
                    f"{row['clients']} clients: {row['rate']:.0f} req/s, p50 {row['p50_ms']:.1f} ms, "
                    f"p99 {row['p99_ms']:.1f} ms, failures {row['failures']}",
                    flush=True,
                )
            good = [r for r in levels if r["p99_ms"] <= 20.0 and r["failures"] == 0]
            best = max(good, key=lambda r: r["rate"]) if good else None
            reloads = [0, 0]
            reload_s: list[float] = []

            def reload_every_second(seconds: float) -> None:
                end = time.perf_counter() + seconds
                v = 1
                while time.perf_counter() < end:
                    write_bundle(bundle, **arrays, config={"version": v})
                    t = time.perf_counter()
                    ok = httpx.post(f"{url}/admin/reload", timeout=300).status_code == 200
                    reload_s.append(time.perf_counter() - t)
                    reloads[0 if ok else 1] += 1
                    v += 1
                    time.sleep(1.0)

            clients = best["clients"] if best else args.clients[0]
            under_reload = drive(url, users, clients, args.seconds, args.k, during=reload_every_second)
            under_reload["reloads_ok"], under_reload["reloads_failed"] = reloads
            under_reload["reload_s_max"] = max(reload_s, default=float("nan"))
        finally:
            server.terminate()
            server.wait(timeout=30)
    cols = ["clients", "requests", "rate", "p50_ms", "p99_ms", "max_ms", "failures"]
    print(format_table(cols, [[r[c] for c in cols] for r in levels]))
    print(
        f"under reload ({under_reload['reloads_ok']} reloads ok, {under_reload['reloads_failed']} failed, "
        f"the longest {under_reload['reload_s_max']:.1f} s): "
        f"{under_reload['rate']:.0f} req/s, p99 {under_reload['p99_ms']:.1f} ms, failures {under_reload['failures']}"
    )
    if best:
        print(f"highest rate with p99 <= 20 ms and no failures: {best['rate']:.0f} req/s ({best['clients']} clients)")
    else:
        print("no level met p99 <= 20 ms without failures")
    if args.out:
        write_json(
            args.out,
            {
                "levels": levels,
                "in_process_ms": in_process_ms,
                "levers": args.levers,
                "threads": args.threads,
                "warm_s": warm_s,
                "startup_s": startup_s,
                "under_reload": under_reload,
                "best": best,
                "k": args.k,
                "bundle": {"users": args.users, "notes": args.notes, "engagements": args.engagements},
                "command": " ".join(sys.argv),
            },
        )


if __name__ == "__main__":
    main()
