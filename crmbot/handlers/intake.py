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
import re
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    ConversationFilter,
    ConversationSelectElement,
    DividerBlock,
    InputBlock,
    Option,
    PlainTextInputElement,
    SectionBlock,
    StaticSelectElement,
    UserMultiSelectElement,
)

from crmbot.config import Settings
from crmbot.domain import InvalidInput
from crmbot.handlers import modal_views as views
from crmbot.handlers import render
from crmbot.handlers.context import Actor
from crmbot.handlers.delivery import AUTH_GONE, Pacer, Posted, post, queued_post_client
from crmbot.handlers.delivery import _retry_after as retry_after_of
from crmbot.handlers.deps import Deps
from crmbot.handlers.errors import guarded
from crmbot.handlers.forms import FieldErrors, read_metadata
from crmbot.handlers.ids import Action
from crmbot.intake_http import IntakeEndpoint
from crmbot.service import CrmService
from crmbot.service.assignment import MAX_RULE_REPS, TERRITORY_FIELDS, TerritoryRuleView
from crmbot.service.intake import IntakeOutcome, IntakeSettings
from crmbot.service.intake_posts import CHANNEL, OWNER, POST_LEASE, IntakePost
from crmbot.workhours import MAX_MINUTES

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
    if item.target == CHANNEL:
        # The channel notice shows the lead as any rep may see it (restricted fields out);
        # the owner's DM keeps them.
        lead = outcome.lead
        shown = crm.for_channel(item.workspace_id, lead) if lead is not None else None
        reply = notice(replace(outcome, lead=shown))
    else:
        reply = owner_dm(outcome)
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
            return queued_post_client(settings, settings.slack_bot_token or "")
        bot = store.find_bot(enterprise_id=None, team_id=ws)
        return queued_post_client(settings, bot.bot_token) if bot and bot.bot_token else None

    return IntakeEndpoint(
        crm,
        env_token=settings.intake_token,
        env_team=EnvTeam(settings, crm),
        notify=IntakeNotifier(crm, client_for),
    )


# --- settings: the token and the intake channel ------------------------------------------


def settings_blocks(
    info: IntakeSettings,
    *,
    new_token: str | None = None,
    rules: tuple[TerritoryRuleView, ...] = (),
) -> list[Block]:
    """The Settings modal's intake part: the token (rotate), the channel, the response time
    and the territory rules (one people picker per rule, and a row for a new rule)."""
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
        InputBlock(
            block_id=B.SLA.value,
            label="First follow-up within (working minutes)",
            element=PlainTextInputElement(
                action_id=B.SLA.value, initial_value=str(info.sla_minutes), max_length=6
            ),
            optional=True,
            hint="Each web lead gets a follow-up due this much working time into its owner's day.",
        ),
        render.section(
            "*Territory rules* · a lead whose country, region or industry matches a rule goes to "
            "that rule's reps in turn; the others go round-robin to everyone. Take everyone off "
            "a rule to delete it."
        ),
    ]
    for rule in rules[:MAX_RULES_SHOWN]:
        blocks.append(
            InputBlock(
                block_id=rule_block(rule),
                label=views.clip(f"{rule.field.title()}: {rule.value}", 150),
                element=UserMultiSelectElement(
                    action_id="reps", initial_users=list(rule.reps), max_selected_items=50
                ),
                optional=True,
            )
        )
    if len(rules) > MAX_RULES_SHOWN:
        blocks.append(
            render.context(
                f"{len(rules) - MAX_RULES_SHOWN} more rules: `crmbot intake rules` lists them all."
            )
        )
    blocks += [
        InputBlock(
            block_id=B.NEW_RULE_FIELD.value,
            label="New rule: leads whose",
            element=StaticSelectElement(
                action_id=B.NEW_RULE_FIELD.value,
                placeholder="country, region or industry",
                options=[Option(value=f, label=f.title()) for f in TERRITORY_FIELDS],
            ),
            optional=True,
        ),
        InputBlock(
            block_id=B.NEW_RULE_VALUE.value,
            label="is",
            element=PlainTextInputElement(
                action_id=B.NEW_RULE_VALUE.value, placeholder="e.g. DE, EMEA, SaaS", max_length=100
            ),
            optional=True,
        ),
        InputBlock(
            block_id=B.NEW_RULE_REPS.value,
            label="go to",
            element=UserMultiSelectElement(
                action_id=B.NEW_RULE_REPS.value, max_selected_items=MAX_RULE_REPS
            ),
            optional=True,
        ),
    ]
    return blocks


MAX_RULES_SHOWN = 40  # the rest of the modal takes ~30 of Slack's 100 blocks
RULE_PREFIX = "rule|"
_USER = re.compile(r"[UW][A-Z0-9]{1,31}")
B = views.BlockId


def rule_block(rule: TerritoryRuleView) -> str:
    return f"{RULE_PREFIX}{rule.field}|{rule.value}"


@dataclass(frozen=True)
class IntakePart:
    """The intake part of a Settings submission: the response time (None: left empty), the
    reps now on each shown rule (keyed by field and value), and a new rule if one was made."""

    sla_minutes: int | None
    rules: dict[tuple[str, str], tuple[str, ...]]
    new_rule: TerritoryRuleView | None


def parse_intake_part(values: dict[str, Any]) -> IntakePart | FieldErrors:
    """Read the intake part of the Settings modal; FieldErrors name the wrong inputs."""
    errors: dict[str, str] = {}

    def element(block: str) -> dict[str, Any]:
        actions = values.get(block) if isinstance(values, dict) else None
        found = next(iter(actions.values()), None) if isinstance(actions, dict) else None
        return found if isinstance(found, dict) else {}

    def users(block: str) -> tuple[str, ...]:
        picked = element(block).get("selected_users") or []
        if not isinstance(picked, list) or not all(
            isinstance(u, str) and _USER.fullmatch(u) for u in picked
        ):
            errors[block] = "Choose people from the list."
            return ()
        return tuple(dict.fromkeys(picked))

    sla: int | None = None
    raw_sla = str(element(B.SLA.value).get("value") or "").strip()
    if raw_sla:
        if raw_sla.isdigit() and 0 < int(raw_sla) <= MAX_MINUTES:
            sla = int(raw_sla)
        else:
            errors[B.SLA.value] = f"Type a number of minutes from 1 to {MAX_MINUTES}."
    rules: dict[tuple[str, str], tuple[str, ...]] = {}
    for block in values if isinstance(values, dict) else {}:
        if isinstance(block, str) and block.startswith(RULE_PREFIX):
            parts = block.removeprefix(RULE_PREFIX).split("|", 1)
            if len(parts) == 2 and parts[0] in TERRITORY_FIELDS:
                rules[(parts[0], parts[1])] = users(block)
    selected = element(B.NEW_RULE_FIELD.value).get("selected_option")
    field = selected.get("value") if isinstance(selected, dict) else None
    value = str(element(B.NEW_RULE_VALUE.value).get("value") or "").strip()
    reps = users(B.NEW_RULE_REPS.value)
    new_rule = None
    if field or value or reps:
        if field not in TERRITORY_FIELDS:
            errors[B.NEW_RULE_FIELD.value] = "Choose country, region or industry."
        if not value:
            errors[B.NEW_RULE_VALUE.value] = "Type the value leads must have, e.g. DE."
        if not reps:
            errors.setdefault(B.NEW_RULE_REPS.value, "Choose who gets these leads.")
        new_rule = TerritoryRuleView(str(field), value, reps)
    if errors:
        return FieldErrors(errors)
    return IntakePart(sla, rules, new_rule)


def apply_intake_part(crm: CrmService, actor: Actor, part: IntakePart) -> list[str]:
    """Save what changed in the intake part; what to tell the admin."""
    said: list[str] = []
    if (
        part.sla_minutes is not None
        and part.sla_minutes != crm.intake_settings(actor.ws).sla_minutes
    ):
        crm.set_response_sla(actor.ws, part.sla_minutes, by=actor.user_id)
        said.append(f"Web leads get a follow-up within {part.sla_minutes} working minutes.")
    current = {(r.field, r.value): r.reps for r in crm.territory_rules(actor.ws)}
    for (field, value), reps in part.rules.items():
        if (field, value) not in current or set(reps) == set(current[(field, value)]):
            continue
        label = f"{field} {render.esc(value)}"
        if reps:
            crm.set_territory_rule(actor.ws, field, value, reps, by=actor.user_id)
            said.append(f"Leads with {label} go to {_people(reps)}.")
        else:
            crm.delete_territory_rule(actor.ws, field, value, by=actor.user_id)
            said.append(f"The rule for {label} is gone.")
    if part.new_rule is not None:
        rule = crm.set_territory_rule(
            actor.ws, part.new_rule.field, part.new_rule.value, part.new_rule.reps, by=actor.user_id
        )
        said.append(f"Leads with {rule.field} {render.esc(rule.value)} go to {_people(rule.reps)}.")
    return said


def _people(reps: tuple[str, ...]) -> str:
    return ", ".join(render.user(r) for r in reps)


def settings_view(
    deps: Deps, actor: Actor, channel_id: str | None, *, new_token: str | None = None
) -> Any:
    """The whole Settings modal, with the intake part."""
    extra = settings_blocks(
        deps.crm.intake_settings(actor.ws),
        new_token=new_token,
        rules=deps.crm.territory_rules(actor.ws),
    )
    now = deps.crm.reminder_settings(actor.ws)
    reminders = views.SettingsNow(now.reminder_channel, now.manager_channel, now.digest_time)
    return views.settings(
        channel_id,
        stages=deps.crm.stages(actor.ws),
        reminders=reminders,
        extra=extra,
        restricted=deps.crm.restricted_fields(actor.ws),
    )


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
