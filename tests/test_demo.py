"""`crmbot demo`: the whole bot in a terminal, driven by a script and through a pseudo-terminal."""

from __future__ import annotations

import codecs
import io
import os
import pty
import re
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from crmbot.demo.console import Console
from crmbot.demo.runtime import DemoOptions, DemoWorld
from crmbot.demo.seed import TEAM
from crmbot.demo.transcript import Output
from crmbot.domain import FollowUpStatus
from crmbot.service import CrmService
from crmbot.store.db import Database

ROOT = Path(__file__).resolve().parent.parent

WALKTHROUGH = """\
# capture a lead, find it, log a call through the modal
/crm lead Ana Lima at Acme Corp ana@acme.com
/crm find ana lima
:click Open
/crm log call L-5
notes: Intro call, wants a pilot
duration: abc
:submit
duration: 20
:submit
# the overdue follow-ups arrive as a digest in #sales; Bob clicks Done on his
:remind
:click Done T-1
"""


def demo_command(tmp_path: Path, *extra: str) -> list[str]:
    db, log = tmp_path / "demo.db", tmp_path / "demo.log"
    return [sys.executable, "-m", "crmbot.cli", "demo", "--db", str(db), "--log", str(log), *extra]


def demo_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "CRMBOT_"))}
    return {**env, "NO_COLOR": "1", "DATABASE_URL": "sqlite:////nonexistent/not-the-demo.db"}


def test_the_scripted_walkthrough_captures_finds_logs_and_closes_a_reminder(
    tmp_path: Path,
) -> None:
    result = subprocess.run(
        demo_command(tmp_path, "--script", "-", "--interval", "300"),
        input=WALKTHROUGH,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=demo_env(),
        timeout=60,
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "Traceback" not in out + result.stderr
    # the lead, as Slack shows the bot's private reply
    assert "[ephemeral] Lead L-5 Ana Lima captured at Acme Corp, owned by @bob." in out
    # found, and opened from the search results
    assert re.search(
        r"L-5 Ana Lima · lead · @bob\n.*Acme Corp · ana@acme.com · new  \[\d+\] Open", out
    )
    assert "== L-5 Ana Lima ==" in out
    # the modal, its validation error on the field, then the logged call
    assert "┌ Log interaction" in out
    assert "✗ Minutes as a whole number" in out
    assert re.search(r"\[ephemeral\] Logged call · Today \d\d:\d\d · by @bob · 20 min", out)
    # the reminder digest in #sales, then Done on T-1 updates it in place
    digest = out[out.index("> :remind") :]
    assert re.search(r"\[#sales\] .*overdue", digest)
    assert "T-1 Call Sanjay about the security review" in digest
    assert "[ephemeral] T-1 Call Sanjay about the security review is done." in digest
    assert "[#sales · edited]" in digest
    # and the database agrees
    db = Database(f"sqlite:///{tmp_path / 'demo.db'}")
    try:
        crm = CrmService(db)
        card = crm.show(TEAM, "L-5")
        assert [(i.kind.value, i.summary, i.duration_minutes) for i in card.interactions] == [
            ("call", "Intro call, wants a pilot", 20)
        ]
        assert crm.show(TEAM, "L-1").follow_ups == ()  # T-1 is done
        tasks = crm.tasks(TEAM, owner_id="U02BOB")
        assert "T-1" not in [t.ref for t in tasks.overdue + tasks.upcoming]
        assert all(t.status is FollowUpStatus.OPEN for t in tasks.upcoming)
    finally:
        db.dispose()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoWorld]:
    """The demo world in this process (no scheduler sweep unless asked for)."""
    db = tmp_path_factory.mktemp("demo") / "demo.db"
    started = DemoWorld.start(DemoOptions(db_url=f"sqlite:///{db}", interval=300, first_sweep=300))
    yield started
    started.close()


def run_script(world: DemoWorld, script: str) -> tuple[int, str]:
    screen = io.StringIO()
    console = Console(world, Output(screen, color=False, live=False), interactive=False)
    console.start()
    try:
        status = console.run_script(script.splitlines())
    finally:
        console.close()
    return status, screen.getvalue()


def test_a_script_stops_at_a_step_it_cannot_do_and_says_which_line(world: DemoWorld) -> None:
    status, out = run_script(world, "/crm help\n:click 99\n/crm tasks\n")
    assert status == 1
    assert "demo: line 2: There is no [99] on screen." in out
    assert "> /crm tasks" not in out


def test_a_script_that_leaves_a_modal_open_fails_and_cancel_closes_it(world: DemoWorld) -> None:
    status, out = run_script(world, "/crm lead\nname: Grace Hopper\n")
    assert status == 1
    assert "┌ New lead" in out
    assert "the script ended with the New lead modal open" in out
    status, out = run_script(world, "/crm lead\nname: Grace Hopper\n:cancel\n")
    assert (status, out.count("(closed New lead)")) == (0, 1)
    assert world.crm.find(TEAM, "Grace Hopper") == ()


def test_a_new_owner_is_told_by_dm_and_app_home_opens(world: DemoWorld) -> None:
    status, out = run_script(
        world,
        ":as ada\n:in #leads\n/crm assign L-2 @priya\n:as priya\n:home\n",
    )
    assert status == 0, out
    assert "[ephemeral] L-2 Lena Fischer now belongs to @priya." in out
    assert "[DM @priya] @ada assigned L-2 Lena Fischer to you." in out
    assert "[home] == Your CRM day ==" in out


def test_a_web_form_lead_is_announced_in_leads_and_its_owner_told_by_dm(
    world: DemoWorld,
) -> None:
    status, out = run_script(world, ":intake Jo Park jo@park.example at Initrode\n")
    assert status == 0, out
    assert "[web form] POST /intake/lead → 201" in out
    assert re.search(r"\[#leads\] .*Jo Park at Initrode", out)
    assert re.search(r"\[DM @\w+\] .*Jo Park at Initrode", out)


def test_a_typo_gets_the_apps_suggestion_and_plain_text_gets_a_hint(world: DemoWorld) -> None:
    status, out = run_script(world, "/crm fnid globex\n")
    assert status == 0
    assert "find" in out.split("> /crm fnid globex", 1)[1]
    status, out = run_script(world, "hello\n")
    assert status == 1
    assert "Type a slash command (/crm help)" in out


class Terminal:
    """The demo console on a pseudo-terminal, read like a person reads the screen."""

    def __init__(self, command: list[str]) -> None:
        main, secondary = pty.openpty()
        self.fd = main
        self.process = subprocess.Popen(
            command,
            stdin=secondary,
            stdout=secondary,
            stderr=secondary,
            cwd=ROOT,
            env={**demo_env(), "TERM": "xterm"},
            start_new_session=True,
        )
        os.close(secondary)
        self.screen = ""
        self.read_upto = 0
        # A character's bytes can be split between two reads (the reminder digest arrives on
        # its own schedule): decode across reads, not each read on its own.
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")

    def expect(self, pattern: str, timeout: float = 20, *, anywhere: bool = False) -> re.Match[str]:
        """Wait until `pattern` shows up after what was already read (or `anywhere` on the
        screen so far, for what arrives on its own schedule)."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            match = regex.search(self.screen, 0 if anywhere else self.read_upto)
            if match:
                self.read_upto = max(self.read_upto, match.end())
                return match
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{pattern!r} never showed; the screen:\n{self.screen}")
            ready, _, _ = select.select([self.fd], [], [], min(left, 0.2))
            if ready:
                try:
                    chunk = os.read(self.fd, 65536)
                except OSError:  # the console exited
                    chunk = b""
                if not chunk and self.process.poll() is not None:
                    raise AssertionError(f"the console exited; the screen:\n{self.screen}")
                self.screen += self._decoder.decode(chunk).replace("\r\n", "\n")

    def type(self, line: str) -> None:
        os.write(self.fd, (line + "\n").encode())

    def close(self) -> int:
        try:
            return self.process.wait(10)
        finally:
            os.close(self.fd)


@pytest.fixture
def terminal(tmp_path: Path) -> Terminal:
    return Terminal(demo_command(tmp_path, "--interval", "300"))


PROMPT = r"bob in #sales > "


def test_the_interactive_console_walks_through_a_reps_day(terminal: Terminal) -> None:
    t = terminal
    try:
        t.expect(r"You are @bob in #sales")
        t.expect(PROMPT)
        t.type("/crm lead Ana Lima at Acme Corp ana@acme.com")
        t.expect(r"Lead L-5 Ana Lima captured")
        t.expect(PROMPT)
        t.type("/crm find ana lima")
        t.expect(r"L-5 Ana Lima · lead")
        t.expect(PROMPT)
        # Log a call through the modal: every input asked in turn.
        t.type("/crm log call")
        t.expect(r"┌ Log interaction")
        t.expect(r"search: ")
        t.type("ana")
        t.expect(r"1\. L-5 Ana Lima")
        t.expect(r"pick \[1\]: ")
        t.type("1")
        t.expect(r"answer \[Call\]: ")
        t.type("")
        t.expect(r"answer \[\d{4}-\d\d-\d\d\]: ")
        t.type("")
        t.expect(r"answer \[\d\d:\d\d\]: ")
        t.type("")
        t.expect(r"Outcome.*\n.*answer: ")
        t.type("Interested")
        t.expect(r"Duration.*\n.*answer: ")
        t.type("abc")
        t.expect(r"Notes.*\n.*answer: ")
        t.type("Intro call")
        t.expect(r"Follow up.*\n.*\n.*answer: ")
        t.type("")
        t.expect(r"Visibility.*\n.*Private.*\n.*: ")  # the Private checkbox, left unticked
        t.type("")
        t.expect(r"└ Log\? .*: ")
        t.type("")
        # The app refuses the duration: the error shows on the field, which is asked again.
        t.expect(r"✗ Minutes as a whole number")
        t.expect(r"answer \[abc\]: ")
        t.type("20")
        t.expect(r"└ Log\? .*: ")
        t.type("")
        t.expect(r"\[ephemeral\] Logged call · Today \d\d:\d\d · by @bob · 20 min — Interested")
        # The reminder digest arrives by itself (the scheduler's first sweep runs a few
        # seconds after start, so it may already be on the screen): Done on T-1.
        digest = t.expect(
            r"\[#sales\] .*overdue.*\n.*T-1 Call Sanjay about the security review.*\n.*\n"
            r".*\[(\d+)\] Done",
            timeout=30,
            anywhere=True,
        )
        t.type(f":click {digest[1]}")
        t.expect(r"T-1 Call Sanjay about the security review is done\.")
        t.expect(r"\[#sales · edited\]")
        t.type(":quit")
    finally:
        status = t.close()
    assert status == 0
