"""The duplicate guard in Slack: "Merge into L-3?" with Merge / Create anyway buttons.

`/crm lead …` and the New lead modal ask the service for likely duplicates before creating;
when there are some, the person gets this question instead of a silent second record. The
buttons carry the typed lead (JSON in the button value), so nothing is kept server-side
between the question and the answer; the service checks every field again either way.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient
from slack_sdk.models.blocks import ActionsBlock, Block

from crmbot.domain import Candidate, InvalidInput, RecordView
from crmbot.handlers import render
from crmbot.handlers.deps import Deps
from crmbot.handlers.errors import guarded
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


def register(app: App, deps: Deps) -> None:
    """Merge / Create anyway."""
    handler = DuplicateHandler(deps)
    app.action(Action.MERGE.value)(guarded(handler.click_merge))
    app.action(Action.CREATE_ANYWAY.value)(guarded(handler.click_create_anyway))


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
