"""Two `crmbot serve` processes on one PostgreSQL, driven at once: no errors, no duplicates.

This is the "several web processes behind a load balancer" deployment of the README's
"Running at scale": each worker thread plays a rep and sends its requests to both servers
in turn (as a load balancer would), over signed HTTP, with one fake Slack shared by both.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import pytest
from sqlalchemy import create_engine, func, select, text

from crmbot.handlers.ids import Action
from crmbot.service import CrmService
from crmbot.store.db import Database
from crmbot.store.models import FollowUp, Interaction, Lead
from tests.conftest import PG_URL, _truncate_pg
from tests.slackapp import SECRET, TOKEN, SlackSim, build_fake
from tests.test_forms import slack_state

WORKERS = 6
ROUNDS = 4
REPS = ("UADMIN", "UBOB", "UCAROL")

pytestmark = pytest.mark.postgres


@dataclass
class Seen:
    """What the worker threads saw, gathered under one lock."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    leads: dict[str, str] = field(default_factory=dict)  # lead name -> ref in the reply
    tasks: list[str] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


@pytest.fixture
def two_servers(pg_schema_url: str, tmp_path: Path) -> Iterator[tuple[list[SlackSim], Database]]:
    db = Database(pg_schema_url)
    _truncate_pg(db)
    crm = CrmService(db)
    crm.ensure_workspace("T1")
    for rep in REPS:
        crm.upsert_rep("T1", rep, name=rep.title())
    fake = build_fake()
    env = {
        **os.environ,
        "DATABASE_URL": db.url,
        "SLACK_BOT_TOKEN": TOKEN,
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": fake.url,
        "CRMBOT_WEB_SCHEDULER": "false",
        "CRMBOT_DB_POOL_SIZE": "4",
    }
    env.pop("SLACK_CLIENT_ID", None)
    command = [sys.executable, "-m", "crmbot.cli", "serve", "--host", "127.0.0.1", "--port", "0"]
    started = [  # both at once, as a deploy starts its web processes
        subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for _ in range(2)
    ]
    try:
        sims = [SlackSim(f"http://127.0.0.1:{port_of(p)}", fake, crm) for p in started]
        yield sims, db
    finally:
        for process in started:
            process.terminate()
        for process in started:
            process.wait(10)
        fake.stop()
        db.dispose()


def port_of(process: subprocess.Popen[str]) -> int:
    """The port a starting `crmbot serve` says it listens on."""
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("crmbot listening on port "):
            return int(line.rsplit(" ", 1)[1])
    raise AssertionError("crmbot serve did not start")


def shown(call: object) -> str:
    args = call.args  # type: ignore[attr-defined]
    return args.get("text", "") + json.dumps(args.get("blocks", []), ensure_ascii=False)


def _ref(text: str, prefix: str) -> str:
    start = text.index(prefix + "-")
    end = start + 2
    while end < len(text) and text[end].isdigit():
        end += 1
    return text[start:end]


def rep_day(servers: list[SlackSim], worker: int, seen: Seen) -> None:
    """One rep's requests, alternating between the two servers."""
    user = REPS[worker % len(REPS)]
    for round_ in range(ROUNDS):
        here, there = servers[(worker + round_) % 2], servers[(worker + round_ + 1) % 2]
        name = f"Zoë Ng-{worker}-{round_}"
        # A slash command on one server ...
        reply = shown(here.command(f"lead {name} at Scale Co {worker}-{round_}", user=user))
        lead = _ref(reply, "L")
        # ... a follow-up on it on the other ...
        task = _ref(shown(there.command(f"followup {lead} tomorrow 9am call back", user=user)), "T")
        # ... a modal opened on one and submitted to the other ...
        view = here.command(f"log call {lead}", user=user).response["view"]
        answer = there.submit(view, slack_state(view, notes=f"call {worker}-{round_}"), user=user)
        # ... and a button click.
        clicked, response_url, _ = here.click(Action.DONE.value, task, user=user)
        done = shown(here.wait_reply(response_url))
        with seen.lock:
            seen.leads[name] = lead
            seen.tasks.append(task)
            seen.statuses += [answer.status, clicked.status]
            if "errors" in answer.body:
                seen.problems.append(f"{name}: {answer.body}")
            if "done" not in done:
                seen.problems.append(f"{task}: {done}")


def test_two_serve_processes_on_one_postgres_without_errors_or_duplicates(
    two_servers: tuple[list[SlackSim], Database],
) -> None:
    servers, db = two_servers
    seen = Seen()
    failures: list[BaseException] = []

    def run(worker: int) -> None:
        try:
            rep_day(servers, worker, seen)
        except BaseException as exc:  # surfaced below, with the worker that failed
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(w,)) for w in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert failures == []
    assert seen.problems == []
    total = WORKERS * ROUNDS
    # Every request answered 200; none failed on either server.
    assert seen.statuses == [200] * (2 * total)
    failed = [(c.method, c.error) for c in servers[0].fake.calls if not c.ok]
    assert failed == []
    # References are unique and dense across both processes.
    numbers = sorted(int(ref[2:]) for ref in seen.leads.values())
    assert numbers == list(range(1, total + 1))
    assert sorted(int(t[2:]) for t in seen.tasks) == list(range(1, total + 1))
    # Each record was written exactly once.
    with db.read() as session:
        names = session.scalars(select(Lead.name).where(Lead.workspace_id == "T1")).all()
        assert sorted(names) == sorted(seen.leads)
        calls = session.scalar(select(func.count()).select_from(Interaction))
        assert calls == total
        open_tasks = session.scalar(
            select(func.count()).select_from(FollowUp).where(FollowUp.completed_at.is_(None))
        )
        assert open_tasks == 0
    crm = servers[0].crm
    for name, ref in seen.leads.items():
        card = crm.show("T1", ref)
        assert card.record.name == name  # type: ignore[union-attr]
        assert len(card.interactions) == 1
        assert [h.ref for h in crm.find("T1", name)] == [ref]


def test_processes_starting_together_migrate_a_fresh_database_once(
    pg_schema_url: str,
) -> None:
    """Three `crmbot db upgrade` at once on an empty schema (a deploy starting every
    process together): all succeed, and the schema is migrated exactly once."""
    schema = f"crmbot_fresh_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://", 1))
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in PG_URL else "?"
    url = f"{PG_URL}{sep}options={quote(f'-csearch_path={schema},public')}"
    env = {**os.environ, "DATABASE_URL": url}
    try:
        runs = [
            subprocess.Popen(
                [sys.executable, "-m", "crmbot.cli", "db", "upgrade"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for _ in range(3)
        ]
        outputs = [run.communicate(timeout=120)[0] for run in runs]
        assert [run.returncode for run in runs] == [0, 0, 0], outputs
        with admin.connect() as conn:
            versions = conn.execute(text(f'SELECT version_num FROM "{schema}".alembic_version'))
            assert len(versions.all()) == 1
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
