"""Admins edit the pipeline's stages: rename, reorder, add, remove, change probabilities.

The stages are written as lines of text, one stage per line, in pipeline order:

    Prospecting 10%
    Discovery 25%                 <- a new stage (a probability is required)
    Proposal -> Proposal sent 50%  <- a rename; deals in it stay in it
    Won
    Lost

A stage left out is removed, which is allowed only while no deal is or ever was in it (its
history would point nowhere); Won and Lost can be renamed but never removed. Stage changes
are not in the record audit trail (they belong to no record) and `/crm undo` doesn't take
them back.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from crmbot.domain import InvalidInput, Role, StageKind, StageView
from crmbot.parsing import clean_text, fold
from crmbot.service.workspace import WorkspaceService
from crmbot.store import queries
from crmbot.store.models import Deal, Stage, StageHistory

FIELD = "stages"
MAX_STAGES = 20
STAGE_NAME_MAX = 60
DEFAULT_ROTTING_DAYS = 14
EXAMPLE = "Proposal -> Proposal sent 50%"

_LINE = re.compile(
    r"^\s*(?:\d+[.)]\s+)?"  # "1. " as the modal shows them
    r"(?:(?P<was>.+?)\s*(?:->|→)\s*)?"
    r"(?P<name>.+?)"
    r"(?:\s*[·,:]?\s*(?P<prob>\d{1,4})\s*%)?"
    r"(?:\s*[·,]\s*(?:open|won|lost))?\s*$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class StageLine:
    """One line of the stage editor: `was` names the stage being renamed, if any."""

    name: str
    probability: int | None
    was: str | None = None


def parse_stage_lines(text: str) -> tuple[StageLine, ...]:
    """The stage editor's text, line by line; InvalidInput names the line that's wrong."""
    lines: list[StageLine] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        raw = raw.replace("*", "").strip()
        if not raw:
            continue
        match = _LINE.match(raw)
        if match is None:  # pragma: no cover - the pattern matches any non-empty line
            raise InvalidInput(FIELD, f"Line {number} isn't a stage.", example=EXAMPLE)
        name = clean_text(match["name"], field=FIELD, max_len=STAGE_NAME_MAX, required=True)
        was = match["was"]
        prob = match["prob"]
        probability = int(prob) if prob is not None else None
        if probability is not None and probability > 100:
            raise InvalidInput(
                FIELD, f"Line {number}: a probability is 0 to 100 %.", example=EXAMPLE
            )
        lines.append(
            StageLine(
                name or "",
                probability,
                clean_text(was, field=FIELD, max_len=STAGE_NAME_MAX) if was else None,
            )
        )
    if len(lines) > MAX_STAGES:
        raise InvalidInput(FIELD, f"A pipeline has at most {MAX_STAGES} stages.")
    return tuple(lines)


class StageService(WorkspaceService):
    def set_stages(self, ws: str, lines: Sequence[StageLine], *, by: str) -> tuple[StageView, ...]:
        """Admins replace the pipeline with `lines` (see the module's docstring)."""
        self.stages(ws)  # a new workspace gets its default pipeline first
        with self._db.write() as session:
            self._require_role(session, ws, by, Role.ADMIN, "change the pipeline's stages")
            current = list(queries.stages(session, ws))
            by_name = {fold(s.name): s for s in current}
            kept: list[tuple[Stage | None, StageLine]] = []
            seen: set[str] = set()
            for line in lines:
                if fold(line.name) in seen:
                    raise InvalidInput(FIELD, f"{line.name} is listed twice.")
                seen.add(fold(line.name))
                old = by_name.get(fold(line.was or line.name))
                if line.was and old is None:
                    raise InvalidInput(FIELD, f"There is no stage called {line.was} to rename.")
                if old is not None and any(o is old for o, _ in kept):
                    raise InvalidInput(FIELD, f"{old.name} is listed twice.")
                if old is None and line.probability is None:
                    raise InvalidInput(
                        FIELD, f"Give the new stage {line.name} a probability.", example=EXAMPLE
                    )
                kept.append((old, line))
            self._check_closed_stages(current, kept)
            self._drop(session, ws, [s for s in current if not any(o is s for o, _ in kept)])
            # Two steps, so renames that swap names never meet the unique constraint.
            for old, _ in kept:
                if old is not None:
                    old.name = f"~{old.id}"
            session.flush()
            for position, (old, line) in enumerate(kept):
                stage = old or Stage(
                    workspace_id=ws,
                    kind=StageKind.OPEN.value,
                    rotting_days=DEFAULT_ROTTING_DAYS,
                )
                stage.name = line.name
                stage.position = position
                if line.probability is not None:
                    stage.probability = line.probability
                if old is None:
                    session.add(stage)
            session.flush()
            found = queries.stages(session, ws)
            return tuple(
                StageView(s.name, s.position, s.probability, StageKind(s.kind), s.rotting_days)
                for s in found
            )

    @staticmethod
    def _check_closed_stages(
        current: Sequence[Stage], kept: Sequence[tuple[Stage | None, StageLine]]
    ) -> None:
        for stage in current:
            if stage.kind == StageKind.OPEN.value:
                continue
            line = next((line for old, line in kept if old is stage), None)
            if line is None:
                raise InvalidInput(
                    FIELD,
                    f"{stage.name} closes deals as {stage.kind}: rename it if you like, "
                    "but keep it in the list.",
                )
            fixed = 100 if stage.kind == StageKind.WON.value else 0
            if line.probability is not None and line.probability != fixed:
                raise InvalidInput(FIELD, f"{stage.name} always stands at {fixed} %.")
        if not any(old is not None and old.kind == StageKind.OPEN.value for old, _ in kept) and (
            not any(old is None for old, _ in kept)
        ):
            raise InvalidInput(FIELD, "Keep at least one open stage.")

    @staticmethod
    def _drop(session: Session, ws: str, gone: Sequence[Stage]) -> None:
        if not gone:
            return
        ids = [s.id for s in gone]
        deals = dict(
            session.execute(
                select(Deal.stage_id, func.count())
                .where(Deal.workspace_id == ws, Deal.stage_id.in_(ids))
                .group_by(Deal.stage_id)
            ).all()
        )
        used = deals or session.scalar(
            select(func.count())
            .select_from(StageHistory)
            .where(
                StageHistory.workspace_id == ws,
                or_(StageHistory.to_stage_id.in_(ids), StageHistory.from_stage_id.in_(ids)),
            )
        )
        if used:
            names = ", ".join(s.name for s in gone if deals.get(s.id)) or ", ".join(
                s.name for s in gone
            )
            raise InvalidInput(
                FIELD,
                f"Deals are or were in {names}: move them to another stage first, "
                "or rename the stage instead of removing it.",
                example=EXAMPLE,
            )
        for stage in gone:
            session.delete(stage)
        session.flush()
