"""The demo console: type `/crm …` as a rep in a channel; the real app answers through Slack.

Every step goes to the app the way Slack sends it (signed HTTP to /slack/events) and every
answer comes back the way the app sends it to Slack (the fake Web API), so nothing bypasses
the handlers. Interactive on a terminal; `run_script` reads the same steps from a file.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from crmbot.demo import seed
from crmbot.demo.modals import Modals, StepError
from crmbot.demo.runtime import DemoWorld, RemindersUnavailable
from crmbot.demo.slack_side import Answer, as_slack_sends
from crmbot.demo.transcript import VISIBLE, Choices, Output, Target, Transcript, Where

JSON = dict[str, Any]
REPLY_TIMEOUT = 10.0  # seconds to wait for the app's first visible reply
QUIET = 0.25  # seconds without any Slack call that mean the app is done

HELP = """\
Console commands (everything starting with / goes to Slack):
  /crm …            the slash command, as in Slack (/crm help lists its verbs)
  :as NAME          act as another rep: {reps}
  :in #CHANNEL      where you type: {channels}, or :in dm (your DM with crmbot)
  :click N          click button or menu option [N]; or :click LABEL [REF], e.g. :click Done T-1
  :home             open your App Home tab
  :remind           run a reminder sweep now (the scheduler also sweeps every {interval} s)
  :wait [SECONDS]   wait for the bot to post something (default {wait} s)
  :reps             who is who, and their local time
  :intake NAME [EMAIL] [at COMPANY]   a lead from the website's form (POST /intake/lead)
  :help             this list;  :quit (or Ctrl-D) leaves
In a modal, each field is asked in turn: Enter keeps the value shown, - clears it, :cancel
closes the modal. In a script, fill a modal with `field: value` lines, then :submit or :cancel."""


class Console:
    """One person at the keyboard, acting as any of the demo reps."""

    def __init__(self, world: DemoWorld, out: Output, *, interactive: bool) -> None:
        self.world = world
        self.out = out
        self.p = out.paint
        self.interactive = interactive
        self.rep = seed.BOB
        self.channel = seed.SALES
        self.choices = Choices()
        self.transcript = Transcript(
            world.fake,
            out,
            self.choices,
            team=seed.TEAM,
            viewer=lambda: (self.rep.user_id, self.rep.tz),
        )
        self.modals = Modals(
            world,
            out,
            self.choices,
            self.transcript,
            actor=lambda: self.rep,
            settle=self.settle,
            interactive=interactive,
        )

    # --- running -------------------------------------------------------------

    def start(self) -> None:
        self.transcript.start()

    def close(self) -> None:
        self.transcript.stop()

    def prompt(self, *, plain: bool = False) -> str:
        p = self.p if not plain else (lambda text, *_: text)
        if self.modals.form is not None:
            return p(f"{self.modals.form.title} > ", "magenta")
        where = (
            "DM with crmbot"
            if self.channel.startswith("D")
            else self.transcript.place(self.channel)
        )
        return f"{p(self.rep.handle, 'bold', 'cyan')} in {p(where, 'bold')} > "

    def banner(self) -> None:
        p = self.p
        interval = self.world.settings.reminder_interval
        if self.world.seeded_now:
            db = f"a fresh demo database ({self.world.settings.database_url})"
            news = f"Two follow-ups are overdue: watch #sales (reminders sweep every {interval} s)."
        else:
            db = f"the demo database from last time ({self.world.settings.database_url})"
            news = f"Reminders sweep every {interval} s. `crmbot demo --fresh` starts over."
        self.out.lines(
            [
                p(f"crmbot demo — {seed.TEAM_NAME}: the real app, Slack played locally", "bold"),
                f"Using {db}.",
                "Reps: " + " · ".join(f"@{r.handle} ({r.tz}, {r.role.value})" for r in seed.REPS),
                news,
                f"You are @{self.rep.handle} in #sales. Try {p('/crm help', 'bold')}, "
                f"{p('/crm tasks', 'bold')} or {p(':help', 'bold')}.",
            ]
        )

    def run_interactive(self) -> int:
        """Read and run lines until :quit or end of input; Ctrl-C abandons the current one."""
        self.banner()
        while True:
            try:
                line = self.out.ask(self.prompt())
                if not self.step(line):
                    return 0
            except EOFError:
                self.out.lines([""])
                return 0
            except KeyboardInterrupt:
                self.out.lines(["^C"])
            except StepError as error:
                self.out.lines([self.p(str(error), "red")])

    def run_script(self, lines: Iterable[str]) -> int:
        """Run steps from a script, printing the transcript; stop at the first bad step."""
        number = 0
        for number, raw in enumerate(lines, 1):
            line = raw.rstrip("\r\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            echo = self.prompt(plain=not self.out.paint.color) + line
            self.out.lines([echo] if self.modals.form is not None else ["", echo])
            try:
                if not self.step(line):
                    break
            except StepError as error:
                self.out.lines([f"demo: line {number}: {error}"])
                return 1
        if self.modals.form is not None:
            self.out.lines([f"demo: the script ended with the {self.modals.form.title} modal open"])
            return 1
        return 0

    # --- one step ------------------------------------------------------------

    def step(self, line: str) -> bool:
        """Do one typed line; False means quit."""
        text = line.strip()
        if not text:
            return True
        if (
            self.modals.form is not None
            and not self.interactive
            and not text.startswith(("/", ":"))
        ):
            self.modals.fill_line(text)
            return True
        if text.startswith(":"):
            return self.console_command(text)
        if text.startswith("/"):
            self.slash(text)
            return True
        raise StepError("Type a slash command (/crm help) or a console command (:help).")

    def console_command(self, text: str) -> bool:
        verb, _, rest = text.partition(" ")
        rest = rest.strip()
        verb = verb.lower()
        if verb in (":quit", ":q", ":exit"):
            return False
        if self.modals.form is not None and verb in (":submit", ":cancel"):
            if verb == ":submit":
                self.modals.submit_line()
            else:
                self.modals.cancel()
            return True
        if self.modals.form is not None and verb not in (":help", ":reps", ":wait"):
            raise StepError(
                f"The {self.modals.form.title} modal is open: fill it, then :submit or :cancel."
            )
        match verb:
            case ":help":
                self.out.lines(self.help_lines())
            case ":as":
                self.switch_rep(rest)
            case ":in":
                self.switch_channel(rest)
            case ":click":
                self.click(rest)
            case ":home":
                self.home()
            case ":remind":
                self.remind()
            case ":wait":
                self.wait(rest)
            case ":reps":
                self.show_reps()
            case ":intake":
                self.web_lead(rest)
            case ":submit" | ":cancel":
                raise StepError("No modal is open.")
            case _:
                raise StepError(f"No console command {verb}; :help lists them.")
        return True

    def help_lines(self) -> list[str]:
        interval = self.world.settings.reminder_interval
        return HELP.format(
            reps=", ".join(r.handle for r in seed.REPS),
            channels=", ".join(f"#{n}" for n in seed.CHANNELS.values()),
            interval=interval,
            wait=interval + 5,
        ).splitlines()

    def switch_rep(self, name: str) -> None:
        wanted = name.lstrip("@").lower()
        rep = next((r for r in seed.REPS if wanted and r.handle.startswith(wanted)), None)
        if rep is None:
            raise StepError("Act as whom? " + ", ".join(r.handle for r in seed.REPS))
        self.rep = rep
        if self.channel.startswith("D"):  # your DM with the bot follows you
            self.channel = f"D{rep.user_id}"
        local = datetime.now(UTC).astimezone(ZoneInfo(rep.tz))
        self.out.lines(
            [self.p(f"You are @{rep.handle} now ({rep.tz}, {local:%H:%M} there).", "dim")]
        )

    def switch_channel(self, name: str) -> None:
        wanted = name.lstrip("#").lower()
        if wanted in ("dm", "im", "direct"):
            self.channel = f"D{self.rep.user_id}"
        else:
            found = next((c for c, n in seed.CHANNELS.items() if n == wanted), None)
            if found is None:
                raise StepError(
                    "Which channel? "
                    + ", ".join(f"#{n}" for n in seed.CHANNELS.values())
                    + " or dm"
                )
            self.channel = found

    def show_reps(self) -> None:
        now = datetime.now(UTC)
        self.out.lines(
            [
                f"@{r.handle:<6} {r.name:<12} {r.role.value:<8} {r.tz:<18} "
                f"{now.astimezone(ZoneInfo(r.tz)):%a %H:%M}"
                for r in seed.REPS
            ]
        )

    # --- talking to the app ------------------------------------------------------

    def slash(self, text: str) -> None:
        if self.modals.form is not None:
            raise StepError(
                f"The {self.modals.form.title} modal is open: :submit or :cancel it first."
            )
        command, _, rest = text.partition(" ")
        if command != self.world.settings.command:
            raise StepError(f"This workspace only has {self.world.settings.command}.")
        users = {name.lower(): uid for uid, name in self.world.fake.users(seed.TEAM).items()}
        channels = {name: cid for cid, name in seed.CHANNELS.items()}
        since = self.world.fake.call_count
        answer, url, _ = self.world.slack.send_command(
            as_slack_sends(rest.strip(), users, channels),
            user=self.rep.user_id,
            channel=self.channel,
            command=command,
        )
        self.remember(url, Where(self.channel))
        self.acked(answer)
        self.settle(since)

    def click(self, what: str) -> None:
        target = self.target(what)
        since = self.world.fake.call_count
        where = target.where
        action = target.choice.action()
        if where.view is not None:
            answer, url, _ = self.world.slack.act(action, user=self.rep.user_id, view=where.view)
        else:
            answer, url, _ = self.world.slack.act(
                action, user=self.rep.user_id, channel=where.channel, message=where.message
            )
        if url:
            self.remember(url, where)
        self.acked(answer)
        self.settle(since)

    def target(self, what: str) -> Target:
        if not what:
            raise StepError("Click what? :click 3, or :click Done T-1")
        word, _, about = what.partition(" ")
        if word.isdigit():
            found = self.choices.get(int(word))
            if found is None:
                raise StepError(f"There is no [{word}] on screen.")
            return found
        found = self.choices.find(word, about)
        if found is None:
            found = self.choices.find(what)
        if found is None:
            raise StepError(f"Nothing labelled “{what}” to click.")
        return found

    def home(self) -> None:
        since = self.world.fake.call_count
        user = self.rep.user_id
        answer = self.world.slack.event(
            {"type": "app_home_opened", "user": user, "channel": f"D{user}", "tab": "home",
             "event_ts": f"{time.time():.6f}"}
        )  # fmt: skip
        self.acked(answer)
        self.settle(since)

    def remind(self) -> None:
        since = self.world.fake.call_count
        try:
            self.world.sweep_now()
        except RemindersUnavailable as error:
            raise StepError(str(error)) from None
        if not self.settle(since, first=0.5, required=False):
            self.out.lines([self.p("(nothing to remind about right now)", "dim")])

    def wait(self, seconds: str) -> None:
        limit = float(seconds) if seconds else self.world.settings.reminder_interval + 5.0
        if not self.settle(self.world.fake.call_count, first=limit, required=False):
            self.out.lines([self.p(f"(nothing happened in {limit:g} s)", "dim")])

    def web_lead(self, text: str) -> None:
        """A lead from the website's form: `Jo Park jo@park.example at Initrode`."""
        words, _, company = text.partition(" at ")
        email = next((w for w in words.split() if "@" in w), None)
        name = " ".join(w for w in words.split() if w != email)
        if not name:
            raise StepError("Who? :intake Jo Park jo@park.example at Initrode")
        fields = {"name": name, "source": "website"}
        fields |= {"email": email} if email else {}
        fields |= {"company": company.strip()} if company.strip() else {}
        since = self.world.fake.call_count
        status, body = self.world.web_lead(fields)
        self.out.lines(["", self.p(f"[web form] POST /intake/lead → {status} {body}", "dim")])
        if status >= 300:
            raise StepError(f"The intake endpoint answered HTTP {status}.")
        self.settle(since, first=5.0, required=False)

    def remember(self, response_url: str, where: Where) -> None:
        self.transcript.urls[response_url.rsplit("/", 1)[-1]] = where

    def acked(self, answer: Answer) -> None:
        """The HTTP answer to a request: an error status, or a message in the ack itself."""
        if answer.status != 200:
            raise StepError(f"The app answered HTTP {answer.status}: {answer.body[:200]}")
        body = answer.json() if answer.body.startswith("{") else None
        if isinstance(body, dict) and (body.get("text") or body.get("blocks")):
            self.transcript.post("[ephemeral]", body, Where(self.channel))

    def settle(self, since: int, *, first: float = REPLY_TIMEOUT, required: bool = True) -> bool:
        """Wait for the app's first visible reply after call `since`, then until it is quiet;
        then let the transcript show it all and open any modal. False when nothing came."""
        fake = self.world.fake
        seen, deadline, visible = since, time.monotonic() + first, False
        while not visible:
            left = deadline - time.monotonic()
            calls = fake.wait_calls(seen, left) if left > 0 else []
            if not calls:
                break
            seen += len(calls)
            visible = any(c.method in VISIBLE for c in calls)
        if visible:
            while calls := fake.wait_calls(seen, QUIET):
                seen += len(calls)
        self.transcript.wait_shown(seen)
        self.modals.open_new()
        if not visible and required:
            raise StepError(f"No answer from the app within {first:g} s (see the log).")
        return visible

    # --- modals ----------------------------------------------------------------
