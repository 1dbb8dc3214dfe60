"""Who is acting, in which workspace: from Bolt's verified context, never from payloads."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from crmbot.domain import InvalidInput, PermissionDenied, RepView, Role
from crmbot.service import CrmService

log = logging.getLogger(__name__)
REFRESH_AFTER = timedelta(days=1)


@dataclass(frozen=True)
class Actor:
    """The person behind a request, as a rep of the workspace it came from."""

    ws: str
    user_id: str
    name: str
    tz: str
    role: Role


def workspace_of(context: Any) -> str:
    """The workspace id Bolt verified for this request (team, or enterprise for org apps)."""
    ws = context.get("team_id") or context.get("enterprise_id")
    if not ws:
        raise InvalidInput("workspace", "This request came without a workspace.")
    return str(ws)


class Directory:
    """Reps as Slack describes them: `users.info` kept in the database, refreshed daily.

    Each process also remembers a rep for CACHE_SECONDS, so a burst of commands costs one
    database read, not one per request. Permissions are never decided from this copy: the
    service reads roles from the database in the transaction that needs them.
    """

    CACHE_SECONDS = 30.0

    def __init__(self, crm: CrmService) -> None:
        self._crm = crm
        self._cache: dict[tuple[str, str], tuple[float, RepView]] = {}
        self._lock = threading.Lock()

    def actor(self, context: Any, client: WebClient, user_id: str) -> Actor:
        """The acting rep, created on first use, profile refreshed from Slack when stale."""
        ws = workspace_of(context)
        rep = self.rep(ws, client, user_id, enterprise_id=context.get("enterprise_id"))
        return Actor(ws=ws, user_id=user_id, name=rep.name, tz=rep.tz, role=rep.role)

    def rep(
        self, ws: str, client: WebClient, user_id: str, *, enterprise_id: str | None = None
    ) -> RepView:
        """The rep for a Slack user: from this process's cache, the database or Slack."""
        key = (ws, user_id)
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None and time.monotonic() - cached[0] < self.CACHE_SECONDS:
            return cached[1]
        rep = self._load(ws, client, user_id, enterprise_id=enterprise_id)
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[key] = (time.monotonic(), rep)
        return rep

    def _load(
        self, ws: str, client: WebClient, user_id: str, *, enterprise_id: str | None
    ) -> RepView:
        known = self._crm.rep(ws, user_id)
        now = self._crm.now()
        if known is not None and known.refreshed_at and now - known.refreshed_at < REFRESH_AFTER:
            return known
        if known is None:
            self._crm.ensure_workspace(ws, enterprise_id=enterprise_id)
        profile = self._users_info(client, user_id)
        if profile is None:
            return known or self._crm.upsert_rep(ws, user_id, name=user_id)
        home, org = profile.pop("team_id"), profile.pop("enterprise_id")
        if _is_guest(ws, enterprise_id, home, org):
            log.info("refused %s: a member of %s, not of %s", user_id, home, ws)
            raise PermissionDenied(GUESTS)
        return self._crm.upsert_rep(ws, user_id, **profile)

    @staticmethod
    def _users_info(client: WebClient, user_id: str) -> dict[str, Any] | None:
        try:
            user = client.users_info(user=user_id)["user"]
        except SlackApiError as exc:
            log.warning("users.info for %s failed: %s", user_id, exc.response.get("error"))
            return None
        profile = user.get("profile") or {}
        name = profile.get("real_name") or user.get("real_name") or user.get("name") or user_id
        return {
            "name": str(name),
            "tz": str(user.get("tz") or "UTC"),
            "email": profile.get("email"),
            "active": not user.get("deleted", False),
            "team_id": user.get("team_id"),
            "enterprise_id": (user.get("enterprise_user") or {}).get("enterprise_id"),
        }


GUESTS = (
    "crmbot keeps this workspace's customer records for its own members, and you're here "
    "from another organisation (Slack Connect). Ask the people you work with here to look "
    "something up or log it for you."
)


def _is_guest(ws: str, enterprise_id: str | None, home: str | None, org: str | None) -> bool:
    """Whether users.info says the person belongs to another organisation (Slack Connect).

    A member's home team is the workspace, or (Enterprise Grid) any team of the same
    enterprise; a profile without a team id is given the benefit of the doubt.
    """
    if not home or home == ws:
        return False
    return not (enterprise_id and org == enterprise_id) and org != ws
