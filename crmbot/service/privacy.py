"""Private interactions and restricted fields: what one viewer may read (issue 7, item 2).

The service redacts the views it returns, so every surface (cards, search, the record
picker, history, pipeline, reports, App Home, the CLI's `export --as`) shows the same thing.

- A *private* interaction is read in full by whoever logged it, the owner of the record it
  is about (its most specific record: deal, else contact, else account, else lead), managers
  and admins. Everyone else sees that it exists: its kind, when and who logged it.
- A *restricted* field (chosen per workspace by an admin: deal amount, email, phone) is read
  by the record's owner, managers and admins. The owner keeps it because they typed it and
  work the record; hiding a rep's own deal sizes from them would break their own pipeline.
  Everything derived from a restricted amount (weighted amounts, totals, forecasts, charts,
  won amounts, search detail, history values) is left out the same way.
- `viewer=None` / `by=None` is the operator (CLI, scheduler): it reads everything.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from crmbot.domain import (
    ContactView,
    DealView,
    InteractionView,
    InvalidInput,
    LeadView,
    RecordKind,
    Role,
)
from crmbot.store.models import Rep, Workspace

SETTING = "restricted_fields"  # key in Workspace.settings: a sorted list of field names
RESTRICTABLE: dict[str, str] = {
    "amount": "Deal amount",
    "email": "Email (leads and contacts)",
    "phone": "Phone (leads and contacts)",
}
FIELDS_OF: dict[RecordKind, tuple[str, ...]] = {
    RecordKind.DEAL: ("amount",),
    RecordKind.LEAD: ("email", "phone"),
    RecordKind.CONTACT: ("email", "phone"),
}
HIDDEN_VALUE = "hidden"  # what history shows instead of a restricted value


def restricted_of(settings: Mapping[str, Any] | None) -> frozenset[str]:
    """The restricted field names stored in a workspace's settings (unknown names ignored)."""
    raw = (settings or {}).get(SETTING) or ()
    if not isinstance(raw, list | tuple):
        return frozenset()
    return frozenset(f for f in raw if isinstance(f, str) and f in RESTRICTABLE)


def clean_fields(fields: Iterable[str]) -> frozenset[str]:
    """Field names as an admin typed them (`amount`, `Email`), checked against RESTRICTABLE."""
    out = set()
    for field in fields:
        name = str(field).strip().lower()
        if not name:
            continue
        if name not in RESTRICTABLE:
            raise InvalidInput(
                "fields",
                f'"{name[:40]}" is not a field that can be restricted.',
                example=", ".join(RESTRICTABLE),
            )
        out.add(name)
    return frozenset(out)


@dataclass(frozen=True)
class Viewer:
    """Who is looking: their Slack id (None: the operator), role and the workspace's rules."""

    user_id: str | None
    role: Role = Role.ADMIN
    restricted: frozenset[str] = frozenset()

    @property
    def privileged(self) -> bool:
        """Managers, admins and the operator read everything."""
        return self.user_id is None or self.role is not Role.REP

    def hidden_fields(self, kind: RecordKind, owner_id: str | None) -> frozenset[str]:
        """The restricted fields of a `kind` record owned by `owner_id` hidden from this viewer."""
        if not self.restricted or self.privileged or (owner_id and owner_id == self.user_id):
            return frozenset()
        return frozenset(f for f in FIELDS_OF.get(kind, ()) if f in self.restricted)

    @property
    def masks_amounts(self) -> str | None:
        """The viewer's id when amounts of deals they don't own must be left out of sums."""
        if "amount" in self.restricted and not self.privileged:
            return self.user_id
        return None

    def reads(self, *, private: bool, logged_by: str, owner_id: str | None) -> bool:
        """Whether this viewer may read an interaction's text."""
        if not private or self.privileged:
            return True
        return self.user_id in (logged_by, owner_id)


OPERATOR = Viewer(None)


# The viewer's role and the workspace's restricted fields in one round trip. Built once: every
# read of every surface asks it, type-ahead included.
_ROLE = (
    select(Rep.role)
    .where(Rep.workspace_id == bindparam("p_ws"), Rep.user_id == bindparam("p_by"))
    .scalar_subquery()
)
_VIEWER = select(Workspace.settings, _ROLE).where(Workspace.id == bindparam("p_ws"))


def viewer(session: Session, ws: str, by: str | None) -> Viewer:
    """The viewer `by` in workspace `ws`, read in the caller's transaction (None: operator)."""
    if by is None:
        return OPERATOR
    found = session.connection().execute(_VIEWER, {"p_ws": ws, "p_by": by}).first()
    settings, rank = (found[0], found[1]) if found is not None else (None, None)
    return Viewer(by, Role(rank) if rank else Role.REP, restricted_of(settings))


R = TypeVar("R")


def kind_of_view(view: object) -> RecordKind | None:
    if isinstance(view, LeadView):
        return RecordKind.LEAD
    if isinstance(view, ContactView):
        return RecordKind.CONTACT
    if isinstance(view, DealView):
        return RecordKind.DEAL
    return None


def redact_record(view: R, who: Viewer) -> R:
    """A record view without the restricted fields this viewer may not read."""
    kind = kind_of_view(view)
    if kind is None:
        return view
    hidden = who.hidden_fields(kind, view.owner_id)  # type: ignore[attr-defined]
    if not hidden:
        return view
    blanks: dict[str, Any] = dict.fromkeys(hidden)
    return replace(view, hidden=tuple(sorted(hidden)), **blanks)  # type: ignore[type-var]


def redact_interaction(
    view: InteractionView, who: Viewer, *, owner_id: str | None
) -> InteractionView:
    """The interaction, or only that it exists (kind, when, who) if it is private to others."""
    if who.reads(private=view.private, logged_by=view.logged_by, owner_id=owner_id):
        return view
    return replace(
        view, summary="", outcome=None, duration_minutes=None, permalink=None, hidden=True
    )


def redact_values(
    values: Mapping[str, Any] | None, hidden: frozenset[str]
) -> dict[str, Any] | None:
    """An audit snapshot with restricted values replaced (keys kept: *that* it changed shows)."""
    if values is None:
        return None
    return {k: (HIDDEN_VALUE if k in hidden and v is not None else v) for k, v in values.items()}
