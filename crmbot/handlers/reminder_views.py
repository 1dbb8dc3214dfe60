"""Block Kit for reminders: pure functions from the reminder service's views to messages.

A digest is one message per channel and sweep. Every item is listed with its `T-n`
reference, what it is about, its owner (mentioned, unless deactivated) and how overdue it
is; up to `FULL_ITEMS` carry their buttons. Beyond what fits in Slack's 50 blocks, the rest
are summarised per owner — counted and listed by reference, never dropped. Redrawing a
digest after a click (`chat.update`) uses the same function, so the layout stays put and
finished items are struck through in place.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    DatePickerElement,
    InputBlock,
    SectionBlock,
    TimePickerElement,
)
from slack_sdk.models.views import View

from crmbot.domain import FollowUpStatus
from crmbot.handlers import render
from crmbot.handlers.ids import Action, Modal
from crmbot.handlers.render import Reply, button, clip, context, esc, section, when
from crmbot.service.reminder_types import (
    DeliveryKind,
    Digest,
    DigestItem,
    Person,
    TaskLine,
    overdue_text,
    zone,
)

MAX_BLOCKS = 50
FULL_ITEMS = 15  # items with buttons when a digest is too big to show them all
FULL_ESCALATIONS = 5
SUMMARY_TITLE = 40  # characters of each title in a per-owner summary
DATE_BLOCK, TIME_BLOCK = "reschedule_date", "reschedule_time"


def owner(person: Person) -> str:
    """A mention, or for a deactivated owner just the name (nobody to notify)."""
    return render.user(person.user_id) if person.active else esc(person.name)


def about(item: DigestItem | TaskLine) -> str:
    """` · D-3 Acme`: what a follow-up is about, if anything."""
    return f" · {item.about_ref} {esc(item.about_name)}" if item.about_ref else ""


def _state(item: DigestItem, now: datetime) -> str | None:
    """What became of an item since it was posted, or None while it is still overdue."""
    if item.status is FollowUpStatus.DONE:
        return ":white_check_mark: done"
    if item.status is FollowUpStatus.CANCELLED:
        return "cancelled"
    if item.due_at > now:
        return f":zzz: moved to {when(item.due_at)}"
    if item.acknowledged_by:
        return f":eyes: acknowledged by {render.user(item.acknowledged_by)}"
    return None


def item_line(item: DigestItem, now: datetime) -> str:
    """`*T-5* Send the proposal · D-3 Acme` / owner · how overdue (or what became of it)."""
    title = f"*{item.ref}* {esc(clip(item.title, 300))}{about(item)}"
    state = _state(item, now)
    if state is not None and item.status is not FollowUpStatus.OPEN:
        return f"~{title}~\n{owner(item.owner)} · {state}"
    late = f"overdue {overdue_text(item.due_at, now)} (due {when(item.due_at)})"
    if state is not None:  # moved to later, or an acknowledged escalation
        return f"{title}\n{owner(item.owner)} · {state}"
    return f"{title}\n{owner(item.owner)} · :red_circle: {late}"


def item_buttons(item: DigestItem) -> ActionsBlock:
    """Done, Snooze 1 h / 1 day / next Monday 9:00, Reschedule…, Log call & schedule next."""
    ref = item.ref
    return ActionsBlock(
        block_id=f"rem:{ref}",
        elements=[
            button("Done", Action.DONE, ref, style="primary"),
            button("Snooze 1 h", Action.SNOOZE_HOUR, ref),
            button("Snooze 1 day", Action.SNOOZE_DAY, ref),
            button("Next Monday 9:00", Action.SNOOZE_MONDAY, ref),
            button("Reschedule…", Action.RESCHEDULE, ref),
            button("Log call & schedule next", Action.LOG_NEXT, ref),
        ],
    )


def _full(item: DigestItem, now: datetime) -> list[Block]:
    line = item_line(item, now)
    still_open = _state(item, now) is None
    if item.kind is DeliveryKind.ESCALATION:
        accessory = (
            button("Acknowledge", Action.ACKNOWLEDGE, str(item.escalation_id))
            if still_open and item.escalation_id is not None
            else None
        )
        return [SectionBlock(block_id=f"esc:{item.ref}", text=render.md(line), accessory=accessory)]
    blocks: list[Block] = [SectionBlock(block_id=f"item:{item.ref}", text=render.md(line))]
    if still_open:
        blocks.append(item_buttons(item))
    return blocks


def _summary(items: Sequence[DigestItem], now: datetime, label: str) -> str:
    """One owner's (or everyone's) remaining items: with titles if they fit, else by reference."""
    open_items = [i for i in items if _state(i, now) is None]
    head = f"{label} · {len(items)} more"
    if len(open_items) != len(items):
        head += f", {len(open_items)} still open"
    full, short = [], []
    for item in items:
        done = _state(item, now) is not None
        text = f"{item.ref} {esc(clip(item.title, SUMMARY_TITLE))}"
        full.append(f"~{text}~" if done else f"{text} ({overdue_text(item.due_at, now)})")
        short.append(f"~{item.ref}~" if done else item.ref)
    for parts in (full, short):
        line = f"{head}: " + " · ".join(parts)
        if len(line) <= render.MAX_SECTION:
            return line
    return clip(f"{head}: " + ", ".join(short), render.MAX_SECTION)


def _plan(items: Sequence[DigestItem]) -> tuple[list[DigestItem], list[DigestItem]]:
    """Which items get the full treatment (with buttons) and which are summarised."""
    reminders = [i for i in items if i.kind is DeliveryKind.REMINDER]
    escalations = [i for i in items if i.kind is DeliveryKind.ESCALATION]
    cost = 2 * len(reminders) + len(escalations)
    if cost <= MAX_BLOCKS - 3:
        return list(items), []
    full = reminders[:FULL_ITEMS] + escalations[:FULL_ESCALATIONS]
    rest = reminders[FULL_ITEMS:] + escalations[FULL_ESCALATIONS:]
    return full, rest


def _note(view: Digest, where: str | None) -> str | None:
    """Reminders from channels that refused them say so (the fallback channel or a DM)."""
    origins = sorted(
        {
            i.origin_channel
            for i in view.reminders
            if i.origin_channel
            and not i.origin_channel.startswith("D")
            and i.origin_channel != where
        }
    )
    if not origins:
        return None
    return f"These were due in {', '.join(f'<#{c}>' for c in origins)}, where I can't post."


def digest(view: Digest, *, posted_in: str | None = None) -> Reply:
    """The digest message for a channel (or an owner's DM).

    `posted_in` is where the message goes, when that isn't `view.channel_id` (a fallback).
    """
    now = view.now
    items = view.items
    note = _note(view, posted_in or view.channel_id)
    open_items = [i for i in items if _state(i, now) is None]
    owners: dict[str, Person] = {}
    for item in open_items:
        owners.setdefault(item.owner.user_id, item.owner)
    who = ", ".join(
        f"{owner(p)} ({sum(1 for i in open_items if i.owner.user_id == uid)})"
        for uid, p in owners.items()
    )
    reminders, escalations = view.reminders, view.escalations
    if reminders:
        head = f":alarm_clock: *{len(reminders)} follow-up{_s(len(reminders))} overdue*"
    else:
        head = f":rotating_light: *{len(escalations)} follow-up{_s(len(escalations))} escalated*"
    if not open_items:
        head += " — all handled :tada:"
    elif who:
        head += f" — {who}"
    blocks: list[Block] = [section(head)]
    if note:
        blocks.append(context(note))
    full, rest = _plan(items)
    shown_escalation_title = False
    for item in full:
        if item.kind is DeliveryKind.ESCALATION and reminders and not shown_escalation_title:
            blocks.append(section(_escalation_title(view)))
            shown_escalation_title = True
        blocks.extend(_full(item, now))
    if rest:
        groups: dict[tuple[str, str], list[DigestItem]] = {}
        for item in rest:
            groups.setdefault((item.kind.value, item.owner.user_id), []).append(item)
        room = MAX_BLOCKS - len(blocks) - 2  # and one for whoever doesn't fit, one context
        for (kind, _), group in list(groups.items())[:room]:
            label = owner(group[0].owner) + (
                " (escalated)" if kind == DeliveryKind.ESCALATION.value else ""
            )
            blocks.append(section(_summary(group, now, label)))
        left = [i for key in list(groups)[room:] for i in groups[key]]
        if left:
            people = len({i.owner.user_id for i in left})
            blocks.append(section(_summary(left, now, f"{people} more people")))
        blocks.append(context("`/crm tasks overdue` lists every open follow-up with its buttons."))
    text = _fallback_text(view, open_items, who)
    return Reply(text, blocks[:MAX_BLOCKS])


def _escalation_title(view: Digest) -> str:
    return f":rotating_light: *Escalated* ({len(view.escalations)})"


def _fallback_text(view: Digest, open_items: Sequence[DigestItem], who: str) -> str:
    kind = "overdue" if view.reminders else "escalated"
    refs = ", ".join(i.ref for i in open_items[:20])
    more = f" and {len(open_items) - 20} more" if len(open_items) > 20 else ""
    if not open_items:
        return f"Follow-ups {kind}: all handled."
    return clip(f"Follow-ups {kind}: {refs}{more} — {who}", render.MAX_TEXT)


def _s(n: int) -> str:
    return "" if n == 1 else "s"


# --- notices, escalation acknowledgements, the reschedule modal ---------------------------


def channel_notice(channel: str, error: str, fallback: str | None) -> Reply:
    """Told once to the admins: a channel doesn't take reminders, and where they go instead."""
    instead = f"<#{fallback}>" if fallback else "each owner's DMs"
    message = (
        f":warning: I can't post follow-up reminders in <#{channel}> (`{esc(error)}`). "
        f"Until that's fixed they go to {instead}. Invite me to the channel "
        "(`/invite @crmbot`) or choose another reminder channel."
    )
    return Reply(message, [section(message)])


@dataclass(frozen=True)
class RescheduleMeta:
    """What the reschedule modal remembers: the follow-up and the digest to redraw."""

    ref: str
    channel: str | None
    ts: str | None

    def dump(self) -> str:
        return json.dumps({"ref": self.ref, "channel": self.channel, "ts": self.ts})

    @classmethod
    def load(cls, raw: str | None) -> RescheduleMeta | None:
        try:
            data: Any = json.loads(raw or "{}")
        except ValueError:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("ref"), str):
            return None
        channel, ts = data.get("channel"), data.get("ts")
        return cls(
            data["ref"],
            channel if isinstance(channel, str) else None,
            ts if isinstance(ts, str) else None,
        )


def reschedule(meta: RescheduleMeta, title: str, *, tz: str, now: datetime) -> View:
    """Reschedule…: a new date and time (in the clicker's zone) for the follow-up."""
    local = (now + timedelta(days=1)).astimezone(zone(tz))
    return View(
        type="modal",
        callback_id=Modal.RESCHEDULE.value,
        title="Reschedule",
        submit="Reschedule",
        close="Cancel",
        private_metadata=meta.dump(),
        blocks=[
            section(f"*{meta.ref}* {esc(clip(title, 200))}"),
            InputBlock(
                block_id=DATE_BLOCK,
                label="Date",
                element=DatePickerElement(
                    action_id=DATE_BLOCK, initial_date=local.date().isoformat()
                ),
            ),
            InputBlock(
                block_id=TIME_BLOCK,
                label="Time",
                element=TimePickerElement(action_id=TIME_BLOCK, initial_time="09:00"),
            ),
        ],
    )


def read_reschedule(values: dict[str, Any]) -> tuple[date, str] | dict[str, str]:
    """(date, "HH:MM") from the modal's state, or field errors by block id."""
    picked = (values.get(DATE_BLOCK) or {}).get(DATE_BLOCK) or {}
    clock = (values.get(TIME_BLOCK) or {}).get(TIME_BLOCK) or {}
    errors: dict[str, str] = {}
    day: date | None = None
    try:
        day = date.fromisoformat(str(picked.get("selected_date") or ""))
    except ValueError:
        errors[DATE_BLOCK] = "Pick a date."
    at = str(clock.get("selected_time") or "")
    if len(at) != 5 or at[2] != ":":
        errors[TIME_BLOCK] = "Pick a time."
    if errors or day is None:
        return errors
    return day, at
