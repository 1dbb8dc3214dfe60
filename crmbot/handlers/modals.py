"""Modals: turn submissions into service calls or field errors (opening: modal_open.py).

Each submission: read the form (forms.py) -> call the service -> `ack()` and tell the person,
or `ack(response_action="errors")` so the modal stays open with everything typed. The acting
user and workspace come from Bolt's verified context; refs in private_metadata are looked up
again, in that workspace, by the service.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from slack_bolt import Ack, App, BoltContext
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from crmbot.domain import (
    AmbiguousName,
    CrmError,
    InteractionView,
    InvalidInput,
    PermissionDenied,
    RecordNotFound,
    Role,
    StageKind,
    StageView,
)
from crmbot.handlers import duplicates, forms, inline, intake, render, request_keys
from crmbot.handlers import modal_views as views
from crmbot.handlers.context import Actor, workspace_of
from crmbot.handlers.deps import Deps
from crmbot.handlers.errors import guarded
from crmbot.handlers.forms import FieldErrors, Metadata
from crmbot.handlers.ids import Action, Modal
from crmbot.handlers.modal_open import (
    open_assign,
    open_convert,
    open_follow_up,
    open_log,
    open_log_message,
    open_move,
    open_new_deal,
    open_new_lead,
    open_settings,
)
from crmbot.handlers.modal_views import BlockId
from crmbot.handlers.offload import Notice, Payload
from crmbot.service import CrmService

log = logging.getLogger(__name__)
# The openers live in modal_open.py; commands and buttons call them as `modals.open_*`.
__all__ = [
    "open_assign",
    "open_convert",
    "open_follow_up",
    "open_log",
    "open_log_message",
    "open_move",
    "open_new_deal",
    "open_new_lead",
    "open_settings",
    "register",
]

MAX_OPTIONS = 100
B = BlockId
# Per modal: the service's InvalidInput.field -> the block to show the error on. A field
# named like a block maps to it; anything else lands on the modal's first input.
FIELD_BLOCKS: dict[Modal, dict[str, BlockId]] = {
    Modal.NEW_LEAD: {},
    Modal.LOG: {"about": B.RECORD, "when": B.DATE, "summary": B.NOTES},
    Modal.NEW_DEAL: {"for": B.RECORD, "about": B.RECORD, "probability": B.STAGE},
    Modal.MOVE_DEAL: {},
    Modal.ASSIGN: {"user": B.OWNER},
    Modal.FOLLOW_UP: {"about": B.RECORD, "title": B.TEXT},
    Modal.CONVERT: {
        "name": B.DEAL_NAME,
        "lead": B.ACCOUNT,
        "domain": B.ACCOUNT,
        "currency": B.AMOUNT,
    },
    Modal.SETTINGS: {
        "user": B.ROLE_USER,
        "field": B.NEW_RULE_FIELD,
        "value": B.NEW_RULE_VALUE,
        "reps": B.NEW_RULE_REPS,
        "fields": B.RESTRICTED,
    },
    Modal.LOG_MESSAGE: {"about": B.RECORD, "permalink": B.NOTES, "summary": B.NOTES},
}


@dataclass(frozen=True)
class Done:
    """A successful submission: the reply for the person, and maybe a DM for someone else."""

    reply: render.Reply
    dm_to: str | None = None
    dm: render.Reply | None = None


Work = Callable[[Actor, Metadata, dict[str, Any], WebClient], Done | FieldErrors]


# The modals registered here and the step of each. Each answers with its outcome
# (handlers/inline.py), then hands its Slack posts to a worker or a background thread.
SUBMISSIONS: dict[Modal, Callable[[Submissions], Work]] = {
    Modal.NEW_LEAD: lambda submit: submit.new_lead,
    Modal.LOG: lambda submit: submit.log,
    Modal.NEW_DEAL: lambda submit: submit.new_deal,
    Modal.MOVE_DEAL: lambda submit: submit.move,
    Modal.ASSIGN: lambda submit: submit.assign,
    Modal.FOLLOW_UP: lambda submit: submit.follow_up,
    Modal.CONVERT: lambda submit: submit.convert,
    Modal.SETTINGS: lambda submit: submit.settings,
    Modal.LOG_MESSAGE: lambda submit: submit.log_message,
}
ANSWERED_BY_LISTENER = frozenset(SUBMISSIONS)


def register(app: App, deps: Deps) -> None:
    """Register the view submissions."""
    submit = Submissions(deps)
    for modal, work in SUBMISSIONS.items():
        app.view(modal.value)(guarded(submit.listener(modal, work(submit))))


def register_type_ahead(app: App, deps: Deps) -> None:
    """The record picker's suggestions. Registered before every other listener: Bolt tries
    listeners in order, and type-ahead answers a key press before its ack."""
    app.options(Action.RECORD_PICKER.value)(Submissions(deps).suggest_records)


def errors_for(
    error: CrmError, view: Mapping[str, Any], aliases: Mapping[str, BlockId]
) -> dict[str, str]:
    """Put a service error on the input it is about (the first input when unsure)."""
    inputs = [
        str(b.get("block_id"))
        for b in view.get("blocks") or []
        if isinstance(b, dict) and b.get("type") == "input"
    ]
    field = "record" if isinstance(error, RecordNotFound | AmbiguousName) else ""
    if isinstance(error, InvalidInput):
        field = error.field
    block = aliases.get(field, field)
    if block not in inputs:
        block = inputs[0] if inputs else BlockId.NAME.value
    return {str(block): views.clip(error.message, forms.ERROR_MAX)}


class Submissions:
    """The view_submission listeners and the record picker's type-ahead."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.crm = deps.crm

    def listener(self, modal: Modal, work: Work) -> Callable[..., None]:
        aliases = FIELD_BLOCKS[modal]

        def submit(
            ack: Ack,
            body: dict[str, Any],
            view: dict[str, Any],
            context: BoltContext,
            client: WebClient,
        ) -> None:
            meta = forms.read_metadata(view.get("private_metadata"))
            values = (view.get("state") or {}).get("values") or {}
            try:
                actor = self.deps.directory.actor(context, client, body["user"]["id"])
                outcome = request_keys.saving(ack, lambda: work(actor, meta, values, client))
            except CrmError as error:
                ack(response_action="errors", errors=errors_for(error, view, aliases))
                return
            if isinstance(outcome, FieldErrors):
                ack(response_action="errors", errors=outcome.by_block)
                return
            ack()
            notice = Notice(
                token=client.token or "",
                user_id=actor.user_id,
                channel_id=meta.channel_id,
                reply=_payload(outcome.reply),
                dm_to=outcome.dm_to,
                dm=_payload(outcome.dm) if outcome.dm else None,
            )
            # Slack posts are post-ack work: a worker process makes them when there is one,
            # else a background thread (this listener's answer waits for it to return).
            offload = self.deps.offload
            if offload is not None and offload.notify(notice):
                return
            if self.deps.background is None:
                deliver(client, notice)
            else:
                inline.in_background(
                    self.deps.background, lambda: deliver(client, notice), "a submission's posts"
                )

        submit.__name__ = f"submit_{modal.value}"
        return submit

    def suggest_records(self, ack: Ack, body: dict[str, Any], context: BoltContext) -> None:
        """Type-ahead for the record picker: leads, contacts, accounts and deals."""
        query = str(body.get("value") or "")
        # As the person typing sees records: no match through a field restricted from them.
        user = str((body.get("user") or {}).get("id") or "")
        try:
            hits = self.crm.find(workspace_of(context), query, by=user)
        except InvalidInput:
            hits = ()
        options = []
        for hit in hits[:MAX_OPTIONS]:
            suffix = f" · {hit.kind.label}"
            label = views.clip(f"{hit.ref} {hit.name}", views.OPTION_MAX - len(suffix)) + suffix
            options.append(views.option_dict(hit.ref, label))
        ack(options=options)

    # --- one per modal --------------------------------------------------------

    def new_lead(
        self, actor: Actor, meta: Metadata, values: dict[str, Any], client: WebClient
    ) -> Done | FieldErrors:
        form = forms.parse_new_lead(values)
        if isinstance(form, FieldErrors):
            return form
        question = duplicates.guard(
            self.crm,
            actor.ws,
            name=form.name,
            company=form.company,
            email=form.email,
            phone=form.phone,
            source=form.source,
            by=actor.user_id,
        )
        if question is not None:
            return Done(question)
        lead = self.crm.create_lead(
            actor.ws,
            by=actor.user_id,
            name=form.name,
            company=form.company,
            email=form.email,
            phone=form.phone,
            source=form.source,
        )
        return Done(render.lead_created(lead))

    def log(
        self, actor: Actor, meta: Metadata, values: dict[str, Any], client: WebClient
    ) -> Done | FieldErrors:
        form = forms.parse_log(values, tz=actor.tz, now=self.crm.now())
        if isinstance(form, FieldErrors):
            return form
        item = log_form(self.crm, actor, form)
        reply = render.logged(item)
        if form.follow_up is None:
            return Done(reply)
        # The interaction is saved: from here on a problem is reported, not a field error,
        # so a second submit can't log it twice.
        try:
            created = self.crm.create_follow_up(
                actor.ws,
                by=actor.user_id,
                about=form.record,
                due_at=form.follow_up.at,
                channel_id=meta.channel_id,
            )
        except CrmError as error:
            note = render.text(f"I couldn't set the follow-up: {render.esc(error.message)}")
            return Done(join(reply, note))
        return Done(join(reply, render.follow_up_created(created)))

    def log_message(
        self, actor: Actor, meta: Metadata, values: dict[str, Any], client: WebClient
    ) -> Done | FieldErrors:
        form = forms.parse_log_message(values)
        if isinstance(form, FieldErrors):
            return form
        item = self.crm.log_interaction(
            actor.ws,
            by=actor.user_id,
            kind=form.kind,
            about=form.record,
            summary=form.notes,
            permalink=meta.permalink,
            private=form.private,
        )
        return Done(render.logged(item))

    def new_deal(
        self, actor: Actor, meta: Metadata, values: dict[str, Any], client: WebClient
    ) -> Done | FieldErrors:
        form = forms.parse_new_deal(values)
        if isinstance(form, FieldErrors):
            return form
        deal = self.crm.create_deal(
            actor.ws,
            by=actor.user_id,
            name=form.name,
            amount=form.amount,
            currency=form.currency,
            stage=form.stage,
            about=form.about,
            close_date=form.close_date,
        )
        return Done(render.deal_saved(deal, "New deal"))

    def move(
        self, actor: Actor, meta: Metadata, values: dict[str, Any], client: WebClient
    ) -> Done | FieldErrors:
        form = forms.parse_move(values)
        if isinstance(form, FieldErrors):
            return form
        deal = self.crm.move_deal(
            actor.ws, _ref(meta, "deal"), form.stage, by=actor.user_id, reason=form.reason
        )
        return Done(render.deal_saved(deal, "Moved"))

    def assign(
        self, actor: Actor, meta: Metadata, values: dict[str, Any], client: WebClient
    ) -> Done | FieldErrors:
        form = forms.parse_assign(values)
        if isinstance(form, FieldErrors):
            return form
        result = self.crm.assign(actor.ws, _ref(meta, "record"), form.owner_id, by=actor.user_id)
        # Know the new owner as Slack describes them (name, time zone) now that they own
        # something; not before, so a refused assignment leaves no trace.
        self.deps.directory.rep(actor.ws, client, form.owner_id)
        told = result.owner_id if result.owner_id != actor.user_id else None
        return Done(render.assigned(result), told, render.assigned_dm(result, actor.user_id))

    def follow_up(
        self, actor: Actor, meta: Metadata, values: dict[str, Any], client: WebClient
    ) -> Done | FieldErrors:
        form = forms.parse_follow_up(values, tz=actor.tz, now=self.crm.now())
        if isinstance(form, FieldErrors):
            return form
        created = self.crm.create_follow_up(
            actor.ws,
            by=actor.user_id,
            about=form.record,
            due_at=form.due.at,
            title=form.title,
            channel_id=meta.channel_id,
        )
        return Done(render.follow_up_created(created))

    def convert(
        self, actor: Actor, meta: Metadata, values: dict[str, Any], client: WebClient
    ) -> Done | FieldErrors:
        form = forms.parse_convert(values)
        if isinstance(form, FieldErrors):
            return form
        question = duplicates.convert_guard(self.crm, actor.ws, _ref(meta, "lead"), form)
        if question is not None:
            return Done(question)
        result = self.crm.convert_lead(
            actor.ws,
            _ref(meta, "lead"),
            by=actor.user_id,
            account_name=form.account_name,
            deal_name=form.deal_name,
            amount=form.amount,
            currency=form.currency,
            stage=form.stage,
        )
        return Done(render.conversion(result))

    def _pipeline_and_reminders(self, actor: Actor, form: forms.SettingsInput) -> list[str]:
        """Apply the stage editor and the reminder settings where they changed; what changed.

        The stages go first: they are the part that can still be refused (a stage with deals
        in it), and a refusal must leave everything else unchanged too.
        """
        said: list[str] = []
        if form.stages is not None and _changed_stages(form, self.crm.stages(actor.ws)):
            stages = self.crm.set_stages(actor.ws, form.stages, by=actor.user_id)
            names = ", ".join(render.esc(s.name) for s in stages)
            said.append(f"The pipeline is now {names}.")
        now = self.crm.reminder_settings(actor.ws)
        changes = {
            "reminder_channel": form.reminder_channel,
            "manager_channel": form.manager_channel,
            "digest_time": form.digest_time,
        }
        changed = {k: v for k, v in changes.items() if v is not None and v != getattr(now, k)}
        if changed:
            self.crm.configure_reminders(
                actor.ws,
                by=actor.user_id,
                reminder_channel=changed.get("reminder_channel"),
                manager_channel=changed.get("manager_channel"),
                digest_time=changed.get("digest_time"),
            )
            if "reminder_channel" in changed:
                said.append(f"Reminders go to <#{changed['reminder_channel']}>.")
            if "manager_channel" in changed:
                said.append(f"Escalations go to <#{changed['manager_channel']}>.")
            if "digest_time" in changed:
                said.append(f"Morning digests at {changed['digest_time']} local time.")
        return said

    def settings(
        self, actor: Actor, meta: Metadata, values: dict[str, Any], client: WebClient
    ) -> Done | FieldErrors:
        form = forms.parse_settings(values)
        intake_part = intake.parse_intake_part(values)
        if isinstance(form, FieldErrors) or isinstance(intake_part, FieldErrors):
            return FieldErrors(
                {
                    **(intake_part.by_block if isinstance(intake_part, FieldErrors) else {}),
                    **(form.by_block if isinstance(form, FieldErrors) else {}),
                }
            )
        if actor.role is not Role.ADMIN:  # the service says so too; say it where it's about
            block = B.ROLE_USER if form.user_id else B.STAGES
            return FieldErrors({block.value: "Only admins can change settings."})
        restricted = self._restricted_fields(actor, form)
        if isinstance(restricted, FieldErrors):
            return restricted
        said = self._pipeline_and_reminders(actor, form)
        said += intake.apply_intake_part(self.crm, actor, intake_part)
        said += restricted
        if form.user_id is None or (form.role is None and form.team is None):
            return Done(render.text(" ".join(said) or "Settings saved; nothing changed."))
        if form.role is not None:
            rep = self.crm.set_role(actor.ws, form.user_id, form.role, by=actor.user_id)
            said.append(f"{render.user(rep.user_id)} is now {rep.role.value}.")
        if form.team is not None:
            rep = self.crm.set_team(actor.ws, form.user_id, form.team, by=actor.user_id)
            in_team = f"in team {render.esc(rep.team)}" if rep.team else "in no team"
            said.append(f"{render.user(rep.user_id)} is now {in_team}.")
        self.deps.directory.rep(actor.ws, client, form.user_id)  # their Slack profile, after
        return Done(render.text(" ".join(said)))

    def _restricted_fields(
        self, actor: Actor, form: forms.SettingsInput
    ) -> list[str] | FieldErrors:
        """Save the fields ticked as visible to managers and admins only, if they changed."""
        wanted = form.restricted
        if wanted is None or wanted == self.crm.restricted_fields(actor.ws):
            return []
        try:
            fields = self.crm.set_restricted_fields(actor.ws, wanted, by=actor.user_id)
        except PermissionDenied as denied:
            return FieldErrors({BlockId.RESTRICTED.value: denied.message})
        listed = ", ".join(views.RESTRICTABLE_LABELS[f].lower() for f in sorted(fields))
        if not fields:
            return ["No field is restricted any more."]
        return [f"Visible only to managers, admins and the record's owner: {listed}."]


def _changed_stages(form: forms.SettingsInput, now: tuple[StageView, ...]) -> bool:
    if form.stages is None:
        return False
    typed = [(s.was, s.name, s.probability) for s in form.stages]
    return typed != [
        (None, s.name, s.probability if s.kind is StageKind.OPEN else None) for s in now
    ]


def _ref(meta: Metadata, what: str) -> str:
    if not meta.ref:
        raise InvalidInput(what, "This form lost track of its record. Please open it again.")
    return meta.ref


def log_form(crm: CrmService, actor: Actor, form: forms.LogInput) -> InteractionView:
    """Log what the Log interaction form holds, as the acting rep."""
    return crm.log_interaction(
        actor.ws,
        by=actor.user_id,
        kind=form.kind,
        about=form.record,
        summary=form.notes,
        occurred_at=form.occurred_at,
        outcome=form.outcome,
        duration_minutes=form.duration_minutes,
        private=form.private,
    )


def join(first: render.Reply, second: render.Reply) -> render.Reply:
    """Two replies as one message."""
    return render.Reply(f"{first.text}\n{second.text}", [*first.blocks, *second.blocks])


def tell(client: WebClient, user_id: str, channel_id: str | None, reply: render.Reply) -> None:
    """Privately, where the person started; in a DM when there is no channel or it refuses."""
    _tell(client, user_id, channel_id, _payload(reply))


def _tell(client: WebClient, user_id: str, channel_id: str | None, payload: Payload) -> None:
    if channel_id:
        try:
            client.chat_postEphemeral(channel=channel_id, user=user_id, **payload)
            return
        except SlackApiError as error:  # e.g. a private channel the bot isn't in
            log.info("ephemeral to %s failed (%s); sending a DM", channel_id, _code(error))
    channel = client.conversations_open(users=user_id)["channel"]["id"]
    client.chat_postMessage(channel=channel, **payload)


def dm(
    client: WebClient, user_id: str, reply: render.Reply, *, actor: Actor, channel_id: str | None
) -> None:
    """Tell someone else by DM; if Slack refuses, tell the actor instead of failing silently."""
    _dm(client, user_id, _payload(reply), actor_id=actor.user_id, channel_id=channel_id)


def _dm(
    client: WebClient, user_id: str, payload: Payload, *, actor_id: str, channel_id: str | None
) -> None:
    try:
        channel = client.conversations_open(users=user_id)["channel"]["id"]
        client.chat_postMessage(channel=channel, **payload)
    except SlackApiError as error:
        log.warning("DM to %s failed: %s", user_id, _code(error))
        note = f"I couldn't send {render.user(user_id)} a DM about it ({_code(error)})."
        tell(client, actor_id, channel_id, render.text(note))


def deliver(client: WebClient, notice: Notice) -> None:
    """A submission's confirmation to the person, and its DM to someone else if any."""
    _tell(client, notice.user_id, notice.channel_id, notice.reply)
    if notice.dm_to and notice.dm:
        _dm(client, notice.dm_to, notice.dm, actor_id=notice.user_id, channel_id=notice.channel_id)


def _payload(reply: render.Reply) -> Payload:
    return dict(reply.payload())


def _code(error: SlackApiError) -> str:
    return str(error.response.get("error") or "unknown error")
