"""`/crm find` filters and saved segments, on both engines and through Slack."""

from __future__ import annotations

from decimal import Decimal

import pytest

from crmbot.domain import Conflict, InvalidInput
from crmbot.service import CrmService
from tests.slackapp import SlackSim
from tests.test_slack_commands import reply_text

WS = "T1"


@pytest.fixture
def book(crm: CrmService) -> CrmService:
    """Accounts A-1..A-4 with contacts and deals, and three leads."""
    for name, industry, region, size, owner in (
        ("Acme", "SaaS", "EMEA", 120, "UBOB"),
        ("Globex", "saas", "AMER", 40, "UBOB"),
        ("Initech", "Manufacturing", "EMEA", 900, "UADMIN"),
        ("Hooli", "SaaS", "EMEA", 51, "UADMIN"),
    ):
        crm.create_account(WS, by=owner, name=name, industry=industry, region=region, size=size)
    crm.create_contact(WS, by="UBOB", name="Ana Acme", account="A-1", source="referral")
    crm.create_contact(WS, by="UBOB", name="Gil Globex", account="A-2", source="website")
    crm.create_deal(WS, by="UBOB", name="Acme renewal", amount=Decimal("50000"), stage="Proposal",
                    about="C-1")  # fmt: skip
    crm.create_deal(WS, by="UADMIN", name="Hooli pilot", amount=Decimal("9000"), about="A-4")
    crm.create_deal(WS, by="UBOB", name="Globex add-on", stage="Proposal", about="C-2")
    crm.create_lead(WS, by="UBOB", name="Lena Lead", source="referral")
    crm.create_lead(WS, by="UBOB", name="Mo Lead", source="website")
    crm.create_lead(WS, by="UADMIN", name="Nia Lead", source="referral")
    crm.update(WS, "L-1", by="UBOB", status="working", score=40)
    crm.update(WS, "L-2", by="UBOB", score=90)
    crm.update(WS, "L-3", by="UADMIN", score=65)
    return crm


def refs(result: object) -> set[str]:
    return {h.ref for h in result.hits}  # type: ignore[attr-defined]


def test_account_filters_reach_accounts_their_contacts_and_deals(book: CrmService) -> None:
    found = book.find_records(
        WS, by="UBOB", filters=[("industry", "saas"), ("region", "emea"), ("size", ">50")]
    )
    assert refs(found) == {"A-1", "A-4", "C-1", "D-1", "D-2"}  # SaaS, EMEA, more than 50
    found = book.find_records(WS, by="UBOB", filters=[("industry", "SAAS"), ("kind", "accounts")])
    assert refs(found) == {"A-1", "A-2", "A-4"}  # "SaaS" and "saas" alike

    def sized(size: str) -> set[str]:
        filters = [("size", size), ("kind", "account")]
        return refs(book.find_records(WS, by="UBOB", filters=filters))

    assert sized("<=51") == {"A-2", "A-4"}
    assert sized("100-1000") == {"A-1", "A-3"}
    assert sized("500+") == {"A-3"}
    with pytest.raises(InvalidInput):
        sized("big")


def test_stage_source_status_owner_text_and_sort_by_score(book: CrmService) -> None:
    assert refs(book.find_records(WS, by="UBOB", filters=[("stage", "prop")])) == {"D-1", "D-3"}
    by_source = book.find_records(WS, by="UBOB", filters=[("source", "referral")])
    assert refs(by_source) == {"L-1", "L-3", "C-1", "D-1"}  # D-1 through its contact
    assert refs(book.find_records(WS, by="UBOB", filters=[("status", "working")])) == {"L-1"}
    assert refs(book.find_records(WS, by="UBOB", filters=[("status", "open")])) == {
        "D-1",
        "D-2",
        "D-3",
    }
    mine = book.find_records(WS, by="UBOB", owner_id="UADMIN")
    assert refs(mine) == {"A-3", "A-4", "D-2", "L-3"}
    found = book.find_records(WS, by="UBOB", text="acme", filters=[("industry", "saas")])
    assert refs(found) == {"A-1", "C-1", "D-1"}
    assert refs(book.find_records(WS, by="UBOB", text="lead", filters=[("source", "web")])) == set()
    found = book.find_records(WS, by="UBOB", filters=[("sort", "score")])
    assert [(h.ref, h.score) for h in found.hits] == [("L-2", 90), ("L-3", 65), ("L-1", 40)]


def test_an_unknown_value_says_which_exist_and_workspaces_stay_apart(book: CrmService) -> None:
    found = book.find_records(WS, by="UBOB", filters=[("industry", "fintech")])
    assert found.hits == ()
    assert found.note is not None
    assert "Manufacturing" in found.note
    book.create_account("T2", by="UX", name="Elsewhere", industry="SaaS")
    found = book.find_records(WS, by="UBOB", filters=[("industry", "saas"), ("kind", "account")])
    assert "Elsewhere" not in {h.name for h in found.hits}


def test_a_saved_segment_is_reused_narrowed_and_owned_by_its_creator(book: CrmService) -> None:
    saved = book.find_records(
        WS, by="UBOB", filters=[("industry", "saas"), ("region", "emea"), ("save", "hot-emea")]
    )
    assert saved.saved == "hot-emea"
    again = book.find_records(WS, by="UADMIN", text="@hot-emea")
    assert (again.segment, refs(again)) == ("hot-emea", refs(saved))
    narrowed = book.find_records(WS, by="UADMIN", text="@hot-emea", filters=[("kind", "deal")])
    assert refs(narrowed) == {"D-1", "D-2"}
    assert [s.name for s in book.segments(WS)] == ["hot-emea"]
    book.find_records(WS, by="UBOB", filters=[("stage", "proposal"), ("save", "late")])
    with pytest.raises(Conflict):
        book.find_records(WS, by="UADMIN", filters=[("kind", "lead"), ("save", "late")])
    with pytest.raises(InvalidInput, match="@late"):
        book.find_records(WS, by="UBOB", text="@nope")
    with pytest.raises(InvalidInput, match="no saved segment"):
        book.find_records("T2", by="UBOB", text="@late")


def test_find_with_filters_and_segments_through_slack(slack: SlackSim) -> None:
    slack.crm.create_account("T1", by="UBOB", name="Acme", industry="SaaS", region="EMEA")
    slack.crm.create_account("T1", by="UADMIN", name="Initech", industry="Manufacturing")
    text = reply_text(slack.command("find industry:saas owner:<@UBOB|bob> save:hot"))
    assert "A-1" in text
    assert "A-2" not in text
    assert "Saved as *@hot*" in text
    assert "A-1" in reply_text(slack.command("find @hot"))
    assert "no saved segment @cold" in reply_text(slack.command("find @cold"))
    assert "*@hot* — industry:saas owner:<@UBOB>" in reply_text(slack.command("find @"))
