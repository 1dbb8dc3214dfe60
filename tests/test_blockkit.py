"""Our cached Block Kit lookups render exactly what slack-sdk's own code renders."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from slack_sdk.models.basic_objects import JsonObject

from crmbot.domain import (
    CardView,
    DealStatus,
    DealView,
    FollowUpStatus,
    FollowUpView,
    InteractionKind,
    InteractionView,
    Money,
    RecordKind,
    SearchHit,
    TaskList,
)
from crmbot.handlers import blockkit, render
from crmbot.handlers import modal_views as views
from tests.test_forms import all_views

AT = datetime(2026, 11, 23, 15, tzinfo=UTC)


def rendered() -> list[Any]:
    deal = DealView(
        ref="D-1",
        name="Acme <b>",
        amount=Money(Decimal("50000"), "EUR"),
        stage="Proposal",
        probability=50,
        close_date=None,
        owner_id="U1",
        status=DealStatus.OPEN,
        account_ref="A-1",
        account_name="Acme & Co",
        contact_ref=None,
        contact_name=None,
        lost_reason=None,
        created_at=AT,
    )
    task = FollowUpView(
        ref="T-1",
        title="call <!channel>",
        due_at=AT - timedelta(days=1),
        remind_at=AT,
        owner_id="U1",
        status=FollowUpStatus.OPEN,
        about_ref="D-1",
        about_name="Acme",
        channel_id="C1",
        overdue=True,
    )
    call = InteractionView(
        id=1,
        kind=InteractionKind.CALL,
        occurred_at=AT,
        logged_by="U1",
        summary="",
        outcome="ok",
        duration_minutes=5,
        about=("D-1",),
        permalink=None,
    )
    hit = SearchHit(
        ref="L-1", kind=RecordKind.LEAD, name="Ana", detail="", owner_id=None, updated_at=AT
    )
    replies = [
        render.card(CardView(record=deal, interactions=(call,), follow_ups=(task,))),
        render.search([hit], "ana"),
        render.tasks(TaskList(owner_id="U1", overdue=(task,), upcoming=())),
        render.deal_saved(deal, "Moved"),
    ]
    return [*(r.payload() for r in replies), *(v.to_dict() for v in all_views())]


@pytest.fixture
def slack_sdks_own_code() -> Iterator[None]:
    JsonObject.validate_json = blockkit.ORIGINAL_VALIDATE_JSON  # type: ignore[method-assign]
    JsonObject.get_non_null_attributes = blockkit.ORIGINAL_GET_NON_NULL_ATTRIBUTES  # type: ignore[method-assign]
    try:
        yield
    finally:
        blockkit.install()


def test_cached_rendering_matches_slack_sdk_byte_for_byte(slack_sdks_own_code: None) -> None:
    original = rendered()
    blockkit.install()
    assert rendered() == original


@pytest.mark.parametrize(
    ("value", "label"),
    [
        ("C-1", "C-1 Ana Lima · Contact"),
        ("D-12", "D-12 Acme & <b>Sons</b> · Deal"),
        ("L-3", "L-3 " + "Zoë " * 40 + "· Lead"),  # clipped at the option's length
        ("A-" + "9" * 200, "A-9 long"),  # value clipped at Slack's 150
        ("L-4", ""),
    ],
)
def test_type_ahead_options_built_directly_match_slack_sdk(value: str, label: str) -> None:
    assert views.option_dict(value, label) == views.option(value, label).to_dict()
