"""`crmbot restricted-fields`: which fields only a record's owner, managers and admins read."""

from __future__ import annotations

import argparse
from typing import Any

from crmbot.cli_data import _db, _team
from crmbot.config import ConfigError, Settings
from crmbot.domain import CrmError
from crmbot.service.privacy import RESTRICTABLE

HELP = """Show or set the fields that only a record's owner, managers and admins may read
(the same choice as in /crm settings). Fields: amount (a deal's amount, and every total,
forecast and chart made from it), email and phone (of leads and contacts).

  crmbot restricted-fields                 show them
  crmbot restricted-fields amount email    restrict these (and no others)
  crmbot restricted-fields --none          restrict nothing"""


def cmd_restricted_fields(settings: Settings, args: argparse.Namespace) -> int:
    """Print the workspace's restricted fields, after setting them if asked."""
    db, crm = _db(settings)
    try:
        ws = _team(crm, args.team)
        if args.fields or args.none:
            if args.fields and args.none:
                raise ConfigError("Give field names or --none, not both.")
            try:
                fields = crm.set_restricted_fields(ws, args.fields, by=None)
            except CrmError as error:
                raise ConfigError(error.message) from None
        else:
            fields = crm.restricted_fields(ws)
        print(f"{ws}: restricted fields: {', '.join(sorted(fields)) or 'none'}")
    finally:
        db.dispose()
    return 0


def add_commands(sub: Any) -> None:
    """Add `restricted-fields` to the `crmbot` parser's subcommands."""
    cmd = sub.add_parser(
        "restricted-fields",
        help="show or set the fields only owners, managers and admins read",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cmd.add_argument("fields", nargs="*", metavar="FIELD", help=", ".join(RESTRICTABLE))
    cmd.add_argument("--none", action="store_true", help="restrict no field")
    cmd.add_argument("--team", help="workspace (Slack team id); default: the only one")
    cmd.set_defaults(run=cmd_restricted_fields)
