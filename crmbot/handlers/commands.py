"""`/crm`: ack at once, parse the verb, call the service, answer privately (or in channel)."""

from __future__ import annotations

import threading
import time
from functools import partial
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from crmbot import charts
from crmbot.dates import parse_when
from crmbot.domain import CrmError, InvalidInput, LeadView
from crmbot.handlers import command_text as ct
from crmbot.handlers import duplicates, modals, render, report_views, uploads
from crmbot.handlers.context import Actor
from crmbot.handlers.deps import Deps
from crmbot.handlers.errors import guarded


def register(app: App, deps: Deps) -> None:
    """Register the slash command."""
    handler = CommandHandler(deps)
    app.command(deps.settings.command)(guarded(handler.on_command))


def _is_when(tz: str, now: Any) -> Any:
    def check(phrase: str) -> bool:
        try:
            parse_when(phrase, tz, now)
        except CrmError:
            return False
        return True

    return check


class CommandHandler:
    STAGE_CACHE_SECONDS = 10.0  # stage names only steer parsing; the service re-resolves them

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.crm = deps.crm
        self._stages: dict[str, tuple[float, tuple[str, ...]]] = {}
        self._stages_lock = threading.Lock()

    def stage_names(self, ws: str) -> tuple[str, ...]:
        """The workspace's stage names, remembered by this process for a few seconds."""
        with self._stages_lock:
            cached = self._stages.get(ws)
        if cached is not None and time.monotonic() - cached[0] < self.STAGE_CACHE_SECONDS:
            return cached[1]
        names = tuple(s.name for s in self.crm.stages(ws))
        with self._stages_lock:
            if len(self._stages) > 10_000:
                self._stages.clear()
            self._stages[ws] = (time.monotonic(), names)
        return names

    def on_command(
        self,
        ack: Ack,
        command: dict[str, Any],
        context: Any,
        client: WebClient,
        respond: Respond,
    ) -> None:
        """Every `/crm …`: the ack goes out first, the work follows."""
        ack()
        actor = self.deps.directory.actor(context, client, command["user_id"])
        parsed = ct.parse_command(
            command.get("text") or "",
            stage_names=partial(self.stage_names, actor.ws),
            is_when=_is_when(actor.tz, self.crm.now()),
        )
        reply = self.run(parsed, actor, client, command)
        if reply is not None:
            respond(response_type="ephemeral", **reply.payload())
        if isinstance(reply, report_views.ChartedReply):  # text first, then the pictures
            uploads.share_charts(client, reply, command.get("channel_id"), respond)

    def run(
        self, parsed: ct.Command, actor: Actor, client: WebClient, command: dict[str, Any]
    ) -> render.Reply | None:
        """Carry out one parsed command; None when a modal took over."""
        crm, ws, by = self.crm, actor.ws, actor.user_id
        trigger = command.get("trigger_id", "")
        channel = command.get("channel_id")
        opened = (self.deps, client, trigger, actor, channel)
        match parsed:
            case ct.Help(verb=verb):
                return render.help_reply(ct.help_text(verb))
            case ct.NewLead(name=None, company=None, email=None, phone=None, source=None):
                modals.open_new_lead(*opened)
            case ct.NewLead(name=None):
                modals.open_new_lead(*opened, prefill=parsed)
            case ct.NewLead():
                question = duplicates.guard(
                    crm,
                    ws,
                    name=parsed.name,
                    company=parsed.company,
                    email=parsed.email,
                    phone=parsed.phone,
                    source=parsed.source,
                )
                if question is not None:
                    return question
                lead = crm.create_lead(
                    ws,
                    by=by,
                    name=parsed.name or "",
                    company=parsed.company,
                    email=parsed.email,
                    phone=parsed.phone,
                    source=parsed.source,
                )
                return render.lead_created(lead)
            case ct.Log(kind=kind, record=record, notes=notes):
                modals.open_log(*opened, kind=kind, record=record, notes=notes)
            case ct.NewDeal(name=None):
                modals.open_new_deal(*opened, prefill=parsed)
            case ct.NewDeal():
                deal = crm.create_deal(
                    ws,
                    by=by,
                    name=parsed.name or "",
                    amount=parsed.amount,
                    currency=parsed.currency,
                    stage=parsed.stage,
                    about=parsed.about,
                )
                return render.deal_saved(deal, "New deal")
            case ct.Move(deal=deal, stage=stage):
                return render.deal_saved(crm.move_deal(ws, deal, stage, by=by), "Moved")
            case ct.Close(deal=deal, won=True):
                return render.deal_saved(crm.close_deal(ws, deal, by=by, won=True), ":trophy: Won")
            case ct.Close(deal=deal, won=False, reason=reason):
                closed = crm.close_deal(ws, deal, by=by, won=False, reason=reason)
                return render.deal_saved(closed, "Lost")
            case ct.Assign(record=record, user=mention):
                owner = self.user_of(actor, mention)
                result = crm.assign(ws, record, owner, by=by)
                if owner != by:
                    dm = client.conversations_open(users=owner)["channel"]["id"]
                    client.chat_postMessage(channel=dm, **render.assigned_dm(result, by).payload())
                return render.assigned(result)
            case ct.Convert(lead=lead):
                if not lead:
                    raise InvalidInput("lead", "Which lead?", example="/crm convert L-12")
                crm.show(ws, lead)  # unknown or ambiguous leads answer before a modal opens
                modals.open_convert(*opened, lead=lead)
            case ct.Find(text="@", filters=(), owner=None):  # the saved segments
                return report_views.segments(crm.segments(ws))
            case ct.Find(text=text, filters=(), owner=None) if "@" not in text:
                return render.search(crm.find(ws, text), text)
            case ct.Find(text=text, filters=filters, owner=owner):
                whose = self.user_of(actor, owner) if owner else None
                found = crm.find_records(ws, by=by, text=text, filters=filters, owner_id=whose)
                return report_views.found(found)
            case ct.Show(record=record):
                card = crm.show(ws, record)
                if isinstance(card.record, LeadView):  # a lead's card explains its score
                    score = crm.lead_score(ws, card.record.ref)
                    return report_views.with_score(render.card(card), score)
                return render.card(card)
            case ct.FollowUp(record=record, when=when, text=text):
                created = crm.create_follow_up(
                    ws,
                    by=by,
                    about=record,
                    when=when,
                    title=text,
                    tz=actor.tz,
                    channel_id=channel,
                )
                return render.follow_up_created(created)
            case ct.Tasks(user=mention, overdue=overdue):
                whose = self.user_of(actor, mention) if mention else by
                return render.tasks(crm.tasks(ws, owner_id=whose, overdue_only=overdue))
            case ct.Pipeline(user=mention, team=team):
                rep = None if team or mention is None else self.user_of(actor, mention)
                pipeline = crm.pipeline_report(ws, owner_id=rep, team=team, tz=actor.tz)
                return report_views.pipeline(pipeline, partial(charts.for_pipeline, pipeline))
            case ct.Report(period=period, user=mention):
                rep = self.user_of(actor, mention) if mention else None
                activity = crm.activity_report(ws, period, owner_id=rep)
                return report_views.report(activity, partial(charts.for_report, activity))
            case ct.History(record=record):
                return report_views.history(crm.record_history(ws, record))
            case ct.Undo():
                return report_views.undone(crm.undo(ws, by=by))
            case ct.Away(user=mention, when=typed):
                whose = self.user_of(actor, mention) if mention else by
                until = parse_when(typed, actor.tz, crm.now()) if typed else None
                if until is not None and until.in_past:
                    raise InvalidInput(
                        "when", f"{typed} has already passed.", example="away until monday"
                    )
                crm.set_away(ws, whose, until.at if until else None, by=by)
                who = "You're" if whose == by else f"{render.user(whose)} is"
                if until is None:
                    return render.text(f"{who} back: new web leads come round again.")
                return render.text(
                    f"{who} away until {render.when(until.at)}: no web leads until then."
                )
            case ct.Delete(record=record):
                view = crm.delete(ws, record, by=by)
                return render.text(
                    f"Deleted *{view.ref}* {render.esc(view.name)}. "
                    f"`/crm restore {view.ref}` brings it back."
                )
            case ct.Restore(record=record):
                view = crm.restore(ws, record, by=by)
                return render.text(f"Restored *{view.ref}* {render.esc(view.name)}.")
            case ct.Settings():
                modals.open_settings(*opened)
        return None

    def user_of(self, actor: Actor, mention: ct.Mention) -> str:
        """A mention's Slack user id: `<@U…>` directly, plain `@name` looked up among reps."""
        if mention.user_id:
            return mention.user_id
        rep = self.crm.rep_named(actor.ws, mention.name or "")
        if rep is None:
            raise InvalidInput(
                "user",
                f"I don't know who @{mention.name} is. Pick them from Slack's @-autocomplete.",
                example="/crm assign L-12 @maria",
            )
        return rep.user_id
