"""Natural-language due dates ("tomorrow 9am", "in 3 days", "next friday") in a rep's time zone.

Everything is read in the rep's zone, with the injected `now` converted into it, and the
result is returned in UTC. The rules, so that nobody has to guess:

- A day without a time means 09:00 local ("tomorrow", "friday", "dec 3"); "tonight" means 20:00.
- A time without a day ("5pm", "noon", "eod") means its next occurrence: today if it is still
  ahead, otherwise tomorrow. "eod" (also "end of day", "cob") is 17:00 by that rule, and
  "friday eod" or "eod tomorrow" is 17:00 on that day.
- "end of week" / "eow" is Friday 17:00 of this week (Monday to Sunday); once that has passed
  (Friday evening, the weekend) it means next Friday. "end of next week" is Friday 17:00 of next
  week, "next week" is Monday 09:00 of next week.
- "friday" and "next friday" both mean the first Friday strictly after today (on a Friday, the
  one a week later); "this friday" includes today; "last friday" is strictly before today;
  "friday next week" is the Friday of next week.
- "in 2 hours" and "in 30 minutes" count elapsed time; "in 3 days", "in 1 week", "in 2 months"
  count calendar days and keep the local wall-clock time, so they stay put across DST changes.
- Month-name dates without a year ("dec 3", "3 dec") mean their next occurrence, today
  included. Numeric dates are day/month or month/day only when one reading is impossible
  ("13/12", "12/13") or both agree ("3/3"); "3/12" is refused with a question.
- Wall-clock times are built with zoneinfo and then converted to UTC. A time that does not exist
  (the hour skipped when clocks spring forward) moves forward by the size of the gap, so 02:30
  becomes 03:30; a time that happens twice (clocks fall back) means the first occurrence.
- Times in the past ("yesterday 3pm", "2020-01-01") are accepted with `in_past=True`.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateparser.date import DateDataParser
from dateutil.relativedelta import relativedelta

from crmbot.domain import InvalidInput

MAX_LENGTH = 200
DEFAULT_TIME = time(9)
TONIGHT = time(20)
END_OF_DAY = time(17)

_FIELD = "when"
_EXAMPLE = '"tomorrow 9am", "in 3 days", "next friday", "eod" or "2026-12-01 14:00"'
_TIME_EXAMPLE = '"9am", "2:30pm" or "14:00"'

_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_WEEKDAY_WORDS = {
    **dict.fromkeys(("mon", "monday"), 0),
    **dict.fromkeys(("tue", "tues", "tuesday"), 1),
    **dict.fromkeys(("wed", "weds", "wednesday"), 2),
    **dict.fromkeys(("thu", "thur", "thurs", "thursday"), 3),
    **dict.fromkeys(("fri", "friday"), 4),
    **dict.fromkeys(("sat", "saturday"), 5),
    **dict.fromkeys(("sun", "sunday"), 6),
}
_DAY_WORDS = {
    **dict.fromkeys(("today", "tod"), 0),
    **dict.fromkeys(("tomorrow", "tmrw", "tmr", "tomorow", "tommorow", "tommorrow"), 1),
    "yesterday": -1,
}
_NUMBER_WORDS = {
    **dict.fromkeys(("a", "an", "one"), 1),
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
}
_UNITS = {
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), "minutes"),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), "hours"),
    **dict.fromkeys(("d", "day", "days"), "days"),
    **dict.fromkeys(("w", "wk", "wks", "week", "weeks"), "weeks"),
    **dict.fromkeys(("mo", "mos", "month", "months"), "months"),
    **dict.fromkeys(("y", "yr", "yrs", "year", "years"), "years"),
}
# Whole phrases that mean the same as a simpler one.
_ALIASES = {
    "eow": "end of week",
    "end of the week": "end of week",
    "end of this week": "end of week",
    "end of the next week": "end of next week",
    "end of today": "today eod",
    "end of tomorrow": "tomorrow eod",
    "in half an hour": "in 30 minutes",
    "right now": "now",
}

_NUMBER = r"\d+|" + "|".join(_NUMBER_WORDS)
_UNIT = "|".join(sorted(_UNITS, key=len, reverse=True))
_IN_RELATIVE = re.compile(
    rf"in\s+(?P<n>{_NUMBER})\s*(?P<unit>{_UNIT})(?:\s+(?P<rest>.+))?", re.ASCII
)
_RELATIVE_AGO = re.compile(
    rf"(?P<n>{_NUMBER})\s*(?P<unit>{_UNIT})\s+(?P<dir>ago|from now|later)", re.ASCII
)
_FILLER = re.compile(r"^(?:due\s+)?(?:(?:by|on)\s+)?", re.ASCII)
# A time of day: "9am", "9:30 p.m.", "14:00", "noon", "eod", or a bare "at 3" (which we question).
_TIME_TOKEN = (
    r"(?:(?:at\s+|@\s*)?"
    r"(?:(?P<h12>\d{1,3})(?::(?P<m12>\d{2}))?\s*(?P<ap>[ap])\.?m\.?"
    r"|(?P<h24>\d{1,2}):(?P<m24>\d{2})(?::(?P<s24>\d{2}))?"
    r"|(?P<word>noon|midday|eod|cob|end of (?:the )?day|close of business))"
    r"|at\s+(?P<bare>\d{1,3}))"
)
_TIME_LAST = re.compile(rf"(?P<rest>.*?)\s*{_TIME_TOKEN}", re.ASCII)
_TIME_FIRST = re.compile(rf"{_TIME_TOKEN}\s*(?P<rest>.*)", re.ASCII)
_WEEKDAY = re.compile(
    r"(?:(?P<mod>next|this|coming|this coming|last)\s+)?"
    rf"(?P<wd>{'|'.join(_WEEKDAY_WORDS)})"
    r"(?:\s+(?P<week>next week|this week))?",
    re.ASCII,
)
_YMD = re.compile(r"(?P<y>\d{4})([-/.])(?P<m>\d{1,2})\2(?P<d>\d{1,2})", re.ASCII)
_ISO_T = re.compile(r"(\d{4}-\d{1,2}-\d{1,2})t(\d)", re.ASCII)
_NUMERIC = re.compile(r"(?P<a>\d{1,2})([/.])(?P<b>\d{1,2})(?:\2(?P<y>\d{2}|\d{4}))?", re.ASCII)
_MONTH_WORD = re.compile(r"\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)", re.ASCII)
_WEEKDAY_WORD = re.compile(rf"\b(?P<wd>{'|'.join(_WEEKDAY_WORDS)})\b", re.ASCII)
_DIGITS = re.compile(r"\d+", re.ASCII)


@dataclass(frozen=True)
class When:
    """A parsed due time: the instant in UTC, whether it has already passed, and what was typed."""

    at: datetime
    in_past: bool
    text: str


def parse_when(text: str, tz: str, now: datetime) -> When:
    """Read natural-language `text` as a due time in zone `tz`, relative to the aware `now`."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime")
    now = now.astimezone(UTC)
    zone = _zone(tz)
    shown = text.strip()
    if not shown:
        raise _invalid("Tell me when.")
    if len(shown) > MAX_LENGTH:
        raise _invalid(f"That is too long for a date ({MAX_LENGTH} characters at most).")
    try:
        at = _resolve(_normalize(shown), now.astimezone(zone), shown).astimezone(UTC)
    except OverflowError as exc:  # the arithmetic ran off the end of the calendar
        raise _invalid(f'"{shown}" is too far away.') from exc
    return When(at=at, in_past=at < now, text=text)


def _invalid(problem: str, example: str = _EXAMPLE) -> InvalidInput:
    return InvalidInput(field=_FIELD, problem=problem, example=example)


def _unreadable(shown: str) -> InvalidInput:
    return _invalid(f'I couldn\'t read "{shown}" as a date or time.')


def _zone(tz: str) -> ZoneInfo:
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        # OSError: a key like "America" names a directory of the tz database, not a zone.
        problem = f'"{tz[:64]}" is not a time zone I know.'
        raise _invalid(problem, example='"America/New_York" or "Europe/Berlin"') from exc


def _normalize(text: str) -> str:
    phrase = " ".join(text.lower().replace(",", " ").split()).rstrip(".!")
    phrase = _ISO_T.sub(r"\1 \2", phrase)
    phrase = _FILLER.sub("", phrase, count=1)
    return _ALIASES.get(phrase, phrase)


def _wall(day: date, at: time, zone: ZoneInfo) -> datetime:
    """The wall-clock time `at` on `day` in `zone`, fold=0 (see the module docstring on DST)."""
    return datetime.combine(day, at.replace(tzinfo=None, fold=0), tzinfo=zone)


def _resolve(phrase: str, local_now: datetime, shown: str) -> datetime:
    """Turn a normalised phrase into an aware datetime; `local_now` is in the rep's zone."""
    zone = local_now.tzinfo
    if not isinstance(zone, ZoneInfo):
        raise TypeError("local_now must carry a ZoneInfo")
    today = local_now.date()
    if phrase == "now":
        return local_now
    if (relative := _relative(phrase, local_now, zone, shown)) is not None:
        return relative
    if phrase in ("end of week", "end of next week"):
        friday = today + timedelta(days=4 - today.weekday())
        if phrase == "end of next week":
            return _wall(friday + timedelta(weeks=1), END_OF_DAY, zone)
        at = _wall(friday, END_OF_DAY, zone)
        return at if at >= local_now else _wall(friday + timedelta(weeks=1), END_OF_DAY, zone)
    rest, at_time = _split_time(phrase)
    rest = _FILLER.sub("", rest, count=1)
    if not rest:
        if at_time is None:
            raise _unreadable(shown)
        at = _wall(today, at_time, zone)
        return at if at >= local_now else _wall(today + timedelta(days=1), at_time, zone)
    day, default = _day(rest, today, shown)
    return _wall(day, at_time or default, zone)


def _relative(phrase: str, local_now: datetime, zone: ZoneInfo, shown: str) -> datetime | None:
    """ "in 3 days", "in 3 days at 2pm", "in 2 hours", "2 weeks ago", "1 hour from now"."""
    if match := _IN_RELATIVE.fullmatch(phrase):
        sign = 1
    elif match := _RELATIVE_AGO.fullmatch(phrase):
        sign = -1 if match["dir"] == "ago" else 1
    else:
        return None
    number = match["n"]
    amount = sign * (_NUMBER_WORDS[number] if number in _NUMBER_WORDS else int(number))
    unit = _UNITS[match["unit"]]
    at_time = None
    if rest := match.groupdict().get("rest"):
        remainder, at_time = _split_time(rest)
        if remainder or at_time is None or unit in ("minutes", "hours"):
            raise _unreadable(shown)
    if unit in ("minutes", "hours"):
        # Elapsed time: count in UTC so that "in 2 hours" is 120 minutes even across DST.
        return local_now.astimezone(UTC) + timedelta(**{unit: amount})
    try:
        day = (local_now + _calendar_step(unit, amount)).date()
    except ValueError as exc:  # relativedelta: "year ... is out of range"
        raise _invalid(f'"{shown}" is too far away.') from exc
    return _wall(day, at_time or local_now.time(), zone)


def _calendar_step(unit: str, amount: int) -> relativedelta:
    if unit == "days":
        return relativedelta(days=amount)
    if unit == "weeks":
        return relativedelta(weeks=amount)
    if unit == "months":
        return relativedelta(months=amount)
    return relativedelta(years=amount)


def _split_time(phrase: str) -> tuple[str, time | None]:
    """Split off a time of day at the end or the start of `phrase`; return (rest, time)."""
    if match := _TIME_LAST.fullmatch(phrase):
        token = phrase[match.end("rest") :].strip()
    elif match := _TIME_FIRST.fullmatch(phrase):
        token = phrase[: match.start("rest")].strip()
    else:
        return phrase, None
    return match["rest"], _time_of_day(match, token)


def _time_of_day(match: re.Match[str], token: str) -> time:
    if word := match["word"]:
        return time(12) if word in ("noon", "midday") else END_OF_DAY
    not_a_time = _invalid(f'"{token}" is not a time of day.', example=_TIME_EXAMPLE)
    if bare := match["bare"]:
        hour = int(bare)
        if 1 <= hour <= 12:
            raise _invalid(
                f'Is "{token}" {hour}am or {hour}pm?', example=f'"{hour}am" or "{hour}pm"'
            )
        if hour > 23:
            raise not_a_time
        return time(hour)
    if match["h12"] is not None:
        hour, minute, second = int(match["h12"]), int(match["m12"] or 0), 0
        if not 1 <= hour <= 12 or minute > 59:
            raise not_a_time
        hour = hour % 12 + (12 if match["ap"] == "p" else 0)
    else:
        hour, minute, second = int(match["h24"]), int(match["m24"]), int(match["s24"] or 0)
        if hour > 23 or minute > 59 or second > 59:
            raise not_a_time
    return time(hour, minute, second)


def _day(rest: str, today: date, shown: str) -> tuple[date, time]:
    """Read the day part of a phrase; return the day and the time to use if none was given."""
    if rest == "tonight":
        return today, TONIGHT
    if rest in _DAY_WORDS:
        return today + timedelta(days=_DAY_WORDS[rest]), DEFAULT_TIME
    if rest == "next week":
        return _monday(today) + timedelta(weeks=1), DEFAULT_TIME
    if match := _WEEKDAY.fullmatch(rest):
        return _weekday(today, _WEEKDAY_WORDS[match["wd"]], match["mod"], match["week"]), (
            DEFAULT_TIME
        )
    if match := _YMD.fullmatch(rest):
        return _real_date(int(match["y"]), int(match["m"]), int(match["d"]), shown), DEFAULT_TIME
    if match := _NUMERIC.fullmatch(rest):
        return _numeric(match, today, shown), DEFAULT_TIME
    if _MONTH_WORD.search(rest):
        return _month_day(rest, today, shown), DEFAULT_TIME
    raise _invalid(f'I couldn\'t read "{shown}" as a date or time.')


def _monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def _weekday(today: date, weekday: int, mod: str | None, week: str | None) -> date:
    if week is not None:
        if mod is not None:
            raise _invalid(f'"{mod} ... {week}" says the week twice.')
        monday = _monday(today) + timedelta(weeks=1 if week == "next week" else 0)
        return monday + timedelta(days=weekday)
    if mod in ("this", "this coming"):
        return today + timedelta(days=(weekday - today.weekday()) % 7)
    if mod == "last":
        return today - timedelta(days=(today.weekday() - weekday - 1) % 7 + 1)
    return today + timedelta(days=(weekday - today.weekday() - 1) % 7 + 1)


def _real_date(year: int, month: int, day: int, shown: str) -> date:
    try:
        return date(year, month, day)
    except ValueError as exc:
        raise _invalid(f'"{shown}" is not a real date.') from exc


def _next_occurrence(month: int, day: int, today: date, shown: str) -> date:
    """The first `month`/`day` on or after `today` (looking ahead far enough for 29 February)."""
    for year in range(today.year, today.year + 9):
        try:
            candidate = date(year, month, day)
        except ValueError:
            continue
        if candidate >= today:
            return candidate
    raise _invalid(f'"{shown}" is not a real date.')


def _numeric(match: re.Match[str], today: date, shown: str) -> date:
    """ "13/12", "12/13", "3/3", "3/12/2026": resolve only when the reading is unambiguous."""
    first, second = int(match["a"]), int(match["b"])
    year = None if match["y"] is None else int(match["y"])
    if year is not None and year < 100:
        year += 2000
    if first <= 12 and second <= 12 and first != second:
        day_first = (
            _next_occurrence(second, first, today, shown)
            if year is None
            else _real_date(year, second, first, shown)
        )
        as_typed = match.group(0)
        raise _invalid(
            f'Is "{as_typed}" {first} {_MONTHS[second - 1]} or {second} {_MONTHS[first - 1]}? '
            "Write the month as a word.",
            example=f'"{_MONTHS[second - 1][:3].lower()} {first}", '
            f'"{_MONTHS[first - 1][:3].lower()} {second}" or "{day_first.isoformat()}"',
        )
    day, month = (second, first) if second > 12 else (first, second)
    if year is None:
        return _next_occurrence(month, day, today, shown)
    return _real_date(year, month, day, shown)


@functools.lru_cache(maxsize=8)
def _month_day_parser(today: date) -> DateDataParser:
    """A dateparser configured for month-name dates ("dec 3", "3rd of december 2027")."""
    return DateDataParser(
        languages=["en"],
        settings={
            # Only the calendar date is taken from dateparser, so it works in UTC: its own zone
            # handling gets some IANA zones wrong (e.g. Etc/GMT+5, Australia/ACT); zoneinfo
            # does the zone work. A naive base is what dateparser expects for RELATIVE_BASE.
            "TIMEZONE": "UTC",
            "TO_TIMEZONE": "UTC",
            "RETURN_AS_TIMEZONE_AWARE": True,
            "RELATIVE_BASE": datetime.combine(today, time()),
            "PREFER_DATES_FROM": "current_period",
            # Relative phrases are ours (dateparser does them in naive wall-clock time);
            # timestamps and space-less digit runs would turn garbage into dates.
            "PARSERS": ["absolute-time"],
            "REQUIRE_PARTS": ["day", "month"],
        },
    )


def _month_day(rest: str, today: date, shown: str) -> date:
    """A date with the month as a word; without a year, the next occurrence."""
    try:
        parsed = _month_day_parser(today).get_date_data(rest).date_obj
    except (OverflowError, ValueError) as exc:
        raise _invalid(f'"{shown}" is too far away.') from exc
    if parsed is None or parsed.time() != time():
        # A time or zone dateparser found that we did not (e.g. "dec 3 +0200") would shift the
        # date; refuse rather than guess.
        raise _invalid(f'I couldn\'t read "{shown}" as a date or time.')
    year_given = len(_DIGITS.findall(rest)) >= 2
    day = parsed.date() if year_given else _next_occurrence(parsed.month, parsed.day, today, shown)
    if (named := _WEEKDAY_WORD.search(rest)) and day.weekday() != _WEEKDAY_WORDS[named["wd"]]:
        raise _invalid(
            f"{_MONTHS[day.month - 1]} {day.day} {day.year} is a {_WEEKDAYS[day.weekday()]}.",
            example=f'"{_MONTHS[day.month - 1][:3].lower()} {day.day}"',
        )
    return day
