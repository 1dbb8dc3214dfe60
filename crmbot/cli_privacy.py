"""`crmbot encrypt-tokens` (installation tokens at rest) and `crmbot forget EMAIL` (erasure)."""

from __future__ import annotations

import argparse

from crmbot.config import Settings
from crmbot.installations import SealedInstallationStore, check_tokens, reseal_tokens
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
