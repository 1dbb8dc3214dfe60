"""Admins edit the pipeline's stages (service, both engines) and the Settings modal (Slack)."""

from __future__ import annotations

import pytest

from crmbot.domain import InvalidInput, PermissionDenied, StageKind
from crmbot.service import CrmService
from crmbot.service.stages import StageLine, parse_stage_lines

WS = "T1"


def lines(text: str) -> tuple[StageLine, ...]:
    return parse_stage_lines(text)


def summary(crm: CrmService) -> list[tuple[str, int, str]]:
    return [(s.name, s.probability, s.kind.value) for s in crm.stages(WS)]


def test_the_editor_reads_names_probabilities_renames_and_the_modals_own_numbering() -> None:
    assert lines("1. *Prospecting* · 10 %\n\n Proposal -> Proposal sent 55%\nWon · won") == (
        StageLine("Prospecting", 10),
        StageLine("Proposal sent", 55, was="Proposal"),
        StageLine("Won", None),
    )
    assert lines("Demo → Live demo") == (StageLine("Live demo", None, was="Demo"),)
    assert lines("Stage 2 of 3 20%") == (StageLine("Stage 2 of 3", 20),)
    assert lines("Phase 2") == (StageLine("Phase 2", None),)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("Discovery 150%", "0 to 100"),
        ("\n".join(f"S{i} 10%" for i in range(21)), "at most 20"),
        ("x" * 61 + " 10%", "60"),
    ],
)
def test_bad_editor_text_says_what_is_wrong(text: str, problem: str) -> None:
    with pytest.raises(InvalidInput) as bad:
        lines(text)
    assert problem in str(bad.value)


def test_admins_rename_reorder_add_and_remove_stages(crm: CrmService) -> None:
    crm.create_deal(WS, by="UBOB", name="Renewal", amount=None, stage="Proposal")
    crm.set_stages(
        WS,
        lines(
            "Prospecting 5%\nDiscovery 25%\nProposal -> Proposal sent 55%\n"
            "Negotiation 80%\nWon -> Closed won\nLost"
        ),
        by="UADMIN",
    )
    assert summary(crm) == [
        ("Prospecting", 5, "open"),
        ("Discovery", 25, "open"),
        ("Proposal sent", 55, "open"),
        ("Negotiation", 80, "open"),
        ("Closed won", 100, "won"),
        ("Lost", 0, "lost"),
    ]  # Qualification, empty, is gone
    assert crm.show(WS, "D-1").record.stage == "Proposal sent"  # type: ignore[union-attr]
    crm.move_deal(WS, "D-1", "discovery", by="UBOB")
    crm.close_deal(WS, "D-1", by="UBOB", won=True)
    assert crm.show(WS, "D-1").record.stage == "Closed won"  # type: ignore[union-attr]


def test_names_can_swap_places(crm: CrmService) -> None:
    crm.set_stages(
        WS,
        lines(
            "Prospecting -> Qualification\nQualification -> Prospecting\n"
            "Proposal\nNegotiation\nWon\nLost"
        ),
        by="UADMIN",
    )
    assert [s.name for s in crm.stages(WS)][:2] == ["Qualification", "Prospecting"]
    assert [s.probability for s in crm.stages(WS)][:2] == [10, 20]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("Prospecting\nQualification\nProposal\nNegotiation\nLost", "Won closes deals as won"),
        ("Prospecting\nProposal\nNegotiation\nWon 90%\nLost", "Won always stands at 100 %"),
        ("Prospecting\nProspecting\nWon\nLost", "listed twice"),
        ("Prospecting\nDiscovery\nWon\nLost", "Give the new stage Discovery a probability"),
        ("Nothing -> Something 10%\nWon\nLost", "no stage called Nothing"),
        ("Won\nLost", "at least one open stage"),
        ("Prospecting\nQualification\nNegotiation\nWon\nLost", "Deals are or were in Proposal"),
    ],
)
def test_a_pipeline_that_cannot_be_changes_nothing(
    crm: CrmService, text: str, problem: str
) -> None:
    crm.create_deal(WS, by="UBOB", name="Renewal", amount=None, stage="Proposal")
    before = summary(crm)
    with pytest.raises(InvalidInput) as bad:
        crm.set_stages(WS, lines(text), by="UADMIN")
    assert problem in str(bad.value)
    assert summary(crm) == before


def test_a_stage_a_deal_has_passed_through_stays(crm: CrmService) -> None:
    crm.create_deal(WS, by="UBOB", name="Renewal", amount=None, stage="Qualification")
    crm.move_deal(WS, "D-1", "Proposal", by="UBOB")
    with pytest.raises(InvalidInput, match="Qualification"):
        crm.set_stages(WS, lines("Prospecting\nProposal\nNegotiation\nWon\nLost"), by="UADMIN")


def test_only_admins_change_stages(crm: CrmService) -> None:
    before = summary(crm)
    with pytest.raises(PermissionDenied, match="Only admins"):
        crm.set_stages(WS, lines("Prospecting 1%\nWon\nLost"), by="UBOB")
    assert summary(crm) == before
    assert crm.stages(WS)[-1].kind is StageKind.LOST
