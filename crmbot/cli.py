"""The `crmbot` command: serve, socket, scheduler, remind, db upgrade (and more as they land)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import Any

from crmbot.cli_data import add_commands as add_data_commands
from crmbot.cli_privacy import add_commands as add_privacy_commands
from crmbot.cli_restricted import add_commands as add_restricted_commands
from crmbot.config import ConfigError, Settings
from crmbot.demo.main import add_arguments as demo_arguments
from crmbot.service import CrmService
from crmbot.store.db import Database
from crmbot.store.migrate import upgrade

log = logging.getLogger("crmbot")


def _service(settings: Settings) -> tuple[Database, CrmService]:
    upgrade(settings.database_url)
    pool = settings.db_pool_size or max(5, settings.threads)
    db = Database(settings.database_url, pool_size=pool, max_overflow=settings.db_max_overflow)
    return db, CrmService(db)


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    """Production HTTP server (waitress) with /slack/events and /healthz."""
    from crmbot.app import create_app
    from crmbot.handlers.intake import intake_endpoint
    from crmbot.handlers.offload import Offload
    from crmbot.web import create_wsgi, make_server

    settings.require_http()
    db, crm = _service(settings)
    offload = (
        Offload(settings, workers=settings.workers, nice=settings.worker_nice).start()
        if settings.workers
        else None
    )
    app = create_app(settings, crm, db=db, offload=offload)
    intake = intake_endpoint(settings, crm, app)
    server = make_server(
        create_wsgi(app, db, intake=intake),
        host=args.host,
        port=args.port if args.port is not None else settings.port,
        threads=settings.threads,
    )
    log.info("crmbot serving on http://%s:%s", args.host, server.effective_port)
    clock = _clock_in_process(settings, crm, db)
    print(f"crmbot listening on port {server.effective_port}", flush=True)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        if clock is not None:
            clock.shutdown(wait=False)
        server.close()
        if offload is not None:
            offload.close()
        db.dispose()
    return 0


def cmd_socket(settings: Settings, args: argparse.Namespace) -> int:
    """Socket Mode: no public URL needed."""
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    from crmbot.app import create_app

    settings.require_socket()
    db, crm = _service(settings)
    app = create_app(settings, crm, db=db)
    _clock_in_process(settings, crm, db)
    SocketModeHandler(app, settings.slack_app_token).start()  # type: ignore[no-untyped-call]
    return 0


def _clock_in_process(settings: Settings, crm: CrmService, db: Database) -> Any:
    """Reminder sweeps inside this process unless CRMBOT_WEB_SCHEDULER=false."""
    if not settings.scheduler_in_web:
        return None
    from crmbot.scheduler import start_in_background

    return start_in_background(settings, crm, db)


def _require_token(settings: Settings) -> None:
    if settings.mode_or_none() is None:
        raise ConfigError(
            "Reminders are posted to Slack, so crmbot needs a bot token: set SLACK_BOT_TOKEN "
            "(one workspace) or SLACK_CLIENT_ID and SLACK_CLIENT_SECRET (installations kept in "
            "the database), in the environment or in a .env file."
        )


def cmd_scheduler(settings: Settings, args: argparse.Namespace) -> int:
    """The clock process: a reminder sweep every CRMBOT_REMINDER_INTERVAL seconds."""
    from crmbot.scheduler import run_clock

    _require_token(settings)
    db, crm = _service(settings)
    try:
        return run_clock(settings, crm, db)
    finally:
        db.dispose()


def cmd_remind(settings: Settings, args: argparse.Namespace) -> int:
    """One reminder sweep now, printing what it sent."""
    from crmbot.scheduler import remind_once

    if not args.once:
        raise ConfigError(
            "`crmbot remind --once` runs one sweep; the clock process is `crmbot scheduler`."
        )
    _require_token(settings)
    db, crm = _service(settings)
    try:
        return remind_once(settings, crm, db, out=lambda line: print(line, flush=True))
    finally:
        db.dispose()


def cmd_reminder_settings(settings: Settings, args: argparse.Namespace) -> int:
    """Show or change a workspace's (or a rep's) reminder settings."""
    from crmbot.domain import CrmError
    from crmbot.service.reminder_types import days_text, parse_days

    db, crm = _service(settings)
    digest = None if args.morning_digest is None else args.morning_digest == "on"
    try:
        days = parse_days(args.digest_days) if args.digest_days else None
        if args.rep:
            prefs = crm.set_digest_preferences(
                args.workspace,
                args.rep,
                enabled=digest,
                digest_time=args.digest_time,
                digest_days=days,
            )
            shown = {
                "morning digest": {True: "on", False: "off", None: "workspace default"}[
                    prefs.enabled
                ],
                "digest time": prefs.digest_time or "workspace default",
                "digest days": days_text(prefs.digest_days) if prefs.digest_days else "default",
            }
        else:
            now = crm.configure_reminders(
                args.workspace,
                reminder_channel=args.reminder_channel,
                manager_channel=args.manager_channel,
                digest_time=args.digest_time,
                digest_days=days,
                escalate_after_days=args.escalate_after,
                morning_digest=digest,
            )
            shown = {
                "reminder channel": now.reminder_channel or "none (owners' DMs)",
                "manager channel": now.manager_channel or "none (no escalations)",
                "digest time": now.digest_time,
                "digest days": days_text(now.digest_days),
                "escalate after": f"{now.escalate_after_days} days",
                "morning digest": "on" if now.morning_digest else "off",
            }
    except CrmError as error:
        print(f"crmbot: {error.message}", file=sys.stderr)
        return 2
    finally:
        db.dispose()
    for key, value in shown.items():
        print(f"{key}: {value}")
    return 0


def cmd_db(settings: Settings, args: argparse.Namespace) -> int:
    """Bring the database schema up to date."""
    upgrade(settings.database_url)
    print("database is up to date")
    return 0


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    """Try crmbot in this terminal: the real app, with Slack played locally."""
    from crmbot.demo.main import run

    return run(args)


def cmd_train_scores(settings: Settings, args: argparse.Namespace) -> int:
    """Fit each workspace's learned lead score (when it has enough history) and rescore."""
    db, crm = _service(settings)
    try:
        results = [crm.train_scores(args.workspace)] if args.workspace else crm.train_all_scores()
        for result in results:
            print(result.summary(), flush=True)
    finally:
        db.dispose()
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
    sub.add_parser("scheduler", help="the clock process: reminder sweeps").set_defaults(
        run=cmd_scheduler
    )
    remind = sub.add_parser("remind", help="reminders: `remind --once` sweeps now")
    remind.add_argument("--once", action="store_true", help="one sweep, then exit")
    remind.set_defaults(run=cmd_remind)
    rs = sub.add_parser("reminder-settings", help="show or change reminder settings")
    rs.add_argument("workspace", help="Slack team id, e.g. T0123ABCD")
    rs.add_argument("--rep", help="change this user's own digest settings instead")
    rs.add_argument("--reminder-channel", help='channel id for reminders from DMs ("" clears)')
    rs.add_argument("--manager-channel", help='channel id for escalations ("" clears)')
    rs.add_argument("--digest-time", help="morning digest time, HH:MM local (default 09:00)")
    rs.add_argument("--digest-days", help="morning digest days, e.g. mon-fri")
    rs.add_argument("--escalate-after", type=int, help="escalate after N days overdue")
    rs.add_argument("--morning-digest", choices=("on", "off"))
    rs.set_defaults(run=cmd_reminder_settings)
    train = sub.add_parser("train-scores", help="learn lead scores from history, rescore")
    train.add_argument("--workspace", help="one Slack team id (default: every workspace)")
    train.set_defaults(run=cmd_train_scores)
    db = sub.add_parser("db", help="database tasks")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_sub.add_parser("upgrade", help="apply migrations").set_defaults(run=cmd_db)
    add_data_commands(sub)  # import, export, intake (crmbot/cli_data.py)
    add_privacy_commands(sub)  # encrypt-tokens, forget (crmbot/cli_privacy.py)
    add_restricted_commands(sub)  # restricted-fields (crmbot/cli_restricted.py)
    demo = sub.add_parser("demo", help="try crmbot in this terminal, no Slack workspace needed")
    demo_arguments(demo)
    demo.set_defaults(run=cmd_demo)
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
