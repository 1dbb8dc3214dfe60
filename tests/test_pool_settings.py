"""Connection pool sizing from the environment (README: Running at scale)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.pool import QueuePool

from crmbot.config import ConfigError, Settings
from crmbot.store.db import Database


def test_pool_size_and_overflow_come_from_the_environment(tmp_path: Path) -> None:
    settings = Settings.from_env({"CRMBOT_DB_POOL_SIZE": "3", "CRMBOT_DB_MAX_OVERFLOW": "0"})
    assert (settings.db_pool_size, settings.db_max_overflow) == (3, 0)
    db = Database(
        f"sqlite:///{tmp_path}/x.db",
        pool_size=settings.db_pool_size or 5,
        max_overflow=settings.db_max_overflow,
    )
    pool = db.engine.pool
    assert isinstance(pool, QueuePool)
    assert (pool.size(), pool._max_overflow) == (3, 0)
    db.dispose()


def test_unset_pool_settings_keep_the_defaults(tmp_path: Path) -> None:
    settings = Settings.from_env({})
    assert (settings.db_pool_size, settings.db_max_overflow) == (None, None)
    db = Database(f"sqlite:///{tmp_path}/x.db", pool_size=7)
    pool = db.engine.pool
    assert isinstance(pool, QueuePool)
    assert (pool.size(), pool._max_overflow) == (7, 7)
    db.dispose()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CRMBOT_DB_POOL_SIZE", "0"),
        ("CRMBOT_DB_POOL_SIZE", "lots"),
        ("CRMBOT_DB_MAX_OVERFLOW", "-1"),
    ],
)
def test_bad_pool_settings_say_what_to_set(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})
