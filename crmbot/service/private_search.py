"""Search results as one viewer may see them: restricted fields out of the detail line, and
no hit that matched only through a field the viewer may not read (an email typed into
`/crm find` must not confirm whose it is)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from crmbot.domain import RecordKind
from crmbot.parsing import fold, format_money, parse_ref
from crmbot.service.privacy import Viewer
from crmbot.service.records import _extra
from crmbot.store import queries

Hit = tuple[RecordKind, int, str | None, str]  # kind, record id, owner id, stored detail


def visible_details(
    session: Session, who: Viewer, term: str, hits: Sequence[Hit]
) -> list[str | None]:
    """Per hit, the detail line this viewer may read, or None to leave the hit out."""
    out: list[str | None] = [detail for _, _, _, detail in hits]
    hiding = {i: who.hidden_fields(kind, owner) for i, (kind, _, owner, _) in enumerate(hits)}
    hiding = {i: fields for i, fields in hiding.items() if fields}
    if not hiding:
        return out
    words = fold(term).split() if parse_ref(term.strip()) is None else []
    rows: dict[RecordKind, dict[int, Any]] = {}
    for kind in {hits[i][0] for i in hiding}:
        ids = [hits[i][1] for i in hiding if hits[i][0] is kind]
        rows[kind] = queries.by_ids(session, queries.MODEL[kind], ids)
    for i, fields in hiding.items():
        kind, record_id, _, _ = hits[i]
        record = rows[kind].get(record_id)
        if record is None:
            out[i] = None
            continue
        if words and fields & {"email", "phone"}:
            ref = queries.ref_of(kind, record.number)
            seen = fold(queries.search_body(ref, record.name, *_extra(record, fields)))
            if not all(word in seen for word in words):
                out[i] = None  # it matched only through what this viewer may not read
                continue
        out[i] = _without(hits[i][3], _hidden_values(record, fields))
    return out


def _hidden_values(record: Any, fields: frozenset[str]) -> set[str]:
    """The restricted values as the detail line shows them (see records._detail)."""
    values: set[str] = set()
    if "amount" in fields and getattr(record, "amount", None) is not None:
        values.add(format_money(record.amount, record.currency))
    for name in sorted(fields & {"email", "phone"}):
        value = getattr(record, name, None)
        if value:
            values.add(value)
    return values


def _without(detail: str, values: set[str]) -> str:
    """The stored detail line (parts joined by " · ") minus the parts holding `values`."""
    if not values:
        return detail
    return " · ".join(part for part in detail.split(" · ") if part not in values)
