"""The `crmbot` command: serve, socket, db upgrade (and more as they land)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from crmbot.config import ConfigError, Settings
from crmbot.service import CrmService
from crmbot.store.db import Database
from crmbot.store.migrate import upgrade

log = logging.getLogger("crmbot")


def _service(settings: Settings) -> tuple[Database, CrmService]:
    upgrade(settings.database_url)
    db = Database(settings.database_url, pool_size=max(5, settings.threads))
    return db, CrmService(db)


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    """Production HTTP server (waitress) with /slack/events and /healthz."""
    from crmbot.app import create_app
    from crmbot.web import create_wsgi, make_server

    settings.require_http()
    db, crm = _service(settings)
    app = create_app(settings, crm, db=db)
    server = make_server(
        create_wsgi(app, db),
        host=args.host,
        port=args.port or settings.port,
        threads=settings.threads,
    )
    log.info("crmbot serving on http://%s:%s", args.host, server.effective_port)
    print(f"crmbot listening on port {server.effective_port}", flush=True)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
        db.dispose()
    return 0


def cmd_socket(settings: Settings, args: argparse.Namespace) -> int:
    """Socket Mode: no public URL needed."""
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    from crmbot.app import create_app

    settings.require_socket()
    db, crm = _service(settings)
    app = create_app(settings, crm, db=db)
    SocketModeHandler(app, settings.slack_app_token).start()  # type: ignore[no-untyped-call]
    return 0


def cmd_db(settings: Settings, args: argparse.Namespace) -> int:
    """Bring the database schema up to date."""
    upgrade(settings.database_url)
    print("database is up to date")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="crmbot", description="A CRM that lives in Slack.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the HTTP server (Slack events, health check)")
    serve.add_argument("--host", default="0.0.0.0")
    serve.add_argument("--port", type=int, default=None, help="default: $PORT or 3000")
    serve.set_defaults(run=cmd_serve)
    socket = sub.add_parser("socket", help="run in Socket Mode")
    socket.set_defaults(run=cmd_socket)
    db = sub.add_parser("db", help="database tasks")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_sub.add_parser("upgrade", help="apply migrations").set_defaults(run=cmd_db)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: parse, load settings, run; configuration problems exit 2 with advice."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        settings = Settings.from_env()
        return int(args.run(settings, args))
    except ConfigError as exc:
        print(f"crmbot: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
