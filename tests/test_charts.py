"""Charts: valid PNGs of a readable size, shared with files_upload_v2 after the text reply."""

from __future__ import annotations

import io
import time
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from PIL import Image

from crmbot import charts
from crmbot.domain import InteractionKind, Money
from crmbot.reporting import (
    ActivityReport,
    Counted,
    ForecastMonth,
    PipelineReport,
    RepActivity,
    StageRow,
    WinRate,
)
from tests.fakeslack import Call
from tests.slackapp import SlackSim
from tests.test_slack_commands import reply_text

NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
PNG = b"\x89PNG\r\n\x1a\n"


def usd(value: int) -> Money:
    return Money(Decimal(value), "USD")


def eur(value: int) -> Money:
    return Money(Decimal(value), "EUR")


def pipeline_report(stages: int = 4) -> PipelineReport:
    names = ["Prospecting", "Qualification", "Proposal", "Negotiation", "Legal", "Signature"]
    rows = tuple(
        StageRow(
            stage=names[i],
            probability=10 + 20 * i,
            rotting_days=14,
            count=3 + i,
            amounts=(eur(5_000 * (i + 1)), usd(120_000 // (i + 1))),
            weighted=(
                eur(5_000 * (i + 1) * (10 + 15 * i) // 100),
                usd(1_200 * (10 + 15 * i) // (i + 1)),
            ),
            avg_days=None,
            stints=0,
            stale=0,
        )
        for i in range(stages)
    )
    months = tuple(
        ForecastMonth(
            date(2026 + (9 + m) // 12, (9 + m) % 12 + 1, 1),
            m,
            (usd(10_000 * m),),
            (usd(4_000 * m),),
        )
        for m in range(6)
    )
    return PipelineReport(
        owner_id=None,
        team=True,
        as_of=NOW,
        today=NOW.date(),
        stages=rows,
        totals=(eur(50_000), usd(250_000)),
        weighted_totals=(eur(5_000), usd(60_000)),
        forecast=months,
        undated=0,
        slipped=0,
        win_rate=WinRate(90, 0, 0, ()),
        stale=(),
        stale_count=0,
        owners=(),
    )


def activity_report(reps: int = 6) -> ActivityReport:
    kinds = tuple(InteractionKind)
    people = tuple(
        RepActivity(
            user_id=f"U{i}",
            name=f"Rep Number {i}",
            by_kind=tuple((k, (i + j) % 4) for j, k in enumerate(kinds)),
            interactions=Counted(sum((i + j) % 4 for j in range(len(kinds))), i),
            won=0,
            lost=0,
            overdue=0,
        )
        for i in range(reps)
    )
    zero = Counted(0, 0)
    return ActivityReport(
        period="week",
        start=NOW,
        end=NOW,
        previous_start=NOW,
        owner_id=None,
        interactions=zero,
        by_kind=tuple((k, zero) for k in kinds),
        reps=people,
        leads_created=zero,
        leads_qualified=zero,
        leads_converted=zero,
        deals_won=zero,
        deals_lost=zero,
        won_amounts=(),
        previous_won_amounts=(),
        lost_reasons=(),
        overdue=0,
        model=None,
    )


def replies_to(slack: SlackSim, response_url: str, count: int) -> list[Call]:
    """The first `count` posts to a response_url, waiting up to 10 s for them."""
    key = response_url.rsplit("/", 1)[1]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        posts = [
            c
            for c in slack.fake.calls
            if c.method == "response_url" and c.path.endswith(f"/response/{key}")
        ]
        if len(posts) >= count:
            return posts
        time.sleep(0.02)
    raise AssertionError(f"fewer than {count} replies to {response_url}")


def size_of(png: bytes) -> tuple[int, int]:
    assert png.startswith(PNG)
    image = Image.open(io.BytesIO(png))
    image.verify()
    return image.size


@pytest.mark.parametrize(
    ("draw", "max_height"),
    [
        (lambda: charts.pipeline_chart(pipeline_report()), 900),
        (lambda: charts.forecast_chart(pipeline_report()), 1000),
        (lambda: charts.activity_chart(activity_report()), 700),
        (lambda: charts.activity_chart(activity_report(reps=30)), 900),  # capped at 10 reps
    ],
)
def test_each_chart_is_a_png_sized_for_slacks_preview(draw: object, max_height: int) -> None:
    chart = draw()  # type: ignore[operator]
    assert chart is not None
    width, height = size_of(chart.png)
    assert width == 910  # 7 in at 130 dpi: Slack shows it at ~480 px with 13 pt type legible
    assert 250 <= height <= max_height
    assert chart.filename.endswith(".png")
    assert chart.alt


def test_money_is_drawn_per_currency_and_labelled_short() -> None:
    assert charts.short_money(Decimal("1234567"), "USD") == "$1.2M"
    assert charts.short_money(Decimal("350000"), "EUR") == "€350k"
    assert charts.short_money(Decimal("900"), "CHF") == "CHF 900"
    assert charts.pipeline_chart(pipeline_report()).alt.count("€") == 4  # type: ignore[union-attr]


def test_nothing_to_draw_means_no_chart() -> None:
    empty = pipeline_report(stages=0)
    empty = PipelineReport(**{**empty.__dict__, "totals": (), "forecast": ()})
    assert charts.for_pipeline(empty) == []
    assert charts.for_report(activity_report(reps=0)) == []


def test_pipeline_charts_are_uploaded_after_the_text_in_three_steps(slack: SlackSim) -> None:
    slack.crm.create_deal("T1", by="UBOB", name="Acme", amount=Decimal("50000"), stage="Proposal",
                          close_date=date(2026, 12, 1))  # fmt: skip
    reply = slack.command("pipeline")
    assert "Proposal" in reply_text(reply)
    slack.fake.wait_for("files.completeUploadExternal")
    methods = [c.method for c in slack.fake.calls]
    assert methods.index("response_url") < methods.index("files.getUploadURLExternal")
    assert methods.count("files.getUploadURLExternal") == methods.count("upload") == 2
    files = [f for f in slack.fake.uploaded_files.values() if f.completed]
    assert sorted(f.filename for f in files) == ["forecast.png", "pipeline.png"]
    assert {f.channel_id for f in files} == {"C1"}
    for uploaded in files:
        assert uploaded.content is not None
        assert size_of(uploaded.content)[0] == 910
    assert slack.fake.messages("C1")[-1]["files"]


def test_report_chart_goes_to_the_dm_the_command_came_from(slack: SlackSim) -> None:
    slack.crm.log_interaction("T1", by="UBOB", kind="call", about=None, summary="cold call")
    reply = slack.command("report", channel="DUBOB")
    assert "1 interaction" in reply_text(reply)
    slack.fake.wait_for("files.completeUploadExternal")
    (uploaded,) = [f for f in slack.fake.uploaded_files.values() if f.completed]
    assert (uploaded.filename, uploaded.channel_id) == ("activity.png", "DUBOB")


def test_a_failed_upload_still_leaves_the_text_and_says_why(slack: SlackSim) -> None:
    slack.crm.create_deal("T1", by="UBOB", name="Acme", amount=Decimal("50000"))
    slack.fake.fail_next("files.completeUploadExternal", "not_in_channel")
    answer, response_url, _ = slack.send_command("pipeline")
    assert answer.status == 200
    notes = replies_to(slack, response_url, 2)
    assert "Prospecting" in reply_text(notes[0])
    assert "not_in_channel" in reply_text(notes[1])
    assert not [f for f in slack.fake.uploaded_files.values() if f.completed]
