"""Lead scores: kept fresh on every write to a lead, explained on the card, learned nightly.

`train_scores(ws)` is the nightly job: with at least 50 converted or disqualified leads it fits
the workspace's own model, judges it on held-out leads, and uses it only when it beats the
rules there; then it rescores every lead in bulk. `crmbot train-scores` runs it by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import numpy as np
from sqlalchemy import func, inspect, select, update
from sqlalchemy.orm import Session

from crmbot import scoring
from crmbot.domain import LeadStatus, RecordKind
from crmbot.reporting import LeadScore, ModelInfo
from crmbot.scoring import LeadFacts, Model
from crmbot.service.activity import ActivityService
from crmbot.store import queries
from crmbot.store.models import Interaction, Lead, ScoreModel, Workspace

DECIDED = (LeadStatus.CONVERTED.value, LeadStatus.DISQUALIFIED.value)
BATCH = 5000


@dataclass(frozen=True)
class TrainResult:
    workspace: str
    leads: int
    decided: int
    rescored: int
    model: ModelInfo | None  # None: too few decided leads, the rules score everything

    def summary(self) -> str:
        head = f"{self.workspace}: {self.leads} leads, {self.decided} decided, "
        head += f"{self.rescored} rescored"
        if self.model is None:
            return head + f"; rule-based (a model needs {scoring.MIN_DECIDED} decided leads)"
        m = self.model
        state = "in use" if m.active else "not used (the rules did as well)"
        return (
            head + f"; model {state}: held-out accuracy {m.accuracy} % (rules {m.rule_accuracy} %)"
            f", AUC {m.auc} (rules {m.rule_auc})"
        )


def _days_between(later: datetime, earlier: datetime | None) -> float | None:
    if earlier is None:
        return None
    return max(0.0, (later - earlier).total_seconds() / 86400)


def model_info(row: ScoreModel | None) -> ModelInfo | None:
    if row is None:
        return None
    m = row.metrics
    return ModelInfo(
        trained_at=row.trained_at,
        samples=int(m["samples"]),
        held_out=int(m["held_out"]),
        accuracy=Decimal(m["accuracy"]),
        rule_accuracy=Decimal(m["rule_accuracy"]),
        auc=Decimal(m["auc"]),
        rule_auc=Decimal(m["rule_auc"]),
        active=row.active,
    )


class ScoringService(ActivityService):
    # --- every write to a lead rescores it ---------------------------------------------

    def _index(self, session: Session, record: Any) -> None:
        # An explicit `update(score=...)` wins; anything else about a lead rescores it.
        if isinstance(record, Lead) and (
            record.id is None or not inspect(record).attrs.score.history.has_changes()
        ):
            record.score = self._score(session, record)[0]
        super()._index(session, record)

    def _score(self, session: Session, lead: Lead) -> tuple[int, str, Any, int]:
        """(score, method, reasons, rule score) for one lead, as things stand now."""
        facts = self._facts(session, lead)
        rule, reasons = scoring.rule_score(facts)
        model = self._active_model(session, lead.workspace_id)
        if model is None:
            return rule, "rules", reasons, rule
        learned, why = model.score(facts)
        return learned, "learned", why, rule

    def _facts(self, session: Session, lead: Lead) -> LeadFacts:
        count, last = 0, None
        if lead.id is not None:
            count, last = session.execute(
                select(func.count(), func.max(Interaction.occurred_at)).where(
                    Interaction.lead_id == lead.id
                )
            ).one()
        return LeadFacts(
            source=lead.source,
            has_email=bool(lead.email),
            has_phone=bool(lead.phone),
            has_company=bool(lead.company),
            interactions=int(count or 0),
            days_since_touch=_days_between(self._reference_time(lead), last),
            company_size=scoring.company_size(lead.extra),
        )

    def _reference_time(self, lead: Lead) -> datetime:
        """Decided leads are judged as they stood when decided, open ones as of now."""
        return lead.updated_at if lead.status in DECIDED and lead.updated_at else self._now()

    @staticmethod
    def _active_model(session: Session, ws: str) -> Model | None:
        row = session.get(ScoreModel, ws)
        return Model.from_json(row.model) if row is not None and row.active else None

    def _model_info(self, session: Session, ws: str) -> ModelInfo | None:
        return model_info(session.get(ScoreModel, ws))

    # --- the card --------------------------------------------------------------------

    def lead_score(self, ws: str, ref: str) -> LeadScore:
        """A lead's score as of now, with every reason behind it."""
        with self._db.read() as session:
            lead = queries.resolve(session, ws, ref, kinds=(RecordKind.LEAD,))
            score, method, reasons, rule = self._score(session, lead)
            return LeadScore(
                ref=queries.ref_of(RecordKind.LEAD, lead.number),
                score=score,
                method=method,
                reasons=tuple(reasons),
                rule_score=rule,
                model=model_info(session.get(ScoreModel, ws)),
            )

    # --- nightly -----------------------------------------------------------------------

    def train_scores(self, ws: str) -> TrainResult:
        """Fit the workspace's model when it has enough decided leads, then rescore all."""
        now = self._now()
        with self._db.write() as session:
            ids, facts, statuses, scores = self._all_facts(session, ws)
            decided = [i for i, s in enumerate(statuses) if s in DECIDED]
            evaluation = scoring.train(
                [ids[i] for i in decided],
                [facts[i] for i in decided],
                [statuses[i] == LeadStatus.CONVERTED.value for i in decided],
            )
            row = session.get(ScoreModel, ws)
            if evaluation is not None:
                if row is None:
                    row = ScoreModel(workspace_id=ws)
                    session.add(row)
                row.trained_at = now
                row.active = evaluation.beats_rules
                row.model = evaluation.model.to_json()
                row.metrics = evaluation.metrics()
                session.flush()
            elif row is not None:  # too few decided leads now (deletions): back to rules
                session.delete(row)
                row = None
            active = Model.from_json(row.model) if row is not None and row.active else None
            if active is not None and facts:
                fresh = np.rint(100 * active.probabilities(scoring.matrix(facts))).astype(int)
                new = [int(v) for v in fresh]
            else:
                new = [scoring.rule_score(f)[0] for f in facts]
            changed = [
                {"id": i, "score": s}
                for i, s, old in zip(ids, new, scores, strict=True)
                if s != old
            ]
            for start in range(0, len(changed), BATCH):
                session.execute(update(Lead), changed[start : start + BATCH])
            return TrainResult(ws, len(ids), len(decided), len(changed), model_info(row))

    def train_all_scores(self) -> list[TrainResult]:
        """`train_scores` for every workspace (the scheduler's nightly job)."""
        with self._db.read() as session:
            workspaces = list(session.scalars(select(Workspace.id).order_by(Workspace.id)))
        return [self.train_scores(ws) for ws in workspaces]

    def _all_facts(
        self, session: Session, ws: str
    ) -> tuple[list[int], list[LeadFacts], list[str], list[int]]:
        touches = {
            lead_id: (int(count), last)
            for lead_id, count, last in session.execute(
                select(Interaction.lead_id, func.count(), func.max(Interaction.occurred_at))
                .where(Interaction.workspace_id == ws, Interaction.lead_id.is_not(None))
                .group_by(Interaction.lead_id)
            )
        }
        now = self._now()
        ids: list[int] = []
        facts: list[LeadFacts] = []
        statuses: list[str] = []
        scores: list[int] = []
        rows = session.execute(
            select(
                Lead.id,
                Lead.source,
                Lead.email,
                Lead.phone,
                Lead.company,
                Lead.extra,
                Lead.status,
                Lead.updated_at,
                Lead.score,
            )
            .where(Lead.workspace_id == ws, Lead.deleted_at.is_(None))
            .order_by(Lead.id)
        )
        for row in rows:
            count, last = touches.get(row.id, (0, None))
            reference = row.updated_at if row.status in DECIDED else now
            ids.append(row.id)
            statuses.append(row.status)
            scores.append(row.score)
            facts.append(
                LeadFacts(
                    source=row.source,
                    has_email=bool(row.email),
                    has_phone=bool(row.phone),
                    has_company=bool(row.company),
                    interactions=count,
                    days_since_touch=_days_between(reference, last),
                    company_size=scoring.company_size(row.extra),
                )
            )
        return ids, facts, statuses, scores
