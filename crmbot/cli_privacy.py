"""`crmbot encrypt-tokens` (installation tokens at rest) and `crmbot forget EMAIL` (erasure)."""

from __future__ import annotations

import argparse
import getpass
import sys

from crmbot.config import Settings
from crmbot.domain import CrmError
from crmbot.installations import SealedInstallationStore, check_tokens, reseal_tokens
from crmbot.service import CrmService
from crmbot.store.db import Database
from crmbot.store.migrate import upgrade
from crmbot.tokencrypt import new_key


def cmd_encrypt_tokens(settings: Settings, args: argparse.Namespace) -> int:
    """Encrypt every stored Slack token with the first CRMBOT_ENCRYPTION_KEY (or decrypt)."""
    if args.new_key:
        print(new_key())
        return 0
    upgrade(settings.database_url)
    db = Database(settings.database_url, pool_size=2)
    try:
        store = SealedInstallationStore(
            client_id=settings.slack_client_id or "", engine=db.engine, cipher=None
        )
        store.cipher = settings.token_cipher()
        changed = reseal_tokens(store, decrypt=args.decrypt)
        now = check_tokens(store)
    finally:
        db.dispose()
    if args.decrypt:
        print(f"decrypted {changed.plain} tokens; {now.plain} stored as plaintext now.")
    else:
        print(
            f"encrypted {changed.sealed} tokens with the first key; {now.sealed} encrypted, "
            f"{now.plain} plaintext."
        )
    return 0


def cmd_forget(settings: Settings, args: argparse.Namespace) -> int:
    """Erase a person's personal data everywhere and record that it happened."""
    upgrade(settings.database_url)
    db = Database(settings.database_url, pool_size=2)
    try:
        crm = CrmService(db)
        by = args.by or f"cli:{_os_user()}"
        try:
            report = crm.forget(args.email, team=args.team, by=by, dry_run=args.dry_run)
        except CrmError as error:
            print(f"crmbot: {error.message}", file=sys.stderr)
            return 2
    finally:
        db.dispose()
    for line in report.lines():
        print(line)
    return 0


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        return "unknown"


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `encrypt-tokens` and `forget` on the `crmbot` parser."""
    enc = sub.add_parser(
        "encrypt-tokens",
        help="encrypt stored Slack tokens with CRMBOT_ENCRYPTION_KEY's first key",
        description=(
            "Re-encrypts every Slack token of the OAuth installations in the database with the "
            "first key of CRMBOT_ENCRYPTION_KEY: plaintext tokens (stored before the key was "
            "set) and tokens sealed with an older key of the list. Run it after adding or "
            "rotating a key; then older keys can be dropped from the list."
        ),
    )
    what = enc.add_mutually_exclusive_group()
    what.add_argument("--decrypt", action="store_true", help="store the tokens as plaintext")
    what.add_argument("--new-key", action="store_true", help="print a new random key and exit")
    enc.set_defaults(run=cmd_encrypt_tokens)
    forget = sub.add_parser(
        "forget",
        help="erase a person's personal data everywhere (by email)",
        description=(
            "Finds every lead and contact with this email (any case), erases their personal "
            "data from records, interactions, follow-ups, the audit trail and the search index, "
            "and records that an erasure happened (when, who, how many rows; no plaintext)."
        ),
    )
    forget.add_argument("email", help="the person's email address")
    forget.add_argument("--team", help="only this workspace (default: every workspace)")
    forget.add_argument("--dry-run", action="store_true", help="say what would go; change nothing")
    forget.add_argument("--by", help="who asked, for the erasure record (default: cli:OS-USER)")
    forget.set_defaults(run=cmd_forget)
