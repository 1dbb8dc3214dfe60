"""Search statement shapes (crmbot/store/pg_search.py on PostgreSQL, FTS5 on SQLite): the
same answers on both engines, whichever index a term is served from."""

from __future__ import annotations

import pytest

from crmbot.domain import RecordKind
from crmbot.service import CrmService
from crmbot.store import pg_search, queries

WS = "T1"


def refs(crm: CrmService, term: str, ws: str = WS) -> list[str]:
    return [h.ref for h in crm.find(ws, term)]


def test_whole_words_inside_a_term_find_every_match_newest_first(crm: CrmService) -> None:
    for i in range(25):
        crm.create_contact(WS, by="UBOB", name=f"Person {i}", email=f"p{i}.smith@gmail.com")
    crm.create_contact(WS, by="UBOB", name="Jo", email="jo.smithers@gmail.com")  # not ".smith@"
    crm.create_contact(WS, by="UBOB", name="Al", email="al.smith@gmail.co")  # no "gmail.com"
    found = refs(crm, ".smith@gmail.com")
    assert found == [f"C-{n}" for n in range(25, 5, -1)]  # the 20 newest, newest first
    assert refs(crm, "smith@gmail.co")[:2] == ["C-27", "C-25"]


def test_short_and_unicode_words_inside_a_term_still_match(crm: CrmService) -> None:
    crm.create_lead(WS, by="UBOB", name="Batch 12-34-56-78")
    crm.create_lead(WS, by="UBOB", name="Jörg", company="Müller.Schmidt@Firma Ltd")
    assert refs(crm, "12-34-56-78") == ["L-1"]  # "34", "56": too short to look up as words
    assert refs(crm, "müller.schmidt@firma") == ["L-2"]
    assert refs(crm, "ller.schmidt@fir") == ["L-2"]


def test_a_term_with_like_wildcards_between_its_words_is_plain_text(crm: CrmService) -> None:
    crm.create_lead(WS, by="UBOB", name="Zed xx.abc%def.yy")
    crm.create_lead(WS, by="UBOB", name="Zed xx.abcXdef.yy")
    crm.create_lead(WS, by="UBOB", name="Zed xx.abc_def.yy")
    assert refs(crm, "xx.abc%def.yy") == ["L-1"]
    assert refs(crm, "xx.abc_def.yy") == ["L-3"]
    assert refs(crm, "x.abc\\def.y") == []


def test_word_lookups_keep_to_the_workspace_the_kinds_and_live_records(crm: CrmService) -> None:
    crm.ensure_workspace("T2")
    crm.create_contact("T2", by="UEVE", name="Other", email="ann.lee@acme-corp.com")
    crm.create_contact(WS, by="UBOB", name="Gone", email="ann.lee@acme-corp.com")
    crm.delete(WS, "C-1", by="UADMIN")
    crm.create_lead(WS, by="UBOB", name="Ann Lee", email="ann.lee@acme-corp.com")
    crm.create_contact(WS, by="UBOB", name="Ann L.", email="ann.lee@acme-corp.com")
    assert refs(crm, "ann.lee@acme-corp.com") == ["C-2", "L-1"]
    assert refs(crm, "ann.lee@acme-corp.com", ws="T2") == ["C-1"]
    with crm._db.read() as session:
        leads = queries.search(session, WS, "ann.lee@acme-corp.com", kinds=(RecordKind.LEAD,))
    assert [d.ref for d in leads] == ["L-1"]


def test_common_and_rare_single_words_both_come_newest_first(crm: CrmService) -> None:
    for i in range(30):
        crm.create_contact(WS, by="UBOB", name=f"Globex person {i}")
    crm.create_contact(WS, by="UBOB", name="Rare Xylographer")
    assert refs(crm, "lobex") == [f"C-{n}" for n in range(30, 10, -1)]
    assert refs(crm, "xylograph") == ["C-31"]
    assert refs(crm, "xylographs") == []


def test_small_pages_give_the_same_answers(
    crm: CrmService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The newest-documents pages and the trigram index after them meet without a gap
    (PostgreSQL reads pages of 1,000 and up to 16,000: here 3 and up to 8)."""
    for i in range(40):
        name = f"{'Globex' if i % 3 == 0 else 'Initech'} {'rare' if i in (2, 17) else ''} {i}"
        crm.create_contact(WS, by="UBOB", name=name)
    crm.delete(WS, "C-31", by="UADMIN")
    terms = ("globex", "initech", "rare", "lobe", "nitech 1", "zzz")
    expected = {term: refs(crm, term) for term in terms}
    monkeypatch.setattr(pg_search, "FIRST_PAGE", 3)
    monkeypatch.setattr(pg_search, "LAST_PAGE", 8)
    assert {term: refs(crm, term) for term in terms} == expected
    assert expected["rare"] == ["C-18", "C-3"]
    assert len(expected["globex"]) == 13  # 14 made, one deleted
