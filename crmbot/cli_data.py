"""`crmbot import`, `crmbot export` and `crmbot intake …` (web-form intake administration)."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any

from crmbot.config import ConfigError, Settings
from crmbot.csvmap import Kind
from crmbot.domain import CrmError, Role
from crmbot.exporter import export_csv
from crmbot.importer import CsvProblem, import_csv, terminal_progress
from crmbot.service import CrmService
from crmbot.service.assignment import TERRITORY_FIELDS
from crmbot.store.db import Database
from crmbot.store.migrate import upgrade

IMPORT_HELP = """\
Columns are matched by header, case and punctuation ignored: crmbot's own export headers
and those of Salesforce, HubSpot and Pipedrive exports ("First Name", "Email",
"Lead Status", "Contact owner", "Person - Email - Work", "Deal - Value", ...). Rows are
matched by email (leads, contacts), web domain (accounts) or name: a match with new values
updates the record, one without is a duplicate. Rejected rows go to FILE.rejected.csv
beside the input, with the reason for each. The last line is the summary:
imported N, updated N, duplicates N, rejected N."""


def _db(settings: Settings) -> tuple[Database, CrmService]:
    upgrade(settings.database_url)
    db = Database(settings.database_url, pool_size=5)
    return db, CrmService(db)


def _team(crm: CrmService, given: str | None) -> str:
    if given:
        return given
    teams = crm.workspace_ids()
    if len(teams) == 1:
        return teams[0]
    known = ", ".join(teams) or "none yet"
    raise ConfigError(f"Name the workspace with --team (Slack team id, e.g. T0123ABCD); {known}.")


def _admin(crm: CrmService, ws: str) -> str:
    """The CLI runs with the server's own access; it acts as the workspace's first admin."""
    admins = [r.user_id for r in crm.reps(ws) if r.role is Role.ADMIN]
    if not admins:
        raise ConfigError(f"{ws} has no admin yet: someone has to use the bot in Slack first.")
    return sorted(admins)[0]


def cmd_import(settings: Settings, args: argparse.Namespace) -> int:
    """Import a CSV file of leads, contacts, accounts or deals."""
    db, crm = _db(settings)
    try:
        ws = _team(crm, args.team)
        if not args.file.is_file():
            raise CsvProblem(f"{args.file} is not a file.")
        summary = import_csv(
            db,
            ws,
            Kind(args.kind),
            args.file,
            dry_run=args.dry_run,
            encoding=args.encoding,
            progress=terminal_progress(),
        )
    except CsvProblem as problem:
        print(f"crmbot: {problem}", file=sys.stderr)
        return 2
    finally:
        db.dispose()
    notes = []
    if summary.dry_run:
        notes.append("dry run: nothing was written.")
    if summary.accounts_created:
        verb = "would make" if summary.dry_run else "made"
        notes.append(f"{verb} {summary.accounts_created} new account(s) for the company names.")
    if summary.ignored_columns:
        notes.append("ignored columns: " + ", ".join(summary.ignored_columns))
    if summary.unknown_owners:
        shown = ", ".join(sorted(summary.unknown_owners)[:5])
        notes.append(f"owners not found among the reps (left unassigned): {shown}")
    if summary.rejects_path is not None:
        notes.append(f"rejected rows and why: {summary.rejects_path}")
    elif summary.first_rejects:
        notes += [f"line {line}: {reason}" for line, reason in summary.first_rejects]
    for note in notes:
        print(note, file=sys.stderr)
    print(summary.line())
    return 0


def cmd_export(settings: Settings, args: argparse.Namespace) -> int:
    """Write every live record of a kind as CSV (stdout or -o FILE)."""
    db, crm = _db(settings)
    try:
        ws = _team(crm, args.team)
        if args.output:
            with Path(args.output).open("w", encoding="utf-8", newline="") as out:
                count = export_csv(db, ws, Kind(args.kind), out, as_user=args.as_user)
            print(f"exported {count} {args.kind} to {args.output}", file=sys.stderr)
        else:
            sys.stdout.reconfigure(newline="")  # type: ignore[union-attr]
            export_csv(db, ws, Kind(args.kind), sys.stdout, as_user=args.as_user)
    finally:
        db.dispose()
    return 0


def _until(text: str) -> datetime:
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(
            f"--until takes a date or time such as 2026-12-24, not {text!r}."
        ) from None
    if len(text) <= 10:
        when = datetime.combine(when.date(), time(0))
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when


def cmd_intake(settings: Settings, args: argparse.Namespace) -> int:
    """Web-form intake administration."""
    db, crm = _db(settings)
    try:
        ws = _team(crm, args.team)
        what = args.intake_command
        if what == "token":
            print(crm.rotate_intake_token(ws, by=_admin(crm, ws)))
            print(
                "Give this token to your web form; the previous one stopped working.",
                file=sys.stderr,
            )
        elif what == "channel":
            crm.set_intake_channel(ws, args.channel, by=_admin(crm, ws))
        elif what == "sla":
            crm.set_response_sla(ws, args.minutes, by=_admin(crm, ws))
        elif what == "rule":
            if args.delete:
                if not crm.delete_territory_rule(ws, args.field, args.value, by=_admin(crm, ws)):
                    print("no such rule", file=sys.stderr)
                    return 1
            else:
                crm.set_territory_rule(ws, args.field, args.value, args.reps, by=_admin(crm, ws))
        elif what == "away":
            until = None if args.back else _until(args.until) if args.until else None
            if not args.back and until is None:
                raise ConfigError("Say until when (--until 2026-12-24) or --back.")
            crm.set_away(ws, args.user, until, by=_admin(crm, ws))
        _show(crm, ws, what, args)
    except CrmError as error:
        print(f"crmbot: {error.message}", file=sys.stderr)
        return 2
    finally:
        db.dispose()
    return 0


def _show(crm: CrmService, ws: str, what: str, args: Any) -> None:
    if what in ("channel", "sla", "show"):
        info = crm.intake_settings(ws)
        token = f"…{info.token_hint}" if info.token_hint else "none (crmbot intake token)"
        print(f"channel: {info.channel_id or '(the reminder channel)'}")
        print(f"response time: {info.sla_minutes} working minutes")
        print(f"token: {token}")
        print("available for round-robin: " + (", ".join(crm.available_reps(ws)) or "nobody"))
    if what in ("rule", "rules"):
        for rule in crm.territory_rules(ws):
            print(f"{rule.field} = {rule.value}: {', '.join(rule.reps)}")
    if what == "log":
        for entry in crm.assignment_log(ws, limit=args.limit):
            print(f"{entry.at:%Y-%m-%d %H:%M} {entry.lead_ref} -> {entry.owner_id}: {entry.rule}")


def add_commands(sub: Any) -> None:
    """Add import, export and intake to the `crmbot` parser's subcommands."""
    kinds = [k.value for k in Kind]
    imp = sub.add_parser(
        "import",
        help="import leads, contacts, accounts or deals from a CSV file",
        description=IMPORT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    imp.add_argument("kind", choices=kinds)
    imp.add_argument("file", type=Path)
    imp.add_argument("--dry-run", action="store_true", help="check and count; write nothing")
    imp.add_argument("--team", help="workspace (Slack team id); default: the only one")
    imp.add_argument("--encoding", help="the file's encoding when not UTF-8, e.g. latin-1")
    imp.set_defaults(run=cmd_import)

    exp = sub.add_parser("export", help="write every record of a kind as CSV")
    exp.add_argument("kind", choices=kinds)
    exp.add_argument("--team", help="workspace (Slack team id); default: the only one")
    exp.add_argument("-o", "--output", help="file to write (default: standard output)")
    exp.add_argument(
        "--as",
        dest="as_user",
        metavar="USER",
        help="only what this Slack user (U…) may read: restricted fields left empty",
    )
    exp.set_defaults(run=cmd_export)

    intake = sub.add_parser("intake", help="web-form intake: token, channel, SLA, territories")
    intake.add_argument("--team", help="workspace (Slack team id); default: the only one")
    isub = intake.add_subparsers(dest="intake_command", required=True)
    isub.add_parser("show", help="channel, response time, token, who is in the rotation")
    isub.add_parser("token", help="make a new intake token and print it (shown once)")
    channel = isub.add_parser("channel", help="the channel new web leads are announced in")
    channel.add_argument("channel", help='channel id, e.g. C0123ABCD ("" clears)')
    sla = isub.add_parser("sla", help="working minutes for the first follow-up (default 60)")
    sla.add_argument("minutes", type=int)
    isub.add_parser("rules", help="list territory rules")
    rule = isub.add_parser("rule", help="set or delete a territory rule")
    rule.add_argument("field", choices=TERRITORY_FIELDS)
    rule.add_argument("value", help='e.g. DE, EMEA, "Health care"')
    rule.add_argument("reps", nargs="*", help="Slack user ids (U…); several take turns")
    rule.add_argument("--delete", action="store_true")
    away = isub.add_parser("away", help="take a rep out of the rotation for a while")
    away.add_argument("user", help="Slack user id (U…)")
    away.add_argument("--until", help="date or time (UTC), e.g. 2026-12-24")
    away.add_argument("--back", action="store_true", help="back in the rotation now")
    log = isub.add_parser("log", help="recent assignments and the rule behind each")
    log.add_argument("--limit", type=int, default=20)
    for command in ("show", "token", "channel", "sla", "rules", "rule", "away", "log"):
        isub.choices[command].set_defaults(run=cmd_intake)
