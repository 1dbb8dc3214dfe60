"""The fake Slack Web API, for the tests: it lives in `crmbot.demo.fakeslack` (the demo uses it)."""

from __future__ import annotations

from crmbot.demo.fakeslack import *  # noqa: F403
from crmbot.demo.fakeslack import __all__ as __all__
