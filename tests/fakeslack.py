"""The fake Slack Web API, for the tests: it lives in `crmbot.demo.fakeslack` (the demo uses it)."""

from __future__ import annotations

from crmbot.demo.fakeslack import *  # noqa: F403
from crmbot.demo.fakeslack import (
    JSON,
    JSON_FIELDS,
    MISSING_TEXT_WARNING,
    Call,
    FakeSlack,
    Fault,
    FaultPlan,
    SlackError,
    UploadedFile,
    validate_blocks,
    validate_view,
)

__all__ = [
    "JSON",
    "JSON_FIELDS",
    "MISSING_TEXT_WARNING",
    "Call",
    "FakeSlack",
    "Fault",
    "FaultPlan",
    "SlackError",
    "UploadedFile",
    "validate_blocks",
    "validate_view",
]
