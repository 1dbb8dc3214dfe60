"""Web-form intake, the Slack side: announce new leads, Claim, and the intake settings.

`intake_endpoint` builds the `POST /intake/lead` app with a notifier that, after the intake's
transaction, posts the lead to the intake channel (Claim / Assign / Log call) and DMs the
owner. Both posts were queued by the intake's own transaction (service/intake_posts.py);
posting runs on a small background pool so web forms get their answer at once. A post that
fails (after one quick retry) is given back with a backoff and retried by the reminder sweep
(`retry_intake_posts`), Retry-After honoured; a channel or person Slack refuses for good is
logged and not retried. The lead is saved regardless.
"""

from __future__ import annotations

import http.client
import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    ConversationFilter,
    ConversationSelectElement,
    DividerBlock,
    SectionBlock,
)

from crmbot.config import Settings
from crmbot.domain import InvalidInput
from crmbot.handlers import modal_views as views
from crmbot.handlers import render
from crmbot.handlers.context import Actor
from crmbot.handlers.delivery import AUTH_GONE, Pacer, Posted, ShortRateLimitRetry, post
from crmbot.handlers.delivery import _retry_after as retry_after_of
from crmbot.handlers.deps import Deps
from crmbot.handlers.errors import guarded
from crmbot.handlers.forms import read_metadata
from crmbot.handlers.ids import Action
from crmbot.intake_http import IntakeEndpoint
from crmbot.service import CrmService
from crmbot.service.intake import IntakeOutcome, IntakeSettings
from crmbot.service.intake_posts import CHANNEL, OWNER, POST_LEASE, IntakePost

log = logging.getLogger(__name__)
MESSAGE_SHOWN = 500  # characters of the form's message shown in Slack
NO_TOKEN_WAIT = 3600.0  # seconds before retrying a post for a workspace without a token


# --- what Slack shows ------------------------------------------------------------------


def _lead_line(outcome: IntakeOutcome) -> str:
    lead = outcome.lead
    assert lead is not None
    parts = [f"*{lead.ref}* {render.esc(lead.name)}"]
    if lead.company:
        parts[0] += f" at {render.esc(lead.company)}"
    parts += [render.esc(v) for v in (lead.email, lead.phone) if v]
    parts += [f"{k} {render.esc(v)}" for k, v in outcome.facts.items()]
    return " · ".join(parts)


def _quote(message: str) -> str:
    shown = render.clip(message, MESSAGE_SHOWN)
    return "\n".join("> " + render.esc(line) for line in shown.splitlines() if line.strip())


def _due(outcome: IntakeOutcome) -> str:
    task = outcome.follow_up
    return f" · follow-up *{task.ref}* due {render.when(task.due_at)}" if task else ""


def notice(outcome: IntakeOutcome) -> render.Reply:
    """The intake channel's message: who, what they wrote, who has it, and the buttons."""
    lead = outcome.lead
    assert lead is not None
    headline = "New web lead" if outcome.created else "Web form again from"
    owner = (
        f"{render.user(lead.owner_id)} ({render.esc(outcome.rule)})"
        if lead.owner_id
        else "nobody yet: claim it"
    )
    lines = [f":inbox_tray: {headline} {_lead_line(outcome)}"]
    if outcome.message:
        lines.append(_quote(outcome.message))
    lines.append(f"Owner: {owner}{_due(outcome)}")
    return render.Reply(
        f"{headline} {lead.ref} {render.esc(lead.name)}",
        [render.section("\n".join(lines)), intake_buttons(lead.ref)],
    )


def intake_buttons(ref: str, *, claim: bool = True) -> ActionsBlock:
    buttons = [render.button("Claim", Action.CLAIM, ref, style="primary")] if claim else []
    buttons += [
        render.button("Assign", Action.ASSIGN, ref),
        render.button("Log call", Action.LOG_CALL, ref),
    ]
    return ActionsBlock(block_id=f"intake:{ref}", elements=buttons)


def owner_dm(outcome: IntakeOutcome) -> render.Reply:
    """The owner's DM: the lead is theirs, and by when to answer."""
    lead = outcome.lead
    assert lead is not None
    verb = "is yours" if outcome.created else "sent the web form again"
    lines = [f"Web lead {_lead_line(outcome)} {verb}{_due(outcome)}."]
    if outcome.message:
        lines.append(_quote(outcome.message))
    return render.Reply(
        f"Web lead {lead.ref} {render.esc(lead.name)} {verb}",
        [render.section("\n".join(lines)), render.record_buttons(lead)],
    )


# --- telling Slack after the intake ------------------------------------------------------


class IntakeNotifier:
    """Posts each intake's queued notice and DM in the background, after its transaction.

    The posts are rows of the notification log written by the intake itself
    (service/intake_posts.py), leased to this process: what fails here is given back and
    retried by the reminder sweep, Retry-After honoured."""

    def __init__(
        self,
        crm: CrmService,
        client_for: Callable[[str], WebClient | None],
        *,
        workers: int = 2,
    ) -> None:
        self._crm = crm
        self._client_for = client_for
        self._pacer = Pacer()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="crmbot-intake")

    def __call__(self, ws: str, outcome: IntakeOutcome) -> Future[None]:
        return self._pool.submit(self._announce, ws, outcome, time.monotonic())

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def _announce(self, ws: str, outcome: IntakeOutcome, queued_at: float) -> None:
        if not outcome.posts:
            return
        # The rows are leased to this process for POST_LEASE from the intake's commit. Posts
        # that waited in this pool for half of that are left to a sweep (after the lease), so
        # the two can never both post one.
        deadline = queued_at + POST_LEASE.total_seconds() / 2
        try:
            client = self._client_for(ws)
        except Exception:  # the posts stay queued: a sweep retries them
            log.exception("intake %s: no Slack client for %s", outcome.answer, ws)
            return
        for item in outcome.posts:
            if time.monotonic() > deadline:
                log.warning("intake post %s: queued too long here, left to the sweep", item.id)
                continue
            try:
                if client is None:
                    self._crm.intake_post_failed(item, error="no_token", retry_after=NO_TOKEN_WAIT)
                    log.warning("intake %s: no Slack installation for %s", item.id, ws)
                else:
                    log.info("%s", deliver(self._crm, client, item, pacer=self._pacer))
            except Exception:  # background thread: the post stays queued for a sweep
                log.exception("intake post %s: telling Slack failed", item.id)


def deliver(crm: CrmService, client: WebClient, item: IntakePost, *, pacer: Pacer) -> str:
    """Post one queued intake message and record how it went; a line saying so."""
    outcome = item.outcome
    reply = notice(outcome) if item.target == CHANNEL else owner_dm(outcome)
    what = f"intake {outcome.lead.ref if outcome.lead else ''} {item.target}"
    channel = item.to
    if item.target == OWNER:
        try:
            channel = client.conversations_open(users=item.to)["channel"]["id"]
        except SlackApiError as error:
            opened = _refused(error)
            return _record(crm, item, opened, what)
        except (OSError, http.client.HTTPException) as error:
            return _record(crm, item, Posted(False, error=type(error).__name__), what)
    return _record(crm, item, post(client, channel, reply, pacer=pacer), what)


def _refused(error: SlackApiError) -> Posted:
    status = error.response.status_code
    code = "ratelimited" if status == 429 else str(error.response.get("error") or status)
    return Posted(False, error=code, retry_after=retry_after_of(error.response.headers))


def _record(crm: CrmService, item: IntakePost, posted: Posted, what: str) -> str:
    if posted.ok:
        if not crm.intake_post_sent(item, channel_id=posted.channel, message_ts=posted.ts):
            log.warning("%s: posted, but its lease had run out", what)
        return f"{what} → posted (ts {posted.ts})"
    if posted.channel_gone or posted.person_gone:
        hint = " (invite the bot to that channel)" if posted.error == "not_in_channel" else ""
        crm.intake_post_dropped(item, error=posted.error)
        log.warning("%s: Slack refused the post to %s: %s%s", what, item.to, posted.error, hint)
        return f"{what} → {posted.error}, not retried"
    wait = posted.retry_after
    if posted.error in AUTH_GONE:
        wait = max(wait or 0.0, NO_TOKEN_WAIT)
    retry_at = crm.intake_post_failed(item, error=posted.error, retry_after=wait)
    log.warning("%s: %s, retried from %s", what, posted.error, retry_at.isoformat())
    return f"{what} → {posted.error}, retry at {retry_at:%H:%M:%S}"


def retry_intake_posts(
    crm: CrmService,
    client_for: Callable[[str], WebClient | None],
    *,
    lease: timedelta,
    pacer: Pacer,
    say: Callable[[str], None],
) -> int:
    """The sweep's part: post the intake messages that are due again; how many went out."""
    sent = 0
    deadline = time.monotonic() + lease.total_seconds() / 2  # posts start well inside the lease
    for item in crm.claim_intake_posts(lease=lease):
        if time.monotonic() > deadline:
            crm.intake_post_handed_back(item)
            continue
        try:
            client = client_for(item.workspace_id)
            if client is None:
                crm.intake_post_failed(item, error="no_token", retry_after=NO_TOKEN_WAIT)
                continue
            line = deliver(crm, client, item, pacer=pacer)
        except Exception as error:  # one bad post must not hold up the others
            log.exception("intake post %s failed", item.id)
            crm.intake_post_failed(item, error=type(error).__name__)
            continue
        sent += "→ posted" in line
        say(line)
    return sent


def intake_client(settings: Settings, token: str) -> WebClient:
    """A WebClient for intake posts: one quick retry, a short Retry-After waited out; anything
    longer is left to a sweep (the post is queued)."""
    from crmbot.app import web_client  # crmbot.app registers this module's listeners

    client = web_client(settings, token)
    client.retry_handlers = [
        ShortRateLimitRetry(),
        ServerErrorRetryHandler(max_retry_count=1),
        ConnectionErrorRetryHandler(max_retry_count=1),
    ]
    return client


class EnvTeam:
    """Which workspace CRMBOT_INTAKE_TOKEN belongs to: CRMBOT_TEAM_ID, else the bot token's
    team (auth.test, asked once), else the database's only workspace."""

    def __init__(self, settings: Settings, crm: CrmService) -> None:
        self._settings, self._crm = settings, crm
        self._team: str | None = settings.team_id

    def __call__(self) -> str | None:
        if self._team:
            return self._team
        if self._settings.slack_bot_token:
            from crmbot.app import web_client  # crmbot.app registers this module's listeners

            try:
                answer = web_client(self._settings).auth_test()
                self._team = str(answer.get("team_id") or answer.get("enterprise_id") or "")
            except (SlackApiError, OSError) as error:
                log.warning("auth.test failed; intake falls back to the only workspace: %s", error)
        if self._team:
            return self._team
        only = self._crm.workspace_ids()
        return only[0] if len(only) == 1 else None


def intake_endpoint(settings: Settings, crm: CrmService, app: App) -> IntakeEndpoint:
    """The `/intake/lead` WSGI app, telling Slack through the workspace's bot token."""

    def client_for(ws: str) -> WebClient | None:
        store = app.installation_store
        if store is None:
            return intake_client(settings, settings.slack_bot_token or "")
        bot = store.find_bot(enterprise_id=None, team_id=ws)
        return intake_client(settings, bot.bot_token) if bot and bot.bot_token else None

    return IntakeEndpoint(
        crm,
        env_token=settings.intake_token,
        env_team=EnvTeam(settings, crm),
        notify=IntakeNotifier(crm, client_for),
    )


# --- settings: the token and the intake channel ------------------------------------------


def settings_blocks(info: IntakeSettings, *, new_token: str | None = None) -> list[Block]:
    """The Settings modal's intake part: the token (rotate), the channel, the SLA."""
    if info.token_hint and info.token_created_at:
        token = (
            f"Intake token `…{info.token_hint}`, made {render.when(info.token_created_at)}"
            f" by {render.user(info.token_created_by)}."
        )
    else:
        token = "No intake token yet: create one for your web forms."
    rotate = ButtonElement(
        text="Rotate token" if info.token_hint else "Create token",
        action_id=Action.ROTATE_INTAKE_TOKEN.value,
        value="rotate",
        confirm=ConfirmObject(
            title="New intake token?",
            text="Web forms using the current token stop working until they get the new one.",
            confirm="Make a new token",
            deny="Cancel",
        )
        if info.token_hint
        else None,
    )
    blocks: list[Block] = [
        DividerBlock(),
        render.section("*Web-form intake* · `POST /intake/lead`"),
    ]
    if new_token:
        blocks.append(
            render.section(
                f":key: The new token — copy it now, it is not shown again:\n`{new_token}`"
            )
        )
    picker = ConversationSelectElement(
        action_id=Action.INTAKE_CHANNEL.value,
        placeholder="Choose a channel",
        initial_conversation=info.channel_id,
        filter=ConversationFilter(include=["public", "private"], exclude_bot_users=True),
    )
    blocks += [
        SectionBlock(text=render.md(token), accessory=rotate),
        SectionBlock(text=render.md("New web leads are announced in"), accessory=picker),
        render.context(
            f"Each web lead gets a follow-up due within {info.sla_minutes} working minutes "
            "of its owner's day. Territory rules and the response time: `crmbot intake --help`."
        ),
    ]
    return blocks


def settings_view(
    deps: Deps, actor: Actor, channel_id: str | None, *, new_token: str | None = None
) -> Any:
    """The whole Settings modal, with the intake part."""
    extra = settings_blocks(deps.crm.intake_settings(actor.ws), new_token=new_token)
    return views.settings(channel_id, stages=deps.crm.stages(actor.ws), extra=extra)


# --- listeners ---------------------------------------------------------------------------


def register(app: App, deps: Deps) -> None:
    """Claim on intake notices; rotate token and intake channel in Settings."""
    handler = IntakeHandler(deps)
    app.action(Action.CLAIM.value)(guarded(handler.click_claim))
    app.action(Action.ROTATE_INTAKE_TOKEN.value)(guarded(handler.click_rotate))
    app.action(Action.INTAKE_CHANNEL.value)(guarded(handler.pick_channel))


def _value(body: dict[str, Any]) -> str:
    return str(body["actions"][0].get("value") or "")


class IntakeHandler:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.crm = deps.crm

    def click_claim(
        self, ack: Ack, body: dict[str, Any], context: Any, client: WebClient, respond: Respond
    ) -> None:
        """Claim: the lead and its open follow-ups become the clicker's; the notice says so."""
        ack()
        actor = self.deps.directory.actor(context, client, body["user"]["id"])
        result = self.crm.claim_lead(actor.ws, _value(body), by=actor.user_id)
        line = f"Claimed by {render.user(actor.user_id)}."
        original = body.get("message") or {}
        if original.get("blocks"):
            blocks = [b for b in original["blocks"] if b.get("type") != "actions"]
            blocks += [render.context(line).to_dict(), intake_buttons(result.ref, claim=False)]
            kept = [b if isinstance(b, dict) else b.to_dict() for b in blocks]
            respond(replace_original=True, text=original.get("text") or line, blocks=kept)
        else:
            reply = render.text(f"You claimed *{result.ref}* {render.esc(result.name)}.")
            respond(response_type="ephemeral", replace_original=False, **reply.payload())
        previous = result.previous_owner
        if previous and previous != actor.user_id:
            note = render.text(
                f"{render.user(actor.user_id)} claimed *{result.ref}* "
                f"{render.esc(result.name)}, which was yours."
            )
            try:
                dm = client.conversations_open(users=previous)["channel"]["id"]
                client.chat_postMessage(channel=dm, **note.payload())
            except SlackApiError as error:
                log.warning("claim DM to %s failed: %s", previous, error.response.get("error"))

    def click_rotate(self, ack: Ack, body: dict[str, Any], context: Any, client: WebClient) -> None:
        """Rotate token (Settings): show the new token once, in the same modal."""
        ack()
        actor = self.deps.directory.actor(context, client, body["user"]["id"])
        view = body.get("view") or {}
        if not view.get("id"):
            raise InvalidInput("token", "Rotate the intake token from `/crm settings`.")
        token = self.crm.rotate_intake_token(actor.ws, by=actor.user_id)
        channel = read_metadata(view.get("private_metadata")).channel_id
        client.views_update(
            view_id=view["id"],
            hash=view.get("hash"),
            view=settings_view(self.deps, actor, channel, new_token=token),
        )

    def pick_channel(self, ack: Ack, body: dict[str, Any], context: Any, client: WebClient) -> None:
        """The intake channel picked in Settings is saved at once."""
        ack()
        actor = self.deps.directory.actor(context, client, body["user"]["id"])
        channel = body["actions"][0].get("selected_conversation")
        self.crm.set_intake_channel(actor.ws, channel, by=actor.user_id)
