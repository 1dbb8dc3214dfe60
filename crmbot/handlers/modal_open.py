"""Opening modals, prefilled: called right after a command's or button's `ack()`.

Trigger ids live 3 seconds, so only cheap lookups happen here. A record that can't be shown
raises the service's error for the caller's error handler to tell the person.
"""

from __future__ import annotations

from slack_sdk import WebClient
from slack_sdk.models.views import View

from crmbot.domain import (
    CrmError,
    DealView,
    InteractionKind,
    InvalidInput,
    LeadStatus,
    LeadView,
    PermissionDenied,
    RecordKind,
    Role,
)
from crmbot.handlers import modal_views as views
from crmbot.handlers.command_text import NewDeal, NewLead
from crmbot.handlers.context import Actor
from crmbot.handlers.deps import Deps
from crmbot.handlers.intake import settings_view
from crmbot.handlers.modal_views import Picked
from crmbot.parsing import fold, parse_ref, unescape_slack


def _open(client: WebClient, trigger_id: str, view: View) -> None:
    client.views_open(trigger_id=trigger_id, view=view)


def _picked(deps: Deps, ws: str, text: str | None) -> Picked | None:
    """A ref or name as the picker's initial option, or None when it isn't one record."""
    if not text or not text.strip():
        return None
    try:
        record = deps.crm.show(ws, text.strip()).record
    except CrmError:
        return None
    return Picked(record.ref, record.name)


def open_new_lead(
    deps: Deps,
    client: WebClient,
    trigger_id: str,
    actor: Actor,
    channel_id: str | None,
    prefill: NewLead | None = None,
) -> None:
    """New lead, prefilled with whatever `/crm lead` understood."""
    p = prefill or NewLead(None, None, None, None, None)
    view = views.new_lead(
        channel_id,
        name=p.name or "",
        company=p.company or "",
        email=p.email or "",
        phone=p.phone or "",
        source=(p.source or "").lower() or None,
    )
    _open(client, trigger_id, view)


def open_log(
    deps: Deps,
    client: WebClient,
    trigger_id: str,
    actor: Actor,
    channel_id: str | None,
    *,
    kind: InteractionKind | None = None,
    record: str | None = None,
    notes: str = "",
    private: bool = False,
) -> None:
    """Log interaction; a record that isn't exactly one record goes into the notes."""
    picked = _picked(deps, actor.ws, record)
    if record and picked is None:
        notes = f"{record} {notes}".strip()
    view = views.log_interaction(
        channel_id,
        tz=actor.tz,
        now=deps.crm.now(),
        kind=kind,
        record=picked,
        notes=notes,
        private=private,
    )
    _open(client, trigger_id, view)


def open_new_deal(
    deps: Deps,
    client: WebClient,
    trigger_id: str,
    actor: Actor,
    channel_id: str | None,
    prefill: NewDeal | None = None,
) -> None:
    """New deal, prefilled with whatever `/crm deal` understood."""
    p = prefill or NewDeal(None, None, None, None, None)
    stages = deps.crm.stages(actor.ws)
    wanted = fold(p.stage or "")
    stage = next((s.name for s in stages if wanted and fold(s.name).startswith(wanted)), None)
    picked = _picked(deps, actor.ws, p.about)
    amount = f"{p.amount:,.2f}".removesuffix(".00") if p.amount is not None else ""
    view = views.new_deal(
        channel_id,
        stages=stages,
        name=p.name or "",
        amount=amount,
        currency=p.currency or "",
        stage=stage,
        record=picked,
        missing=p.about if p.about and picked is None else None,
    )
    _open(client, trigger_id, view)


def open_move(
    deps: Deps, client: WebClient, trigger_id: str, actor: Actor, channel_id: str | None, deal: str
) -> None:
    """Move deal; an unknown deal raises the service's error for the caller to show."""
    record = deps.crm.show(actor.ws, deal, by=actor.user_id).record
    if not isinstance(record, DealView):
        raise InvalidInput("deal", f"{record.ref} {record.name} is not a deal.", example="D-21")
    view = views.move_deal(channel_id, deal=record, stages=deps.crm.stages(actor.ws))
    _open(client, trigger_id, view)


def open_assign(
    deps: Deps, client: WebClient, trigger_id: str, actor: Actor, channel_id: str | None, ref: str
) -> None:
    """Assign a record or a follow-up (T-5) to someone."""
    parsed = parse_ref(ref)
    if parsed is not None and parsed.kind is RecordKind.FOLLOW_UP:
        picked, owner = Picked(str(parsed), ""), None
    else:
        record = deps.crm.show(actor.ws, ref, by=actor.user_id).record
        picked, owner = Picked(record.ref, record.name), record.owner_id
    _open(client, trigger_id, views.assign(channel_id, record=picked, owner_id=owner))


def open_follow_up(
    deps: Deps,
    client: WebClient,
    trigger_id: str,
    actor: Actor,
    channel_id: str | None,
    ref: str | None,
) -> None:
    """Follow-up, about `ref` when it names one record."""
    picked = _picked(deps, actor.ws, ref)
    text = ref if ref and picked is None else ""
    _open(client, trigger_id, views.follow_up(channel_id, record=picked, text=text))


def open_convert(
    deps: Deps, client: WebClient, trigger_id: str, actor: Actor, channel_id: str | None, lead: str
) -> None:
    """Convert lead, the account prefilled from the lead's company."""
    record = deps.crm.show(actor.ws, lead, by=actor.user_id).record
    if not isinstance(record, LeadView):
        raise InvalidInput("lead", f"{record.ref} {record.name} is not a lead.", example="L-12")
    if record.status is LeadStatus.CONVERTED:
        raise InvalidInput("lead", f"{record.ref} is already converted.")
    view = views.convert_lead(channel_id, lead=record, stages=deps.crm.stages(actor.ws))
    _open(client, trigger_id, view)


def open_settings(
    deps: Deps, client: WebClient, trigger_id: str, actor: Actor, channel_id: str | None
) -> None:
    """Settings, for admins only."""
    if actor.role is not Role.ADMIN:
        raise PermissionDenied("Only admins can change settings.")
    _open(client, trigger_id, settings_view(deps, actor, channel_id))


def open_log_message(
    deps: Deps,
    client: WebClient,
    trigger_id: str,
    actor: Actor,
    channel_id: str | None,
    text: str,
    permalink: str | None,
) -> None:
    """Log to CRM: `text` is the message as Slack sent it (escaped), unescaped once here."""
    view = views.log_message(channel_id, text=unescape_slack(text), permalink=permalink)
    _open(client, trigger_id, view)
