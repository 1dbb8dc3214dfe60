"""Request keys: run a retried or doubly submitted request once, across every process.

The caller names a request by a key (which Slack request it is, is the handlers' business);
`claim_request` answers a token to the one caller that may run it and None to the others,
until the claim is released (the request failed and may run again) or expires. Keys are
kept in the database, so all processes sharing it agree.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError

from crmbot.service.base import ServiceBase
from crmbot.store import request_keys as rk
from crmbot.store.db import FirstStep
from crmbot.store.request_keys import KeyState

KEY_MAX = 160
PRUNE_LIMIT = 5000

__all__ = [
    "AlreadyClaimed",
    "FirstStep",
    "KeyState",
    "KeysUnavailable",
    "RequestClaim",
    "RequestKeyService",
]


class AlreadyClaimed(Exception):
    """The request's key is held by another delivery of it: this one is a duplicate."""


class KeysUnavailable(Exception):
    """The request keys could not be claimed (their table is missing or broken)."""


@dataclass(frozen=True)
class RequestClaim:
    """A claimed request key; pass it back to finish or release the claim."""

    ws: str
    key: str
    token: str


class RequestKeyService(ServiceBase):
    def claim_request(self, ws: str, key: str, *, ttl: timedelta) -> RequestClaim | None:
        """Claim `key` for `ttl`; None when another caller holds it (a duplicate)."""
        self._check_key(ws, key)
        now = self._now()
        token = uuid.uuid4().hex
        with self._db.write_connection() as conn:
            claimed = rk.claim(conn, ws, key, token=token, now=now, expires_at=now + ttl)
        return RequestClaim(ws, key, token) if claimed else None

    @contextmanager
    def claim_with_save(self, ws: str, key: str, *, ttl: timedelta) -> Iterator[FirstStep]:
        """Within this block, the first write transaction claims `key` before its own work.

        The claim commits with what the transaction saves, or rolls back with it: a key is
        held exactly when something of the request was saved. The transaction raises
        `AlreadyClaimed` (after waiting for a claimer still running, see `rk.claim_done`) for
        a duplicate, `KeysUnavailable` when keys can't be claimed; both roll it back. The
        step's `done` says whether a transaction with the claim committed.
        """
        self._check_key(ws, key)
        token = uuid.uuid4().hex

        def claim(conn: Connection) -> None:
            now = self._now()
            try:
                claimed = rk.claim_done(conn, ws, key, token=token, now=now, expires_at=now + ttl)
            except SQLAlchemyError as error:
                raise KeysUnavailable(key) from error
            if not claimed:
                raise AlreadyClaimed(key)

        with self._db.first_step(FirstStep(claim)) as step:
            yield step

    def finish_request(self, claim: RequestClaim) -> None:
        """The claimed request was answered: duplicates arriving later need not wait."""
        with self._db.write_connection() as conn:
            rk.finish(conn, claim.ws, claim.key, token=claim.token, now=self._now())

    def release_request(self, claim: RequestClaim) -> None:
        """The claimed request failed without saving anything: the same request may run again."""
        with self._db.write_connection() as conn:
            rk.release(conn, claim.ws, claim.key, token=claim.token)

    @staticmethod
    def _check_key(ws: str, key: str) -> None:
        if not ws or not key or len(key) > KEY_MAX or len(ws) > 32:
            raise ValueError("request keys are 1 to 160 characters, in a workspace")

    def request_state(self, ws: str, key: str) -> KeyState:
        """Free, claimed (pending) or answered (done)."""
        with self._db.read() as session:
            return rk.state(session, ws, key, now=self._now())

    def prune_request_keys(self, *, limit: int = PRUNE_LIMIT) -> int:
        """Forget expired request keys (at most `limit` per call); how many went."""
        with self._db.write() as session:
            return rk.prune(session, now=self._now(), limit=limit)
