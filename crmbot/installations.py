"""OAuth installations in the database, their tokens encrypted when CRMBOT_ENCRYPTION_KEY is set.

slack-sdk's SQLAlchemy installation store keeps bot and user tokens (and refresh tokens) in
`slack_installations` and `slack_bots`. `SealedInstallationStore` is that store with those
columns typed `SealedToken`, so every path that writes or reads them (save, save_bot,
find_bot, find_installation, Bolt's token rotation) seals and opens them in one place.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
from sqlalchemy import Column, Engine, Integer, MetaData, Table, Text, inspect, select, update

from crmbot.config import ConfigError, Settings
from crmbot.tokencrypt import SealedToken, TokenCipher, TokenKeyError, is_sealed, open_without_key

# Every column of slack-sdk's tables that holds something that lets its holder act as the app.
SECRET_COLUMNS = (
    "bot_token",
    "bot_refresh_token",
    "user_token",
    "user_refresh_token",
    "incoming_webhook_url",
)


class SealedInstallationStore(SQLAlchemyInstallationStore):
    """slack-sdk's SQLAlchemy installation store, tokens sealed at rest when a cipher is set."""

    def __init__(self, client_id: str, engine: Engine, cipher: TokenCipher | None) -> None:
        super().__init__(client_id=client_id, engine=engine)
        self.cipher = cipher
        for table in self.tables():
            for name in SECRET_COLUMNS:
                if name in table.c:
                    table.append_column(Column(name, SealedToken(cipher)), replace_existing=True)

    def tables(self) -> tuple[Table, Table]:
        return self.installations, self.bots


_TOKEN = re.compile(r"\b(xox[a-z]|xoxe\.xox[a-z]|xoxe)-[A-Za-z0-9-]+")
# slack-sdk logs whole Web API responses at DEBUG, among them oauth.v2.access's new tokens.
_LOGGERS_WITH_TOKENS = ("slack_sdk.web.base_client", "crmbot.bolt")


class RedactTokens(logging.Filter):
    """Replaces anything shaped like a Slack token in a log record with `xox…-[redacted]`."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "xox" in message:
            record.msg, record.args = _TOKEN.sub(r"\1-[redacted]", message), None
        return True


def redact_tokens_in_logs() -> None:
    """Keep tokens out of the logs even at DEBUG (idempotent)."""
    for name in _LOGGERS_WITH_TOKENS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokens) for f in logger.filters):
            logger.addFilter(RedactTokens())


def installation_store(settings: Settings, engine: Engine) -> SealedInstallationStore:
    """The OAuth installation store, its tables created if missing and its tokens checked.

    A token the configured key can't open (or an encrypted one with no key set) stops the
    process here with a paragraph saying what to set, instead of failing each request later.
    """
    redact_tokens_in_logs()
    store = SealedInstallationStore(
        client_id=settings.slack_client_id or "", engine=engine, cipher=settings.token_cipher()
    )
    store.metadata.create_all(engine)
    try:
        check_tokens(store)
    except TokenKeyError as problem:
        raise ConfigError(str(problem)) from None
    return store


@dataclass(frozen=True)
class TokenCount:
    """How many stored token values are encrypted and how many are plaintext."""

    sealed: int
    plain: int


def _raw_rows(store: SealedInstallationStore) -> list[tuple[Table, list[str], list[Any]]]:
    """Each table's secret columns and rows, read as stored (nothing opened)."""
    found: list[tuple[Table, list[str], list[Any]]] = []
    existing = set(inspect(store.engine).get_table_names())
    metadata = MetaData()
    for table in store.tables():
        if table.name not in existing:
            continue
        names = [n for n in SECRET_COLUMNS if n in table.c]
        # The same columns through a plain-text copy of the table: values as stored.
        columns: list[Column[Any]] = [Column("id", Integer, primary_key=True)]
        columns += [Column(name, Text) for name in names]
        raw = Table(table.name, metadata, *columns)
        with store.engine.connect() as conn:
            rows = list(conn.execute(select(raw)).all())
        found.append((raw, names, rows))
    return found


def check_tokens(store: SealedInstallationStore) -> TokenCount:
    """Open every stored token once; TokenKeyError when one can't be."""
    sealed = plain = 0
    for _, names, rows in _raw_rows(store):
        for row in rows:
            for name in names:
                value = getattr(row, name)
                if value is None:
                    continue
                if is_sealed(value):
                    sealed += 1
                    if store.cipher is None:
                        open_without_key(value)
                    else:
                        store.cipher.open(value)
                else:
                    plain += 1
    return TokenCount(sealed, plain)


def reseal_tokens(store: SealedInstallationStore, *, decrypt: bool = False) -> TokenCount:
    """Re-encrypt every stored token with the first key (or write them back as plaintext).

    Plaintext rows written before the key was set get encrypted; rows sealed with an older
    key of the list move to the first one, after which the older key can be dropped."""
    cipher = store.cipher
    if cipher is None:
        raise ConfigError(
            "Set CRMBOT_ENCRYPTION_KEY first: `crmbot encrypt-tokens` encrypts the stored Slack "
            "tokens with its first key (and `--decrypt` turns them back into plaintext)."
        )
    changed_sealed = changed_plain = 0
    try:
        for raw, names, rows in _raw_rows(store):
            with store.engine.begin() as conn:
                for row in rows:
                    values: dict[str, str] = {}
                    for name in names:
                        value = getattr(row, name)
                        if value is None:
                            continue
                        new = cipher.open(value) if decrypt else cipher.reseal(value)
                        if new != value:
                            values[name] = new
                    if values:
                        conn.execute(update(raw).where(raw.c.id == row.id).values(**values))
                        if decrypt:
                            changed_plain += len(values)
                        else:
                            changed_sealed += len(values)
    except TokenKeyError as problem:
        raise ConfigError(str(problem)) from None
    return TokenCount(changed_sealed, changed_plain)
