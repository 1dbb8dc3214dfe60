"""Modals as terminal forms: read a View's inputs, take typed answers, give Slack's state back.

A `Form` holds one open modal: its input fields, the value of each (starting from the view's
initial values) and the errors the app put on them. Answers are typed text: a select takes
the option's number or (part of) its label, a type-ahead select a query that the app answers
through block_suggestion, a users select a rep's name. `state_values()` is the
`view.state.values` Slack would send on submit. Like the Slack client, a form refuses to submit
with a required input empty or a text out of its length limits.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from crmbot.demo.terminal import Renderer

JSON = dict[str, Any]

Lookup = Callable[["Field", str], list[JSON]]
"""Ask the app for an external select's options matching a query (block_suggestion)."""

_STATE_KEY = {
    "plain_text_input": "value",
    "email_text_input": "value",
    "url_text_input": "value",
    "number_input": "value",
    "static_select": "selected_option",
    "external_select": "selected_option",
    "radio_buttons": "selected_option",
    "users_select": "selected_user",
    "conversations_select": "selected_conversation",
    "channels_select": "selected_channel",
    "datepicker": "selected_date",
    "timepicker": "selected_time",
    "checkboxes": "selected_options",
    "multi_static_select": "selected_options",
    "multi_external_select": "selected_options",
    "multi_users_select": "selected_users",
}
_INITIAL_KEY = {
    "plain_text_input": "initial_value",
    "email_text_input": "initial_value",
    "url_text_input": "initial_value",
    "number_input": "initial_value",
    "static_select": "initial_option",
    "external_select": "initial_option",
    "radio_buttons": "initial_option",
    "users_select": "initial_user",
    "conversations_select": "initial_conversation",
    "channels_select": "initial_channel",
    "datepicker": "initial_date",
    "timepicker": "initial_time",
    "checkboxes": "initial_options",
    "multi_static_select": "initial_options",
    "multi_external_select": "initial_options",
    "multi_users_select": "initial_users",
}
_ONE_OPTION = frozenset({"static_select", "external_select", "radio_buttons"})
_MANY_OPTIONS = frozenset({"checkboxes", "multi_static_select", "multi_external_select"})
_TIME = re.compile(r"^(\d{1,2}):(\d{2})$")


class AnswerError(ValueError):
    """A typed answer that doesn't fit the input; the message says what would."""


@dataclass(frozen=True)
class Field:
    """One input block of a modal."""

    block_id: str
    action_id: str
    kind: str
    label: str
    hint: str
    optional: bool
    element: JSON

    @property
    def options(self) -> list[JSON]:
        """A static menu's options (groups flattened)."""
        found = list(self.element.get("options") or [])
        for group in self.element.get("option_groups") or []:
            found.extend(group.get("options") or [])
        return found

    @property
    def typeahead(self) -> bool:
        return self.kind in ("external_select", "multi_external_select")

    @property
    def supported(self) -> bool:
        return self.kind in _STATE_KEY


def fields_of(view: Mapping[str, Any]) -> list[Field]:
    """The input fields of a view, in order."""
    fields = []
    for block in view.get("blocks") or []:
        if block.get("type") != "input":
            continue
        element = block.get("element") or {}
        fields.append(
            Field(
                block_id=str(block.get("block_id") or ""),
                action_id=str(element.get("action_id") or ""),
                kind=str(element.get("type") or ""),
                label=str((block.get("label") or {}).get("text") or ""),
                hint=str((block.get("hint") or {}).get("text") or ""),
                optional=bool(block.get("optional")),
                element=element,
            )
        )
    return fields


def _label(option: Mapping[str, Any]) -> str:
    return str((option.get("text") or {}).get("text") or option.get("value") or "")


def _fold(text: str) -> str:
    return " ".join(text.casefold().split())


def pick_option(options: Sequence[JSON], answer: str) -> JSON:
    """The option an answer means: its number, value, label, or the one label it starts."""
    text = _fold(answer)
    if text.isdigit() and 1 <= int(text) <= len(options):
        return options[int(text) - 1]
    for option in options:
        if _fold(str(option.get("value") or "")) == text or _fold(_label(option)) == text:
            return option
    starts = [o for o in options if _fold(_label(o)).startswith(text)]
    if len(starts) == 1:
        return starts[0]
    within = [o for o in options if text and text in _fold(_label(o))]
    if len(within) == 1:
        return within[0]
    shown = ", ".join(_label(o) for o in options[:12])
    if starts or within:
        raise AnswerError(f"“{answer}” could be several of: {shown}")
    raise AnswerError(f"pick one of: {shown}" if options else "nothing to pick from")


def best_match(options: Sequence[JSON], query: str) -> JSON | None:
    """What the first pick after typing `query` would be: an exact match, else the first."""
    if not options:
        return None
    try:
        return pick_option(options, query)
    except AnswerError:
        return options[0]


class Form:
    """An open modal being filled in."""

    def __init__(self, view: JSON, *, users: Mapping[str, str], tz_today: date) -> None:
        self.users = users  # user id -> name (for users_select)
        self.today = tz_today
        self.errors: dict[str, str] = {}
        self.view = view
        self.fields = fields_of(view)
        self.values: dict[str, Any] = {f.block_id: self.initial(f) for f in self.fields}

    # --- what the view says ----------------------------------------------------

    @property
    def title(self) -> str:
        return str((self.view.get("title") or {}).get("text") or "Modal")

    @property
    def submit_label(self) -> str:
        return str((self.view.get("submit") or {}).get("text") or "Submit")

    @property
    def close_label(self) -> str:
        return str((self.view.get("close") or {}).get("text") or "Cancel")

    @staticmethod
    def initial(field: Field) -> Any:
        key = _INITIAL_KEY.get(field.kind)
        value = field.element.get(key) if key else None
        if field.kind in _MANY_OPTIONS or field.kind == "multi_users_select":
            return list(value or [])
        return value

    def replace_view(self, view: JSON) -> None:
        """The app updated the modal (`response_action: update`): inputs that stay keep values."""
        old = self.values
        self.view = view
        self.fields = fields_of(view)
        self.values = {
            f.block_id: old[f.block_id] if old.get(f.block_id) else self.initial(f)
            for f in self.fields
        }
        self.errors = {}

    def field(self, name: str) -> Field:
        """A field by block id, action id or label (or the one label it starts)."""
        wanted = _fold(name)
        for field in self.fields:
            if wanted in (_fold(field.block_id), _fold(field.action_id), _fold(field.label)):
                return field
        for field in self.fields:
            if _fold(field.block_id.replace("_", " ")) == wanted:
                return field
        starts = [f for f in self.fields if _fold(f.label).startswith(wanted)]
        if len(starts) == 1:
            return starts[0]
        names = ", ".join(_fold(f.label) for f in self.fields)
        raise AnswerError(f"this form has no field “{name}”; its fields: {names}")

    # --- answers ------------------------------------------------------------

    def answer(self, field: Field, text: str, lookup: Lookup) -> None:
        """Set a field from typed text; an empty answer clears it. Raises AnswerError."""
        text = text.strip() if field.kind != "plain_text_input" else text
        if not text.strip():
            self.values[field.block_id] = (
                [] if isinstance(self.values.get(field.block_id), list) else None
            )
            self.errors.pop(field.block_id, None)
            return
        self.values[field.block_id] = self._parse(field, text, lookup)
        self.errors.pop(field.block_id, None)

    def _parse(self, field: Field, text: str, lookup: Lookup) -> Any:
        kind = field.kind
        if kind in ("plain_text_input", "email_text_input", "url_text_input", "number_input"):
            return text.replace("\\n", "\n")
        if kind in ("static_select", "radio_buttons"):
            return pick_option(field.options, text)
        if kind in _MANY_OPTIONS and not field.typeahead:
            return [pick_option(field.options, part) for part in text.split(",") if part.strip()]
        if kind == "external_select":
            found = best_match(lookup(field, text), text)
            if found is None:
                raise AnswerError(f"nothing matches “{text}”")
            return found
        if kind == "multi_external_select":
            picked = [best_match(lookup(field, part.strip()), part) for part in text.split(",")]
            return [p for p in picked if p is not None]
        if kind == "users_select":
            return self.user_id(text)
        if kind == "multi_users_select":
            return [self.user_id(part) for part in text.split(",") if part.strip()]
        if kind == "datepicker":
            return self.date(text)
        if kind == "timepicker":
            match = _TIME.match(text.strip())
            if not match or int(match[1]) > 23 or int(match[2]) > 59:
                raise AnswerError("a time is HH:MM, like 09:30")
            return f"{int(match[1]):02d}:{match[2]}"
        raise AnswerError(f"the demo can't fill a {kind} input")

    def user_id(self, text: str) -> str:
        wanted = _fold(text.lstrip("@"))
        for user_id, name in self.users.items():
            if wanted in (_fold(name), _fold(user_id)):
                return user_id
        starts = [u for u, name in self.users.items() if _fold(name).startswith(wanted)]
        if len(starts) == 1:
            return starts[0]
        raise AnswerError("pick one of: " + ", ".join(f"@{n}" for n in self.users.values()))

    def date(self, text: str) -> str:
        words = {"today": 0, "tomorrow": 1, "yesterday": -1}
        if text.strip().lower() in words:
            return (self.today + timedelta(days=words[text.strip().lower()])).isoformat()
        try:
            return date.fromisoformat(text.strip()).isoformat()
        except ValueError:
            raise AnswerError("a date is YYYY-MM-DD (or today, tomorrow, yesterday)") from None

    # --- submitting -----------------------------------------------------------

    def client_errors(self) -> dict[str, str]:
        """What the Slack client itself refuses: required inputs empty, texts out of limits."""
        errors: dict[str, str] = {}
        for field in self.fields:
            value = self.values.get(field.block_id)
            if not field.optional and value in (None, "", []):
                errors[field.block_id] = "Please complete this required field."
            elif isinstance(value, str) and field.kind == "plain_text_input":
                low, high = field.element.get("min_length"), field.element.get("max_length")
                if isinstance(high, int) and len(value) > high:
                    errors[field.block_id] = f"Must be at most {high} characters."
                elif isinstance(low, int) and len(value) < low:
                    errors[field.block_id] = f"Must be at least {low} characters."
        return errors

    def state_values(self) -> dict[str, dict[str, Any]]:
        """`view.state.values` as Slack sends it on submit."""
        values: dict[str, dict[str, Any]] = {}
        for field in self.fields:
            if not field.supported:
                continue
            value = self.values.get(field.block_id)
            entry: JSON = {"type": field.kind, _STATE_KEY[field.kind]: value}
            values.setdefault(field.block_id, {})[field.action_id] = entry
        return values

    # --- showing ----------------------------------------------------------------

    def shown(self, field: Field, renderer: Renderer) -> str:
        """A field's current value, as the modal would show it."""
        value = self.values.get(field.block_id)
        if value in (None, "", []):
            return "—"
        if isinstance(value, dict):
            return renderer.text(value.get("text")) or str(value.get("value"))
        if isinstance(value, list):
            return ", ".join(
                renderer.text(v.get("text")) if isinstance(v, dict) else f"@{self.users.get(v, v)}"
                for v in value
            )
        if field.kind in ("users_select",):
            return f"@{self.users.get(str(value), str(value))}"
        return str(value)

    def describe(self, field: Field, renderer: Renderer) -> list[str]:
        """A field's label, hint and choices, as lines (without its current value)."""
        p = renderer.paint
        head = p(field.label, "bold") + (p(" (optional)", "dim") if field.optional else "")
        lines = [head]
        if field.hint:
            lines.append(p(field.hint, "dim"))
        if field.options:
            lines.append(
                "  ".join(
                    f"{p(f'{i}.', 'cyan')} {renderer.text(o.get('text'))}"
                    for i, o in enumerate(field.options, 1)
                )
            )
        elif field.typeahead:
            placeholder = renderer.text(field.element.get("placeholder")) or "type to search"
            lines.append(p(f"type-ahead: {placeholder}", "dim"))
        elif field.kind in ("users_select", "multi_users_select"):
            lines.append(p("a person: " + ", ".join(f"@{n}" for n in self.users.values()), "dim"))
        elif field.kind == "datepicker":
            lines.append(p("a date: YYYY-MM-DD, today, tomorrow", "dim"))
        elif field.kind == "timepicker":
            lines.append(p("a time: HH:MM", "dim"))
        elif not field.supported:
            lines.append(p(f"({field.kind}: not supported by the demo)", "dim"))
        return lines

    def error_lines(self, field: Field, renderer: Renderer) -> list[str]:
        """The error the app (or the client) put on a field, as lines."""
        text = self.errors.get(field.block_id)
        if not text:
            return []
        first, *rest = text.splitlines() or [""]
        p = renderer.paint
        return [p(f"✗ {first}", "red", "bold"), *(p(f"  {line}", "red") for line in rest)]

    def summary(self, renderer: Renderer, number: Callable[..., int]) -> list[str]:
        """The whole modal: title, its other blocks, each field with its value and error."""
        p = renderer.paint
        lines = [p(f"┌ {self.title}", "bold", "magenta")]
        for block in self.view.get("blocks") or []:
            if block.get("type") != "input":
                lines.extend(f"│ {line}" for line in renderer.block(block, number))
                continue
            field = next(f for f in self.fields if f.block_id == block.get("block_id"))
            detail = self.describe(field, renderer)
            value = self.shown(field, renderer)
            lines.append(f"│ {detail[0]}: {value}")
            lines.extend(f"│     {line}" for line in detail[1:])
            if field.block_id in self.errors:
                lines.extend(f"│     {line}" for line in self.error_lines(field, renderer))
        lines.append(p(f"└ [{self.submit_label}] [{self.close_label}]", "magenta"))
        return lines
