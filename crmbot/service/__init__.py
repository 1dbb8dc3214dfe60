"""The domain service: every verb the Slack surfaces (and the CLI) call."""

from __future__ import annotations

from crmbot.service.base import Clock, utcnow
from crmbot.service.intake import IntakeService
from crmbot.service.records import Assigned
from crmbot.service.reminder_messages import ReminderService
from crmbot.service.reports import ReportService
from crmbot.service.request_keys import RequestKeyService
from crmbot.service.stages import StageService


class CrmService(ReminderService, IntakeService, ReportService, StageService, RequestKeyService):
    """All of crmbot's verbs; one transaction per call, frozen views out."""


__all__ = ["Assigned", "Clock", "CrmService", "utcnow"]
