"""Modals in the console: a view the app opened, filled in as a form and submitted like Slack.

Interactively each input is asked in turn (Enter keeps the value shown, `-` clears it,
`:cancel` closes the modal), then the form is submitted; fields the app (or, like the Slack
client, the form itself) refuses are shown with their error and asked again. In a script the
modal is shown whole and filled with `field: value` lines until `:submit` or `:cancel`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from crmbot.demo import seed
from crmbot.demo.forms import AnswerError, Field, Form, Lookup
from crmbot.demo.runtime import DemoWorld
from crmbot.demo.transcript import Choices, Output, Transcript, Where

JSON = dict[str, Any]


class StepError(Exception):
    """A step that can't be done; a script stops on it, the interactive console says why."""


class Cancelled(Exception):
    """The person closed the modal."""


class Modals:
    """The modal open in front of the person at the keyboard (at most one)."""

    def __init__(
        self,
        world: DemoWorld,
        out: Output,
        choices: Choices,
        transcript: Transcript,
        *,
        actor: Callable[[], seed.DemoRep],
        settle: Callable[..., bool],
        interactive: bool,
    ) -> None:
        self.world = world
        self.out = out
        self.p = out.paint
        self.choices = choices
        self.transcript = transcript
        self.actor = actor
        self.settle = settle
        self.interactive = interactive
        self.form: Form | None = None

    def open_new(self) -> None:
        """Take up the modals the app opened (or updated) since the last step."""
        while not self.transcript.modals.empty():
            method, view = self.transcript.modals.get()
            if method == "views.update" and self.form is not None:
                if self.form.view.get("id") == view.get("id"):
                    self.form.replace_view(view)
                continue
            self.form = Form(view, users=self.people(), tz_today=self.today())
            if self.interactive:
                self.fill_interactive(self.form)
            else:
                self.show_form(self.form)

    @staticmethod
    def people() -> dict[str, str]:
        return {r.user_id: r.handle for r in seed.REPS}

    def today(self) -> date:
        return datetime.now(UTC).astimezone(ZoneInfo(self.actor().tz)).date()

    def show_form(self, form: Form) -> None:
        """The whole modal, for a script's transcript."""
        renderer = self.transcript.renderer()
        where = Where(view=form.view)
        self.out.lines(["", *form.summary(renderer, self.choices.numbering(where))])

    def lookup(self, form: Form) -> Lookup:
        """Type-ahead through the app's block_suggestion, as the rep at the keyboard."""

        def options(field: Field, query: str) -> list[JSON]:
            answer = self.world.slack.options(
                field.action_id,
                query,
                user=self.actor().user_id,
                block_id=field.block_id,
                view=form.view,
            )
            body = answer.json() if answer.status == 200 and answer.body else {}
            found = list(body.get("options") or [])
            for group in body.get("option_groups") or []:
                found.extend(group.get("options") or [])
            return found

        return options

    def fill_line(self, text: str) -> None:
        """A script line `field: value` for the open modal."""
        assert self.form is not None
        name, sep, value = text.partition(":")
        if not sep:
            raise StepError("In a modal, give `field: value`, then :submit (or :cancel).")
        try:
            field = self.form.field(name)
            self.form.answer(field, value.strip(), self.lookup(self.form))
        except AnswerError as error:
            raise StepError(str(error)) from None
        if field.typeahead:  # what the type-ahead picked isn't what was typed: show it
            shown = self.form.shown(field, self.transcript.renderer())
            self.out.lines([self.p(f"  {field.label}: {shown}", "dim")])

    def submit_line(self) -> None:
        """`:submit` in a script: submit, and show the form again when it stays open."""
        assert self.form is not None
        if self.submit(self.form) != "closed":
            self.show_form(self.form)

    def cancel(self) -> None:
        """Close the modal without submitting."""
        assert self.form is not None
        self.world.fake.close_view(str(self.form.view.get("id")))
        self.out.lines([self.p(f"(closed {self.form.title})", "dim")])
        self.form = None

    def submit(self, form: Form) -> str:
        """Submit as Slack would: "closed", "errors" (shown on the fields) or "updated"."""
        errors = form.client_errors()
        if errors:
            form.errors = errors
            return "errors"
        since = self.world.fake.call_count
        answer = self.world.slack.submit(form.view, form.state_values(), user=self.actor().user_id)
        if answer.status != 200:
            raise StepError(f"The app answered HTTP {answer.status}: {answer.body[:200]}")
        body = answer.json() if answer.body.startswith("{") else {}
        action = (body or {}).get("response_action")
        if action == "errors":
            form.errors = dict(body.get("errors") or {})
            return "errors"
        if action in ("update", "push"):
            view = dict(body["view"])
            view.setdefault("id", form.view.get("id"))
            form.replace_view(view)
            return "updated"
        self.world.fake.close_view(str(form.view.get("id")))
        self.form = None
        self.settle(since, first=5.0, required=False)
        return "closed"

    def fill_interactive(self, form: Form) -> None:
        """Ask each input in turn, then submit; errors send the person back to those fields."""
        renderer = self.transcript.renderer()
        number = self.choices.numbering(Where(view=form.view))
        others = [b for b in form.view.get("blocks") or [] if b.get("type") != "input"]
        head = [self.p(f"┌ {form.title}", "bold", "magenta")]
        for block in others:
            head.extend(f"│ {line}" for line in renderer.block(block, number))
        self.out.lines(["", *head])
        todo = list(form.fields)
        try:
            while True:
                for field in todo:
                    self.ask_field(form, field)
                decision = (
                    self.out.ask(
                        self.p(f"└ {form.submit_label}? ", "magenta")
                        + "[Enter] submit · c cancel · a field's number to change it: "
                    )
                    .strip()
                    .lower()
                )
                if decision in ("c", "cancel", ":cancel"):
                    raise Cancelled
                if decision.isdigit() and 1 <= int(decision) <= len(form.fields):
                    todo = [form.fields[int(decision) - 1]]
                    continue
                outcome = self.submit(form)
                if outcome == "closed":
                    return
                if outcome == "updated":
                    todo = list(form.fields)
                    continue
                todo = [f for f in form.fields if f.block_id in form.errors]
        except (Cancelled, EOFError, KeyboardInterrupt):
            self.cancel()

    def ask_field(self, form: Form, field: Field) -> None:
        renderer = self.transcript.renderer()
        number = form.fields.index(field) + 1
        detail = form.describe(field, renderer)
        lines = [f"│ {self.p(f'{number}.', 'cyan')} {detail[0]}"]
        lines.extend(f"│    {line}" for line in detail[1:])
        lines.extend(f"│    {line}" for line in form.error_lines(field, renderer))
        self.out.lines(lines)
        while True:
            current = form.shown(field, renderer)
            shown = f" [{current}]" if current != "—" else ""
            text = self.out.ask(f"│    {'search' if field.typeahead else 'answer'}{shown}: ")
            stripped = text.strip()
            if stripped == ":cancel":
                raise Cancelled
            if not stripped:
                return
            try:
                if stripped == "-":
                    form.answer(field, "", self.lookup(form))
                elif field.typeahead:
                    self.pick(form, field, stripped)
                else:
                    form.answer(field, text, self.lookup(form))
                return
            except AnswerError as error:
                self.out.lines(["│    " + self.p(f"✗ {error}", "red")])

    def pick(self, form: Form, field: Field, query: str) -> None:
        """Type-ahead: show what the app suggests for `query`, take a number."""
        options = self.lookup(form)(field, query)
        if not options:
            raise AnswerError(f"nothing matches “{query}”")
        renderer = self.transcript.renderer()
        self.out.lines(
            [
                f"│      {self.p(f'{i}.', 'cyan')} {renderer.text(o.get('text'))}"
                for i, o in enumerate(options[:15], 1)
            ]
        )
        choice = self.out.ask("│    pick [1]: ").strip() or "1"
        form.answer(field, choice, lambda _f, _q: options)
