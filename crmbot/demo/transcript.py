"""What Slack shows, as it happens: the fake's recorded calls become tagged terminal messages.

A `Transcript` thread follows the fake Slack's call log. Every message the bot posts (to a
channel, a DM, ephemerally, through a response_url, or an App Home publish) is drawn with a
tag saying where it went: `[#sales]`, `[DM @bob]`, `[ephemeral]`, `[home]`. Buttons and menu
options get numbers that stay valid for the whole session (`Choices`); modals the app opens
are handed to the console to fill in.
"""

from __future__ import annotations

import queue
import re
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from crmbot.demo.fakeslack import Call, FakeSlack
from crmbot.demo.terminal import Choice, Palette, Renderer, indent

JSON = dict[str, Any]

#: Calls that change what a person sees in Slack (the rest are lookups).
VISIBLE = frozenset(
    {
        "response_url",
        "chat.postMessage",
        "chat.postEphemeral",
        "chat.update",
        "chat.delete",
        "views.open",
        "views.push",
        "views.update",
        "views.publish",
        "files.completeUploadExternal",
    }
)


@dataclass(frozen=True)
class Where:
    """Where a choice was shown: an ephemeral message, a channel message, or a view."""

    channel: str | None = None
    message: JSON | None = None  # a channel message (with its ts)
    view: JSON | None = None  # App Home or a modal


@dataclass(frozen=True)
class Target:
    number: int
    choice: Choice
    where: Where
    shown_in: int  # which message (or view) showed it, counting from 1


class Choices:
    """Every clickable thing shown so far, numbered from 1 for the whole session."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._targets: list[Target] = []
        self._shown = 0

    def numbering(self, where: Where) -> Callable[[Choice], int]:
        """A numbering for the choices of one new message or view shown at `where`."""
        with self._lock:
            self._shown += 1
            shown_in = self._shown

        def add(choice: Choice) -> int:
            with self._lock:
                target = Target(len(self._targets) + 1, choice, where, shown_in)
                self._targets.append(target)
                return target.number

        return add

    def get(self, number: int) -> Target | None:
        with self._lock:
            return self._targets[number - 1] if 1 <= number <= len(self._targets) else None

    def find(self, label: str, about: str = "") -> Target | None:
        """The first choice labelled `label` (or starting so), whose value or block mentions
        `about`, in the most recent message that has one."""
        wanted, about = label.casefold().strip(), about.casefold().strip()
        with self._lock:
            targets = sorted(self._targets, key=lambda t: (-t.shown_in, t.number))
        for exact in (True, False):
            for target in targets:
                shown = target.choice.label.casefold()
                if not (shown == wanted if exact else shown.startswith(wanted)):
                    continue
                seen = f"{target.choice.value} {target.choice.block_id}".casefold()
                if not about or about in seen:
                    return target
        return None


class Output:
    """Prints whole messages at once; on a terminal, keeps the prompt line intact."""

    def __init__(self, stream: TextIO | None = None, *, color: bool, live: bool) -> None:
        self.stream = stream or sys.stdout
        self.paint = Palette(color)
        self.live = live  # an interactive terminal: redraw the prompt after a message
        self.lock = threading.RLock()
        self.prompt: str | None = None

    def lines(self, lines: Sequence[str]) -> None:
        with self.lock:
            redraw = self.live and self.prompt is not None
            if redraw:
                self.stream.write("\r\x1b[K")
            for line in lines:
                self.stream.write(line + "\n")
            if redraw and self.prompt is not None:
                self.stream.write(self.prompt + _line_buffer())
            self.stream.flush()

    def ask(self, prompt: str) -> str:
        """input() with `prompt`; messages arriving meanwhile are printed above it."""
        with self.lock:
            self.prompt = prompt
        try:
            return input(_readline_safe(prompt) if self.live else prompt)
        finally:
            with self.lock:
                self.prompt = None


def _line_buffer() -> str:
    try:
        import readline
    except ImportError:  # no readline (e.g. Windows): nothing typed to restore
        return ""
    return readline.get_line_buffer()


def _readline_safe(prompt: str) -> str:
    # readline counts escape codes as visible unless they are wrapped in \001 … \002
    return re.sub(r"(\x1b\[[0-9;]*m)", "\001\\1\002", prompt)


class Transcript:
    """Follows the fake Slack's calls from a background thread and shows them."""

    def __init__(
        self,
        fake: FakeSlack,
        out: Output,
        choices: Choices,
        *,
        team: str,
        viewer: Callable[[], tuple[str, str]],
    ) -> None:
        self.fake = fake
        self.out = out
        self.choices = choices
        self.team = team
        self.viewer = viewer  # -> (user id, time zone) of whoever is at the keyboard
        self.modals: queue.Queue[tuple[str, JSON]] = queue.Queue()
        self.urls: dict[str, Where] = {}  # response_url -> what it answers
        self._shown = fake.call_count
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="crmbot-demo-transcript")
        self._thread.daemon = True

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)

    @property
    def shown(self) -> int:
        with self._cond:
            return self._shown

    def wait_shown(self, count: int, timeout: float = 5.0) -> None:
        """Block until the first `count` calls have been shown."""
        with self._cond:
            self._cond.wait_for(lambda: self._shown >= count, timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            calls = self.fake.wait_calls(self._shown, 0.2)
            for call in calls:
                try:
                    self.show(call)
                finally:
                    with self._cond:
                        self._shown += 1
                        self._cond.notify_all()

    # --- drawing ---------------------------------------------------------------------

    def renderer(self, tz: str | None = None) -> Renderer:
        return Renderer(
            users=self.fake.users(self.team),
            channels=self.fake.channels(self.team),
            tz=tz or self.viewer()[1],
            color=self.out.paint.color,
        )

    def place(self, channel: str | None) -> str:
        """`#sales`, or `DM @bob` for a direct message."""
        if not channel:
            return "?"
        if channel.startswith("D"):
            return f"DM @{self.fake.users(self.team).get(channel[1:], channel[1:])}"
        return f"#{self.fake.channels(self.team).get(channel, channel)}"

    def post(
        self, tag: str, payload: Mapping[str, Any], where: Where, *, tz: str | None = None
    ) -> None:
        """Draw one message with its tag; its choices are numbered and remembered."""
        lines = self.renderer(tz).message(payload, self.choices.numbering(where))
        colors = ("bold", "green") if tag.startswith("[#") else ("bold", "yellow")
        self.out.lines(["", *indent(lines, first=self.out.paint(tag, *colors) + " ")])

    def note(self, text: str, *styles: str) -> None:
        self.out.lines([self.out.paint(text, *(styles or ("dim",)))])

    def show(self, call: Call) -> None:
        """Draw what one call made visible."""
        method, args, response = call.method, call.args, call.response
        if method not in VISIBLE:
            if not call.ok and method not in ("users.info", "auth.test"):
                self.note(f"[slack] {method} failed: {call.error}", "red")
            return
        if not call.ok and method != "response_url":
            self.note(f"[slack] {method} failed: {call.error}", "red")
            return
        viewer = self.viewer()[0]
        if method == "chat.postMessage":
            channel = str(response.get("channel") or args.get("channel"))
            message = response.get("message") or args
            tz = self._tz_of(channel[1:]) if channel.startswith("D") else None
            self.post(f"[{self.place(channel)}]", message, Where(channel, message), tz=tz)
        elif method == "chat.postEphemeral":
            channel, user = str(args.get("channel")), str(args.get("user"))
            tag = "[ephemeral]" if user == viewer else f"[ephemeral → @{self._name(user)}]"
            self.post(tag, args, Where(channel))
        elif method == "chat.update":
            channel = str(response.get("channel") or args.get("channel"))
            message = response.get("message") or args
            self.post(f"[{self.place(channel)} · edited]", message, Where(channel, message))
        elif method == "chat.delete":
            self.note(f"[{self.place(str(args.get('channel')))}] a message was deleted")
        elif method == "response_url":
            self._response(call)
        elif method in ("views.open", "views.push"):
            self.modals.put((method, response["view"]))
        elif method == "views.update":
            view = response["view"]
            if view.get("type") == "modal":
                self.modals.put((method, view))
        elif method == "views.publish":
            view = response["view"]
            user = str(args.get("user_id"))
            tag = "[home]" if user == viewer else f"[home @{self._name(user)}]"
            self.post(tag, {"blocks": view.get("blocks") or []}, Where(view=view))
        elif method == "files.completeUploadExternal":
            for item in response.get("files") or []:
                self.note(f"[file] {item.get('title')}")

    def _response(self, call: Call) -> None:
        args = call.args
        where = self.urls.get(call.path.rsplit("/", 1)[-1], Where())
        place = self.place(where.channel)
        if not call.ok:
            self.note(f"[slack] response_url refused the reply: {call.error}", "red")
        elif _flag(args.get("delete_original")):
            self.note(f"[{place}] the message was deleted")
        elif _flag(args.get("replace_original")) and where.message is not None:
            self.post(f"[{place} · updated]", args, where)
        elif args.get("response_type") == "in_channel":
            self.post(f"[{place}]", args, Where(where.channel))
        else:
            self.post("[ephemeral]", args, Where(where.channel))

    def _name(self, user_id: str) -> str:
        return self.fake.users(self.team).get(user_id, user_id)

    def _tz_of(self, user_id: str) -> str | None:
        return self.fake.user_tz(user_id)


def _flag(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() in ("1", "true"))
