"""Natural-language due dates, read in the rep's time zone with an injected clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmbot.dates import MAX_LENGTH, When, parse_when
from crmbot.domain import InvalidInput

BERLIN = "Europe/Berlin"
LOS_ANGELES = "America/Los_Angeles"
KOLKATA = "Asia/Kolkata"
AUCKLAND = "Pacific/Auckland"


def local(tz: str, year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """An aware wall-clock time in `tz` (fold=0)."""
    return datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(tz))


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def parse(text: str, tz: str, now: datetime) -> When:
    """Parse with `now` handed over in UTC, as the clock does, and check the result's shape."""
    when = parse_when(text, tz, now.astimezone(UTC))
    assert when.at.tzinfo is UTC
    assert when.in_past == (when.at < now)
    return when


def in_zone(when: When, tz: str) -> datetime:
    return when.at.astimezone(ZoneInfo(tz))


# A plain winter Thursday in Berlin (UTC+1): 2026-12-03 10:30 local.
THURSDAY = local(BERLIN, 2026, 12, 3, 10, 30)
FRIDAY = local(BERLIN, 2026, 12, 4, 10, 30)
SATURDAY = local(BERLIN, 2026, 12, 5, 10, 30)


# --- days and times of day -----------------------------------------------------------------


def test_tomorrow_9am_is_0900_local() -> None:
    assert parse("tomorrow 9am", BERLIN, THURSDAY).at == utc(2026, 12, 4, 8)


def test_tomorrow_without_a_time_means_0900_local() -> None:
    assert parse("tomorrow", BERLIN, THURSDAY).at == utc(2026, 12, 4, 8)


def test_today_5pm_is_1700_local_today() -> None:
    assert parse("today 5pm", BERLIN, THURSDAY).at == utc(2026, 12, 3, 16)


def test_time_may_come_before_the_day() -> None:
    assert parse("9am tomorrow", BERLIN, THURSDAY).at == utc(2026, 12, 4, 8)


def test_case_punctuation_and_surrounding_whitespace_do_not_matter() -> None:
    assert parse("  Tomorrow   9 A.M.  ", BERLIN, THURSDAY).at == utc(2026, 12, 4, 8)


def test_twelve_am_is_midnight_and_twelve_pm_is_noon() -> None:
    assert in_zone(parse("tomorrow 12am", BERLIN, THURSDAY), BERLIN) == local(BERLIN, 2026, 12, 4)
    assert in_zone(parse("tomorrow 12pm", BERLIN, THURSDAY), BERLIN) == local(
        BERLIN, 2026, 12, 4, 12
    )


def test_noon_before_midday_is_today_at_noon() -> None:
    assert parse("noon", BERLIN, THURSDAY).at == utc(2026, 12, 3, 11)


def test_noon_after_midday_is_tomorrow_at_noon() -> None:
    afternoon = local(BERLIN, 2026, 12, 3, 13)
    assert parse("noon", BERLIN, afternoon).at == utc(2026, 12, 4, 11)


def test_tonight_is_2000_local_today() -> None:
    assert parse("tonight", BERLIN, THURSDAY).at == utc(2026, 12, 3, 19)


def test_a_bare_hour_asks_whether_it_is_am_or_pm() -> None:
    with pytest.raises(InvalidInput, match=r'Is "at 3" 3am or 3pm\?') as caught:
        parse("friday at 3", BERLIN, THURSDAY)
    assert caught.value.example


def test_a_bare_24_hour_clock_hour_is_accepted() -> None:
    assert parse("friday at 15", BERLIN, THURSDAY).at == utc(2026, 12, 4, 14)


# --- relative ------------------------------------------------------------------------------


def test_in_30_minutes_is_thirty_minutes_later() -> None:
    assert parse("in 30 minutes", BERLIN, THURSDAY).at == THURSDAY + timedelta(minutes=30)


def test_in_2_hours_counts_elapsed_time_across_spring_forward_in_los_angeles() -> None:
    # 01:30 PST on the night the clocks jump from 02:00 to 03:00.
    now = local(LOS_ANGELES, 2026, 3, 8, 1, 30)
    when = parse("in 2 hours", LOS_ANGELES, now)
    assert when.at == utc(2026, 3, 8, 11, 30)
    assert in_zone(when, LOS_ANGELES).hour == 4


def test_in_3_days_keeps_the_wall_clock_time_across_spring_forward_in_los_angeles() -> None:
    now = local(LOS_ANGELES, 2026, 3, 6, 10)  # Friday 10:00 PST = 18:00 UTC
    assert parse("in 3 days", LOS_ANGELES, now).at == utc(2026, 3, 9, 17)  # 10:00 PDT


def test_in_1_week_keeps_the_wall_clock_time_across_autumn_in_auckland() -> None:
    now = local(AUCKLAND, 2026, 4, 2, 10)  # 10:00 NZDT (+13)
    assert parse("in 1 week", AUCKLAND, now).at == utc(2026, 4, 8, 22)  # 10:00 NZST (+12)


def test_in_3_days_at_2pm_sets_the_time_of_day() -> None:
    assert parse("in 3 days at 2pm", BERLIN, THURSDAY).at == utc(2026, 12, 6, 13)


def test_days_ago_is_in_the_past() -> None:
    when = parse("3 days ago", BERLIN, THURSDAY)
    assert when.at == THURSDAY - timedelta(days=3)
    assert when.in_past


def test_now_is_not_in_the_past() -> None:
    when = parse("now", BERLIN, THURSDAY)
    assert when.at == THURSDAY
    assert not when.in_past


def test_an_absurdly_distant_relative_time_is_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="too far"):
        parse("in 99999999999 years", BERLIN, THURSDAY)


# --- weekdays ------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["friday", "next friday", "fri", "on friday"])
def test_friday_on_a_thursday_is_tomorrow_at_0900(text: str) -> None:
    assert parse(text, BERLIN, THURSDAY).at == utc(2026, 12, 4, 8)


@pytest.mark.parametrize("text", ["friday", "next friday"])
def test_friday_on_a_friday_is_next_weeks_friday(text: str) -> None:
    assert parse(text, BERLIN, FRIDAY).at == utc(2026, 12, 11, 8)


def test_this_friday_on_a_friday_is_today() -> None:
    assert parse("this friday", BERLIN, FRIDAY).at == utc(2026, 12, 4, 8)


def test_friday_next_week_is_the_friday_of_next_week() -> None:
    assert parse("friday next week", BERLIN, THURSDAY).at == utc(2026, 12, 11, 8)


def test_friday_3pm_is_the_coming_friday_at_1500() -> None:
    assert parse("friday 3pm", BERLIN, THURSDAY).at == utc(2026, 12, 4, 14)


def test_next_monday_1000_is_the_coming_monday_at_1000() -> None:
    assert parse("next monday 10:00", BERLIN, THURSDAY).at == utc(2026, 12, 7, 9)


def test_last_friday_is_in_the_past() -> None:
    when = parse("last friday", BERLIN, THURSDAY)
    assert when.at == utc(2026, 11, 27, 8)
    assert when.in_past


# --- end of day and week -------------------------------------------------------------------


def test_eod_before_five_is_today_at_1700() -> None:
    assert parse("eod", BERLIN, THURSDAY).at == utc(2026, 12, 3, 16)


def test_eod_after_five_is_tomorrow_at_1700() -> None:
    evening = local(BERLIN, 2026, 12, 3, 18)
    when = parse("eod", BERLIN, evening)
    assert when.at == utc(2026, 12, 4, 16)
    assert not when.in_past


def test_eod_with_a_day_is_that_day_at_1700() -> None:
    assert parse("friday eod", BERLIN, THURSDAY).at == utc(2026, 12, 4, 16)


@pytest.mark.parametrize("text", ["end of week", "eow", "EOW", "by end of the week"])
def test_end_of_week_is_friday_1700_this_week(text: str) -> None:
    assert parse(text, BERLIN, THURSDAY).at == utc(2026, 12, 4, 16)


def test_end_of_week_on_saturday_is_the_coming_friday() -> None:
    assert parse("eow", BERLIN, SATURDAY).at == utc(2026, 12, 11, 16)


def test_end_of_next_week_is_friday_1700_of_next_week() -> None:
    assert parse("end of next week", BERLIN, THURSDAY).at == utc(2026, 12, 11, 16)


def test_next_week_is_monday_0900_of_next_week() -> None:
    assert parse("next week", BERLIN, THURSDAY).at == utc(2026, 12, 7, 8)


# --- calendar dates ------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["dec 3", "3 dec", "December 3", "3rd of december"])
def test_month_name_dates_without_a_year_are_the_next_occurrence(text: str) -> None:
    november = local(BERLIN, 2026, 11, 20, 12)
    assert parse(text, BERLIN, november).at == utc(2026, 12, 3, 8)


def test_month_name_date_already_past_this_year_is_next_year() -> None:
    assert parse("dec 2", BERLIN, THURSDAY).at == utc(2027, 12, 2, 8)


def test_month_name_date_of_today_is_today() -> None:
    assert in_zone(parse("dec 3", BERLIN, THURSDAY), BERLIN).date() == THURSDAY.date()


def test_december_3_2pm_is_1400_local() -> None:
    november = local(BERLIN, 2026, 11, 20, 12)
    assert parse("December 3 2pm", BERLIN, november).at == utc(2026, 12, 3, 13)


def test_month_name_date_with_a_year_keeps_the_year() -> None:
    assert parse("dec 3rd 2027", BERLIN, THURSDAY).at == utc(2027, 12, 3, 8)


def test_weekday_that_contradicts_the_date_is_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="is a Tuesday"):
        parse("monday dec 8", BERLIN, THURSDAY)


def test_feb_29_without_a_year_is_the_next_leap_day() -> None:
    assert in_zone(parse("feb 29", BERLIN, THURSDAY), BERLIN) == local(BERLIN, 2028, 2, 29, 9)


def test_iso_date_and_time_is_that_wall_clock_time() -> None:
    assert parse("2026-12-01 14:00", BERLIN, local(BERLIN, 2026, 11, 1)).at == utc(2026, 12, 1, 13)


def test_iso_date_with_t_separator_is_accepted() -> None:
    assert parse("2026-12-01T14:00", BERLIN, THURSDAY).at == utc(2026, 12, 1, 13)


def test_iso_date_without_a_time_is_0900_local() -> None:
    assert parse("2026-12-01", BERLIN, local(BERLIN, 2026, 11, 1)).at == utc(2026, 12, 1, 8)


def test_ambiguous_day_and_month_asks_which_one_is_meant() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse("3/12", BERLIN, local(BERLIN, 2026, 11, 1))
    error = caught.value
    assert error.field == "when"
    assert 'Is "3/12" 3 December or 12 March?' in error.message
    assert '"dec 3"' in error.example
    assert '"2026-12-03"' in error.example


@pytest.mark.parametrize(
    ("text", "expected"),
    [("13/12", utc(2026, 12, 13, 8)), ("12/13", utc(2026, 12, 13, 8)), ("3/3", utc(2027, 3, 3, 8))],
)
def test_numeric_dates_resolve_when_only_one_reading_is_possible(
    text: str, expected: datetime
) -> None:
    assert parse(text, BERLIN, THURSDAY).at == expected


def test_numeric_date_that_does_not_exist_is_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="not a real date"):
        parse("31/2", BERLIN, THURSDAY)


# --- the past ------------------------------------------------------------------------------


def test_yesterday_3pm_is_accepted_and_in_the_past() -> None:
    when = parse("yesterday 3pm", BERLIN, THURSDAY)
    assert when.at == utc(2026, 12, 2, 14)
    assert when.in_past


def test_a_date_years_ago_is_accepted_and_in_the_past() -> None:
    when = parse("2020-01-01", BERLIN, THURSDAY)
    assert when.at == utc(2020, 1, 1, 8)
    assert when.in_past


def test_text_is_kept_exactly_as_typed() -> None:
    assert parse("  Tomorrow 9AM ", BERLIN, THURSDAY).text == "  Tomorrow 9AM "


# --- daylight saving and odd offsets -------------------------------------------------------


def test_tomorrow_9am_in_berlin_after_dst_change_is_0800_utc() -> None:
    # Clocks go back on Sunday 2026-10-25; Saturday is still summer time.
    now = local(BERLIN, 2026, 10, 24, 12)
    assert parse("tomorrow 9am", BERLIN, now).at == utc(2026, 10, 25, 8)


def test_tomorrow_9am_in_berlin_after_spring_forward_is_0700_utc() -> None:
    now = local(BERLIN, 2026, 3, 28, 12)
    assert parse("tomorrow 9am", BERLIN, now).at == utc(2026, 3, 29, 7)


def test_tomorrow_9am_in_los_angeles_after_fall_back_is_1700_utc() -> None:
    now = local(LOS_ANGELES, 2026, 10, 31, 12)
    assert parse("tomorrow 9am", LOS_ANGELES, now).at == utc(2026, 11, 1, 17)


def test_tomorrow_9am_in_kolkata_is_0330_utc_all_year() -> None:
    for month in (1, 3, 7, 10):
        now = local(KOLKATA, 2026, month, 15, 12)
        assert parse("tomorrow 9am", KOLKATA, now).at == utc(2026, month, 16, 3, 30)


def test_kolkata_half_hour_offset_decides_which_day_today_is() -> None:
    # 19:00 UTC on the 3rd is already 00:30 on the 4th in Kolkata.
    assert parse("today 5pm", KOLKATA, utc(2026, 12, 3, 19)).at == utc(2026, 12, 4, 11, 30)


def test_tomorrow_9am_in_auckland_after_clocks_go_back_in_april_is_2100_utc() -> None:
    now = local(AUCKLAND, 2026, 4, 4, 12)  # NZDT, +13
    assert parse("tomorrow 9am", AUCKLAND, now).at == utc(2026, 4, 4, 21)  # NZST, +12


def test_tomorrow_9am_in_auckland_after_clocks_go_forward_in_september_is_2000_utc() -> None:
    now = local(AUCKLAND, 2026, 9, 26, 12)  # NZST, +12
    assert parse("tomorrow 9am", AUCKLAND, now).at == utc(2026, 9, 26, 20)  # NZDT, +13


@pytest.mark.parametrize(
    ("tz", "now", "expected"),
    [
        (LOS_ANGELES, local(LOS_ANGELES, 2026, 3, 7, 12), utc(2026, 3, 8, 10, 30)),
        (BERLIN, local(BERLIN, 2026, 3, 28, 12), utc(2026, 3, 29, 1, 30)),
        (AUCKLAND, local(AUCKLAND, 2026, 9, 26, 12), utc(2026, 9, 26, 14, 30)),
    ],
)
def test_a_time_in_the_spring_forward_gap_moves_forward_to_0330(
    tz: str, now: datetime, expected: datetime
) -> None:
    when = parse("tomorrow 2:30am", tz, now)
    assert when.at == expected
    assert (in_zone(when, tz).hour, in_zone(when, tz).minute) == (3, 30)


def test_a_time_repeated_when_clocks_fall_back_is_the_first_occurrence() -> None:
    now = local(LOS_ANGELES, 2026, 10, 31, 12)
    assert parse("tomorrow 1:30am", LOS_ANGELES, now).at == utc(2026, 11, 1, 8, 30)  # PDT


def test_now_given_in_another_zone_is_converted_first() -> None:
    now_in_tokyo = THURSDAY.astimezone(ZoneInfo("Asia/Tokyo"))
    assert parse_when("tomorrow 9am", BERLIN, now_in_tokyo).at == utc(2026, 12, 4, 8)


# --- refusals ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["asdf", "", "   ", "tomorrow tomorrow 99pm", "📅", "🙂 tomorrow", "25:00", "dec 3 +0200"],
)
def test_garbage_is_invalid_input_with_an_example(text: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse(text, BERLIN, THURSDAY)
    assert caught.value.field == "when"
    assert caught.value.example


@pytest.mark.parametrize("tz", ["Mars/Olympus_Mons", "", "America", "../../etc/passwd"])
def test_unknown_time_zone_is_invalid_input(tz: str) -> None:
    with pytest.raises(InvalidInput, match="time zone") as caught:
        parse("tomorrow 9am", tz, THURSDAY)
    assert caught.value.example


def test_text_longer_than_the_limit_is_refused() -> None:
    padding = " " * (MAX_LENGTH - len("tomorrow9am"))
    assert parse(f"tomorrow{padding}9am", BERLIN, THURSDAY).at == utc(2026, 12, 4, 8)
    with pytest.raises(InvalidInput, match="too long"):
        parse(f"tomorrow {padding}9am", BERLIN, THURSDAY)


def test_naive_now_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        parse_when("tomorrow", BERLIN, THURSDAY.replace(tzinfo=None))


# --- properties ----------------------------------------------------------------------------

_ZONES = st.sampled_from([BERLIN, LOS_ANGELES, KOLKATA, AUCKLAND, "UTC", "Pacific/Kiritimati"])
_NOWS = st.datetimes(
    min_value=datetime(2000, 1, 1),  # noqa: DTZ001 - bounds for hypothesis, which adds the zone
    max_value=datetime(2100, 1, 1),  # noqa: DTZ001
    timezones=st.just(UTC),
)
_VOCABULARY = [
    *("in", "a", "3", "12", "0", "99", "2026", "at", "on", "by", "next", "this", "last"),
    *("friday", "mon", "dec", "feb", "29", "tomorrow", "today", "tonight", "yesterday"),
    *("eod", "eow", "end", "of", "week", "days", "hours", "minutes", "ago", "noon", "9am"),
    *("2:30pm", "14:00", "3/12", "13/12", "2026-12-01", "+0200", "🙂", "-", "/", ":"),
]


def _outcome(text: str, tz: str, now: datetime) -> When | InvalidInput:
    try:
        return parse_when(text, tz, now)
    except InvalidInput as error:
        return error


def _aware_utc_or_invalid_input(text: str, tz: str, now: datetime) -> None:
    outcome = _outcome(text, tz, now)
    if isinstance(outcome, InvalidInput):
        assert outcome.field == "when"
        assert outcome.example
    else:
        assert outcome.at.tzinfo is UTC
        assert outcome.in_past == (outcome.at < now)
        assert outcome.text == text


@settings(max_examples=300, deadline=None)
@given(text=st.text(), tz=_ZONES, now=_NOWS)
def test_any_text_gives_an_aware_utc_time_or_invalid_input(
    text: str, tz: str, now: datetime
) -> None:
    _aware_utc_or_invalid_input(text, tz, now)


@settings(max_examples=500, deadline=None)
@given(words=st.lists(st.sampled_from(_VOCABULARY), max_size=5), tz=_ZONES, now=_NOWS)
def test_any_mix_of_date_words_gives_an_aware_utc_time_or_invalid_input(
    words: list[str], tz: str, now: datetime
) -> None:
    _aware_utc_or_invalid_input(" ".join(words), tz, now)
