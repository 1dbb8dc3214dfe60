"""The reminder job and the clock process: the composition root for reminders.

`Sweeper.sweep()` is one sweep: claim due reminders in the database (reminders.py), post one
digest per channel, record each post right after it is made, then the morning digests. It is
safe to run in any number of processes at once: the database hands each reminder to one
sweep. APScheduler runs it every `CRMBOT_REMINDER_INTERVAL` seconds in `crmbot scheduler`
(the Procfile's `clock`) and, unless `CRMBOT_WEB_SCHEDULER=false`, inside `crmbot serve`.

Slack faults (the posting itself is handlers/delivery.py): HTTP 429 waits out a short
Retry-After in process, a long one is left to a sweep after it; a 5xx or a dropped
connection gets one quick retry, then later sweeps retry with backoff (1, 2, 4 … minutes, at
most an hour); a channel that refuses reminders (`channel_not_found`, `not_in_channel`,
`is_archived`) falls back to the workspace's reminder channel, else the owners' DMs, and the
admins are told once. Posts to one channel are at least a second apart.
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from types import FrameType

from apscheduler.job import Job
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.interval import IntervalTrigger
from slack_sdk import WebClient

from crmbot.config import Mode, Settings
from crmbot.handlers import morning_views
from crmbot.handlers import reminder_views as views
from crmbot.handlers.context import Directory
from crmbot.handlers.delivery import (
    AUTH_GONE,
    Pacer,
    Posted,
    post,
    queued_post_client,
)
from crmbot.handlers.intake import retry_intake_posts
from crmbot.handlers.render import Reply
from crmbot.installations import SealedInstallationStore, installation_store
from crmbot.nightly import schedule_score_training
from crmbot.service import CrmService
from crmbot.service.reminder_types import (
    DeliveryKind,
    Digest,
    DigestItem,
    MorningDigest,
    ReminderClaim,
)
from crmbot.store.db import Database

log = logging.getLogger("crmbot.scheduler")

JOB_ID = "crmbot-reminders"
OWNER_LOOKUPS = 50  # users.info calls per sweep to notice deactivated owners
NO_TOKEN_RETRY = 3600.0  # seconds before retrying a workspace without a (working) token

# --- Slack plumbing -------------------------------------------------------------


class Tokens:
    """The bot token for a workspace: SLACK_BOT_TOKEN, or the OAuth installation's."""

    def __init__(self, settings: Settings, db: Database | None = None) -> None:
        self._settings = settings
        self._store: SealedInstallationStore | None = None
        if settings.mode_or_none() is Mode.OAUTH:
            if db is None:
                raise ValueError("OAuth mode keeps installations in the database")
            self._store = installation_store(settings, db.engine)

    def token_for(self, ws: str, enterprise_id: str | None = None) -> str | None:
        """The bot token to post in workspace `ws` with, or None when it isn't installed."""
        if self._store is None:
            return self._settings.slack_bot_token
        bot = self._store.find_bot(enterprise_id=enterprise_id, team_id=ws)
        if bot is None:  # an org-wide install is stored under the enterprise id
            bot = self._store.find_bot(enterprise_id=ws, team_id=None, is_enterprise_install=True)
        return bot.bot_token if bot is not None else None


# --- the sweep --------------------------------------------------------------------


@dataclass
class SweepReport:
    """What one sweep did, line by line, and in numbers."""

    lines: list[str] = field(default_factory=list)
    messages: int = 0
    items: int = 0
    to_retry: int = 0
    undeliverable: int = 0
    mornings: int = 0

    def say(self, line: str) -> None:
        self.lines.append(line)
        log.info("%s", line)

    def summary(self) -> str:
        return (
            f"sweep: {self.items} follow-up reminder{'s' if self.items != 1 else ''} "
            f"in {self.messages} message{'s' if self.messages != 1 else ''}, "
            f"{self.to_retry} to retry, {self.undeliverable} undeliverable, "
            f"{self.mornings} morning digest{'s' if self.mornings != 1 else ''}"
        )


def _counts(items: Sequence[DigestItem]) -> str:
    reminders = sum(1 for i in items if i.kind is DeliveryKind.REMINDER)
    escalations = len(items) - reminders
    parts = [f"{reminders} reminder{'s' if reminders != 1 else ''}"] if reminders else []
    if escalations:
        parts.append(f"{escalations} escalation{'s' if escalations != 1 else ''}")
    return ", ".join(parts)


class Sweeper:
    """One reminder sweep at a time: claim, post, record; then the morning digests."""

    def __init__(
        self,
        crm: CrmService,
        settings: Settings,
        *,
        tokens: Tokens | None = None,
        pacer: Pacer | None = None,
        client_for: Callable[[str], WebClient] | None = None,
    ) -> None:
        self.crm = crm
        self.settings = settings
        self.tokens = tokens or Tokens(settings)
        self.pacer = pacer or Pacer()
        self._client_for = client_for or (lambda token: queued_post_client(settings, token))
        self._clients: dict[str, WebClient] = {}
        self._token_cache: dict[tuple[str, str | None], str | None] = {}
        self.lease = timedelta(seconds=settings.reminder_lease)
        # Stop starting posts this long before the lease runs out: a post takes at most a
        # timeout (10 s) times its retries, plus a short rate-limit wait.
        self.margin = min(self.lease / 2, timedelta(seconds=60))

    def client(self, token: str) -> WebClient:
        if token not in self._clients:
            self._clients[token] = self._client_for(token)
        return self._clients[token]

    def _token(self, ws: str, enterprise_id: str | None) -> str | None:
        key = (ws, enterprise_id)
        if key not in self._token_cache:
            self._token_cache[key] = self.tokens.token_for(ws, enterprise_id)
        return self._token_cache[key]

    def sweep(self) -> SweepReport:
        """Post every due reminder and morning digest; report what happened."""
        self._token_cache.clear()  # installations come and go between sweeps
        report = SweepReport()
        self.reminders(report)
        self.mornings(report)
        self.intake_posts(report)
        self.crm.prune_notifications()
        self.crm.prune_request_keys()  # retries and double submits: expired keys
        self.crm.expire_intake_keys()  # bounded: a few short deletes of week-old keys
        return report

    def intake_posts(self, report: SweepReport) -> None:
        """Web-lead notices and owner DMs whose first post failed or was never made."""

        def client_for(ws: str) -> WebClient | None:
            token = self._token(ws, None)
            return self.client(token) if token else None

        retry_intake_posts(self.crm, client_for, lease=self.lease, pacer=self.pacer, say=report.say)

    # --- reminders ----------------------------------------------------------------

    def reminders(self, report: SweepReport) -> None:
        """Claim the due reminders and post one digest per channel."""
        started = time.monotonic()
        claim = self.crm.claim_reminders(lease=self.lease)
        if not claim.digests:
            return
        claim = self._refresh_owners(claim)
        deadline = started + (self.lease - self.margin).total_seconds()
        for index, digest in enumerate(claim.digests):
            if time.monotonic() > deadline:
                rest = claim.digests[index:]
                self.crm.hand_back(claim, rest)
                report.to_retry += sum(len(d.items) for d in rest)
                report.say(f"lease running out: handed back {len(rest)} digests to the next sweep")
                return
            try:
                self._deliver(claim, digest, report)
            except Exception as error:  # one bad digest must not hold up the other channels
                log.exception("digest for %s failed", digest.target)
                self._retry(claim, digest, type(error).__name__, None, digest.target, report)

    def _deliver(self, claim: ReminderClaim, digest: Digest, report: SweepReport) -> None:
        token = self._token(digest.workspace_id, digest.enterprise_id)
        if token is None:
            self._retry(claim, digest, "no_token", NO_TOKEN_RETRY, digest.target, report)
            return
        client = self.client(token)
        if digest.channel_id is None:
            self._dm(claim, client, digest, report)
            return
        posted = self._post(client, digest.channel_id, views.digest(digest))
        if posted.ok:
            self._sent(claim, digest, posted, report)
        elif posted.channel_gone:
            self._fall_back(claim, client, digest, posted.error, report)
        else:
            self._failed(claim, digest, posted, digest.channel_id, report)

    def _fall_back(
        self,
        claim: ReminderClaim,
        client: WebClient,
        digest: Digest,
        error: str,
        report: SweepReport,
    ) -> None:
        broken = digest.channel_id or ""
        fallback = digest.reminder_channel if digest.reminder_channel != broken else None
        instead = fallback or "the owners' DMs"
        report.say(f"{broken}: {error} → {instead}")
        self._tell_admins(client, digest, broken, error, fallback)
        if fallback:
            moved = replace(digest, channel_id=fallback)
            posted = self._post(client, fallback, views.digest(moved, posted_in=fallback))
            if posted.ok:
                self._sent(claim, digest, posted, report)
                return
            if not posted.channel_gone:
                self._failed(claim, digest, posted, fallback, report)
                return
            self._tell_admins(client, digest, fallback, posted.error, None)
        by_owner: dict[str, list[DigestItem]] = {}
        for item in digest.reminders:
            by_owner.setdefault(item.owner.user_id, []).append(item)
        parts: list[tuple[str | None, str | None, Sequence[DigestItem]]] = [
            (None, user, items) for user, items in by_owner.items()
        ]
        if digest.escalations:  # they are for managers: nowhere left but the admins' notice
            parts.append((None, None, digest.escalations))
        for child in self.crm.split(claim, digest, parts):
            if child.dm_user is None:
                self.crm.record_undeliverable(claim, child, error=error)
                report.undeliverable += len(child.items)
            else:
                self._dm(claim, client, child, report)

    def _dm(
        self, claim: ReminderClaim, client: WebClient, digest: Digest, report: SweepReport
    ) -> None:
        """A digest for one owner, by DM."""
        user = digest.dm_user or ""
        posted = self._post(client, user, views.digest(digest, posted_in=f"D{user}"))
        if posted.ok:
            self._sent(claim, digest, posted, report)
        elif posted.person_gone:
            self.crm.record_undeliverable(claim, digest, error=posted.error)
            report.undeliverable += len(digest.items)
            report.say(f"{user} (DM): {posted.error} → undeliverable until its next round")
        else:
            self._failed(claim, digest, posted, f"{user} (DM)", report)

    def _sent(
        self, claim: ReminderClaim, digest: Digest, posted: Posted, report: SweepReport
    ) -> None:
        # Recorded at once: the window in which a crash could post this message twice is
        # this one commit.
        self.crm.record_sent(claim, digest, channel_id=posted.channel, message_ts=posted.ts)
        report.messages += 1
        report.items += len(digest.items)
        report.say(f"{posted.channel}: {_counts(digest.items)} → posted (ts {posted.ts})")

    def _failed(
        self, claim: ReminderClaim, digest: Digest, posted: Posted, where: str, report: SweepReport
    ) -> None:
        wait = posted.retry_after
        if posted.error in AUTH_GONE:
            wait = max(wait or 0.0, NO_TOKEN_RETRY)
        self._retry(claim, digest, posted.error, wait, where, report)

    def _retry(
        self,
        claim: ReminderClaim,
        digest: Digest,
        error: str,
        retry_after: float | None,
        where: str,
        report: SweepReport,
    ) -> None:
        retry_at = self.crm.release(claim, digest, error=error, retry_after=retry_after)
        report.to_retry += len(digest.items)
        report.say(f"{where}: {error} → {len(digest.items)} to retry at {_hm(retry_at)}")

    def _tell_admins(
        self,
        client: WebClient,
        digest: Digest,
        channel: str,
        error: str,
        fallback: str | None,
    ) -> None:
        """Once per channel and problem: the admins learn where reminders go instead."""
        notice = self.crm.claim_notice(digest.workspace_id, channel, error, lease=self.lease)
        if notice is None:
            return
        reply = views.channel_notice(channel, error, fallback)
        told = not digest.admins  # nobody to tell: don't try again
        for admin in digest.admins:
            told = self._post(client, admin, reply).ok or told
        self.crm.finish_notice(notice, sent=told, error="" if told else "admins unreachable")

    def _post(self, client: WebClient, channel: str, reply: Reply) -> Posted:
        return post(client, channel, reply, pacer=self.pacer)

    def _refresh_owners(self, claim: ReminderClaim) -> ReminderClaim:
        """Notice deactivated owners (users.info, at most daily per owner) before posting."""
        stale_before = claim.now - timedelta(days=1)
        fresh: dict[tuple[str, str], bool] = {}
        lookups = 0
        for digest in claim.digests:
            token = self._token(digest.workspace_id, digest.enterprise_id)
            if token is None:
                continue
            directory = Directory(self.crm)
            for item in digest.items:
                key = (digest.workspace_id, item.owner.user_id)
                known = item.owner.refreshed_at
                if key in fresh or (known is not None and known > stale_before):
                    continue
                if lookups >= OWNER_LOOKUPS:
                    break
                lookups += 1
                try:
                    rep = directory.rep(digest.workspace_id, self.client(token), item.owner.user_id)
                except (OSError, http.client.HTTPException) as error:  # Slack unreachable
                    log.warning("users.info for %s failed: %s", item.owner.user_id, error)
                    continue
                fresh[key] = rep.active
        if not fresh:
            return claim

        def person(ws: str, item: DigestItem) -> DigestItem:
            active = fresh.get((ws, item.owner.user_id))
            if active is None or active == item.owner.active:
                return item
            return replace(item, owner=replace(item.owner, active=active))

        digests = tuple(
            replace(d, items=tuple(person(d.workspace_id, i) for i in d.items))
            for d in claim.digests
        )
        return replace(claim, digests=digests)

    # --- morning digests --------------------------------------------------------------

    def mornings(self, report: SweepReport) -> None:
        """Each rep whose local digest time has come gets their morning DM."""
        for digest in self.crm.claim_morning_digests(lease=self.lease):
            try:
                self._morning(digest, report)
            except Exception as error:  # one bad digest must not hold up the others
                log.exception("morning digest for %s failed", digest.rep.user_id)
                self.crm.release_morning(digest, error=type(error).__name__)

    def _morning(self, digest: MorningDigest, report: SweepReport) -> None:
        user = digest.rep.user_id
        token = self._token(digest.workspace_id, digest.enterprise_id)
        if token is None:
            self.crm.release_morning(digest, error="no_token", retry_after=NO_TOKEN_RETRY)
            return
        posted = self._post(self.client(token), user, morning_views.morning(digest))
        if posted.ok:
            self.crm.record_morning(digest, channel_id=posted.channel, message_ts=posted.ts)
            report.mornings += 1
            report.say(f"{user}: morning digest → posted (ts {posted.ts})")
        elif posted.person_gone:
            self.crm.drop_morning(digest, error=posted.error)
            report.say(f"{user}: morning digest {posted.error} → dropped for today")
        else:
            retry_at = self.crm.release_morning(
                digest, error=posted.error, retry_after=posted.retry_after
            )
            report.say(f"{user}: morning digest {posted.error} → retry at {_hm(retry_at)}")


def _hm(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%H:%M:%S UTC")


# --- APScheduler -------------------------------------------------------------------


def schedule(scheduler: BaseScheduler, sweeper: Sweeper, interval: int) -> Job:
    """Add the sweep job, with settings chosen for reminders rather than APScheduler's defaults.

    - misfire_grace_time=None: a sweep that starts late (busy process, slow previous sweep,
      suspended dyno) still runs; the default of 1 s would silently skip it.
    - coalesce=True: several missed runs become one sweep, not a burst.
    - max_instances=1: never two sweeps at once in one process (other processes are kept
      apart by the database claim).
    - first run at start-up: whatever fell due while nothing was running goes out now.
    The job store is the in-memory default on purpose: the reminders' state lives in the
    database, so there is nothing to persist and no shared job store to double-fire.
    """
    return scheduler.add_job(
        _run_sweep,
        IntervalTrigger(seconds=interval, timezone=UTC),
        args=[sweeper],
        id=JOB_ID,
        name="post overdue follow-up reminders",
        misfire_grace_time=None,
        coalesce=True,
        max_instances=1,
        next_run_time=datetime.now(UTC),
        replace_existing=True,
    )


def _run_sweep(sweeper: Sweeper) -> None:
    report = sweeper.sweep()
    if report.lines:
        log.info("%s", report.summary())


def start_in_background(settings: Settings, crm: CrmService, db: Database) -> BackgroundScheduler:
    """For single-process installs: sweep from a thread of `crmbot serve`."""
    scheduler = BackgroundScheduler(timezone=UTC, daemon=True)
    schedule(
        scheduler, Sweeper(crm, settings, tokens=Tokens(settings, db)), settings.reminder_interval
    )
    scheduler.start()
    log.info("reminder sweeps every %s s in this process", settings.reminder_interval)
    return scheduler


def run_clock(settings: Settings, crm: CrmService, db: Database) -> int:
    """The clock process (`crmbot scheduler`): sweep every interval until stopped."""
    scheduler = BlockingScheduler(timezone=UTC)
    schedule(
        scheduler, Sweeper(crm, settings, tokens=Tokens(settings, db)), settings.reminder_interval
    )
    schedule_score_training(scheduler, crm)  # nightly: learned lead scores (crmbot.nightly)

    def stop(signum: int, frame: FrameType | None) -> None:
        # A sweep in flight finishes its current post; anything it didn't get to is
        # picked up by the next process once its lease runs out.
        scheduler.shutdown(wait=False)

    signal.signal(signal.SIGTERM, stop)
    print(f"crmbot scheduler: sweeping every {settings.reminder_interval} s", flush=True)
    with contextlib.suppress(KeyboardInterrupt, SystemExit):
        scheduler.start()
    return 0


def remind_once(
    settings: Settings, crm: CrmService, db: Database, out: Callable[[str], None]
) -> int:
    """`crmbot remind --once`: one sweep now, printing what it sent."""
    report = Sweeper(crm, settings, tokens=Tokens(settings, db)).sweep()
    for line in report.lines:
        out(line)
    out(report.summary())
    return 0
