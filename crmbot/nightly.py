"""The nightly job of the clock process: learn each workspace's lead score, rescore leads.

`crmbot.scheduler` adds it next to the reminder sweep; `crmbot train-scores` runs the same
work once by hand. Training is idempotent, so a second clock process only repeats work.
"""

from __future__ import annotations

import logging
from datetime import UTC

from apscheduler.job import Job
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.cron import CronTrigger

from crmbot.service import CrmService

JOB_ID = "crmbot-train-scores"
log = logging.getLogger(__name__)


def schedule_score_training(scheduler: BaseScheduler, crm: CrmService, *, hour: int = 3) -> Job:
    """Train every night at `hour`:17 UTC; a run missed by up to an hour still happens."""
    return scheduler.add_job(
        train_all,
        CronTrigger(hour=hour, minute=17, timezone=UTC),
        args=[crm],
        id=JOB_ID,
        name="learn lead scores and rescore leads",
        misfire_grace_time=3600,
        coalesce=True,
        max_instances=1,
        replace_existing=True,
    )


def train_all(crm: CrmService) -> None:
    for result in crm.train_all_scores():
        log.info("lead scores: %s", result.summary())
