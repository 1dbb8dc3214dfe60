"""Buttons on reminder digests and morning digests, and the modals they open.

Done and Snooze 1 h / 1 day are the card buttons (actions.py), which call `refresh_clicked`
after the change; this module adds Next Monday 9:00, Reschedule…, Log call & schedule next,
Acknowledge (escalations) and the morning digest's own settings. Every change redraws the
digest message in place (`chat.update`), so the channel shows what is still open.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.models.blocks import InputBlock, PlainTextInputElement

from crmbot.domain import CrmError, FollowUpStatus, InteractionKind, InvalidInput
from crmbot.handlers import forms, modals, morning_views, render, request_keys
from crmbot.handlers import modal_views as views
from crmbot.handlers import reminder_views as rviews
from crmbot.handlers.deps import Deps
from crmbot.handlers.errors import guarded
from crmbot.handlers.forms import FieldErrors
from crmbot.handlers.ids import Action, Modal
from crmbot.handlers.modal_views import BlockId, Picked
from crmbot.handlers.reminder_views import RescheduleMeta
from crmbot.service.reminder_types import clock_time, wall_time

log = logging.getLogger(__name__)
NEXT_FOLLOW_UP = "in 1 week"  # prefilled in "Log call & schedule next"


def register(app: App, deps: Deps) -> None:
    """Register the reminder buttons and modals."""
    handler = ReminderActions(deps)
    app.action(Action.SNOOZE_MONDAY.value)(guarded(handler.click_snooze_monday))
    app.action(Action.RESCHEDULE.value)(guarded(handler.click_reschedule))
    app.view(Modal.RESCHEDULE.value)(guarded(handler.submit_reschedule))
    app.action(Action.LOG_NEXT.value)(guarded(handler.click_log_next))
    app.view(Modal.LOG_NEXT.value)(guarded(handler.submit_log_next))
    app.action(Action.ACKNOWLEDGE.value)(guarded(handler.click_acknowledge))
    app.action(Action.DIGEST_TIME.value)(guarded(handler.pick_digest_time))
    app.action(Action.DIGEST_OFF.value)(guarded(handler.click_digest_off))
    app.action(Action.DIGEST_ON.value)(guarded(handler.click_digest_on))


def message_of(body: dict[str, Any]) -> tuple[str, str] | None:
    """(channel, ts) of the message a button was clicked in (not ephemeral ones, not views)."""
    container = body.get("container") or {}
    if container.get("type") != "message" or container.get("is_ephemeral"):
        return None
    channel = container.get("channel_id") or (body.get("channel") or {}).get("id")
    ts = container.get("message_ts") or (body.get("message") or {}).get("ts")
    return (str(channel), str(ts)) if channel and ts else None


def refresh_digest(deps: Deps, client: WebClient, ws: str, channel: str, ts: str) -> bool:
    """Redraw the digest at (channel, ts) from the database; False if it isn't a digest."""
    view = deps.crm.posted_digest(ws, channel, ts)
    if view is None:
        return False
    try:
        client.chat_update(channel=channel, ts=ts, **rviews.digest(view).payload())
    except SlackApiError as error:  # the change is saved; only the redraw failed
        log.warning("could not redraw digest %s/%s: %s", channel, ts, error.response.get("error"))
        return False
    return True


def refresh_clicked(deps: Deps, client: WebClient, body: dict[str, Any], ws: str) -> bool:
    """After a button changed a follow-up: redraw the digest it was clicked in, if any."""
    where = message_of(body)
    return refresh_digest(deps, client, ws, *where) if where else False


def _ref(body: dict[str, Any]) -> str:
    return str(body["actions"][0].get("value") or "")


class ReminderActions:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.crm = deps.crm

    def _tell(self, body: dict[str, Any], respond: Respond, reply: render.Reply) -> None:
        if body.get("response_url"):
            respond(response_type="ephemeral", replace_original=False, **reply.payload())

    def click_snooze_monday(
        self, ack: Ack, body: dict[str, Any], context: Any, client: WebClient, respond: Respond
    ) -> None:
        """Next Monday 9:00, in the follow-up owner's time zone."""
        ack()
        actor = self.deps.directory.actor(context, client, body["user"]["id"])
        snoozed = self.crm.snooze_until_next(actor.ws, _ref(body), by=actor.user_id)
        said = f"snoozed until {render.when(snoozed.due_at)}"
        self._tell(body, respond, render.follow_up_changed(snoozed, said))
        refresh_clicked(self.deps, client, body, actor.ws)

    def click_reschedule(
        self, ack: Ack, body: dict[str, Any], context: Any, client: WebClient
    ) -> None:
        """Reschedule…: a modal with a date and a time."""
        ack()
        actor = self.deps.directory.actor(context, client, body["user"]["id"])
        item = self.crm.follow_up(actor.ws, _ref(body))
        channel, ts = message_of(body) or (None, None)
        meta = RescheduleMeta(item.ref, channel, ts)
        view = rviews.reschedule(meta, item.title, tz=actor.tz, now=self.crm.now())
        client.views_open(trigger_id=body["trigger_id"], view=view)

    def submit_reschedule(
        self, ack: Ack, body: dict[str, Any], view: dict[str, Any], context: Any, client: WebClient
    ) -> None:
        """The new due time, read in the clicker's zone; the digest is redrawn."""
        actor = self.deps.directory.actor(context, client, body["user"]["id"])
        meta = RescheduleMeta.load(view.get("private_metadata"))
        if meta is None:
            raise InvalidInput("follow_up", "This form lost track of its follow-up.")
        picked = rviews.read_reschedule((view.get("state") or {}).get("values") or {})
        if isinstance(picked, dict):
            ack(response_action="errors", errors=picked)
            return
        day, at = picked
        due = wall_time(day, clock_time(at), actor.tz)
        try:
            moved = request_keys.saving(
                ack,
                lambda: self.crm.snooze_follow_up(actor.ws, meta.ref, by=actor.user_id, until=due),
            )
        except CrmError as error:
            ack(response_action="errors", errors={rviews.DATE_BLOCK: error.message[:150]})
            return
        ack()
        said = f"moved to {render.when(moved.due_at)}"
        modals.tell(client, actor.user_id, meta.channel, render.follow_up_changed(moved, said))
        if meta.channel and meta.ts:
            refresh_digest(self.deps, client, actor.ws, meta.channel, meta.ts)

    def click_log_next(
        self, ack: Ack, body: dict[str, Any], context: Any, client: WebClient
    ) -> None:
        """Log call & schedule next: the Log interaction modal, prefilled."""
        ack()
        actor = self.deps.directory.actor(context, client, body["user"]["id"])
        item = self.crm.follow_up(actor.ws, _ref(body))
        channel, ts = message_of(body) or (None, None)
        picked = Picked(item.about_ref, item.about_name or "") if item.about_ref else None
        notes = "" if picked else item.title
        view = views.log_interaction(
            channel,
            tz=actor.tz,
            now=self.crm.now(),
            kind=InteractionKind.CALL,
            record=picked,
            notes=notes,
        )
        view.callback_id = Modal.LOG_NEXT.value
        view.private_metadata = RescheduleMeta(item.ref, channel, ts).dump()
        for block in view.blocks or []:
            if (
                isinstance(block, InputBlock)
                and block.block_id == BlockId.FOLLOW_UP.value
                and isinstance(block.element, PlainTextInputElement)
            ):
                block.element.initial_value = NEXT_FOLLOW_UP
        client.views_open(trigger_id=body["trigger_id"], view=view)

    def submit_log_next(
        self, ack: Ack, body: dict[str, Any], view: dict[str, Any], context: Any, client: WebClient
    ) -> None:
        """Log the call, mark the reminded follow-up done, schedule the next one."""
        actor = self.deps.directory.actor(context, client, body["user"]["id"])
        meta = RescheduleMeta.load(view.get("private_metadata"))
        if meta is None:
            raise InvalidInput("follow_up", "This form lost track of its follow-up.")
        values = (view.get("state") or {}).get("values") or {}
        form = forms.parse_log(values, tz=actor.tz, now=self.crm.now())
        if isinstance(form, FieldErrors):
            ack(response_action="errors", errors=form.by_block)
            return
        try:
            logged = request_keys.saving(ack, lambda: modals.log_form(self.crm, actor, form))
        except CrmError as error:
            aliases = modals.FIELD_BLOCKS[Modal.LOG]
            ack(response_action="errors", errors=modals.errors_for(error, view, aliases))
            return
        ack()
        reply = render.logged(logged)
        if self.crm.follow_up(actor.ws, meta.ref).status is FollowUpStatus.OPEN:
            done = self.crm.complete_follow_up(actor.ws, meta.ref, by=actor.user_id)
            reply = modals.join(reply, render.follow_up_changed(done, "is done"))
        if form.follow_up is not None:
            channel = meta.channel if meta.channel and not meta.channel.startswith("D") else None
            try:
                created = self.crm.create_follow_up(
                    actor.ws,
                    by=actor.user_id,
                    about=form.record,
                    due_at=form.follow_up.at,
                    channel_id=channel,
                )
                reply = modals.join(reply, render.follow_up_created(created))
            except CrmError as error:
                note = f"I couldn't set the next follow-up: {render.esc(error.message)}"
                reply = modals.join(reply, render.text(note))
        modals.tell(client, actor.user_id, meta.channel, reply)
        if meta.channel and meta.ts:
            refresh_digest(self.deps, client, actor.ws, meta.channel, meta.ts)

    def click_acknowledge(
        self, ack: Ack, body: dict[str, Any], context: Any, client: WebClient
    ) -> None:
        """A manager acknowledges an escalation; the message shows who."""
        ack()
        actor = self.deps.directory.actor(context, client, body["user"]["id"])
        value = _ref(body)
        if not (value.isascii() and value.isdigit() and len(value) <= 18):
            raise InvalidInput("escalation", "That button lost track of its escalation.")
        acked = self.crm.acknowledge_escalation(actor.ws, int(value), by=actor.user_id)
        if acked.channel_id and acked.message_ts:
            refresh_digest(self.deps, client, actor.ws, acked.channel_id, acked.message_ts)

    def pick_digest_time(
        self, ack: Ack, body: dict[str, Any], context: Any, client: WebClient, respond: Respond
    ) -> None:
        """The morning digest's time, from the select in the digest itself."""
        ack()
        actor = self.deps.directory.actor(context, client, body["user"]["id"])
        chosen = str(((body["actions"][0].get("selected_option")) or {}).get("value") or "")
        prefs = self.crm.set_digest_preferences(
            actor.ws, actor.user_id, digest_time=chosen, enabled=True
        )
        said = f"Your morning digest now comes at {prefs.digest_time}, your time."
        self._tell(body, respond, render.text(said))

    def click_digest_off(
        self, ack: Ack, body: dict[str, Any], context: Any, client: WebClient
    ) -> None:
        """Turn the morning digest off; the message keeps a button to turn it on again."""
        ack()
        actor = self.deps.directory.actor(context, client, body["user"]["id"])
        self.crm.set_digest_preferences(actor.ws, actor.user_id, enabled=False)
        self._swap_controls(body, client, morning_views.digest_controls("09:00", enabled=False))

    def click_digest_on(
        self, ack: Ack, body: dict[str, Any], context: Any, client: WebClient
    ) -> None:
        """Turn the morning digest back on."""
        ack()
        actor = self.deps.directory.actor(context, client, body["user"]["id"])
        prefs = self.crm.set_digest_preferences(actor.ws, actor.user_id, enabled=True)
        settings = self.crm.reminder_settings(actor.ws)
        at = prefs.digest_time or settings.digest_time
        self._swap_controls(body, client, morning_views.digest_controls(at, enabled=True))

    @staticmethod
    def _swap_controls(body: dict[str, Any], client: WebClient, controls: list[Any]) -> None:
        where = message_of(body)
        message = body.get("message") or {}
        if where is None or not isinstance(message.get("blocks"), list):
            return
        blocks = list(message["blocks"])
        at = next(
            (i for i, b in enumerate(blocks) if b.get("block_id") == "digest_prefs"), len(blocks)
        )
        if at > 0 and blocks[at - 1].get("type") == "context":
            at -= 1
        kept = blocks[:at] + [b.to_dict() for b in controls]
        client.chat_update(
            channel=where[0], ts=where[1], text=str(message.get("text") or ""), blocks=kept
        )
