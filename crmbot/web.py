"""The HTTP surface: /slack/events (and OAuth paths) to Bolt, /healthz, served by waitress."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from typing import Any

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from sqlalchemy import text
from waitress.server import create_server

from crmbot.store.db import Database

log = logging.getLogger(__name__)

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def _json(start_response: StartResponse, status: str, body: dict[str, Any]) -> list[bytes]:
    data = json.dumps(body).encode()
    start_response(
        status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
    )
    return [data]


def create_wsgi(app: App, db: Database, *, intake: WsgiApp | None = None) -> WsgiApp:
    """One WSGI app for every route crmbot serves (`intake`: the POST /intake/lead app)."""
    bolt = SlackRequestHandler(app)

    def healthz(start_response: StartResponse) -> list[bytes]:
        try:
            with db.engine.connect() as conn:
                conn.execute(text("select 1"))
        except Exception:  # any database failure means "not healthy"; details stay in the log
            log.exception("health check: database unavailable")
            return _json(start_response, "503 Service Unavailable", {"status": "unavailable"})
        return _json(start_response, "200 OK", {"status": "ok"})

    def wsgi(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "/healthz" and environ.get("REQUEST_METHOD") == "GET":
            return healthz(start_response)
        if intake is not None and environ.get("PATH_INFO") == "/intake/lead":
            return intake(environ, start_response)
        return bolt(environ, start_response)

    return wsgi


def make_server(wsgi: WsgiApp, *, host: str, port: int, threads: int) -> Any:
    """A waitress server (port 0 picks a free port: see `.effective_port`)."""
    return create_server(wsgi, host=host, port=port, threads=threads, ident="crmbot")
