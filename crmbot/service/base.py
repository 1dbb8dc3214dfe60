"""What every part of the service shares: the database, the clock, small guards."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from crmbot.domain import InvalidInput
from crmbot.store.db import Database

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    """The real clock: aware UTC."""
    return datetime.now(UTC)


class ServiceBase:
    """Holds the database and the injected clock."""

    def __init__(self, db: Database, clock: Clock = utcnow) -> None:
        self._db = db
        self._clock = clock
        # (workspace, user) pairs whose rep row this process has seen committed. Reps and
        # workspaces are never deleted, so a write need not look for them again.
        self._known_reps: set[tuple[str, str]] = set()

    def now(self) -> datetime:
        """The service clock's current time (aware UTC)."""
        return self._now()

    @property
    def database_in_process(self) -> bool:
        """True on SQLite, whose work is done by this process (its CPU is ours); False on
        PostgreSQL, which works in its own processes while ours wait on the network."""
        return self._db.dialect == "sqlite"

    def _now(self) -> datetime:
        now = self._clock()
        if now.tzinfo is None:
            raise ValueError("the clock must return aware datetimes")
        return now.astimezone(UTC)


def is_user_id(user_id: object) -> bool:
    """Whether a value has the shape of a Slack user id: U…, W… or B…, ASCII letters and
    digits, at most 32 characters."""
    return (
        isinstance(user_id, str)
        and 0 < len(user_id) <= 32
        and user_id[0] in "UWB"
        and user_id.isascii()
        and user_id.isalnum()
    )


def optional_user(user_id: str | None) -> str | None:
    """None, or a Slack user id checked like `require_user`."""
    return None if user_id is None else require_user(user_id)


def require_user(user_id: str, field: str = "user") -> str:
    """A Slack user id, checked for shape (U… or W…)."""
    user_id = user_id.strip() if isinstance(user_id, str) else ""
    if not is_user_id(user_id):
        raise InvalidInput(field, "That is not a Slack user.", example="@maria")
    return user_id
