"""The domain service: every verb the Slack surfaces (and the CLI) call."""

from __future__ import annotations

from crmbot.service.activity import ActivityService
from crmbot.service.base import Clock, utcnow
from crmbot.service.records import Assigned


class CrmService(ActivityService):
    """All of crmbot's verbs; one transaction per call, frozen views out."""


__all__ = ["Assigned", "Clock", "CrmService", "utcnow"]
