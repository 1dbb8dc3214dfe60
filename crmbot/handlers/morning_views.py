"""Block Kit for the morning digest: a rep's day by DM, and its own settings buttons."""

from __future__ import annotations

from datetime import datetime

from slack_sdk.models.blocks import ActionsBlock, Block, Option, StaticSelectElement

from crmbot.handlers import render
from crmbot.handlers.ids import Action
from crmbot.handlers.reminder_views import MAX_BLOCKS, about
from crmbot.handlers.render import Reply, button, clip, context, esc, section, when
from crmbot.service.reminder_types import DealLine, MorningDigest, TaskLine, overdue_text

MORNING_BUTTONS = 5  # overdue items with a Done button
DIGEST_TIMES = tuple(f"{h:02d}:{m:02d}" for h in range(6, 12) for m in (0, 30))


def _task_line(item: TaskLine, now: datetime, *, overdue: bool) -> str:
    due = f"overdue {overdue_text(item.due_at, now)}" if overdue else f"due {when(item.due_at)}"
    return f"*{item.ref}* {esc(clip(item.title, 200))}{about(item)} · {due}"


def _deal_line(deal: DealLine, *, idle: bool) -> str:
    parts = [
        f"*{deal.ref}* {esc(clip(deal.name, 200))}",
        esc(deal.stage),
        render.money(deal.amount),
    ]
    if idle:
        parts.append(f"untouched for {deal.idle_days} days")
    return " · ".join(parts)


def _more(shown: int, total: int) -> str:
    return f"\n…and {total - shown} more" if total > shown else ""


def morning(view: MorningDigest, *, enabled: bool = True) -> Reply:
    """The rep's morning DM: overdue, due today, deals without a next step, stale deals."""
    now = view.now
    day = view.local_day.strftime("%A %d %B")
    blocks: list[Block] = [section(f":sunrise: *Your CRM day* — {day}")]
    if view.overdue_count:
        blocks.append(section(f"*Overdue* ({view.overdue_count})"))
        for i, task in enumerate(view.overdue):
            line = _task_line(task, now, overdue=True)
            accessory = button("Done", Action.DONE, task.ref) if i < MORNING_BUTTONS else None
            blocks.append(section(line, accessory=accessory))
        if view.overdue_count > len(view.overdue):
            blocks.append(context(_more(len(view.overdue), view.overdue_count).strip()))
    if view.due_today_count:
        lines = [_task_line(t, now, overdue=False) for t in view.due_today]
        blocks.append(
            section(
                f"*Due today* ({view.due_today_count})\n"
                + "\n".join(lines)
                + _more(len(lines), view.due_today_count)
            )
        )
    if view.no_next_step_count:
        lines = [_deal_line(d, idle=False) for d in view.no_next_step]
        blocks.append(
            section(
                f"*Deals with no next step* ({view.no_next_step_count})\n"
                + "\n".join(lines)
                + _more(len(lines), view.no_next_step_count)
            )
        )
    if view.stale_count:
        lines = [_deal_line(d, idle=True) for d in view.stale]
        blocks.append(
            section(
                f"*Stale deals* ({view.stale_count})\n"
                + "\n".join(lines)
                + _more(len(lines), view.stale_count)
            )
        )
    blocks.extend(digest_controls(view.digest_time, enabled=enabled))
    text = (
        f"Your CRM day: {view.overdue_count} overdue, {view.due_today_count} due today, "
        f"{view.no_next_step_count} deals without a next step, {view.stale_count} stale deals"
    )
    return Reply(text, blocks[:MAX_BLOCKS])


def digest_controls(digest_time: str, *, enabled: bool) -> list[Block]:
    """Change the time of the morning digest, or turn it off (and on again)."""
    if not enabled:
        return [
            context("Your morning digest is off."),
            ActionsBlock(
                block_id="digest_prefs",
                elements=[button("Turn the morning digest on", Action.DIGEST_ON, "on")],
            ),
        ]
    options = [Option(value=t, text=t) for t in DIGEST_TIMES]
    initial = next((o for o in options if o.value == digest_time), None)
    select = StaticSelectElement(
        action_id=Action.DIGEST_TIME.value,
        placeholder="Send at",
        options=options,
        initial_option=initial,
    )
    return [
        context(f"Sent at {digest_time} your time on working days."),
        ActionsBlock(
            block_id="digest_prefs",
            elements=[select, button("Turn off", Action.DIGEST_OFF, "off")],
        ),
    ]
