"""Numbers for managers: the pipeline with forecast, win rate, stage timings and stale deals,
and the period report (activity, leads, won/lost, overdue) against the period before.

Every figure is one bounded SQL aggregate (GROUP BY over stages, currencies, owners, kinds or
days), never a loop over deals in Python. Money is summed as integer cents per currency and
turned into Decimal at the end, so totals are exact on SQLite (which stores REAL) too.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    and_,
    case,
    cast,
    extract,
    func,
    literal,
    or_,
    select,
    text,
    type_coerce,
)
from sqlalchemy.orm import Session

from crmbot.domain import (
    DealStatus,
    FollowUpStatus,
    InteractionKind,
    InvalidInput,
    LeadStatus,
    Money,
    RecordKind,
    StageKind,
)
from crmbot.reporting import (
    CENT,
    ActivityReport,
    Counted,
    ForecastMonth,
    LostReason,
    OwnerRow,
    PipelineReport,
    RepActivity,
    StageRow,
    StaleDeal,
    WinRate,
)
from crmbot.service import privacy
from crmbot.service.base import optional_user
from crmbot.service.reminder_types import zone
from crmbot.service.scoring import ScoringService
from crmbot.service.segments import SegmentService
from crmbot.service.undo import UndoService
from crmbot.store import queries
from crmbot.store.models import (
    Deal,
    Event,
    FollowUp,
    Interaction,
    Lead,
    Rep,
    Stage,
    StageHistory,
    UtcDateTime,
)

WIN_RATE_DAYS = 90
STAGE_TIMING_DAYS = 180  # stints that began in the last half year make the average
STALE_SHOWN = 10
LOST_REASONS_SHOWN = 5
PERIOD_DAYS = {"week": 7, "month": 30, "quarter": 91}

Cents = dict[str, int]  # currency -> integer cents


def _cents(mask: str | None = None) -> ColumnElement[int]:
    """A deal's amount in integer cents; with `mask` (a rep's id, when amounts are restricted)
    only the amounts of that rep's own deals, others count as no amount."""
    cents = cast(func.round(Deal.amount * 100), BigInteger)
    return cents if mask is None else case((Deal.owner_id == mask, cents), else_=None)


def _masked(mask: str | None) -> ColumnElement[bool] | None:
    """Deals with an amount that `mask` may not see (None when nothing is masked)."""
    if mask is None:
        return None
    return and_(Deal.amount.is_not(None), or_(Deal.owner_id.is_(None), Deal.owner_id != mask))


def _monies(cents: Cents, scale: int = 100) -> tuple[Money, ...]:
    """Money per currency, sorted by currency code; `scale` divides the integer sums."""
    return tuple(
        Money((Decimal(value) / scale).quantize(CENT, ROUND_HALF_UP), currency)
        for currency, value in sorted(cents.items())
    )


def _add(into: Cents, currency: str, value: Any) -> None:
    if value is not None:
        into[currency] = into.get(currency, 0) + int(value)


def quarter_start(day: date) -> date:
    return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def add_months(day: date, months: int) -> date:
    years, month = divmod(day.month - 1 + months, 12)
    return date(day.year + years, month + 1, 1)


class ReportService(ScoringService, SegmentService, UndoService):
    # --- pipeline -----------------------------------------------------------------

    def pipeline_report(
        self,
        ws: str,
        *,
        owner_id: str | None = None,
        team: bool = False,
        tz: str = "UTC",
        by: str | None = None,
    ) -> PipelineReport:
        """Open deals by stage (count, amount, weighted), forecast by close month for this
        quarter and the next, 90-day win rate, average days per stage and stale deals.

        When amounts are restricted and `by` is a rep, sums hold only their own deals' amounts
        and `hidden_amounts` counts the rest (service/privacy.py); None: the operator."""
        owner_id = optional_user(owner_id)
        now = self._now()
        today = now.astimezone(zone(tz)).date()  # an unknown zone reads as UTC
        with self._db.read() as session:
            mask = privacy.viewer(session, ws, by).masks_amounts
            stages = [s for s in queries.stages(session, ws) if s.kind == StageKind.OPEN.value]
            mine = self._open_deals(ws, owner_id)
            by_stage, owners = self._stage_sums(session, ws, stages, mine, team=team, mask=mask)
            timings = self._stage_timings(session, ws, owner_id, now)
            stale_counts, stale = self._stale(session, ws, stages, mine, now, mask=mask)
            rows = tuple(
                StageRow(
                    stage=s.name,
                    probability=s.probability,
                    rotting_days=s.rotting_days,
                    count=by_stage[s.id][0],
                    amounts=_monies(by_stage[s.id][1]),
                    weighted=_monies(by_stage[s.id][2], 10_000),
                    avg_days=timings.get(s.id, (None, 0))[0],
                    stints=timings.get(s.id, (None, 0))[1],
                    stale=stale_counts.get(s.id, 0),
                )
                for s in stages
            )
            totals: Cents = {}
            weighted: Cents = {}
            for s in stages:
                for currency, value in by_stage[s.id][1].items():
                    _add(totals, currency, value)
                for currency, value in by_stage[s.id][2].items():
                    _add(weighted, currency, value)
            forecast, undated, slipped = self._forecast(session, stages, mine, today, mask)
            masked = _masked(mask)
            hidden = (
                session.scalar(select(func.count()).select_from(Deal).where(*mine, masked))
                if masked is not None
                else 0
            )
            return PipelineReport(
                owner_id=owner_id,
                team=team,
                as_of=now,
                today=today,
                stages=rows,
                totals=_monies(totals),
                weighted_totals=_monies(weighted, 10_000),
                forecast=forecast,
                undated=undated,
                slipped=slipped,
                win_rate=self._win_rate(session, ws, owner_id, now, mask),
                stale=stale,
                stale_count=sum(stale_counts.values()),
                owners=owners,
                hidden_amounts=int(hidden or 0),
            )

    @staticmethod
    def _open_deals(ws: str, owner_id: str | None) -> list[ColumnElement[bool]]:
        where = [
            Deal.workspace_id == ws,
            Deal.status == DealStatus.OPEN.value,
            Deal.deleted_at.is_(None),
        ]
        if owner_id:
            where.append(Deal.owner_id == owner_id)
        return where

    def _stage_sums(
        self,
        session: Session,
        ws: str,
        stages: list[Stage],
        where: list[ColumnElement[bool]],
        *,
        team: bool,
        mask: str | None = None,
    ) -> tuple[dict[int, tuple[int, Cents, Cents]], tuple[OwnerRow, ...]]:
        """Per stage: count, cents and weighted cents (cents x percent) per currency."""
        default = {s.id: s.probability for s in stages}
        by_stage: dict[int, tuple[int, Cents, Cents]] = {s.id: (0, {}, {}) for s in stages}
        by_owner: dict[str | None, tuple[int, Cents, Cents]] = {}
        keys = [Deal.stage_id, Deal.currency, Deal.probability]
        if team:
            keys.append(Deal.owner_id)
        stmt = (
            select(*keys, func.count(), func.sum(_cents(mask)))
            .where(*where, Deal.stage_id.in_(default))
            .group_by(*keys)
        )
        for found in session.execute(stmt):
            row: tuple[Any, ...] = tuple(found)
            stage_id, currency, probability, count, cents = row[0], row[1], row[2], row[-2], row[-1]
            chance = default[stage_id] if probability is None else probability
            targets = [by_stage[stage_id]]
            if team:
                targets.append(by_owner.setdefault(row[3], (0, {}, {})))
            for target in targets:
                _add(target[1], currency, cents)
                _add(target[2], currency, None if cents is None else int(cents) * chance)
            by_stage[stage_id] = (by_stage[stage_id][0] + int(count), *by_stage[stage_id][1:])
            if team:
                total = by_owner[row[3]]
                by_owner[row[3]] = (total[0] + int(count), total[1], total[2])
        names = self._rep_names(session, ws, [o for o in by_owner if o])
        owners = tuple(
            OwnerRow(
                owner_id=owner,
                name=names.get(owner or "", owner or "nobody"),
                count=count,
                amounts=_monies(cents),
                weighted=_monies(weighted, 10_000),
            )
            for owner, (count, cents, weighted) in sorted(
                by_owner.items(), key=lambda item: (-item[1][0], item[0] or "")
            )
        )
        return by_stage, owners

    @staticmethod
    def _rep_names(session: Session, ws: str, user_ids: Iterable[str]) -> dict[str, str]:
        wanted = sorted(set(user_ids))
        if not wanted:
            return {}
        rows = session.execute(
            select(Rep.user_id, Rep.name).where(Rep.workspace_id == ws, Rep.user_id.in_(wanted))
        )
        return {row.user_id: row.name for row in rows}

    def _forecast(
        self,
        session: Session,
        stages: list[Stage],
        where: list[ColumnElement[bool]],
        today: date,
        mask: str | None = None,
    ) -> tuple[tuple[ForecastMonth, ...], int, int]:
        """Weighted and unweighted amounts by expected close month, this quarter and next."""
        default = {s.id: s.probability for s in stages}
        first = quarter_start(today)
        months = [add_months(first, n) for n in range(6)]
        end = add_months(first, 6)
        keys = (Deal.close_date, Deal.currency, Deal.stage_id, Deal.probability)
        stmt = (
            select(*keys, func.count(), func.sum(_cents(mask)))
            .where(*where, Deal.close_date >= first, Deal.close_date < end)
            .group_by(*keys)
        )
        counts: dict[date, int] = defaultdict(int)
        amounts: dict[date, Cents] = defaultdict(dict)
        weighted: dict[date, Cents] = defaultdict(dict)
        for close, currency, stage_id, probability, count, cents in session.execute(stmt):
            assert close is not None  # the WHERE clause keeps undated deals out
            month = close.replace(day=1)
            chance = default.get(stage_id, 0) if probability is None else probability
            counts[month] += int(count)
            _add(amounts[month], currency, cents)
            _add(weighted[month], currency, None if cents is None else int(cents) * chance)
        undated, slipped = session.execute(
            select(
                func.count(case((Deal.close_date.is_(None), 1))),
                func.count(case((Deal.close_date < today, 1))),
            ).where(*where)
        ).one()
        forecast = tuple(
            ForecastMonth(m, counts[m], _monies(amounts[m]), _monies(weighted[m], 10_000))
            for m in months
        )
        return forecast, int(undated), int(slipped)

    def _win_rate(
        self,
        session: Session,
        ws: str,
        owner_id: str | None,
        now: datetime,
        mask: str | None = None,
    ) -> WinRate:
        stmt = (
            select(Deal.status, Deal.currency, func.count(), func.sum(_cents(mask)))
            .where(
                Deal.workspace_id == ws,
                Deal.status.in_([DealStatus.WON.value, DealStatus.LOST.value]),
                Deal.closed_at >= now - timedelta(days=WIN_RATE_DAYS),
                Deal.deleted_at.is_(None),
            )
            .group_by(Deal.status, Deal.currency)
        )
        if owner_id:
            stmt = stmt.where(Deal.owner_id == owner_id)
        won = lost = 0
        won_cents: Cents = {}
        for status, currency, count, cents in session.execute(stmt):
            if status == DealStatus.WON.value:
                won += int(count)
                _add(won_cents, currency, cents)
            else:
                lost += int(count)
        return WinRate(WIN_RATE_DAYS, won, lost, _monies(won_cents))

    def _stage_timings(
        self, session: Session, ws: str, owner_id: str | None, now: datetime
    ) -> dict[int, tuple[Decimal | None, int]]:
        """Mean days of finished stints per stage (entered to left), begun in the last 180 days."""
        left_at = func.lead(StageHistory.at).over(
            partition_by=StageHistory.deal_id, order_by=(StageHistory.at, StageHistory.id)
        )
        stints = select(
            StageHistory.to_stage_id.label("stage_id"),
            StageHistory.at.label("entered"),
            left_at.label("left_at"),
        ).where(
            StageHistory.workspace_id == ws,
            StageHistory.at >= now - timedelta(days=STAGE_TIMING_DAYS),
        )
        if owner_id:
            deals = select(Deal.id).where(Deal.workspace_id == ws, Deal.owner_id == owner_id)
            stints = stints.where(StageHistory.deal_id.in_(deals))
        sub = stints.subquery()
        if session.get_bind().dialect.name == "sqlite":
            days: ColumnElement[Any] = func.julianday(sub.c.left_at) - func.julianday(sub.c.entered)
        else:
            days = extract("epoch", sub.c.left_at - sub.c.entered) / 86400
        stmt = (
            select(sub.c.stage_id, func.avg(days), func.count())
            .where(sub.c.left_at.is_not(None))
            .group_by(sub.c.stage_id)
        )
        return {
            stage_id: (Decimal(str(avg)).quantize(Decimal("0.1"), ROUND_HALF_UP), int(count))
            for stage_id, avg, count in session.execute(stmt)
            if avg is not None
        }

    def _stale(
        self,
        session: Session,
        ws: str,
        stages: list[Stage],
        where: list[ColumnElement[bool]],
        now: datetime,
        *,
        mask: str | None = None,
    ) -> tuple[dict[int, int], tuple[StaleDeal, ...]]:
        """Open deals with no interaction for longer than their stage's rotting days,
        counted from the later of their last interaction and entering the stage.

        Two passes over the open deals, two index seeks each: counts per stage, then the
        longest-idle few."""
        rotting = {s.id: s for s in stages if s.rotting_days > 0}
        if not rotting:
            return {}, ()
        cutoff = case(
            {sid: literal(now - timedelta(days=s.rotting_days), UtcDateTime())
             for sid, s in rotting.items()},
            value=Deal.stage_id,
        )  # fmt: skip
        # An open deal's newest stage move is the one into its current stage; without a
        # stage filter the max is read from the end of the (deal_id, at) index, no table row.
        entered = func.coalesce(
            select(func.max(StageHistory.at))
            .where(StageHistory.deal_id == Deal.id)
            .scalar_subquery(),
            Deal.created_at,
        )
        recent = (
            select(Interaction.id)
            .where(Interaction.deal_id == Deal.id, Interaction.occurred_at >= cutoff)
            .exists()
        )
        stale = [*where, Deal.stage_id.in_(rotting), entered < cutoff, ~recent]
        counts = {
            stage_id: int(count)
            for stage_id, count in session.execute(
                select(Deal.stage_id, func.count()).where(*stale).group_by(Deal.stage_id)
            )
        }
        if not counts:
            return {}, ()
        touched = (
            select(func.max(Interaction.occurred_at))
            .where(Interaction.deal_id == Deal.id)
            .scalar_subquery()
        )
        # Stale means both are before the cutoff; the later of them is when it went quiet.
        # (Each subquery once per row: GREATEST skips NULLs; SQLite's max(a, b) needs ''.)
        later: ColumnElement[Any]
        if session.get_bind().dialect.name == "sqlite":
            later = func.max(func.coalesce(touched, ""), entered)
        else:
            later = func.greatest(touched, entered)
        idle_since = type_coerce(later, UtcDateTime())
        rows = session.execute(
            select(
                Deal.stage_id,
                Deal.number,
                Deal.name,
                Deal.owner_id,
                Deal.amount,
                Deal.currency,
                idle_since.label("idle_since"),
            )
            .where(*stale)
            .order_by(text("idle_since"), Deal.id)  # the computed column, not computed again
            .limit(STALE_SHOWN)
        )
        found = [
            StaleDeal(
                ref=queries.ref_of(RecordKind.DEAL, row.number),
                name=row.name,
                stage=rotting[row.stage_id].name,
                owner_id=row.owner_id,
                amount=(
                    Money(row.amount, row.currency)
                    if row.amount is not None and (mask is None or row.owner_id == mask)
                    else None
                ),
                idle_days=(now - row.idle_since).days,
                rotting_days=rotting[row.stage_id].rotting_days,
            )
            for row in rows
        ]
        return counts, tuple(found)

    # --- period report --------------------------------------------------------------

    def activity_report(
        self,
        ws: str,
        period: str = "week",
        *,
        owner_id: str | None = None,
        by: str | None = None,
    ) -> ActivityReport:
        """Interactions per rep and kind, leads created/qualified/converted, deals won and
        lost with reasons, overdue follow-ups: the last 7/30/91 days against the ones before.

        Won amounts restricted from `by` are left out and counted in `hidden_amounts`."""
        if period not in PERIOD_DAYS:
            raise InvalidInput("period", "Pick a period.", example="week, month or quarter")
        owner_id = optional_user(owner_id)
        end = self._now()
        start = end - timedelta(days=PERIOD_DAYS[period])
        previous = start - timedelta(days=PERIOD_DAYS[period])
        with self._db.read() as session:
            kinds, per_rep = self._interactions(session, ws, owner_id, previous, start, end)
            created, qualified, converted = self._lead_flow(
                session, ws, owner_id, previous, start, end
            )
            mask = privacy.viewer(session, ws, by).masks_amounts
            closed, won_cents, per_rep_closed, hidden = self._closed(
                session, ws, owner_id, previous, start, end, mask
            )
            overdue = self._overdue(session, ws, owner_id, end)
            reasons = self._lost_reasons(session, ws, owner_id, start, end)
            people = set(per_rep) | set(per_rep_closed) | set(overdue)
            if owner_id:
                people = {owner_id}
            names = self._rep_names(session, ws, people)
            reps = tuple(
                sorted(
                    (
                        RepActivity(
                            user_id=user,
                            name=names.get(user, user),
                            by_kind=tuple(
                                (k, per_rep.get(user, {}).get(k, Counted(0, 0)).now)
                                for k in InteractionKind
                            ),
                            interactions=Counted(
                                sum(c.now for c in per_rep.get(user, {}).values()),
                                sum(c.before for c in per_rep.get(user, {}).values()),
                            ),
                            won=per_rep_closed.get(user, {}).get(DealStatus.WON.value, 0),
                            lost=per_rep_closed.get(user, {}).get(DealStatus.LOST.value, 0),
                            overdue=overdue.get(user, 0),
                        )
                        for user in people
                    ),
                    key=lambda r: (-r.interactions.now, -r.won, r.name.casefold()),
                )
            )
            return ActivityReport(
                period=period,
                start=start,
                end=end,
                previous_start=previous,
                owner_id=owner_id,
                interactions=Counted(
                    sum(c.now for c in kinds.values()), sum(c.before for c in kinds.values())
                ),
                by_kind=tuple((k, kinds.get(k, Counted(0, 0))) for k in InteractionKind),
                reps=reps,
                leads_created=created,
                leads_qualified=qualified,
                leads_converted=converted,
                deals_won=closed[DealStatus.WON.value],
                deals_lost=closed[DealStatus.LOST.value],
                won_amounts=_monies(won_cents[1]),
                previous_won_amounts=_monies(won_cents[0]),
                lost_reasons=reasons,
                overdue=sum(overdue.values()),
                model=self._model_info(session, ws),
                hidden_amounts=hidden,
            )

    @staticmethod
    def _bucket(column: Any, start: datetime) -> ColumnElement[int]:
        """1 for rows in the current period, 0 for the period before."""
        return case((column >= start, 1), else_=0)

    def _interactions(
        self,
        session: Session,
        ws: str,
        owner_id: str | None,
        previous: datetime,
        start: datetime,
        end: datetime,
    ) -> tuple[dict[InteractionKind, Counted], dict[str, dict[InteractionKind, Counted]]]:
        bucket = self._bucket(Interaction.occurred_at, start).label("bucket")
        stmt = (
            select(bucket, Interaction.logged_by, Interaction.kind, func.count())
            .where(
                Interaction.workspace_id == ws,
                Interaction.occurred_at >= previous,
                Interaction.occurred_at <= end,
            )
            .group_by(bucket, Interaction.logged_by, Interaction.kind)
        )
        if owner_id:
            stmt = stmt.where(Interaction.logged_by == owner_id)
        raw: dict[str, dict[InteractionKind, list[int]]] = defaultdict(
            lambda: defaultdict(lambda: [0, 0])
        )
        for current, user, kind, count in session.execute(stmt):
            raw[user][InteractionKind(kind)][int(current)] += int(count)
        per_rep = {
            user: {k: Counted(now=v[1], before=v[0]) for k, v in kinds.items()}
            for user, kinds in raw.items()
        }
        totals: dict[InteractionKind, Counted] = {}
        for kinds in per_rep.values():
            for kind, counted in kinds.items():
                seen = totals.get(kind, Counted(0, 0))
                totals[kind] = Counted(seen.now + counted.now, seen.before + counted.before)
        return totals, per_rep

    def _lead_flow(
        self,
        session: Session,
        ws: str,
        owner_id: str | None,
        previous: datetime,
        start: datetime,
        end: datetime,
    ) -> tuple[Counted, Counted, Counted]:
        """Leads created (by created_at); qualified and converted (by their audit events)."""
        bucket = self._bucket(Lead.created_at, start).label("bucket")
        created = select(bucket, func.count()).where(
            Lead.workspace_id == ws,
            Lead.created_at >= previous,
            Lead.created_at <= end,
            Lead.deleted_at.is_(None),
        )
        if owner_id:
            created = created.where(Lead.owner_id == owner_id)
        made = [0, 0]
        for current, count in session.execute(created.group_by(bucket)):
            made[int(current)] += int(count)
        ev_bucket = self._bucket(Event.at, start).label("bucket")
        qualified = and_(
            Event.action == "update",
            Event.after["status"].as_string() == LeadStatus.QUALIFIED.value,
        )
        action = case((Event.action == "convert", "convert"), else_="qualify").label("what")
        flow = (
            select(ev_bucket, action, func.count())
            .where(
                Event.workspace_id == ws,
                Event.kind == RecordKind.LEAD.value,
                Event.action.in_(["update", "convert"]),
                or_(Event.action == "convert", qualified),
                Event.at >= previous,
                Event.at <= end,
            )
            .group_by(ev_bucket, action)
        )
        if owner_id:
            owned = select(Lead.id).where(Lead.workspace_id == ws, Lead.owner_id == owner_id)
            flow = flow.where(Event.record_id.in_(owned))
        counts = {"qualify": [0, 0], "convert": [0, 0]}
        for current, what, count in session.execute(flow):
            counts[what][int(current)] += int(count)
        return (
            Counted(made[1], made[0]),
            Counted(counts["qualify"][1], counts["qualify"][0]),
            Counted(counts["convert"][1], counts["convert"][0]),
        )

    def _closed(
        self,
        session: Session,
        ws: str,
        owner_id: str | None,
        previous: datetime,
        start: datetime,
        end: datetime,
        mask: str | None = None,
    ) -> tuple[dict[str, Counted], tuple[Cents, Cents], dict[str, dict[str, int]], int]:
        """Deals won and lost (count, and won cents per currency), per period and owner;
        with `mask`, other owners' won amounts are left out and counted (this period's)."""
        bucket = self._bucket(Deal.closed_at, start).label("bucket")
        keys = (bucket, Deal.status, Deal.currency, Deal.owner_id)
        stmt = (
            select(*keys, func.count(), func.sum(_cents()), func.count(Deal.amount))
            .where(
                Deal.workspace_id == ws,
                Deal.status.in_([DealStatus.WON.value, DealStatus.LOST.value]),
                Deal.closed_at >= previous,
                Deal.closed_at <= end,
                Deal.deleted_at.is_(None),
            )
            .group_by(*keys)
        )
        if owner_id:
            stmt = stmt.where(Deal.owner_id == owner_id)
        counts = {DealStatus.WON.value: [0, 0], DealStatus.LOST.value: [0, 0]}
        won: tuple[Cents, Cents] = ({}, {})
        per_rep: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        hidden = 0
        for current, status, currency, owner, count, cents, priced in session.execute(stmt):
            counts[status][int(current)] += int(count)
            if status == DealStatus.WON.value and mask is not None and owner != mask:
                hidden += int(priced) if current else 0
            elif status == DealStatus.WON.value:
                _add(won[int(current)], currency, cents)
            if current and owner:
                per_rep[owner][status] += int(count)
        closed = {status: Counted(now=v[1], before=v[0]) for status, v in counts.items()}
        return closed, won, per_rep, hidden

    @staticmethod
    def _overdue(session: Session, ws: str, owner_id: str | None, now: datetime) -> dict[str, int]:
        stmt = (
            select(FollowUp.owner_id, func.count())
            .where(
                FollowUp.workspace_id == ws,
                FollowUp.status == FollowUpStatus.OPEN.value,
                FollowUp.due_at <= now,
            )
            .group_by(FollowUp.owner_id)
        )
        if owner_id:
            stmt = stmt.where(FollowUp.owner_id == owner_id)
        return {owner: int(count) for owner, count in session.execute(stmt)}

    @staticmethod
    def _lost_reasons(
        session: Session, ws: str, owner_id: str | None, start: datetime, end: datetime
    ) -> tuple[LostReason, ...]:
        reason = func.coalesce(Deal.lost_reason, "")
        stmt = (
            select(reason, func.count())
            .where(
                Deal.workspace_id == ws,
                Deal.status == DealStatus.LOST.value,
                Deal.closed_at >= start,
                Deal.closed_at <= end,
                Deal.deleted_at.is_(None),
            )
            .group_by(reason)
            .order_by(func.count().desc(), reason)
            .limit(LOST_REASONS_SHOWN)
        )
        if owner_id:
            stmt = stmt.where(Deal.owner_id == owner_id)
        return tuple(
            LostReason(text or "no reason given", int(count))
            for text, count in session.execute(stmt)
        )


__all__ = ["PERIOD_DAYS", "ReportService", "add_months", "quarter_start"]
