"""Block Kit for messages: pure functions from service views to (text, blocks)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    SectionBlock,
)

from crmbot.domain import (
    AccountView,
    AmbiguousName,
    CardView,
    ContactView,
    ConversionView,
    DealStatus,
    DealView,
    EventView,
    FollowUpCreated,
    FollowUpView,
    InteractionView,
    LeadView,
    Money,
    PipelineView,
    RecordView,
    SearchHit,
    TaskList,
)
from crmbot.handlers import blockkit
from crmbot.handlers.ids import Action
from crmbot.parsing import escape_slack, format_money
from crmbot.service import Assigned

blockkit.install()

MAX_SECTION = 2900  # Slack allows 3,000 characters per section text
MAX_TEXT = 3000


def esc(text: str | None) -> str:
    """Escape user text for mrkdwn: & < > become entities, so nothing pings or links."""
    return escape_slack(text or "")


def clip(text: str, limit: int = MAX_SECTION) -> str:
    """Shorten to Slack's limits, saying so."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class Reply:
    """A message: the plain-text fallback and the blocks."""

    text: str
    blocks: list[Block] = field(default_factory=list)

    def payload(self) -> dict[str, Any]:
        return {"text": clip(self.text, MAX_TEXT), "blocks": [b.to_dict() for b in self.blocks]}


def md(text: str) -> MarkdownTextObject:
    # verbatim: Slack must not turn user text into links or mentions on its own.
    return MarkdownTextObject(text=clip(text), verbatim=True)


def section(text: str, accessory: ButtonElement | None = None) -> SectionBlock:
    return SectionBlock(text=md(text), accessory=accessory)


def context(text: str) -> ContextBlock:
    return ContextBlock(elements=[md(clip(text, 2900))])


def button(label: str, action: Action, value: str, *, style: str | None = None) -> ButtonElement:
    return ButtonElement(text=label[:75], action_id=action.value, value=value[:2000], style=style)


def user(user_id: str | None) -> str:
    if user_id and not user_id.isalnum():  # an actor that isn't a person, e.g. "web-form"
        return esc(user_id)
    return f"<@{user_id}>" if user_id else "nobody"


def when(at: datetime) -> str:
    """A date Slack shows in each reader's own time zone, with a UTC fallback."""
    stamp = int(at.timestamp())
    fallback = at.strftime("%a %d %b %H:%M UTC")
    return f"<!date^{stamp}^{{date_short_pretty}} {{time}}|{fallback}>"


def money(value: Money | None) -> str:
    return format_money(value.amount, value.currency) if value else "no amount"


HIDDEN = ":lock: hidden"  # a restricted field this reader may not see (service/privacy.py)


def deal_money(deal: DealView) -> str:
    """A deal's amount, or that it is hidden from this reader."""
    return HIDDEN if "amount" in deal.hidden else money(deal.amount)


def monies(values: Sequence[Money]) -> str:
    return " + ".join(money(v) for v in values) if values else "—"


def text(message: str) -> Reply:
    """A plain message (already safe text; user parts must be escaped by the caller)."""
    return Reply(message, [section(message)])


# --- records ----------------------------------------------------------------


def title(record: RecordView) -> str:
    return f"{record.ref} {record.name}"


def fields(record: RecordView) -> list[str]:
    """The record's fields as `*label:* value` lines."""
    lines: list[tuple[str, str | None]]
    if isinstance(record, LeadView):
        lines = [
            ("Company", record.company),
            ("Email", HIDDEN if "email" in record.hidden else record.email),
            ("Phone", HIDDEN if "phone" in record.hidden else record.phone),
            ("Source", record.source),
            ("Status", record.status.value),
        ]
        if record.converted_to:
            lines.append(("Became", ", ".join(record.converted_to)))
    elif isinstance(record, ContactView):
        account = f"{record.account_ref} {record.account_name}" if record.account_ref else None
        lines = [
            ("Title", record.title),
            ("Account", account),
            ("Email", HIDDEN if "email" in record.hidden else record.email),
            ("Phone", HIDDEN if "phone" in record.hidden else record.phone),
            ("Source", record.source),
        ]
    elif isinstance(record, AccountView):
        lines = [
            ("Domain", record.domain),
            ("Industry", record.industry),
            ("Size", str(record.size) if record.size else None),
            ("Region", record.region),
        ]
    else:
        lines = [
            ("Amount", HIDDEN if "amount" in record.hidden else money(record.amount)),
            ("Stage", f"{record.stage} ({record.probability} %)"),
            ("Status", record.status.value),
            ("Close date", record.close_date.isoformat() if record.close_date else None),
            (
                "Account",
                f"{record.account_ref} {record.account_name}" if record.account_ref else None,
            ),
            (
                "Contact",
                f"{record.contact_ref} {record.contact_name}" if record.contact_ref else None,
            ),
            ("Lost because", record.lost_reason),
        ]
    out = [f"*{label}:* {esc(value)}" for label, value in lines if value]
    out.append(f"*Owner:* {user(record.owner_id)}")
    return out


def record_buttons(record: RecordView) -> ActionsBlock:
    buttons = [
        button("Log call", Action.LOG_CALL, record.ref),
        button("Follow-up", Action.FOLLOW_UP, record.ref),
    ]
    if isinstance(record, DealView) and record.status is DealStatus.OPEN:
        buttons.append(button("Move", Action.MOVE, record.ref))
    if isinstance(record, LeadView) and record.status.value != "converted":
        buttons.append(button("Convert", Action.CONVERT, record.ref))
    buttons.append(button("Assign", Action.ASSIGN, record.ref))
    return ActionsBlock(block_id=f"record:{record.ref}", elements=buttons)


def interaction_line(item: InteractionView) -> str:
    if item.hidden:  # private to others: that it exists, when and by whom
        return (
            f":lock: *Private {item.kind.value}* · {when(item.occurred_at)} "
            f"by {user(item.logged_by)} — hidden"
        )
    lock = ":lock: private " if item.private else ""
    parts = [f"{lock}*{item.kind.value}*", when(item.occurred_at), f"by {user(item.logged_by)}"]
    if item.duration_minutes:
        parts.append(f"{item.duration_minutes} min")
    line = " · ".join(parts)
    if item.outcome:
        line += f" — _{esc(item.outcome)}_"
    if item.summary:
        line += f"\n{esc(clip(item.summary, 300))}"
    if item.permalink:
        line += f"\n<{esc(item.permalink)}|message in Slack>"
    return line


def follow_up_line(item: FollowUpView) -> str:
    state = ":red_circle: overdue since" if item.overdue else "due"
    about = f" · {item.about_ref} {esc(item.about_name)}" if item.about_ref else ""
    due = f"{state} {when(item.due_at)} · {user(item.owner_id)}"
    return f"*{item.ref}* {esc(item.title)}{about}\n{due}"


def follow_up_buttons(item: FollowUpView) -> ActionsBlock:
    return ActionsBlock(
        block_id=f"task:{item.ref}",
        elements=[
            button("Done", Action.DONE, item.ref, style="primary"),
            button("Snooze 1h", Action.SNOOZE_HOUR, item.ref),
            button("Snooze 1d", Action.SNOOZE_DAY, item.ref),
            button("Snooze 1w", Action.SNOOZE_WEEK, item.ref),
        ],
    )


def card(view: CardView) -> Reply:
    """`/crm show`: fields, owner, stage, last interactions, open follow-ups, buttons."""
    record = view.record
    kind = type(record).__name__.removesuffix("View").lower()
    blocks: list[Block] = [
        HeaderBlock(text=clip(f"{record.ref} {record.name}", 150)),
        section("\n".join(fields(record))),
        record_buttons(record),
    ]
    if view.interactions:
        blocks.append(DividerBlock())
        blocks.append(section("*Recent activity*"))
        blocks.extend(section(interaction_line(i)) for i in view.interactions)
    if view.follow_ups:
        blocks.append(DividerBlock())
        blocks.append(section("*Open follow-ups*"))
        for item in view.follow_ups:
            blocks.append(section(follow_up_line(item)))
            blocks.append(follow_up_buttons(item))
    if not view.interactions and not view.follow_ups:
        blocks.append(context(f"No activity on this {kind} yet."))
    return Reply(f"{record.ref} {esc(record.name)}", blocks)


def lead_created(lead: LeadView) -> Reply:
    summary = f"Lead *{lead.ref}* {esc(lead.name)} captured"
    if lead.company:
        summary += f" at {esc(lead.company)}"
    return Reply(
        f"Lead {lead.ref} {esc(lead.name)} captured",
        [section(summary + f", owned by {user(lead.owner_id)}."), record_buttons(lead)],
    )


def deal_saved(deal: DealView, headline: str) -> Reply:
    line = f"{headline} *{deal.ref}* {esc(deal.name)} · {deal_money(deal)} · {esc(deal.stage)}"
    line += f" ({deal.probability} %) · {user(deal.owner_id)}"
    if deal.lost_reason:
        line += f"\nLost because: {esc(deal.lost_reason)}"
    blocks: list[Block] = [section(line)]
    if deal.status is DealStatus.OPEN:
        blocks.append(record_buttons(deal))
    return Reply(f"{headline} {deal.ref} {esc(deal.name)}", blocks)


def conversion(result: ConversionView) -> Reply:
    parts = [
        f"Converted *{result.lead.ref}* {esc(result.lead.name)} into contact *{result.contact.ref}*"
    ]
    if result.account:
        made = "new account" if result.account_created else "account"
        parts.append(f"{made} *{result.account.ref}* {esc(result.account.name)}")
    if result.deal:
        parts.append(f"deal *{result.deal.ref}* {esc(result.deal.name)}")
    return Reply(f"Converted {result.lead.ref}", [section(", ".join(parts) + ".")])


def assigned(result: Assigned) -> Reply:
    return text(f"*{result.ref}* {esc(result.name)} now belongs to {user(result.owner_id)}.")


def assigned_dm(result: Assigned, by: str) -> Reply:
    reply = text(f"{user(by)} assigned *{result.ref}* {esc(result.name)} to you.")
    if result.record is not None:
        reply.blocks.append(record_buttons(result.record))
    return reply


def logged(item: InteractionView) -> Reply:
    about = ", ".join(item.about) or "no record"
    return Reply(
        f"Logged {item.kind.value} on {about}",
        [section(f"Logged {interaction_line(item)}\non {about}")],
    )


def follow_up_created(result: FollowUpCreated) -> Reply:
    item = result.follow_up
    line = f"Follow-up {follow_up_line(item)}"
    if result.in_past:
        line = ":warning: That time has already passed, so this follow-up is overdue.\n" + line
    return Reply(f"Follow-up {item.ref} set", [section(line), follow_up_buttons(item)])


def follow_up_changed(item: FollowUpView, verb: str) -> Reply:
    return text(f"*{item.ref}* {esc(item.title)} {verb}.")


# --- lists -----------------------------------------------------------------


def search(hits: Sequence[SearchHit], query: str) -> Reply:
    if not hits:
        return text(f"Nothing matches “{esc(query)}”. Try part of a name, company, email or phone.")
    blocks: list[Block] = [
        section(f"*{len(hits)}* match{'es' if len(hits) != 1 else ''} for “{esc(query)}”")
    ]
    for hit in hits[:20]:
        detail = f"\n{esc(hit.detail)}" if hit.detail else ""
        blocks.append(
            section(
                f"*{hit.ref}* {esc(hit.name)} · {hit.kind.label} · {user(hit.owner_id)}{detail}",
                accessory=button("Open", Action.SHOW, hit.ref),
            )
        )
    return Reply(f"{len(hits)} matches for {esc(query)}", blocks)


def ambiguous(error: AmbiguousName) -> Reply:
    blocks: list[Block] = [section(f"“{esc(error.name)}” could be several records. Which one?")]
    for item in error.candidates:
        detail = f" · {esc(item.detail)}" if item.detail else ""
        blocks.append(
            section(
                f"*{item.ref}* {esc(item.name)} · {item.kind.label}{detail}",
                accessory=button("Open", Action.SHOW, item.ref),
            )
        )
    return Reply(esc(error.message), blocks)


def tasks(result: TaskList) -> Reply:
    whose = f"{user(result.owner_id)}'s" if result.owner_id else "Everyone's"
    if not result.overdue and not result.upcoming:
        return text(f"{whose} follow-ups: nothing open. :tada:")
    blocks: list[Block] = [section(f"*{whose} open follow-ups* — {len(result.overdue)} overdue")]
    # Each item takes two blocks; stay within Slack's 50 per message.
    items = [*result.overdue, *result.upcoming]
    shown = items[:23]
    for item in shown:
        blocks.append(section(follow_up_line(item)))
        blocks.append(follow_up_buttons(item))
    if len(items) > len(shown):
        blocks.append(context(f"…and {len(items) - len(shown)} more."))
    return Reply(f"{whose} follow-ups: {len(result.overdue)} overdue", blocks)


def pipeline(view: PipelineView) -> Reply:
    whose = f"{user(view.owner_id)}'s pipeline" if view.owner_id else "Pipeline"
    lines = [f"*{whose}* — open deals by stage"]
    for row in view.stages:
        deals = f"{row.count} deal{'s' if row.count != 1 else ''}"
        lines.append(
            f"*{esc(row.stage)}* ({row.probability} %): {deals}"
            f" · {monies(row.amounts)} · weighted {monies(row.weighted)}"
        )
    lines.append(
        f"*Total:* {monies(view.totals)} · *weighted forecast:* {monies(view.weighted_totals)}"
    )
    if view.hidden_amounts:
        lines.append(
            f":lock: {view.hidden_amounts} deal(s) you don't own are counted without their "
            "amounts (visible to managers and admins only)."
        )
    return Reply(f"{whose}: {monies(view.totals)}", [section("\n".join(lines))])


def history(ref: str, events: Sequence[EventView]) -> Reply:
    if not events:
        return text(f"No history for {ref}.")
    lines = [f"*History of {ref}*"]
    for event in events[:40]:
        change = ""
        if event.before and event.after:
            change = "; ".join(
                f"{key}: {esc(str(event.before.get(key)))} → {esc(str(value))}"
                for key, value in event.after.items()
            )
        lines.append(
            f"{when(event.at)} · {user(event.actor)} · {event.action}"
            + (f" · {change}" if change else "")
        )
    return Reply(f"History of {ref}", [section(clip("\n".join(lines)))])


def help_reply(body: str) -> Reply:
    return Reply(esc(body), [section(esc(body))])
