"""The demo's moving parts: a local Slack, the real app behind waitress, the same scheduler.

`DemoWorld.start()` makes up a bot token, a signing secret and an intake token, starts the
fake Slack Web API and registers the demo workspace in it, migrates (and on first use seeds)
the database, builds the app exactly as `crmbot serve` does (create_app + the intake endpoint
+ create_wsgi + waitress) on a free port of 127.0.0.1, and runs the reminder job on an
APScheduler in this process.
"""

from __future__ import annotations

import json
import secrets
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.engine.url import make_url

from crmbot.app import create_app
from crmbot.config import ConfigError, Settings
from crmbot.demo import seed
from crmbot.demo.fakeslack import FakeSlack
from crmbot.demo.slack_side import SlackSide
from crmbot.handlers.intake import intake_endpoint
from crmbot.service import CrmService
from crmbot.store.db import Database, is_sqlite
from crmbot.store.migrate import upgrade
from crmbot.web import create_wsgi, make_server

DEFAULT_DB = "sqlite:///crmbot-demo.db"


class RemindersUnavailable(Exception):
    """The reminder sweep can't run now (the message says why)."""


@dataclass(frozen=True)
class DemoOptions:
    db_url: str = DEFAULT_DB
    fresh: bool = False
    interval: int = 10  # seconds between reminder sweeps
    first_sweep: float = 3.0  # seconds from start to the first sweep


def remove_sqlite(url: str) -> None:
    """Delete an SQLite database file (and its WAL files) so the demo starts over."""
    if not is_sqlite(url):
        raise ConfigError(
            "--fresh only deletes SQLite demo databases; empty other databases yourself."
        )
    database = make_url(url).database
    if not database or database == ":memory:":
        return
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(database + suffix).unlink(missing_ok=True)


class DemoWorld:
    """Everything the console talks to, started and stopped together."""

    def __init__(
        self, fake: FakeSlack, db: Database, crm: CrmService, settings: Settings, server: Any
    ) -> None:
        self.fake = fake
        self.db = db
        self.crm = crm
        self.settings = settings
        self.server = server
        self.seeded_now = False
        self.reminders: Any = None  # the APScheduler running the reminder job
        self._sweeps = threading.Condition()
        self._sweeps_ended = 0
        self._closing = False
        self.slack = SlackSide(
            f"http://127.0.0.1:{server.effective_port}",
            fake,
            secret=settings.slack_signing_secret or "",
            team=seed.TEAM,
            user=seed.BOB.user_id,
            channel=seed.SALES,
        )

    @classmethod
    def start(cls, options: DemoOptions) -> DemoWorld:
        """Start the fake Slack, the database, the app server and the reminder job."""
        if options.fresh:
            remove_sqlite(options.db_url)
        token = f"xoxb-demo-{secrets.token_hex(12)}"
        fake = FakeSlack(trigger_ttl=30.0).start()
        seed.register_slack(fake, token)
        settings = Settings(
            database_url=options.db_url,
            slack_bot_token=token,
            slack_signing_secret=secrets.token_hex(16),
            slack_api_url=fake.url,
            reminder_interval=options.interval,
            scheduler_in_web=False,
            intake_token=f"demo-intake-{secrets.token_hex(12)}",
            team_id=seed.TEAM,
            threads=8,
        )
        upgrade(settings.database_url)
        db = Database(settings.database_url, pool_size=10)
        crm = CrmService(db)
        seeded = False
        if not seed.is_seeded(crm):
            seed.seed(crm)
            seeded = True
        app = create_app(settings, crm, db=db)
        intake = intake_endpoint(settings, crm, app)
        wsgi = create_wsgi(app, db, intake=intake)
        server = make_server(wsgi, host="127.0.0.1", port=0, threads=8)
        world = cls(fake, db, crm, settings, server)
        threading.Thread(target=world._serve, name="crmbot-demo-http", daemon=True).start()
        world.seeded_now = seeded
        world.start_reminders(options)
        return world

    def _serve(self) -> None:
        try:
            self.server.run()
        except OSError:
            if not self._closing:
                raise
            # close() from another thread pulls the socket from under waitress's select()

    def start_reminders(self, options: DemoOptions) -> None:
        """Run the reminder job (crmbot.scheduler) on an APScheduler in this process, as
        `crmbot serve` does; the first sweep `options.first_sweep` seconds after start."""
        from apscheduler.events import (
            EVENT_JOB_ERROR,
            EVENT_JOB_EXECUTED,
            EVENT_JOB_MAX_INSTANCES,
            EVENT_JOB_MISSED,
        )
        from apscheduler.schedulers.background import BackgroundScheduler

        from crmbot.scheduler import Sweeper, Tokens, schedule

        scheduler = BackgroundScheduler(timezone=UTC, daemon=True)
        sweeper = Sweeper(self.crm, self.settings, tokens=Tokens(self.settings, self.db))
        job = schedule(scheduler, sweeper, options.interval)
        job.modify(next_run_time=datetime.now(UTC) + timedelta(seconds=options.first_sweep))
        ended = EVENT_JOB_EXECUTED | EVENT_JOB_ERROR | EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES
        scheduler.add_listener(self._sweep_ended, ended)
        scheduler.start()
        self.reminders = scheduler

    def _sweep_ended(self, event: Any) -> None:
        with self._sweeps:
            self._sweeps_ended += 1
            self._sweeps.notify_all()

    def web_lead(self, fields: dict[str, str]) -> tuple[int, str]:
        """POST a web-form lead to /intake/lead, as a website's form would."""
        request = urllib.request.Request(
            f"{self.slack.base_url}/intake/lead",
            data=json.dumps(fields).encode(),
            method="POST",
            headers={
                "Content-Type": "application/json",
                "Authorization": f"Bearer {self.settings.intake_token}",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def sweep_now(self, timeout: float = 30.0) -> None:
        """Run the scheduler's reminder job now (as `crmbot remind --once` would sweep) and
        wait until it has finished."""
        from crmbot.scheduler import JOB_ID

        if self.reminders is None:
            raise RemindersUnavailable("The reminder scheduler isn't running.")
        with self._sweeps:
            before = self._sweeps_ended
        self.reminders.modify_job(JOB_ID, next_run_time=datetime.now(UTC))
        self.reminders.wakeup()
        with self._sweeps:
            if not self._sweeps.wait_for(lambda: self._sweeps_ended > before, timeout):
                raise RemindersUnavailable(
                    f"The reminder sweep didn't finish within {timeout:g} s."
                )

    def close(self) -> None:
        """Stop the scheduler, the app server and the fake Slack."""
        self._closing = True
        if self.reminders is not None:
            self.reminders.shutdown(wait=False)
        self.server.close()
        self.fake.stop()
        self.db.dispose()
