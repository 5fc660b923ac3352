"""The FastAPI application of the recall service (see :mod:`graphrec.serve` for the design)."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import numpy as np

from graphrec._threads import limit_native_threads, native_threads
from graphrec._validation import load_config
from graphrec.exceptions import GraphRecError, InvalidParameterError, MissingDependencyError
from graphrec.io.ids import MAX_ID_LENGTH
from graphrec.recall import ChannelConfig, RecallEngine
from graphrec.recall.engine import MAX_K, RecallResult

try:
    from fastapi import Body, FastAPI, Request
    from fastapi.responses import JSONResponse, Response
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
    from pydantic import BaseModel, ConfigDict, Field
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise MissingDependencyError("the service needs FastAPI: pip install 'graphrec[serve]'") from exc

__all__ = ["MAX_QUERIES", "EngineHolder", "create_app"]

#: Most users (or notes) one request may ask about.
MAX_QUERIES = 1000
#: Largest request body accepted, in bytes.
MAX_BODY_BYTES = 1 << 20

Id = Annotated[str, Field(max_length=MAX_ID_LENGTH)] | int


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")
    k: int = Field(20, ge=1, le=MAX_K, description=f"results per query, 1..{MAX_K}")


class RecallRequest(_Request):
    users: list[Id] = Field(min_length=1, max_length=MAX_QUERIES)
    history: list[list[Id] | None] | None = Field(
        None, description="per user, note ids engaged since the bundle was built, oldest first"
    )
    exclude_seen: bool = True
    channels: list[str] | None = None


class NotesRequest(_Request):
    notes: list[Id] = Field(min_length=1, max_length=MAX_QUERIES)


class NewNote(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note_id: Id
    author_id: Id | None = None
    tags: list[Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH)]] = Field(default_factory=list)
    title: str = ""
    text: str = ""
    category: str = ""
    text_vector: list[float] | None = Field(
        None,
        max_length=4096,
        description="the note's precomputed text vector (graphrec.graph.note_text_vectors); give it for "
        "every note of the request or for none: without it a bundle whose encoder uses text runs the text model",
    )


class ColdStartRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    notes: list[NewNote] = Field(min_length=1, max_length=MAX_QUERIES)
    budget: int = Field(50, ge=1, le=MAX_K, description=f"users per note, 1..{MAX_K}")


class Event(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user_id: Id
    note_id: Id
    event_type: str = Field("click", max_length=64)
    timestamp: int = Field(ge=0, description="unix seconds")
    value: float | None = Field(None, ge=0)


class EventsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    events: list[Event] = Field(min_length=1, max_length=100_000)


class AddNotesRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    notes: list[NewNote] = Field(min_length=1, max_length=10_000)


class RemoveNotesRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    notes: list[Id] = Field(min_length=1, max_length=10_000)


class _BodyLimit:
    """ASGI middleware: request bodies over ``limit`` bytes get a 413, whether the Content-Length
    says so up front (refused before reading) or a chunked body grows past it (cut there; the
    application's own answer to the truncated request is dropped)."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app, self.limit = app, limit

    async def _refuse(self, send: Any) -> None:
        body = json.dumps({"detail": f"request body over {self.limit} bytes"}).encode()
        await send({"type": "http.response.start", "status": 413, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        size = dict(scope["headers"]).get(b"content-length")
        if size is not None and (not size.isdigit() or int(size) > self.limit):
            await self._refuse(send)
            return
        seen, responded = 0, False

        async def guarded_send(message: Any) -> None:
            if not responded:
                await send(message)

        async def limited() -> Any:
            nonlocal seen, responded
            message = await receive()
            if message["type"] == "http.request" and not responded:
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    responded = True
                    await self._refuse(send)
                    return {"type": "http.disconnect"}
            return message

        try:
            await self.app(scope, limited, guarded_send)
        except Exception:
            if not responded:
                raise


class EngineHolder:
    """The live engine of a bundle directory, swapped whole by :meth:`reload`.

    Every engine it swaps in (loaded, reloaded or live-updated) runs ``channels`` and is warmed
    first (:meth:`RecallEngine.warm`), so no request pays for the state the levers build."""

    def __init__(self, bundle: str | os.PathLike[str], channels: ChannelConfig | None = None) -> None:
        self.path = Path(bundle)
        self.channels = channels or ChannelConfig()
        self._lock = threading.Lock()  # one reload at a time; readers never take it
        self.engine = RecallEngine.load(self.path, self.channels).warm()
        self.version = self._version(self.engine)
        self.loaded_at = time.time()
        self._cold: tuple[RecallEngine, Any] | None = None

    def cold_start(self) -> Any:
        """The :class:`~graphrec.coldstart.ColdStart` of the live bundle, built on first use."""
        from graphrec.coldstart import ColdStart

        engine = self.engine
        with self._lock:
            if self._cold is None or self._cold[0] is not engine:
                self._cold = (engine, ColdStart.from_loaded_bundle(engine.bundle, where=str(self.path)))
            return self._cold[1]

    @staticmethod
    def _version(engine: RecallEngine) -> dict[str, Any]:
        m = engine.bundle.manifest
        return {"created_at": m.get("created_at"), "config_hash": m.get("config_hash"), "counts": m.get("counts")}

    def apply(self, change: Callable[[RecallEngine], RecallEngine]) -> dict[str, int]:
        """Swap in ``change(engine)`` (a live update, :mod:`graphrec.recall.live`); writers take turns."""
        with self._lock:
            engine = change(self.engine).warm()
            self.engine = engine
            return engine.last_update

    def reload(self) -> dict[str, Any]:
        """Load the bundle directory again and swap it in; raises (keeping the old engine) if it fails."""
        with self._lock:
            engine = RecallEngine.load(self.path, self.channels).warm()
            self.engine, self.version, self.loaded_at = engine, self._version(engine), time.time()
            return self.version

    def manifest_mtime(self) -> float:
        try:
            return (self.path / "manifest.json").stat().st_mtime
        except OSError:
            return 0.0


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _new_notes(notes: list[NewNote]) -> tuple[Any, np.ndarray | None]:
    """A validated note table and the stacked text vectors (or None) of a request's new notes."""
    import pandas as pd

    from graphrec.io import validate_notes

    given = [n.text_vector is not None for n in notes]
    if any(given) and not all(given):
        first = next(n.note_id for n, g in zip(notes, given, strict=True) if not g)
        raise InvalidParameterError(
            f"notes: give text_vector for every note of the request or for none (note {first!r} has none)"
        )
    rows = [
        {**n.model_dump(exclude={"text_vector"}), "note_id": str(n.note_id), "author_id": _opt_str(n.author_id)}
        for n in notes
    ]
    lists = [n.text_vector for n in notes if n.text_vector is not None]  # every note's, or none
    if len({len(v) for v in lists}) > 1:
        raise InvalidParameterError("notes: every text_vector must have the same length")
    vectors = np.array(lists, dtype=np.float32) if lists else None
    return validate_notes(pd.DataFrame(rows), source="request notes"), vectors


def _rows(res: RecallResult, queries: list[Any], key: str, item: str) -> list[dict[str, Any]]:
    out = []
    for r, q in enumerate(queries):
        valid = np.isfinite(res.scores[r])
        row: dict[str, Any] = {
            key: q,
            item: res.ids[r][valid].tolist(),
            "scores": res.scores[r][valid].astype(float).tolist(),
            "channels": res.channels[r][valid].tolist(),
            "fallback": bool(res.fallback[r]),
        }
        if res.unknown_history is not None:
            row["unknown_history"] = int(res.unknown_history[r])
        out.append(row)
    return out


def create_app(
    bundle: str | os.PathLike[str],
    *,
    channels: ChannelConfig | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
    watch_seconds: float | None = None,
    threads: int | None = None,
) -> FastAPI:
    """The service for the bundle directory ``bundle`` (loaded and verified here, before serving).

    ``channels``: how recall merges its channels and which levers it pulls (default: the plain
    :class:`ChannelConfig`). ``watch_seconds``: poll the bundle's manifest that often and reload
    when it changes. ``threads``: limit this process's native thread pools (BLAS, OpenMP, torch)
    to that many (:mod:`graphrec._threads`; ``graphrec serve`` uses 1); None leaves them as
    they are, for an application that embeds the service and sets its own. OpenMP pools (faiss,
    torch) loaded before this call keep their size in new threads: limit them before loading
    (as ``graphrec serve`` does), or set ``OMP_NUM_THREADS`` for the process.
    """
    if threads is not None:
        limit_native_threads(threads)
    holder = EngineHolder(bundle, channels)
    registry = CollectorRegistry()
    requests = Counter(
        "graphrec_requests", "Requests by endpoint and status", ["endpoint", "status"], registry=registry
    )
    latency = Histogram(
        "graphrec_request_seconds",
        "Request latency",
        ["endpoint"],
        registry=registry,
        buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0),
    )
    reloads = Counter("graphrec_reloads", "Bundle reloads by outcome", ["outcome"], registry=registry)
    app = FastAPI(title="graphrec recall", description="Recall over a graphrec serving bundle.")
    app.state.holder = holder
    app.add_middleware(_BodyLimit, limit=max_body_bytes)

    @app.middleware("http")
    async def measure(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        t = time.perf_counter()
        response = await call_next(request)
        latency.labels(request.url.path).observe(time.perf_counter() - t)
        requests.labels(request.url.path, str(response.status_code)).inc()
        return response

    @app.exception_handler(GraphRecError)
    async def refused(_request: Request, exc: GraphRecError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=400)

    @app.post("/recall")
    def recall(req: RecallRequest) -> dict[str, Any]:
        engine = holder.engine  # one engine for the whole request, even across a reload
        res = engine.recall(req.users, req.k, history=req.history, exclude_seen=req.exclude_seen, channels=req.channels)
        return {"results": _rows(res, req.users, "user", "notes"), "bundle": holder.version}

    @app.post("/similar")
    def similar(req: NotesRequest) -> dict[str, Any]:
        res = holder.engine.similar_notes(req.notes, req.k)
        return {"results": _rows(res, req.notes, "note", "notes")}

    @app.post("/audience")
    def audience(req: NotesRequest) -> dict[str, Any]:
        res = holder.engine.audience(req.notes, req.k)
        return {"results": _rows(res, req.notes, "note", "users")}

    @app.post("/coldstart")
    def coldstart(req: ColdStartRequest) -> dict[str, Any]:
        cold = holder.cold_start()
        notes, vectors = _new_notes(req.notes)
        table = cold.plan(notes, req.budget, text_vectors=vectors)
        results = []
        for note in req.notes:
            mine = table[table["note_id"].astype(str) == str(note.note_id)]
            results.append(
                {
                    "note": note.note_id,
                    "users": mine["user_id"].tolist(),
                    "scores": mine["score"].astype(float).tolist(),
                    "fallback": bool(mine["fallback"].any()) if len(mine) else True,
                }
            )
        return {"results": results, "warnings": table.attrs.get("warnings", []), "bundle": holder.version}

    @app.post("/events")
    def events(req: EventsRequest) -> dict[str, Any]:
        import pandas as pd

        frame = pd.DataFrame([e.model_dump() for e in req.events])
        frame["user_id"] = frame["user_id"].map(str)
        frame["note_id"] = frame["note_id"].map(str)
        return {"applied": holder.apply(lambda e: e.update(frame))}

    @app.post("/notes")
    def add_notes(req: AddNotesRequest) -> dict[str, Any]:
        notes, vectors = _new_notes(req.notes)
        return {"applied": holder.apply(lambda e: e.add_notes(notes, text_vectors=vectors))}

    @app.post("/notes/remove")
    def remove_notes(req: RemoveNotesRequest) -> dict[str, Any]:
        return {"applied": holder.apply(lambda e: e.remove_notes(req.notes))}

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {
            "status": "ok",
            "bundle": holder.version,
            "loaded_at": holder.loaded_at,
            "channels": asdict(holder.channels),
            "native_threads": native_threads(),  # as the request thread that answers sees them
        }

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.post("/admin/reload")
    def reload(_: Annotated[dict[str, Any] | None, Body()] = None) -> JSONResponse:
        try:
            version = holder.reload()
        except GraphRecError as exc:
            reloads.labels("failed").inc()
            return JSONResponse(
                {"detail": f"reload failed, still serving the last good bundle: {exc}"}, status_code=409
            )
        reloads.labels("ok").inc()
        return JSONResponse({"status": "reloaded", "bundle": version})

    if watch_seconds:
        _watch(holder, watch_seconds, reloads)
    return app


def _watch(holder: EngineHolder, every: float, reloads: Counter) -> None:
    """Reload in a daemon thread whenever the bundle's manifest changes."""

    def loop() -> None:
        seen = holder.manifest_mtime()
        while True:
            time.sleep(every)
            now = holder.manifest_mtime()
            if now != seen:
                try:
                    holder.reload()
                    reloads.labels("ok").inc()
                    seen = now
                except GraphRecError:
                    reloads.labels("failed").inc()

    threading.Thread(target=loop, name="graphrec-bundle-watch", daemon=True).start()


def app_from_env() -> FastAPI:
    """uvicorn factory for multi-worker serving: the bundle from ``GRAPHREC_BUNDLE``, the channel
    configuration from the file ``GRAPHREC_CHANNELS`` (optional; YAML, TOML or JSON), native
    threads per process from ``GRAPHREC_THREADS`` (default 1)."""
    watch = os.environ.get("GRAPHREC_WATCH")
    channels = os.environ.get("GRAPHREC_CHANNELS")
    return create_app(
        os.environ["GRAPHREC_BUNDLE"],
        channels=load_config(ChannelConfig, channels) if channels else None,
        max_body_bytes=int(os.environ.get("GRAPHREC_MAX_BODY", MAX_BODY_BYTES)),
        watch_seconds=float(watch) if watch else None,
        threads=int(os.environ.get("GRAPHREC_THREADS", "1")),
    )
