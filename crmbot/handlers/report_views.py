"""Block Kit for the manager's views: pipeline, period report, history, undo, find, score.

Pure functions from crmbot.reporting views to render.Reply. Every reply reads on its own as
text; pipeline and report replies also carry their charts, drawn after the text is sent.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from slack_sdk.models.blocks import Block, DividerBlock

from crmbot.charts import ChartFile
from crmbot.domain import Money
from crmbot.handlers import render
from crmbot.handlers.ids import Action
from crmbot.handlers.render import Reply, clip, context, esc, section, user
from crmbot.reporting import (
    ActivityReport,
    Counted,
    FieldChange,
    FindResult,
    HistoryEntry,
    LeadScore,
    ModelInfo,
    PipelineReport,
    RecordHistory,
    SegmentView,
    Undone,
)


@dataclass(frozen=True)
class ChartedReply(Reply):
    """A reply whose charts are drawn and uploaded after the text has gone out."""

    charts: Callable[[], Sequence[ChartFile]] | None = None


ACTIONS = {
    "create": "created",
    "update": "updated",
    "assign": "reassigned",
    "move": "moved",
    "won": "marked won",
    "lost": "marked lost",
    "snooze": "snoozed",
    "done": "marked done",
    "cancelled": "cancelled",
    "delete": "deleted",
    "restore": "restored",
    "convert": "converted",
    "undo": "undid",
}
NOUNS = {
    "create": "creation",
    "update": "update",
    "assign": "reassignment",
    "move": "move",
    "won": "win",
    "lost": "loss",
    "snooze": "snooze",
    "done": "completion",
    "cancelled": "cancellation",
    "delete": "deletion",
    "restore": "restore",
}


def amounts(values: Sequence[Money]) -> str:
    """Money per currency, side by side and never summed: "$1,200 / €300"."""
    return " / ".join(render.money(v) for v in values) if values else "—"


def plural(count: int, word: str, words: str | None = None) -> str:
    return f"{count:,} {word if count == 1 else (words or word + 's')}"


def pct(value: Decimal | None) -> str:
    if value is None:
        return "—"
    return f"{value.normalize():f} %" if value == value.to_integral() else f"{value} %"


def change(counted: Counted) -> str:
    """(+3, +25 %) against the period before; (±0) when flat."""
    if counted.change == 0:
        return "(±0)"
    sign = "+" if counted.change > 0 else "-"
    rel = counted.change_percent
    tail = f", {sign}{abs(rel)} %" if rel is not None else ""
    return f"({sign}{abs(counted.change):,}{tail})"


def day(at: datetime | date) -> str:
    """A date shown in the reader's time zone (Slack date token), UTC fallback."""
    if isinstance(at, datetime):
        return f"<!date^{int(at.timestamp())}^{{date_short}}|{at.strftime('%d %b %Y')}>"
    return at.strftime("%d %b %Y")


def month_label(month: date) -> str:
    return month.strftime("%b %Y")


# --- pipeline ---------------------------------------------------------------------


def pipeline(
    report: PipelineReport, charts: Callable[[], Sequence[ChartFile]] | None = None
) -> ChartedReply:
    """`/crm pipeline`: stages, forecast, win rate, stage timings, stale deals, owners."""
    whose = f"{user(report.owner_id)}'s pipeline" if report.owner_id else "Team pipeline"
    headline = f"{whose}: {plural(report.open_count, 'open deal')}, {amounts(report.totals)}"
    if report.open_count == 0 and report.win_rate.won + report.win_rate.lost == 0:
        return ChartedReply(
            headline, [section(f"*{whose}* — no open deals yet. `/crm deal NAME AMOUNT` adds one.")]
        )
    lines = [f"*{whose}* — open deals by stage"]
    for row in report.stages:
        line = (
            f"*{esc(row.stage)}* ({row.probability} %) · {plural(row.count, 'deal')}"
            f" · {amounts(row.amounts)} · weighted {amounts(row.weighted)}"
        )
        if row.avg_days is not None:
            line += f" · avg {row.avg_days} days here"
        if row.stale:
            line += f" · :warning: {row.stale} stale"
        lines.append(line)
    lines.append(
        f"*Total:* {amounts(report.totals)} · *weighted:* {amounts(report.weighted_totals)}"
    )
    blocks: list[Block] = [section("\n".join(lines))]
    blocks.append(section(_forecast(report)))
    rate = report.win_rate
    win = f"*Win rate, last {rate.days} days:* {pct(rate.rate)} ({rate.won} won, {rate.lost} lost)"
    if rate.won_amounts:
        win += f" · won {amounts(rate.won_amounts)}"
    blocks.append(section(win))
    if report.stale:
        stale = [
            f"*Stale deals* — {plural(report.stale_count, 'deal')} with no interaction for "
            "longer than their stage allows"
        ]
        for deal in report.stale:
            worth = f" · {render.money(deal.amount)}" if deal.amount else ""
            stale.append(
                f"*{deal.ref}* {esc(deal.name)} · {esc(deal.stage)}{worth} · "
                f"{deal.idle_days} days idle (limit {deal.rotting_days}) · {user(deal.owner_id)}"
            )
        if report.stale_count > len(report.stale):
            stale.append(f"…and {report.stale_count - len(report.stale)} more.")
        blocks.append(section(clip("\n".join(stale))))
    if report.owners:
        owners = ["*By owner*"]
        for owner in report.owners[:25]:
            owners.append(
                f"{user(owner.owner_id)} · {plural(owner.count, 'deal')} · "
                f"{amounts(owner.amounts)} · weighted {amounts(owner.weighted)}"
            )
        blocks.append(section(clip("\n".join(owners))))
    currencies = len(report.currencies)
    note = "Weighted = amount x probability (the stage's unless the deal overrides it)."
    if currencies > 1:
        note += f" {currencies} currencies, kept apart: no exchange rates are applied."
    blocks.append(context(note))
    if report.hidden_amounts:
        blocks.append(context(hidden_note(report.hidden_amounts)))
    return ChartedReply(headline, blocks, charts)


def hidden_note(count: int) -> str:
    """Why some amounts are missing from totals (amounts restricted by an admin)."""
    return (
        f":lock: Amounts are visible to managers and admins only: {plural(count, 'deal')} "
        "you don't own are counted, but their amounts are left out of every total here."
    )


def _forecast(report: PipelineReport) -> str:
    lines = ["*Weighted forecast by expected close month*"]
    for i, month in enumerate(report.forecast):
        if i % 3 == 0:
            quarter = (month.month.month - 1) // 3 + 1
            label = "This quarter" if i == 0 else "Next quarter"
            lines.append(f"_{label} (Q{quarter} {month.month.year})_")
        if month.count:
            lines.append(
                f"{month_label(month.month)}: {amounts(month.weighted)} weighted of "
                f"{amounts(month.amounts)} ({plural(month.count, 'deal')})"
            )
        else:
            lines.append(f"{month_label(month.month)}: —")
    extra = []
    if report.slipped:
        extra.append(f"{plural(report.slipped, 'open deal')} past their close date")
    if report.undated:
        extra.append(f"{plural(report.undated, 'open deal')} without a close date")
    if extra:
        lines.append(":calendar: " + "; ".join(extra) + ".")
    return "\n".join(lines)


# --- period report -------------------------------------------------------------------


PERIOD_WORDS = {"week": "7 days", "month": "30 days", "quarter": "91 days"}


def report(
    result: ActivityReport, charts: Callable[[], Sequence[ChartFile]] | None = None
) -> ChartedReply:
    """`/crm report`: activity per rep and kind, lead flow, won/lost, overdue, vs before."""
    span = PERIOD_WORDS[result.period]
    whose = f"{user(result.owner_id)}'s report" if result.owner_id else "Team report"
    top = (
        f"*{whose}* — last {span} ({day(result.start)} to {day(result.end)}), "
        f"compared with the {span} before"
    )
    kinds = ", ".join(
        plural(counted.now, kind.value) for kind, counted in result.by_kind if counted.now
    )
    activity = f"*Activity:* {plural(result.interactions.now, 'interaction')} "
    activity += change(result.interactions)
    if kinds:
        activity += f" — {kinds}"
    conversion = f"conversion {pct(result.conversion)}"
    if result.previous_conversion is not None:
        conversion += f" (was {pct(result.previous_conversion)})"
    leads = (
        f"*Leads:* {result.leads_created.now} created {change(result.leads_created)} · "
        f"{result.leads_qualified.now} qualified {change(result.leads_qualified)} · "
        f"{result.leads_converted.now} converted {change(result.leads_converted)} · "
        f"{conversion} (converted ÷ created)"
    )
    deals = (
        f"*Deals:* {result.deals_won.now} won {change(result.deals_won)}"
        f"{' · ' + amounts(result.won_amounts) if result.won_amounts else ''} · "
        f"{result.deals_lost.now} lost {change(result.deals_lost)}"
    )
    if result.previous_won_amounts:
        deals += f"\n_Won the {span} before:_ {amounts(result.previous_won_amounts)}"
    if result.lost_reasons:
        deals += "\n*Lost because:* " + ", ".join(
            f"{esc(r.reason)} ({r.count})" for r in result.lost_reasons
        )
    overdue = f"*Overdue follow-ups now:* {result.overdue}"
    blocks: list[Block] = [section("\n".join([top, activity, leads, deals, overdue]))]
    if result.reps:
        lines = ["*Per rep*"]
        for rep in result.reps[:30]:
            done = ", ".join(f"{n} {k.value}" for k, n in rep.by_kind if n) or "no activity"
            lines.append(
                f"{user(rep.user_id)} · {plural(rep.interactions.now, 'interaction')} "
                f"{change(rep.interactions)} ({done}) · {rep.won} won · {rep.lost} lost · "
                f"{rep.overdue} overdue"
            )
        blocks.append(section(clip("\n".join(lines))))
    if result.model is not None:
        blocks.append(context(model_line(result.model)))
    if result.hidden_amounts:
        blocks.append(context(hidden_note(result.hidden_amounts)))
    text = (
        f"{'Report' if not result.owner_id else 'Report for one rep'}, last {span}: "
        f"{result.interactions.now} interactions, {result.leads_created.now} leads, "
        f"{result.deals_won.now} won, {result.deals_lost.now} lost"
    )
    return ChartedReply(text, blocks, charts)


def model_line(model: ModelInfo) -> str:
    state = "in use" if model.active else "not in use: the rules did as well"
    return (
        f"*Learned lead score* ({state}) — trained {day(model.trained_at)} on "
        f"{model.samples} converted or disqualified leads; on {model.held_out} held-out leads "
        f"it was right {pct(model.accuracy)} of the time (rules: {pct(model.rule_accuracy)}), "
        f"AUC {model.auc} (rules: {model.rule_auc})."
    )


# --- history and undo -------------------------------------------------------------------


def _value(value: str | None, is_user: bool) -> str:
    if value is None:
        return "—"
    return user(value) if is_user else esc(clip(value, 120))


def changes(items: Sequence[FieldChange]) -> str:
    return "; ".join(
        f"{esc(c.field)}: {_value(c.before, c.is_user)} → {_value(c.after, c.is_user)}"
        for c in items
    )


def _entry(entry: HistoryEntry) -> str:
    action = ACTIONS.get(entry.action, entry.action)
    if entry.undoes is not None:
        action = f"undid the {NOUNS.get(entry.undoes, entry.undoes)}"
    line = f"{render.when(entry.at)} · {user(entry.actor)} · {action}"
    if entry.changes:
        line += f" · {changes(entry.changes)}"
    return line


def history(result: RecordHistory) -> Reply:
    """`/crm history`: who changed what and when, before → after, newest first."""
    title = f"*History of {result.ref}* {esc(result.name)}"
    if not result.entries:
        return render.text(f"{title}: no changes recorded.")
    blocks: list[Block] = [section(title)]
    chunk: list[str] = []
    for entry in result.entries:
        line = _entry(entry)
        if sum(len(x) + 1 for x in chunk) + len(line) > render.MAX_SECTION:
            blocks.append(section("\n".join(chunk)))
            chunk = []
        chunk.append(clip(line))
    if chunk:
        blocks.append(section("\n".join(chunk)))
    blocks.append(context("`/crm undo` reverts your own last change within 15 minutes."))
    return Reply(f"History of {result.ref}", blocks[:50])


def undone(result: Undone) -> Reply:
    """`/crm undo`: exactly what was reverted."""
    noun = NOUNS.get(result.action, result.action)
    line = f"Undid your {noun} of *{result.ref}* {esc(result.name)} ({render.when(result.at)})"
    if result.action == "create":
        line += (
            ": it is cancelled."
            if result.kind.value == "follow_up"
            else f": it is deleted (an admin can `/crm restore {result.ref}`)."
        )
    elif result.changes:
        line += ":\n" + "\n".join(
            f"• {esc(c.field)}: {_value(c.before, c.is_user)} → back to "
            f"{_value(c.after, c.is_user)}"
            for c in result.changes
        )
    else:
        line += "."
    return Reply(f"Undid your {noun} of {result.ref}", [section(line)])


# --- find with filters, segments, scores ---------------------------------------------------


def found(result: FindResult) -> Reply:
    """`/crm find` with filters or a saved segment."""
    owner = f" owner:{user(result.owner_id)}" if result.owner_id else ""
    what = f"@{esc(result.segment)}" if result.segment else f"“{esc(result.query)}{owner}”"
    head: list[str] = []
    if result.saved:
        head.append(
            f":bookmark: Saved as *@{esc(result.saved)}*: `/crm find @{esc(result.saved)}` "
            "runs it again."
        )
    if result.note:
        head.append(esc(result.note))
    if not result.hits:
        head.append(f"Nothing matches {what}.")
        return render.text("\n".join(head))
    count = f"{len(result.hits)}{'+' if result.more else ''}"
    head.append(f"*{count}* match{'es' if count != '1' else ''} for {what}")
    if result.segment:
        head.append(f"_{esc(result.query)}{owner}_")
    blocks: list[Block] = [section("\n".join(head))]
    for hit in result.hits[:20]:
        score = f" · score {hit.score}" if hit.score is not None else ""
        detail = f"\n{esc(hit.detail)}" if hit.detail else ""
        blocks.append(
            section(
                f"*{hit.ref}* {esc(hit.name)} · {hit.kind.label} · {user(hit.owner_id)}"
                f"{score}{detail}",
                accessory=render.button("Open", Action.SHOW, hit.ref),
            )
        )
    if result.more:
        blocks.append(context("Showing the first 20. Add a filter to narrow it down."))
    return Reply(f"{count} matches for {what}", blocks)


def segments(items: Sequence[SegmentView]) -> Reply:
    if not items:
        return render.text(
            "No saved segments yet. Save one: `/crm find industry:saas region:emea save:hot-emea`."
        )
    lines = ["*Saved segments*"]
    lines += [
        f"*@{esc(s.name)}* — {esc(s.query)}" + (f" owner:{user(s.owner_id)}" if s.owner_id else "")
        for s in items[:40]
    ]
    return render.text("\n".join(lines))


def score_block(score: LeadScore) -> list[Block]:
    """The score section for a lead card: the number and every reason behind it."""
    how = "learned from this workspace's leads" if score.method == "learned" else "rule-based"
    lines = [f"*Score {score.score}/100* ({how})"]
    for reason in score.reasons[:8]:
        sign = "+" if reason.points >= 0 else "-"
        lines.append(f"{sign}{abs(reason.points)} {esc(reason.reason)}")
    if score.method == "learned":
        lines.append(f"_Rule-based score: {score.rule_score}_")
    return [DividerBlock(), section("\n".join(lines))]


def with_score(card: Reply, score: LeadScore) -> Reply:
    """A lead's card with its score and reasons appended."""
    return Reply(card.text, [*card.blocks, *score_block(score)][:50])


__all__ = [
    "ChartFile",
    "ChartedReply",
    "found",
    "history",
    "pipeline",
    "report",
    "segments",
    "undone",
    "with_score",
]
