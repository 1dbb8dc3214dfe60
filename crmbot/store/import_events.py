"""The audit trail of CSV imports: one event per import batch and record kind.

An import writes one `import` event for each batch of records it creates (up to a batch of
the importer, 5,000 rows), not one per record: per-record events with full snapshots were
~15 % of an import's time. The event names the first record of the batch (`record_id`,
`ref`) and carries the file, the count, the references as ranges (for people) and the ids as
ranges (`_ids`, for `events_for_record`). Records an import *updates* still get one
`update` event each, with before and after, so undo and history work as for any edit.

A record's history shows the import batch that created it as its creation entry (no
field changes, like every creation). Undo never reaches it: its actor is `csv-import`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from crmbot.domain import RecordKind
from crmbot.store import queries
from crmbot.store.models import Event

IMPORT_ACTOR = "csv-import"  # the actor of the audit events an import writes
IMPORT_ACTION = "import"
IDS = "_ids"  # key in a batch event's `after`: [[first, last], ...] of the records' ids
_LOOKBACK = 5  # batch events looked at, newest first id first, to find a record's batch


def ranges(values: Sequence[int]) -> list[list[int]]:
    """Sorted runs of consecutive numbers: [1, 2, 3, 7] -> [[1, 3], [7, 7]]."""
    out: list[list[int]] = []
    for value in sorted(values):
        if out and value == out[-1][1] + 1:
            out[-1][1] = value
        else:
            out.append([value, value])
    return out


def import_event(
    ws: str,
    kind: RecordKind,
    at: datetime,
    source: str,
    ids: Sequence[int],
    numbers: Sequence[int],
) -> dict[str, Any]:
    """The event row (column values) for one batch of records an import created."""
    first = min(range(len(ids)), key=ids.__getitem__)
    spans = ranges(numbers)
    refs = [
        queries.ref_of(kind, lo)
        if lo == hi
        else f"{queries.ref_of(kind, lo)} to {queries.ref_of(kind, hi)}"
        for lo, hi in spans[:20]
    ]
    more = f" and {len(spans) - 20} more" if len(spans) > 20 else ""
    return {
        "workspace_id": ws,
        "at": at,
        "actor": IMPORT_ACTOR,
        "action": IMPORT_ACTION,
        "kind": kind.value,
        "record_id": ids[first],
        "ref": queries.ref_of(kind, numbers[first]),
        "before": None,
        "after": {
            "file": source[:200],
            "records": len(ids),
            "refs": ", ".join(refs) + more,
            IDS: ranges(ids),
        },
    }


def batch_event(session: Session, ws: str, kind: RecordKind, record_id: int) -> Event | None:
    """The import batch event that created this record, if an import did."""
    candidates = session.scalars(
        select(Event)
        .where(
            Event.workspace_id == ws,
            Event.kind == kind.value,
            Event.action == IMPORT_ACTION,
            Event.actor == IMPORT_ACTOR,
            Event.record_id <= record_id,
        )
        .order_by(Event.record_id.desc(), Event.id.desc())
        .limit(_LOOKBACK)
    )
    for event in candidates:
        spans = (event.after or {}).get(IDS)
        if event.record_id == record_id or any(lo <= record_id <= hi for lo, hi in spans or ()):
            return event
    return None


def events_for_record(
    session: Session, ws: str, kind: RecordKind, record_id: int, limit: int = 50
) -> list[Event]:
    """`queries.events_for`, plus the import batch that created the record when it has no
    creation event of its own (it was imported): newest first, the batch last."""
    events = queries.events_for(session, ws, kind, record_id, limit)
    if len(events) >= limit or any(e.action in ("create", IMPORT_ACTION) for e in events):
        return events
    batch = batch_event(session, ws, kind, record_id)
    return [*events, batch] if batch is not None else events
