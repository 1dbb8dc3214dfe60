"""Buttons, the App Home tab and the "Log to CRM" message shortcut."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient
from slack_sdk.models.blocks import ActionsBlock, Block, DividerBlock, HeaderBlock
from slack_sdk.models.views import View

from crmbot.domain import FollowUpView, PipelineView, TaskList
from crmbot.handlers import modals, reminder_actions, render
from crmbot.handlers.deps import Deps
from crmbot.handlers.errors import guarded
from crmbot.handlers.ids import Action, Shortcut

SNOOZE = {
    Action.SNOOZE_HOUR: (timedelta(hours=1), "snoozed for an hour"),
    Action.SNOOZE_DAY: (timedelta(days=1), "snoozed for a day"),
    Action.SNOOZE_WEEK: (timedelta(weeks=1), "snoozed for a week"),
}


def register(app: App, deps: Deps) -> None:
    """Register every button, the home tab and the shortcut."""
    handler = ActionHandler(deps)
    app.action(Action.SHOW.value)(guarded(handler.click_show))
    app.action(Action.PICK.value)(guarded(handler.click_show))
    for action in (Action.LOG_CALL, Action.FOLLOW_UP, Action.MOVE, Action.ASSIGN, Action.CONVERT):
        app.action(action.value)(guarded(handler.click_open_modal))
    for action in (Action.HOME_NEW_LEAD, Action.HOME_LOG, Action.HOME_NEW_DEAL):
        app.action(action.value)(guarded(handler.click_home))
    app.action(Action.DONE.value)(guarded(handler.click_done))
    for action in SNOOZE:
        app.action(action.value)(guarded(handler.click_snooze))
    app.event("app_home_opened")(guarded(handler.open_home))
    app.shortcut(Shortcut.LOG_MESSAGE.value)(guarded(handler.open_log_message))
    reminder_actions.register(app, deps)


def _clicked(body: dict[str, Any]) -> tuple[str, str]:
    action = body["actions"][0]
    return action["action_id"], str(action.get("value") or "")


def _channel(body: dict[str, Any]) -> str | None:
    channel = body.get("channel") or (body.get("container") or {})
    return channel.get("id") or channel.get("channel_id")


class ActionHandler:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.crm = deps.crm

    def click_show(
        self, ack: Ack, body: dict[str, Any], context: Any, client: WebClient, respond: Respond
    ) -> None:
        """Open: the record's card, privately."""
        ack()
        actor = self.deps.directory.actor(context, client, body["user"]["id"])
        _, ref = _clicked(body)
        card = render.card(self.crm.show(actor.ws, ref, by=actor.user_id))
        respond(response_type="ephemeral", replace_original=False, **card.payload())

    def click_open_modal(
        self, ack: Ack, body: dict[str, Any], context: Any, client: WebClient
    ) -> None:
        """Log call / Follow-up / Move / Assign / Convert on a card: open the modal."""
        ack()
        actor = self.deps.directory.actor(context, client, body["user"]["id"])
        action, ref = _clicked(body)
        opened = (self.deps, client, body["trigger_id"], actor, _channel(body))
        if action == Action.LOG_CALL:
            from crmbot.domain import InteractionKind

            modals.open_log(*opened, kind=InteractionKind.CALL, record=ref)
        elif action == Action.FOLLOW_UP:
            modals.open_follow_up(*opened, ref=ref)
        elif action == Action.MOVE:
            modals.open_move(*opened, deal=ref)
        elif action == Action.ASSIGN:
            modals.open_assign(*opened, ref=ref)
        else:
            modals.open_convert(*opened, lead=ref)

    def click_home(self, ack: Ack, body: dict[str, Any], context: Any, client: WebClient) -> None:
        """Quick actions on App Home."""
        ack()
        actor = self.deps.directory.actor(context, client, body["user"]["id"])
        action, _ = _clicked(body)
        opened = (self.deps, client, body["trigger_id"], actor, None)
        if action == Action.HOME_NEW_LEAD:
            modals.open_new_lead(*opened)
        elif action == Action.HOME_LOG:
            modals.open_log(*opened)
        else:
            modals.open_new_deal(*opened)

    def click_done(
        self, ack: Ack, body: dict[str, Any], context: Any, client: WebClient, respond: Respond
    ) -> None:
        """Done on a follow-up."""
        ack()
        actor = self.deps.directory.actor(context, client, body["user"]["id"])
        _, ref = _clicked(body)
        done = self.crm.complete_follow_up(actor.ws, ref, by=actor.user_id)
        self._after_change(body, client, respond, render.follow_up_changed(done, "is done"))
        self._refresh_home(body, client, actor.ws, actor.user_id)
        reminder_actions.refresh_clicked(self.deps, client, body, actor.ws)

    def click_snooze(
        self, ack: Ack, body: dict[str, Any], context: Any, client: WebClient, respond: Respond
    ) -> None:
        """Snooze 1h / 1d / 1w on a follow-up."""
        ack()
        actor = self.deps.directory.actor(context, client, body["user"]["id"])
        action, ref = _clicked(body)
        delta, said = SNOOZE[Action(action)]
        snoozed = self.crm.snooze_follow_up(
            actor.ws, ref, by=actor.user_id, until=self.crm.now() + delta
        )
        self._after_change(body, client, respond, render.follow_up_changed(snoozed, said))
        self._refresh_home(body, client, actor.ws, actor.user_id)
        reminder_actions.refresh_clicked(self.deps, client, body, actor.ws)

    @staticmethod
    def _after_change(
        body: dict[str, Any], client: WebClient, respond: Respond, reply: render.Reply
    ) -> None:
        if body.get("response_url"):
            respond(response_type="ephemeral", replace_original=False, **reply.payload())
        elif body.get("view", {}).get("type") != "home":
            channel = _channel(body)
            if channel:
                client.chat_postEphemeral(
                    channel=channel, user=body["user"]["id"], **reply.payload()
                )

    def _refresh_home(self, body: dict[str, Any], client: WebClient, ws: str, user_id: str) -> None:
        if (body.get("view") or {}).get("type") == "home":
            self._publish_home(client, ws, user_id)

    def open_home(self, event: dict[str, Any], context: Any, client: WebClient) -> None:
        """App Home: my overdue and due-today follow-ups, my pipeline, quick actions."""
        if event.get("tab", "home") != "home":
            return
        actor = self.deps.directory.actor(context, client, event["user"])
        self._publish_home(client, actor.ws, actor.user_id)

    def _publish_home(self, client: WebClient, ws: str, user_id: str) -> None:
        rep = self.crm.rep(ws, user_id)
        tz = rep.tz if rep else "UTC"
        tasks = self.crm.tasks(ws, owner_id=user_id)
        pipeline = self.crm.pipeline(ws, owner_id=user_id, by=user_id)
        client.views_publish(user_id=user_id, view=home_view(tasks, pipeline, self.crm.now(), tz))

    def open_log_message(
        self, ack: Ack, shortcut: dict[str, Any], context: Any, client: WebClient
    ) -> None:
        """Message shortcut "Log to CRM": log any message on a record picked in a modal."""
        ack()
        actor = self.deps.directory.actor(context, client, shortcut["user"]["id"])
        message = shortcut.get("message") or {}
        channel = (shortcut.get("channel") or {}).get("id")
        permalink = None
        if channel and message.get("ts"):
            permalink = client.chat_getPermalink(channel=channel, message_ts=message["ts"])[
                "permalink"
            ]
        modals.open_log_message(
            self.deps,
            client,
            shortcut["trigger_id"],
            actor,
            channel,
            text=message.get("text") or "",
            permalink=permalink,
        )


def home_view(tasks: TaskList, pipeline: PipelineView, now: Any, tz: str) -> View:
    """The App Home tab: due work first, then the pipeline, then quick actions."""
    from zoneinfo import ZoneInfo

    local_end = now.astimezone(ZoneInfo(tz)).replace(hour=23, minute=59, second=59)
    today: list[FollowUpView] = [t for t in tasks.upcoming if t.due_at <= local_end]
    blocks: list[Block] = [
        HeaderBlock(text="Your CRM day"),
        ActionsBlock(
            block_id="home_actions",
            elements=[
                render.button("New lead", Action.HOME_NEW_LEAD, "new"),
                render.button("Log interaction", Action.HOME_LOG, "log"),
                render.button("New deal", Action.HOME_NEW_DEAL, "deal"),
            ],
        ),
        DividerBlock(),
        render.section(f"*Overdue* ({len(tasks.overdue)}) · *due today* ({len(today)})"),
    ]
    items = [*tasks.overdue, *today][:30]
    for item in items:
        blocks.append(render.section(render.follow_up_line(item)))
        blocks.append(render.follow_up_buttons(item))
    if not items:
        blocks.append(render.context("Nothing due. :sunny:"))
    blocks.append(DividerBlock())
    blocks.extend(render.pipeline(pipeline).blocks)
    return View(type="home", blocks=blocks[:100])
