"""The duplicate guard in Slack: "Merge into L-3?" with Merge / Create anyway buttons.

`/crm lead …` and the New lead modal ask the service for likely duplicates before creating;
when there are some, the person gets this question instead of a silent second record. The
buttons carry the typed lead (JSON in the button value), so nothing is kept server-side
between the question and the answer; the service checks every field again either way.

Converting a lead asks the same when its person is already a contact (same email, or a close
name at the same company): Merge makes the lead that contact (`convert_lead(into_contact=…)`),
Create anyway converts into a new contact as before. The account needs no question: convert
already finds it by email domain or name before making one.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient
from slack_sdk.models.blocks import ActionsBlock, Block

from crmbot.domain import Candidate, InvalidInput, RecordKind, RecordView
from crmbot.handlers import render
from crmbot.handlers.deps import Deps
from crmbot.handlers.errors import guarded
from crmbot.handlers.forms import ConvertInput
from crmbot.handlers.ids import Action

FIELDS = ("name", "company", "email", "phone", "source")
VALUE_MAX = 2000  # Slack's limit for a button value


def _value(fields: dict[str, str | None], **more: str) -> str:
    data = {**{k: v for k, v in fields.items() if k in FIELDS and v}, **more}
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def prompt(fields: dict[str, str | None], candidates: Sequence[Candidate]) -> render.Reply | None:
    """Ask whether the new lead is one of `candidates`; None when the buttons can't carry it."""
    if not candidates or len(_value(fields, into="L-2147483647")) > VALUE_MAX:
        return None
    best = candidates[0]
    name = render.esc(fields.get("name") or "")
    blocks: list[Block] = [
        render.section(
            f"*{name}* looks like a record you already have. "
            f"Merge into *{best.ref}* {render.esc(best.name)}?"
        )
    ]
    for item in candidates:
        detail = f" · {render.esc(item.detail)}" if item.detail else ""
        blocks.append(
            render.section(
                f"*{item.ref}* {render.esc(item.name)} · {item.kind.label}{detail}",
                accessory=render.button("Merge", Action.MERGE, _value(fields, into=item.ref)),
            )
        )
    blocks.append(
        ActionsBlock(
            block_id="duplicate",
            elements=[render.button("Create anyway", Action.CREATE_ANYWAY, _value(fields))],
        )
    )
    return render.Reply(f"Merge into {best.ref} {render.esc(best.name)}?", blocks)


def guard(
    crm: Any,
    ws: str,
    *,
    name: str | None,
    company: str | None = None,
    email: str | None = None,
    phone: str | None = None,
    source: str | None = None,
    by: str | None = None,
) -> render.Reply | None:
    """The "Merge into …?" question when the lead about to be created looks known, else None.

    With `by`, the candidates' detail lines are as `by` may read them (restricted fields out)."""
    candidates = crm.find_duplicates(ws, name=name, email=email, company=company)
    if candidates and by is not None:
        candidates = crm.visible_candidates(ws, by, candidates)
    fields = {"name": name, "company": company, "email": email, "phone": phone, "source": source}
    return prompt(fields, candidates)


def read_value(raw: str) -> tuple[str | None, dict[str, str]]:
    """A button's value back into (merge target, lead fields)."""
    try:
        data = json.loads(raw)
    except ValueError:
        data = None
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise InvalidInput("record", "This question is out of date. Please create the lead again.")
    into = data.pop("into", None)
    return into, {k: v for k, v in data.items() if k in FIELDS}


def merged(record: RecordView) -> render.Reply:
    reply = render.text(f"Merged into *{record.ref}* {render.esc(record.name)}.")
    reply.blocks.append(render.record_buttons(record))
    return reply


# --- converting a lead whose person is already a contact --------------------------------

CONVERT_FIELDS = ("lead", "account", "deal", "amount", "currency", "stage")


def _convert_value(lead: str, form: ConvertInput, **more: str) -> str:
    data = {
        "lead": lead,
        "account": form.account_name,
        "deal": form.deal_name,
        "amount": str(form.amount) if form.amount is not None else None,
        "currency": form.currency,
        "stage": form.stage,
        **more,
    }
    return json.dumps(
        {k: v for k, v in data.items() if v}, ensure_ascii=False, separators=(",", ":")
    )


def convert_guard(crm: Any, ws: str, lead_ref: str, form: ConvertInput) -> render.Reply | None:
    """ "Merge into C-3?" when the lead about to be converted is already a contact, else None."""
    lead = crm.show(ws, lead_ref).record
    candidates = [
        c
        for c in crm.find_duplicates(
            ws, name=lead.name, email=lead.email, company=getattr(lead, "company", None)
        )
        if c.kind is RecordKind.CONTACT
    ]
    if not candidates or len(_convert_value(lead.ref, form, into="C-2147483647")) > VALUE_MAX:
        return None
    best = candidates[0]
    blocks: list[Block] = [
        render.section(
            f"*{lead.ref}* {render.esc(lead.name)} looks like a contact you already have. "
            f"Convert it into *{best.ref}* {render.esc(best.name)}?"
        )
    ]
    for item in candidates:
        detail = f" · {render.esc(item.detail)}" if item.detail else ""
        blocks.append(
            render.section(
                f"*{item.ref}* {render.esc(item.name)} · {item.kind.label}{detail}",
                accessory=render.button(
                    "Merge", Action.CONVERT_MERGE, _convert_value(lead.ref, form, into=item.ref)
                ),
            )
        )
    blocks.append(
        ActionsBlock(
            block_id="convert_duplicate",
            elements=[
                render.button(
                    "Create anyway", Action.CONVERT_ANYWAY, _convert_value(lead.ref, form)
                )
            ],
        )
    )
    return render.Reply(f"Convert {lead.ref} into {best.ref} {render.esc(best.name)}?", blocks)


def read_convert_value(raw: str) -> dict[str, str]:
    """A convert question's button value back into its fields."""
    try:
        data = json.loads(raw)
    except ValueError:
        data = None
    if (
        not isinstance(data, dict)
        or not all(isinstance(v, str) for v in data.values())
        or not data.get("lead")
    ):
        raise InvalidInput("lead", "This question is out of date. Please convert the lead again.")
    return {k: v for k, v in data.items() if k in (*CONVERT_FIELDS, "into")}


def register(app: App, deps: Deps) -> None:
    """Merge / Create anyway."""
    handler = DuplicateHandler(deps)
    app.action(Action.MERGE.value)(guarded(handler.click_merge))
    app.action(Action.CREATE_ANYWAY.value)(guarded(handler.click_create_anyway))
    app.action(Action.CONVERT_MERGE.value)(guarded(handler.click_convert))
    app.action(Action.CONVERT_ANYWAY.value)(guarded(handler.click_convert))


class DuplicateHandler:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.crm = deps.crm

    def click_merge(
        self, ack: Ack, body: dict[str, Any], context: Any, client: WebClient, respond: Respond
    ) -> None:
        """Merge: the existing record takes the typed non-empty fields."""
        ack()
        actor = self.deps.directory.actor(context, client, body["user"]["id"])
        into, fields = read_value(str(body["actions"][0].get("value") or ""))
        if not into:
            raise InvalidInput("record", "Merge into which record?")
        record = self.crm.merge_into(actor.ws, into, by=actor.user_id, **fields)
        respond(replace_original=True, **merged(record).payload())

    def click_create_anyway(
        self, ack: Ack, body: dict[str, Any], context: Any, client: WebClient, respond: Respond
    ) -> None:
        """Create anyway: a new lead, as typed."""
        ack()
        actor = self.deps.directory.actor(context, client, body["user"]["id"])
        _, fields = read_value(str(body["actions"][0].get("value") or ""))
        lead = self.crm.create_lead(
            actor.ws,
            by=actor.user_id,
            name=fields.get("name") or "",
            company=fields.get("company"),
            email=fields.get("email"),
            phone=fields.get("phone"),
            source=fields.get("source"),
        )
        respond(replace_original=True, **render.lead_created(lead).payload())

    def click_convert(
        self, ack: Ack, body: dict[str, Any], context: Any, client: WebClient, respond: Respond
    ) -> None:
        """Merge (into the existing contact) or Create anyway, for a lead being converted."""
        ack()
        actor = self.deps.directory.actor(context, client, body["user"]["id"])
        data = read_convert_value(str(body["actions"][0].get("value") or ""))
        amount = parse_amount(data.get("amount"))
        result = self.crm.convert_lead(
            actor.ws,
            data["lead"],
            by=actor.user_id,
            account_name=data.get("account"),
            deal_name=data.get("deal"),
            amount=amount,
            currency=data.get("currency"),
            stage=data.get("stage"),
            into_contact=data.get("into"),
        )
        respond(replace_original=True, **render.conversion(result).payload())


def parse_amount(text: str | None) -> Decimal | None:
    if not text:
        return None
    try:
        amount = Decimal(text)
        if not amount.is_finite():
            raise InvalidOperation
        return amount
    except InvalidOperation:
        raise InvalidInput("amount", "This question is out of date. Convert again.") from None
