"""The recall service: an HTTP/JSON API over a serving bundle (``graphrec serve --bundle DIR``).

Design
------
* **Stack:** FastAPI (request models, validation, the OpenAPI schema at ``/openapi.json`` and
  ``/docs``) on uvicorn; metrics with ``prometheus_client``. ``pip install 'graphrec[serve]'``.
* **State:** one :class:`EngineHolder` holds the current :class:`~graphrec.recall.RecallEngine`
  and its bundle's version (the manifest's ``created_at`` and ``config_hash``). The engine is
  read-only, so requests run concurrently in the server's thread pool without locks.
* **Channels:** the service runs one :class:`~graphrec.recall.ChannelConfig` (``--channels FILE``,
  YAML/TOML/JSON; default the plain engine), kept across reloads and reported by ``/health``. It
  is a serving choice, not part of the bundle, so an operator changes levers without rebuilding.
  Every engine the holder swaps in (start, reload, live update) is warmed first
  (:meth:`~graphrec.recall.RecallEngine.warm`: interest clusters, predicted exposure), so the
  one-time work of the levers lands before the swap, never on a request.
* **Threads:** each server process runs its native libraries (BLAS, OpenMP, numba) with ``--threads``
  threads, 1 by default, set before anything loads (:mod:`graphrec._threads`): requests are small
  and run concurrently, so a BLAS pool per request only oversubscribes the cores and its
  spin-waiting threads lengthen the tail. Scale with ``--workers``. ``/health`` reports the pools
  as they are (``native_threads``).
* **Hot reload:** ``POST /admin/reload`` (or ``--watch SECONDS``, which polls the bundle's
  manifest) loads and verifies the bundle directory *beside* the live engine, then swaps one
  reference. Requests in flight finish on the engine they started with; none is dropped. A bundle
  that fails to load (half-copied, crafted) is reported (409) and the last good engine keeps
  serving. Writers replace bundles atomically (:func:`graphrec.index.write_bundle`), so a reload
  never sees half a bundle.
* **Errors:** malformed JSON and out-of-range fields are 422 with the field named (FastAPI);
  anything graphrec refuses (unknown channel, over-long id) is 400 with its one-line message;
  bodies over ``max_body_bytes`` are 413, whether announced by Content-Length or streamed chunked. ``k`` is capped at
  :data:`graphrec.recall.engine.MAX_K`; a request holds at most ``MAX_QUERIES`` users or notes.

Endpoints: ``POST /recall`` (users, ``k``, optional request-time ``history``), ``POST /similar``
(notes like notes), ``POST /audience`` (users for notes), ``POST /coldstart`` (first audiences of
new notes from their side-info, for bundles with a note encoder; its ColdStart is built on first
use per bundle version), ``POST /events`` (interactions since the build), ``POST /notes`` and
``POST /notes/remove`` (new and deleted notes), ``GET /health``, ``GET /metrics``,
``POST /admin/reload``. New notes (``/notes``, ``/coldstart``) may carry their precomputed
``text_vector`` (all notes of a request or none), so the service never runs the text model on a
live request (:func:`graphrec.graph.side_info_for_encoder`).

Live updates (:mod:`graphrec.recall.live`) are copy-on-write like reloads: the update builds a new
engine beside the live one and swaps the reference, writers taking turns under one lock, so reads
never wait. They live in memory until saved: ``graphrec refresh`` (or ``RecallEngine.save``)
writes them into the bundle, which a reload or ``--watch`` then serves; the batch chain's rebuild
is what folds events into the model.
"""

from __future__ import annotations

from graphrec.serve.app import MAX_QUERIES, EngineHolder, create_app

__all__ = ["MAX_QUERIES", "EngineHolder", "create_app"]
