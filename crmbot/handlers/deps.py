"""What every listener needs, handed to each surface's `register`."""

from __future__ import annotations

from concurrent.futures import Executor
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
    # Threads for what follows an inline listener's answer (handlers/inline.py); None: the
    # listener does it itself (a worker process's app answers after its listener anyway).
    background: Executor | None = None
