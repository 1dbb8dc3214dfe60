"""Alembic, driven from code: the migrations ship inside the package."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

from crmbot.store.db import normalize_url

MIGRATIONS = Path(__file__).parent / "migrations"

# Objects the migrations manage by hand, per engine, that the models don't describe.
HAND_MADE_TABLES = ("search_fts", "search_words")
HAND_MADE_INDEXES = ("ix_search_doc_newest", "ix_search_doc_words")  # PostgreSQL (0010)
# Tables slack-sdk makes for OAuth installs (crmbot.app creates them beside crmbot's own).
SLACK_SDK_TABLES = ("slack_bots", "slack_installations", "slack_oauth_states")


def include_object(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    """Leave the engine-specific search structures out of autogenerate's comparison."""
    if name is None:
        return True
    if type_ == "table" and name.startswith(HAND_MADE_TABLES + SLACK_SDK_TABLES):
        return False
    if type_ == "index" and getattr(getattr(obj, "table", None), "name", "") in SLACK_SDK_TABLES:
        return False
    return not (type_ == "index" and (name.endswith("_trgm") or name in HAND_MADE_INDEXES))


def alembic_config(url: str) -> Config:
    """An Alembic config pointing at the packaged migrations and the given database."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", normalize_url(url).replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head", *, engine: Engine | None = None) -> None:
    """Bring the schema up to `revision` (default: the newest)."""
    config = alembic_config(url)
    if engine is None:
        command.upgrade(config, revision)
        return
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def downgrade(url: str, revision: str = "base") -> None:
    """Take the schema down to `revision` (default: empty)."""
    command.downgrade(alembic_config(url), revision)
