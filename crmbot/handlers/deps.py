"""What every listener needs, handed to each surface's `register`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from crmbot.config import Settings
from crmbot.handlers.context import Directory
from crmbot.service import CrmService

if TYPE_CHECKING:
    from crmbot.handlers.offload import Offload


@dataclass(frozen=True)
class Deps:
    crm: CrmService
    settings: Settings
    directory: Directory
    offload: Offload | None = None  # worker processes for post-ack work (`crmbot serve`)
