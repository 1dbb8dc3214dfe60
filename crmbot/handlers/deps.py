"""What every listener needs, handed to each surface's `register`."""

from __future__ import annotations

from dataclasses import dataclass

from crmbot.config import Settings
from crmbot.handlers.context import Directory
from crmbot.service import CrmService


@dataclass(frozen=True)
class Deps:
    crm: CrmService
    settings: Settings
    directory: Directory
