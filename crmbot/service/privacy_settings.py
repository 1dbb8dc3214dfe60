"""Admins choose which fields only the record's owner, managers and admins may read."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import Any, TypeVar, cast

from crmbot.domain import AmbiguousName, Candidate, Role
from crmbot.parsing import parse_ref
from crmbot.service.privacy import (
    SETTING,
    Viewer,
    clean_fields,
    redact_record,
    restricted_of,
    viewer,
)
from crmbot.service.records import _detail
from crmbot.service.workspace import WorkspaceService
from crmbot.store import queries
from crmbot.store.models import Workspace

T = TypeVar("T")
R = TypeVar("R")


class PrivacySettingsService(WorkspaceService):
    def restricted_fields(self, ws: str) -> frozenset[str]:
        """The workspace's restricted fields (`amount`, `email`, `phone`)."""
        with self._db.read() as session:
            row = session.get(Workspace, ws)
            return restricted_of(row.settings if row is not None else None)

    def set_restricted_fields(
        self, ws: str, fields: Iterable[str], *, by: str | None
    ) -> frozenset[str]:
        """Admins (or the operator, `by=None`) set the restricted fields; the new set back."""
        wanted = clean_fields(fields)
        with self._db.write() as session:
            if by is not None:
                self._require_role(session, ws, by, Role.ADMIN, "change which fields are private")
            self._ensure_workspace(session, ws)
            row = session.get(Workspace, ws)
            assert row is not None
            # A new dict, so the JSON column is seen as changed.
            row.settings = {**(row.settings or {}), SETTING: sorted(wanted)}
            return wanted

    def for_channel(self, ws: str, view: R) -> R:
        """A record view as anyone in a channel may see it: restricted fields out (a channel
        holds reps who don't own the record; its owner reads the full record by DM)."""
        with self._db.read() as session:
            restricted = viewer(session, ws, "").restricted
        return redact_record(view, Viewer("", Role.REP, restricted))

    def visible_candidates(
        self, ws: str, by: str | None, candidates: Sequence[Candidate]
    ) -> tuple[Candidate, ...]:
        """A pick-list as `by` may read it: restricted fields out of each detail line."""
        with self._db.read() as session:
            who = viewer(session, ws, by)
            if who.privileged or not who.restricted:
                return tuple(candidates)
            out = []
            for item in candidates:
                parsed = parse_ref(item.ref)
                record = (
                    queries.by_number(session, ws, parsed.kind, parsed.number) if parsed else None
                )
                hidden = who.hidden_fields(item.kind, getattr(record, "owner_id", None))
                if record is not None and hidden:
                    item = replace(item, detail=_detail(session, record, hidden))
                out.append(item)
            return tuple(out)


F = TypeVar("F", bound=Callable[..., Any])


def _redacts_pick_lists(method: F) -> F:
    @functools.wraps(method)
    def run(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except AmbiguousName as error:
            ws, by = (args[0] if args else kwargs.get("ws")), kwargs.get("by")
            if not isinstance(ws, str) or not isinstance(by, str):
                raise
            shown = self.visible_candidates(ws, by, error.candidates)
            raise AmbiguousName(error.name, shown) from None

    return cast(F, run)


def redacting_pick_lists(cls: type[T]) -> type[T]:
    """Every public verb taking `by=`: an AmbiguousName's pick-list (whose detail lines come
    from the search index) is redacted for `by` before it reaches any surface."""
    for name, member in list(vars_of(cls).items()):
        if name.startswith("_") or not inspect.isfunction(member):  # plain methods only
            continue
        try:
            params = inspect.signature(member).parameters
        except (TypeError, ValueError):
            continue
        if "by" in params and name != "visible_candidates":
            setattr(cls, name, _redacts_pick_lists(member))
    return cls


def vars_of(cls: type[Any]) -> dict[str, Any]:
    """Every attribute along the class's MRO (the nearest definition wins)."""
    found: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        found.update(vars(klass))
    return found
