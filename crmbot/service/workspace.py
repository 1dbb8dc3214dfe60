"""Workspaces, reps and the pipeline's stages."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from crmbot.domain import (
    PermissionDenied,
    RepView,
    Role,
    StageKind,
    StageView,
)
from crmbot.parsing import clean_text, fold
from crmbot.service.base import ServiceBase, is_user_id, require_user
from crmbot.store import queries
from crmbot.store.models import Rep, Stage, Workspace

DEFAULT_STAGES: tuple[tuple[str, int, StageKind, int], ...] = (
    ("Prospecting", 10, StageKind.OPEN, 14),
    ("Qualification", 20, StageKind.OPEN, 14),
    ("Proposal", 50, StageKind.OPEN, 21),
    ("Negotiation", 75, StageKind.OPEN, 21),
    ("Won", 100, StageKind.WON, 0),
    ("Lost", 0, StageKind.LOST, 0),
)


def rep_view(rep: Rep) -> RepView:
    return RepView(
        user_id=rep.user_id,
        name=rep.name,
        role=Role(rep.role),
        tz=rep.tz,
        active=rep.active,
        email=rep.email,
        territory=rep.territory,
        refreshed_at=rep.refreshed_at,
        team=rep.team,
    )


TEAM_MAX = 100
KNOWN_REPS_MAX = 100_000  # (workspace, user) pairs remembered per process


def may_change(
    role: Role, user_id: str, team: str | None, owner_id: str | None, owner_team: str | None
) -> bool:
    """Whether a rep may change a record owned by `owner_id` (a member of `owner_team`).

    Admins change anything. Everyone changes what they own. A manager without a team
    manages the whole workspace; a manager with a team changes unowned records and the
    records of that team's members, and nothing owned by someone outside it.
    """
    if role is Role.ADMIN or (owner_id is not None and owner_id == user_id):
        return True
    if role is not Role.MANAGER:
        return False
    return team is None or owner_id is None or owner_team == team


class WorkspaceService(ServiceBase):
    def ensure_workspace(
        self, ws: str, *, name: str = "", enterprise_id: str | None = None
    ) -> None:
        """Create the workspace with the default pipeline the first time it is seen."""
        with self._db.read() as session:
            if session.get(Workspace, ws) is not None:
                return
        with self._db.write() as session:
            self._ensure_workspace(session, ws, name=name, enterprise_id=enterprise_id)

    def _ensure_workspace(
        self, session: Session, ws: str, *, name: str = "", enterprise_id: str | None = None
    ) -> None:
        if session.get(Workspace, ws) is not None:
            return
        insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
        created = session.execute(
            insert(Workspace)
            .values(
                id=ws,
                enterprise_id=enterprise_id,
                name=name,
                digest_time="09:00",
                default_currency="USD",
                settings={},
                created_at=self._now(),
            )
            .on_conflict_do_nothing()
            .returning(Workspace.id)
        ).scalar_one_or_none()
        if created is None:  # another process made it first
            return
        for position, (stage, probability, kind, rotting) in enumerate(DEFAULT_STAGES):
            session.add(
                Stage(
                    workspace_id=ws,
                    name=stage,
                    position=position,
                    probability=probability,
                    kind=kind.value,
                    rotting_days=rotting,
                )
            )
        session.flush()

    def upsert_rep(
        self,
        ws: str,
        user_id: str,
        *,
        name: str,
        tz: str = "UTC",
        email: str | None = None,
        active: bool = True,
    ) -> RepView:
        """Record a Slack user as a rep, or refresh their profile. The first rep is admin."""
        with self._db.write() as session:
            self._ensure_workspace(session, ws)
            rep = self._rep(session, ws, user_id)
            if rep is None:
                rep = self._new_rep(session, ws, user_id, name=name)
            rep.name, rep.tz, rep.email, rep.active = name[:200] or user_id, tz, email, active
            rep.refreshed_at = self._now()
            return rep_view(rep)

    def ensure_rep(self, session: Session, ws: str, user_id: str) -> Rep:
        """The rep row for a user, made with placeholders if they never used the bot."""
        user_id = require_user(user_id)  # only Slack user ids become reps, never stray text
        self._ensure_workspace(session, ws)
        return self._rep(session, ws, user_id) or self._new_rep(session, ws, user_id, name=user_id)

    def ensure_rep_row(self, session: Session, ws: str, user_id: str) -> None:
        """Like `ensure_rep`, for writes that need the rep row to exist, not its fields: once
        this process has seen it committed, no query at all."""
        user_id = require_user(user_id)
        if (ws, user_id) in self._known_reps:
            return
        made: set[tuple[str, str]] = session.info.setdefault("crmbot_new_reps", set())
        self._ensure_workspace(session, ws)
        if self._rep(session, ws, user_id) is None:
            self._new_rep(session, ws, user_id, name=user_id)
            made.add((ws, user_id))  # not known until committed: this write may roll back
            return
        if (ws, user_id) in made:
            return
        if len(self._known_reps) >= KNOWN_REPS_MAX:
            self._known_reps.clear()
        self._known_reps.add((ws, user_id))

    def _new_rep(self, session: Session, ws: str, user_id: str, *, name: str) -> Rep:
        user_id = require_user(user_id)
        # Several processes may meet a new user at once: insert-or-ignore, then read.
        first = not session.scalar(
            select(func.count()).select_from(Rep).where(Rep.workspace_id == ws)
        )
        insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
        session.execute(
            insert(Rep)
            .values(
                workspace_id=ws,
                user_id=user_id,
                name=name,
                role=(Role.ADMIN if first else Role.REP).value,
                tz="UTC",
                active=True,
                created_at=self._now(),
            )
            .on_conflict_do_nothing()
        )
        rep = self._rep(session, ws, user_id)
        assert rep is not None
        return rep

    @staticmethod
    def _rep(session: Session, ws: str, user_id: str) -> Rep | None:
        if not is_user_id(user_id):  # stray text is nobody (and never reaches the query)
            return None
        return session.scalars(
            select(Rep).where(Rep.workspace_id == ws, Rep.user_id == user_id)
        ).one_or_none()

    def rep(self, ws: str, user_id: str) -> RepView | None:
        """The rep, if this user has used the bot."""
        with self._db.read() as session:
            rep = self._rep(session, ws, user_id)
            return rep_view(rep) if rep else None

    def rep_named(self, ws: str, name: str) -> RepView | None:
        """The one rep whose name, or email's local part, matches `name` (None if 0 or 2+)."""
        wanted = fold(name.lstrip("@"))
        with self._db.read() as session:
            rows = session.scalars(select(Rep).where(Rep.workspace_id == ws).limit(5000))
            hits = [
                r
                for r in rows
                if wanted
                in (
                    fold(r.name),
                    fold(r.name).replace(" ", ""),
                    fold((r.email or "").split("@")[0]),
                )
            ]
            return rep_view(hits[0]) if len(hits) == 1 else None

    def reps(self, ws: str) -> tuple[RepView, ...]:
        """Every rep of the workspace."""
        with self._db.read() as session:
            rows = session.scalars(select(Rep).where(Rep.workspace_id == ws).order_by(Rep.name))
            return tuple(rep_view(r) for r in rows)

    def set_role(self, ws: str, user_id: str, role: Role, *, by: str) -> RepView:
        """Admins change another rep's role."""
        with self._db.write() as session:
            self._require_role(session, ws, by, Role.ADMIN, "change roles")
            rep = self.ensure_rep(session, ws, user_id)
            rep.role = role.value
            return rep_view(rep)

    def set_team(self, ws: str, user_id: str, team: str | None, *, by: str) -> RepView:
        """Admins put a rep in a sales team (None: no team)."""
        cleaned = clean_text(team or "", field="team", max_len=TEAM_MAX) or None
        with self._db.write() as session:
            self._require_role(session, ws, by, Role.ADMIN, "change teams")
            rep = self.ensure_rep(session, ws, user_id)
            rep.team = cleaned
            return rep_view(rep)

    def _require_role(self, session: Session, ws: str, user_id: str, role: Role, doing: str) -> Rep:
        rep = self.ensure_rep(session, ws, user_id)
        rank = {Role.REP: 0, Role.MANAGER: 1, Role.ADMIN: 2}
        if rank[Role(rep.role)] < rank[role]:
            who = "managers and admins" if role is Role.MANAGER else f"{role.value}s"
            raise PermissionDenied(f"Only {who} can {doing}.")
        return rep

    def _require_can_change(
        self, session: Session, ws: str, by: str, record: Any, doing: str
    ) -> Rep:
        """The acting rep, if they may change `record`: its owner, their manager or an admin.

        See `may_change` for the rule. The roles and teams are read inside the caller's
        transaction, so a demotion or a team change takes effect at once.
        """
        rep = self.ensure_rep(session, ws, by)
        owner_id = record.owner_id
        owner = self._rep(session, ws, owner_id) if owner_id and owner_id != by else None
        owner_team = owner.team if owner is not None else None
        if may_change(Role(rep.role), by, rep.team, owner_id, owner_team):
            return rep
        ref = queries.ref_of(queries.kind_of(record), record.number)
        if owner_id is None:
            raise PermissionDenied(
                f"{ref} has no owner yet: claim it first, or ask a manager or an admin "
                f"to {doing} it."
            )
        # The error reaches Slack escaped, so name the owner in plain text, not as a mention.
        name = owner.name if owner is not None else owner_id
        managers = f"a manager of team {owner_team}" if owner_team else "a manager"
        raise PermissionDenied(
            f"Only the owner (@{name}), {managers} or an admin can {doing} {ref}."
        )

    def stages(self, ws: str) -> tuple[StageView, ...]:
        """The workspace's pipeline stages in order."""
        with self._db.read() as session:
            found = queries.stages(session, ws)
        if not found:  # a workspace seen for the first time: make it, with the default pipeline
            with self._db.write() as session:
                self._ensure_workspace(session, ws)
                found = queries.stages(session, ws)
        return tuple(
            StageView(s.name, s.position, s.probability, StageKind(s.kind), s.rotting_days)
            for s in found
        )
