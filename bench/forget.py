"""How long does `crmbot forget` take in a big workspace? `python -m bench.forget [--contacts N]`.

Copies the bench.datagen SQLite data set (N contacts in the big workspace, their accounts and
search documents), gives one person there a lead, a conversion, notes, follow-ups and a deal
through the service, then times a dry run and the real erasure (which sweeps every text and
JSON column of the workspace and optimizes the full-text indexes). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from bench import datagen
from crmbot.service import CrmService
from crmbot.store.db import Database

EMAIL = "zoe.quixotewell@example.org"


def run(contacts: int) -> dict[str, object]:
    url, _ = datagen.ensure("sqlite", contacts)
    source = Path(url.removeprefix("sqlite:///"))
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "forget.db"
        shutil.copy(source, copy)
        db = Database(f"sqlite:///{copy}")
        crm = CrmService(db)
        ws, by = datagen.WORKSPACES[0], datagen.rep_id(datagen.WORKSPACES[0], 0)
        lead = crm.create_lead(
            ws, by=by, name="Zoë Quixotewell", email=EMAIL, phone="+1 415 555 0199"
        )
        for n in range(20):
            crm.log_interaction(
                ws, by=by, kind="call", about=lead.ref, summary=f"call {n} with Zoë"
            )
        crm.create_follow_up(ws, by=by, about=lead.ref, when="tomorrow 9am", title="Call Zoë")
        done = crm.convert_lead(ws, lead.ref, by=by, deal_name="Zoë pilot", amount=Decimal(5000))
        assert done.deal is not None
        crm.log_interaction(
            ws, by=by, kind="note", about=done.deal.ref, summary="Zoë Quixotewell ok"
        )
        started = time.perf_counter()
        dry = crm.forget(EMAIL, by="bench", team=ws, dry_run=True)
        assert dry.rows > 0
        dry_s = time.perf_counter() - started
        started = time.perf_counter()
        real = crm.forget(EMAIL, by="bench", team=ws)
        real_s = time.perf_counter() - started
        started = time.perf_counter()
        again = crm.forget(EMAIL, by="bench", team=ws)
        again_s = time.perf_counter() - started
        db.dispose()
    return {
        "engine": "sqlite",
        "contacts": contacts,
        "rows_erased": real.rows,
        "dry_run_s": round(dry_s, 2),
        "forget_s": round(real_s, 2),
        "second_run_s": round(again_s, 2),
        "second_run_rows": again.rows,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.forget", description=__doc__)
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--quick", action="store_true", help="20,000 contacts")
    args = parser.parse_args(argv)
    print(json.dumps(run(20_000 if args.quick else args.contacts)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
