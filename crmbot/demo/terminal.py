"""Block Kit and mrkdwn as terminal text: what a Slack message looks like in the demo console.

Headers, sections (text, fields, an accessory), context lines, dividers and actions are drawn
as lines of text; buttons and menu options become numbered choices the person can pick. Slack
markup is resolved the way the Slack client shows it: `<@U…>` as @name, `<#C…|sales>` as
#sales, `<!date^…>` in the reader's time zone, links by their label, entities unescaped.
ANSI colors only when asked for (see `use_color`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

JSON = dict[str, Any]

EMOJI = {
    "red_circle": "🔴",
    "warning": "⚠️",
    "trophy": "🏆",
    "tada": "🎉",
    "sunny": "☀️",
    "alarm_clock": "⏰",
    "bell": "🔔",
    "white_check_mark": "✅",
    "x": "❌",
    "wave": "👋",
    "memo": "📝",
    "telephone_receiver": "📞",
    "calendar": "📆",
    "moneybag": "💰",
    "inbox_tray": "📥",
    "sunrise": "🌅",
    "zzz": "💤",
    "eyes": "👀",
    "bar_chart": "📊",
    "chart_with_upwards_trend": "📈",
    "rotating_light": "🚨",
    "no_entry_sign": "🚫",
    "hourglass": "⌛",
}


_ANSI = {
    "bold": "1",
    "dim": "2",
    "italic": "3",
    "underline": "4",
    "strike": "9",
    "red": "31",
    "green": "32",
    "yellow": "33",
    "blue": "34",
    "magenta": "35",
    "cyan": "36",
}


def use_color(stream: TextIO) -> bool:
    """Colors only on a terminal, and never when NO_COLOR is set (https://no-color.org)."""
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class Palette:
    """ANSI styles, or nothing at all when color is off."""

    def __init__(self, color: bool) -> None:
        self.color = color

    def __call__(self, text: str, *styles: str) -> str:
        if not self.color or not styles or not text:
            return text
        codes = ";".join(_ANSI[s] for s in styles)
        return f"\x1b[{codes}m{text}\x1b[0m"


@dataclass(frozen=True)
class Choice:
    """Something to click in a message or view: a button, or one option of a menu."""

    label: str
    block_id: str
    element: JSON
    option: JSON | None = None

    @property
    def value(self) -> str:
        """The button's value or the option's value."""
        source = self.option if self.option is not None else self.element
        return str(source.get("value") or "")

    def action(self) -> JSON:
        """The `actions[0]` entry Slack sends when this choice is clicked."""
        element = self.element
        action: JSON = {
            "action_id": element.get("action_id", ""),
            "block_id": self.block_id,
            "type": element.get("type", "button"),
        }
        if element.get("type") == "button":
            action["text"] = element.get("text")
            if "value" in element:
                action["value"] = element["value"]
            if "style" in element:
                action["style"] = element["style"]
        elif self.option is not None:
            action["selected_option"] = self.option
        return action


Number = Callable[[Choice], int]
"""Registers a choice and answers the number to show for it."""

_TOKEN = re.compile(r"<([^<>\n]+)>")
_DATE = re.compile(r"!date\^(\d+)\^([^^|]+)(?:\^[^|]*)?(?:\|(.*))?$", re.S)
_CODE = re.compile(r"(```.+?```|`[^`\n]+`)", re.S)
_BOLD = re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])")
_ITALIC = re.compile(r"(?<![\w_])_(?=\S)([^_\n]+?)(?<=\S)_(?![\w_])")
_STRIKE = re.compile(r"(?<![\w~])~(?=\S)([^~\n]+?)(?<=\S)~(?![\w~])")
_EMOJI = re.compile(r":([a-z0-9_+-]+):")
_ORDINAL = {1: "st", 2: "nd", 3: "rd"}


def _zone(tz: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(tz or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def format_date(stamp: int, template: str, *, tz: str | None, now: datetime) -> str | None:
    """Slack's `<!date^stamp^template|…>` as the reader in `tz` sees it; None if unknown."""
    zone = _zone(tz)
    at = datetime.fromtimestamp(stamp, UTC).astimezone(zone)
    today = now.astimezone(zone).date()
    days = (at.date() - today).days
    relative = {0: "Today", -1: "Yesterday", 1: "Tomorrow"}.get(days)
    day = at.day
    suffix = "th" if 11 <= day % 100 <= 13 else _ORDINAL.get(day % 10, "th")
    plain = {
        "date_num": at.strftime("%Y-%m-%d"),
        "date": f"{at:%B} {day}{suffix}, {at:%Y}",
        "date_short": f"{at:%b} {day}, {at:%Y}",
        "date_long": f"{at:%A}, {at:%B} {day}{suffix}, {at:%Y}",
        "time": at.strftime("%H:%M"),
        "time_secs": at.strftime("%H:%M:%S"),
    }
    for name in ("date", "date_short", "date_long"):
        plain[f"{name}_pretty"] = relative or plain[name]
    seconds = int((now - at).total_seconds())
    plain["ago"] = _ago(seconds)
    unknown = False

    def token(match: re.Match[str]) -> str:
        nonlocal unknown
        if match[1] not in plain:
            unknown = True
        return plain.get(match[1], match[0])

    out = re.sub(r"\{(\w+)\}", token, template)
    return None if unknown else out


def _ago(seconds: int) -> str:
    future = seconds < 0
    span = abs(seconds)
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if span >= size:
            count = span // size
            words = f"{count} {unit}{'s' if count != 1 else ''}"
            return f"in {words}" if future else f"{words} ago"
    return "just now"


class Renderer:
    """Draws Slack messages and views for one reader (their time zone) as terminal lines."""

    def __init__(
        self,
        *,
        users: Mapping[str, str],
        channels: Mapping[str, str],
        tz: str | None = None,
        color: bool = False,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self.users = users
        self.channels = channels
        self.tz = tz
        self.paint = Palette(color)
        self._now = now or (lambda: datetime.now(UTC))

    # --- text ------------------------------------------------------------------

    def mrkdwn(self, text: str) -> str:
        """mrkdwn as the Slack client shows it."""
        parts = _CODE.split(text)
        out = []
        for i, part in enumerate(parts):
            if i % 2:  # code: markup inside is shown as typed
                inner = part.strip("`")
                out.append(self.paint(_unescape(inner), "cyan") if self.paint.color else part)
            else:
                out.append(self._prose(part))
        return "".join(out)

    def plain(self, text: str) -> str:
        """plain_text: entities unescaped, emoji shown, nothing else interpreted."""
        return _EMOJI.sub(_emoji, _unescape(text))

    def text(self, obj: Any) -> str:
        """A text object (plain_text or mrkdwn) or a bare string."""
        if isinstance(obj, str):
            return self.mrkdwn(obj)
        if not isinstance(obj, dict):
            return ""
        raw = str(obj.get("text") or "")
        return self.plain(raw) if obj.get("type") == "plain_text" else self.mrkdwn(raw)

    def _prose(self, text: str) -> str:
        # Slack markup first (kept aside, so styles can't reach into links or dates),
        # then bold/italic/strike, then entities.
        tokens: list[str] = []

        def keep(match: re.Match[str]) -> str:
            tokens.append(self._token(match[1]))
            return f"\x00{len(tokens) - 1}\x00"

        p = self.paint
        text = _TOKEN.sub(keep, text)
        text = _BOLD.sub(lambda m: p(m[1], "bold") if p.color else m[1], text)
        text = _ITALIC.sub(lambda m: p(m[1], "italic") if p.color else m[1], text)
        text = _STRIKE.sub(lambda m: p(m[1], "strike") if p.color else m[1], text)
        text = _EMOJI.sub(_emoji, _unescape(text))
        return re.sub("\x00(\\d+)\x00", lambda m: tokens[int(m[1])], text)

    def _token(self, inner: str) -> str:
        p = self.paint
        target, _, label = inner.partition("|")
        if target.startswith("@"):
            name = self.users.get(target[1:]) or label.lstrip("@") or target[1:]
            return p(f"@{name}", "bold", "blue")
        if target.startswith("#"):
            name = self.channels.get(target[1:]) or label or target[1:]
            return p(f"#{name}", "bold", "blue")
        if target.startswith("!date^"):
            match = _DATE.match(inner)
            if match:
                shown = format_date(int(match[1]), match[2], tz=self.tz, now=self._now())
                return shown if shown is not None else (match[3] or "")
            return label
        if target.startswith("!subteam^"):
            return p(label or "@team", "bold", "blue")
        if target.startswith("!"):
            return p(f"@{target[1:]}", "bold", "yellow")
        shown = label or target.removeprefix("mailto:").removeprefix("tel:")
        return p(shown, "underline")

    # --- blocks ----------------------------------------------------------------

    def message(self, payload: Mapping[str, Any], number: Number) -> list[str]:
        """A message's lines: its blocks, or its text when it has none."""
        blocks = payload.get("blocks")
        if isinstance(blocks, list) and blocks:
            return self.blocks(blocks, number)
        text = str(payload.get("text") or "")
        return self.mrkdwn(text).splitlines() or [""]

    def blocks(self, blocks: Sequence[JSON], number: Number) -> list[str]:
        """Every block as lines (input blocks only by their label: forms draw them)."""
        lines: list[str] = []
        for block in blocks:
            lines.extend(self.block(block, number))
        return lines

    def block(self, block: JSON, number: Number) -> list[str]:
        p = self.paint
        kind = block.get("type")
        block_id = str(block.get("block_id") or "")
        if kind == "header":
            title = self.text(block.get("text"))
            return [p(title, "bold", "underline") if p.color else f"== {title} =="]
        if kind == "divider":
            return [p("─" * 40, "dim") if p.color else "-" * 40]
        if kind == "context":
            parts = []
            for element in block.get("elements") or []:
                if isinstance(element, dict) and element.get("type") == "image":
                    parts.append(f"[{element.get('alt_text', 'image')}]")
                else:
                    parts.append(self.text(element))
            return [p(line, "dim") for line in "  ".join(parts).splitlines()]
        if kind == "section":
            return self._section(block, block_id, number)
        if kind == "actions":
            return self._elements(block.get("elements") or [], block_id, number)
        if kind == "input":
            label = self.text(block.get("label"))
            return [f"{label}: …"]
        if kind == "image":
            return [f"[image: {block.get('alt_text', '')}]"]
        if kind == "markdown":
            return self.mrkdwn(str(block.get("text") or "")).splitlines()
        if kind == "rich_text":
            return _rich_text(block).splitlines()
        return [p(f"[{kind} block]", "dim")]

    def _section(self, block: JSON, block_id: str, number: Number) -> list[str]:
        lines = self.text(block.get("text")).splitlines() if block.get("text") else []
        for field in block.get("fields") or []:
            lines.extend(self.text(field).splitlines())
        accessory = block.get("accessory")
        if isinstance(accessory, dict) and accessory.get("type") != "image":
            shown = self._elements([accessory], block_id, number)
            if lines and len(shown) == 1:
                lines[-1] = f"{lines[-1]}  {shown[0]}"
            else:
                lines.extend(shown)
        return lines or [""]

    def _elements(self, elements: Sequence[JSON], block_id: str, number: Number) -> list[str]:
        """Buttons side by side; each menu on its own line, its options numbered."""
        p = self.paint
        lines: list[str] = []
        row: list[str] = []
        for element in elements:
            kind = element.get("type")
            if kind == "button":
                label = self.plain(str((element.get("text") or {}).get("text") or ""))
                n = number(Choice(label, block_id, element))
                style = {"primary": ("bold", "green"), "danger": ("bold", "red")}.get(
                    str(element.get("style")), ("bold",)
                )
                link = f" ↗ {element['url']}" if element.get("url") else ""
                row.append(f"{p(f'[{n}]', 'cyan')} {p(label, *style)}{link}")
                continue
            if row:
                lines.append("  ".join(row))
                row = []
            if kind in ("static_select", "overflow", "radio_buttons", "checkboxes"):
                title = self.text(element.get("placeholder")) or "Choose"
                options = list(element.get("options") or [])
                for group in element.get("option_groups") or []:
                    options.extend(group.get("options") or [])
                picks = []
                for option in options:
                    label = self.text(option.get("text"))
                    n = number(Choice(label, block_id, element, option))
                    picks.append(f"{p(f'[{n}]', 'cyan')} {label}")
                lines.append(f"{title}: " + "  ".join(picks))
            else:
                lines.append(p(f"({kind} — not available in the demo)", "dim"))
        if row:
            lines.append("  ".join(row))
        return lines


def _unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _emoji(match: re.Match[str]) -> str:
    return EMOJI.get(match[1], match[0])


def _rich_text(block: JSON) -> str:
    out: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "text":
                out.append(str(node.get("text") or ""))
            elif node.get("type") == "link":
                out.append(str(node.get("text") or node.get("url") or ""))
            for child in node.get("elements") or []:
                walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk(block.get("elements") or [])
    return "".join(out)


def indent(lines: Sequence[str], first: str = "", prefix: str = "  ") -> list[str]:
    """`first` before the first line, every other line indented by `prefix`."""
    if not lines:
        return [first.rstrip()]
    head = f"{first}{lines[0]}" if first else f"{prefix}{lines[0]}"
    return [head, *(f"{prefix}{line}" if line else "" for line in lines[1:])]
