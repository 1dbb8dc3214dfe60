import contextlib
import time
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmbot.domain import InteractionKind
from crmbot.handlers.command_text import (
    ALIASES,
    MAX_TEXT,
    VERBS,
    Assign,
    Away,
    Close,
    Command,
    CommandError,
    Convert,
    Delete,
    Find,
    FollowUp,
    Help,
    History,
    Log,
    Mention,
    Move,
    NewDeal,
    NewLead,
    Pipeline,
    Report,
    Restore,
    Settings,
    Show,
    Tasks,
    Undo,
    help_text,
    parse_command,
)

WHEN_PHRASES = {
    "today",
    "tomorrow",
    "tomorrow 9am",
    "next friday",
    "in 3 days",
    "eod",
    "friday",
    "2026-12-01",
    "2026-12-01 14:00",
}


def is_when(phrase: str) -> bool:
    return phrase.casefold() in WHEN_PHRASES


def parse(text: str) -> Command:
    return parse_command(text, is_when=is_when)


def error_for(text: str) -> CommandError:
    with pytest.raises(CommandError) as caught:
        parse(text)
    return caught.value


# ---------------------------------------------------------------------------
# Tokens: Slack markup first, then unescaping once


def test_empty_text_asks_for_help() -> None:
    assert parse("") == Help(None)
    assert parse("   \n ") == Help(None)


def test_verbs_are_case_insensitive() -> None:
    assert parse("LEAD Ana") == parse("lead Ana")
    assert parse("Tasks") == Tasks(None, overdue=False)


def test_slack_escaping_is_undone_exactly_once() -> None:
    assert parse("lead Bob &amp;lt;b&amp;gt;") == NewLead("Bob &lt;b&gt;", None, None, None, None)


def test_quotes_straight_and_curly_group_words() -> None:
    parsed = parse('lead “Bob &amp; Sons” at "Acme  Corp"')
    assert parsed == NewLead("Bob & Sons", "Acme Corp", None, None, None)


def test_an_unclosed_quote_is_an_ordinary_character() -> None:
    assert parse('lead "Ana Lima') == NewLead('"Ana Lima', None, None, None, None)


def test_a_quote_inside_a_word_does_not_open_a_phrase() -> None:
    assert parse('lead O"Brien at "Acme"') == NewLead('O"Brien', "Acme", None, None, None)


def test_links_are_replaced_by_what_the_person_typed() -> None:
    parsed = parse("lead Ana at <https://acme.com|acme.com>")
    assert parsed == NewLead("Ana", "acme.com", None, None, None)
    assert parse("lead Ana at <https://acme.com>") == NewLead(
        "Ana", "https://acme.com", None, None, None
    )


def test_channel_and_special_mentions_become_plain_text() -> None:
    assert parse("lead Ana at <#C123|sales>") == NewLead("Ana", "#sales", None, None, None)
    assert parse("lead <!here>") == NewLead("@here", None, None, None, None)


def test_a_stray_angle_bracket_is_kept_as_text() -> None:
    assert parse("lead a < b") == NewLead("a < b", None, None, None, None)


def test_a_command_must_start_with_a_word() -> None:
    error = error_for('"lead" Ana')
    assert "Start with a command" in error.message


# ---------------------------------------------------------------------------
# lead


def test_a_lead_takes_name_company_email_phone_and_source() -> None:
    parsed = parse("lead Ana Lima at Acme Corp ana@acme.com +1 415 555 0100 source:referral")
    assert parsed == NewLead(
        name="Ana Lima",
        company="Acme Corp",
        email="ana@acme.com",
        phone="+1 415 555 0100",
        source="referral",
    )


def test_a_lead_email_auto_linked_by_slack_is_read_from_the_link() -> None:
    parsed = parse("lead Ana Lima at <mailto:ana@acme.com|ana@acme.com>")
    assert parsed == NewLead("Ana Lima", None, "ana@acme.com", None, None)


def test_a_lead_phone_auto_linked_by_slack_keeps_what_was_typed() -> None:
    parsed = parse("lead Ana <tel:+14155550100|+1 415 555 0100>")
    assert parsed == NewLead("Ana", None, None, "+1 415 555 0100", None)


def test_a_lead_name_keeps_its_accents() -> None:
    assert parse("lead Zoë Müller") == NewLead("Zoë Müller", None, None, None, None)


def test_a_bare_lead_opens_the_modal() -> None:
    assert parse("lead") == NewLead(None, None, None, None, None)


def test_a_lead_with_escaped_ampersands_is_stored_as_typed() -> None:
    parsed = parse("lead Bob &amp; Sons at AT&amp;T")
    assert parsed == NewLead("Bob & Sons", "AT&T", None, None, None)


def test_a_lead_named_like_a_slack_broadcast_is_just_text() -> None:
    assert parse("lead &lt;!channel&gt;") == NewLead("<!channel>", None, None, None, None)


def test_a_short_number_in_a_company_name_is_not_a_phone() -> None:
    parsed = parse("lead Ana at Studio 54 +44 20 7946 0958")
    assert parsed == NewLead("Ana", "Studio 54", None, "+44 20 7946 0958", None)


def test_a_quoted_source_may_have_spaces() -> None:
    parsed = parse('lead Ana source:"trade show"')
    assert parsed == NewLead("Ana", None, None, None, "trade show")


def test_a_lead_with_two_emails_is_refused() -> None:
    error = error_for("lead Ana a@acme.com b@acme.com")
    assert "two" in error.message
    assert "a@acme.com" in error.message


# ---------------------------------------------------------------------------
# log


def test_log_reads_kind_record_and_notes() -> None:
    parsed = parse("log call L-12 talked pricing, sending deck")
    assert parsed == Log(InteractionKind.CALL, "L-12", "talked pricing, sending deck")


@pytest.mark.parametrize("kind", ["call", "email", "meeting", "note"])
def test_each_kind_is_a_shortcut_for_log(kind: str) -> None:
    assert parse(f"{kind} L-12 left voicemail") == Log(
        InteractionKind(kind), "L-12", "left voicemail"
    )


def test_a_bare_log_opens_an_empty_modal() -> None:
    assert parse("log") == Log(None, None, "")


def test_log_accepts_a_quoted_name_as_the_record() -> None:
    parsed = parse('log meeting "Ana Lima" demo went well')
    assert parsed == Log(InteractionKind.MEETING, "Ana Lima", "demo went well")


def test_log_normalizes_a_typed_reference() -> None:
    assert parse("log note l12: renewal is likely") == Log(
        InteractionKind.NOTE, "L-12", "renewal is likely"
    )


def test_log_without_a_reference_or_quotes_is_all_notes() -> None:
    assert parse("log Ana liked the demo") == Log(None, None, "Ana liked the demo")


# ---------------------------------------------------------------------------
# deal


def test_a_deal_reads_name_amount_stage_and_record() -> None:
    parsed = parse("deal Acme renewal 50k proposal for C-7")
    assert parsed == NewDeal("Acme renewal", Decimal(50000), None, "Proposal", "C-7")


def test_a_deal_amount_with_a_symbol_sets_the_currency() -> None:
    parsed = parse("deal Big one €1.2M")
    assert parsed == NewDeal("Big one", Decimal(1_200_000), "EUR", None, None)


def test_a_bare_deal_opens_the_modal() -> None:
    assert parse("deal") == NewDeal(None, None, None, None, None)


def test_a_currency_code_may_stand_apart_from_the_number() -> None:
    parsed = parse("deal Route 66 EUR 20k")
    assert parsed == NewDeal("Route 66", Decimal(20000), "EUR", None, None)


def test_a_marked_amount_wins_over_a_year_in_the_name() -> None:
    parsed = parse("deal Acme 2024 renewal $30,000")
    assert parsed == NewDeal("Acme 2024 renewal", Decimal(30000), "USD", None, None)


def test_the_deal_stage_matches_a_prefix_of_the_workspace_stages() -> None:
    parsed = parse_command("deal Acme 5k disc", stage_names=["Discovery", "Demo", "Closed won"])
    assert parsed == NewDeal("Acme", Decimal(5000), None, "Discovery", None)


def test_the_first_word_of_a_deal_is_never_its_stage() -> None:
    assert parse("deal Proposal writing") == NewDeal("Proposal writing", None, None, None, None)


def test_the_record_of_a_deal_follows_the_last_for() -> None:
    parsed = parse("deal Tools for schools 10k for Acme Corp")
    assert parsed == NewDeal("Tools for schools", Decimal(10000), None, None, "Acme Corp")


# ---------------------------------------------------------------------------
# move, won, lost


def test_move_takes_a_reference_and_a_stage() -> None:
    assert parse("move D-21 negotiation") == Move("D-21", "Negotiation")


def test_move_takes_a_quoted_deal_and_a_shortened_stage_after_to() -> None:
    assert parse('move "Acme renewal" to prop') == Move("Acme renewal", "Proposal")


def test_move_finds_the_stage_at_the_end_of_an_unquoted_name() -> None:
    stages = ["Discovery", "Closed won", "Closed lost"]
    parsed = parse_command("move Back to school closed won", stage_names=stages)
    assert parsed == Move("Back to school", "Closed won")


def test_move_keeps_an_unknown_stage_as_typed_for_the_service_to_judge() -> None:
    assert parse("move Acme renewal to limbo") == Move("Acme renewal", "limbo")


def test_move_without_a_stage_says_which_deal_it_understood() -> None:
    error = error_for("move D-21")
    assert "stage" in error.message
    assert "D-21" in error.message
    assert "/crm move" in error.message


def test_won_takes_a_reference() -> None:
    assert parse("won D-3") == Close("D-3", won=True, reason=None)


def test_won_takes_all_remaining_words_as_the_deal() -> None:
    assert parse("won Acme renewal") == Close("Acme renewal", won=True, reason=None)


def test_lost_reads_the_reason_after_a_reference() -> None:
    assert parse("lost D-3 went with a competitor") == Close("D-3", False, "went with a competitor")


def test_lost_reads_the_reason_after_a_quoted_name() -> None:
    assert parse('lost "Acme renewal" budget') == Close("Acme renewal", False, "budget")


def test_lost_with_an_unquoted_name_leaves_the_reason_to_be_asked() -> None:
    assert parse("lost Acme renewal budget") == Close("Acme renewal budget", False, None)


def test_closing_without_a_deal_is_refused() -> None:
    assert "Which deal" in error_for("won").message


# ---------------------------------------------------------------------------
# assign, convert, show and friends


def test_assign_reads_a_slack_mention() -> None:
    parsed = parse("assign L-12 <@U024BE7LH|bob>")
    assert parsed == Assign("L-12", Mention("U024BE7LH", "bob"))


def test_assign_reads_a_plain_at_name() -> None:
    assert parse("assign L-12 @bob") == Assign("L-12", Mention(None, "bob"))


def test_assign_accepts_a_quoted_name_to_and_trailing_punctuation() -> None:
    parsed = parse('assign "Ana Lima" to <@U1>.')
    assert parsed == Assign("Ana Lima", Mention("U1", None))


def test_assign_without_a_person_asks_who() -> None:
    error = error_for("assign L-12")
    assert "Who" in error.message
    assert "L-12" in error.message
    assert "/crm assign L-12 @bob" in error.message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("show D-21", Show("D-21")),
        ("card d21", Show("D-21")),
        ('show "Ana Lima"', Show("Ana Lima")),
        ("show Ana Lima", Show("Ana Lima")),
        ("history D-21", History("D-21")),
        ("delete L-12", Delete("L-12")),
        ("restore L-12", Restore("L-12")),
        ("convert L-12", Convert("L-12")),
        ("convert", Convert(None)),
        ("undo", Undo()),
        ("settings", Settings()),
    ],
)
def test_record_verbs_take_one_reference_or_name(text: str, expected: Command) -> None:
    assert parse(text) == expected


def test_a_record_verb_refuses_a_second_record() -> None:
    error = error_for("delete D-21 D-22")
    assert "One record at a time" in error.message
    assert "D-22" in error.message


def test_a_record_verb_without_a_record_is_refused() -> None:
    assert "Which record" in error_for("show").message


# ---------------------------------------------------------------------------
# find


def test_find_separates_filters_owner_and_text() -> None:
    parsed = parse("find stage:proposal owner:<@U1|bob> acme")
    assert parsed == Find("acme", (("stage", "proposal"),), Mention("U1", "bob"))


@pytest.mark.parametrize("text", ["find owner:@bob", "find owner:bob", "find owner: @bob"])
def test_find_reads_plain_owner_names(text: str) -> None:
    assert parse(text) == Find("", (), Mention(None, "bob"))


def test_find_leaves_unknown_keys_in_the_text() -> None:
    parsed = parse('find Industry:"real estate" size: 50 foo:bar https://acme.com')
    assert parsed == Find(
        "foo:bar https://acme.com", (("industry", "real estate"), ("size", "50")), None
    )


def test_search_is_find() -> None:
    assert parse("search acme") == Find("acme", (), None)


# ---------------------------------------------------------------------------
# followup


def test_followup_reads_record_when_and_text() -> None:
    parsed = parse("followup L-12 tomorrow 9am send the proposal")
    assert parsed == FollowUp("L-12", "tomorrow 9am", "send the proposal")


def test_followup_takes_a_quoted_record() -> None:
    parsed = parse('followup "Ana Lima" next friday call back')
    assert parsed == FollowUp("Ana Lima", "next friday", "call back")


def test_followup_may_have_no_text() -> None:
    assert parse("followup L-12 in 3 days") == FollowUp("L-12", "in 3 days", "")


def test_followup_without_a_time_says_what_it_understood() -> None:
    error = error_for("followup L-12")
    assert "When" in error.message
    assert "L-12" in error.message
    assert "/crm followup" in error.message


def test_followup_reads_an_unquoted_name_up_to_the_time() -> None:
    assert parse("fu Ana Lima friday call") == FollowUp("Ana Lima", "friday", "call")


def test_a_time_like_word_that_starts_no_time_stays_in_the_record() -> None:
    parsed = parse("remind Ana in accounting tomorrow call")
    assert parsed == FollowUp("Ana in accounting", "tomorrow", "call")


def test_followup_may_start_with_the_time() -> None:
    assert parse("follow-up tomorrow call Ana") == FollowUp(None, "tomorrow", "call Ana")


def test_follow_up_may_be_typed_as_two_words() -> None:
    assert parse("follow up L-12 eod") == FollowUp("L-12", "eod", "")


def test_the_when_is_at_most_six_words() -> None:
    parsed = parse_command("followup L-12 a b c d e f g", is_when=lambda s: True)
    assert parsed == FollowUp("L-12", "a b c d e f", "g")


def test_a_when_check_that_raises_counts_as_not_a_time() -> None:
    def picky(phrase: str) -> bool:
        if phrase != "tomorrow":
            raise ValueError(phrase)
        return True

    assert parse_command("followup L-12 tomorrow x", is_when=picky) == FollowUp(
        "L-12", "tomorrow", "x"
    )


# ---------------------------------------------------------------------------
# tasks, pipeline, report, help


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tasks", Tasks(None, overdue=False)),
        ("tasks overdue", Tasks(None, overdue=True)),
        ("tasks <@U1|bob>", Tasks(Mention("U1", "bob"), overdue=False)),
        ("todo @bob overdue", Tasks(Mention(None, "bob"), overdue=True)),
        ("pipeline", Pipeline(None, team=False)),
        ("pipeline @bob", Pipeline(Mention(None, "bob"), team=False)),
        ("pipeline team", Pipeline(None, team=True)),
        ("report", Report("week", None)),
        ("report month", Report("month", None)),
        ("report quarterly <@U1|bob>", Report("quarter", Mention("U1", "bob"))),
        ("help", Help(None)),
        ("?", Help(None)),
        ("help deal", Help("deal")),
        ("help call", Help("log")),
        ("help fu", Help("followup")),
    ],
)
def test_list_verbs_read_their_options(text: str, expected: Command) -> None:
    assert parse(text) == expected


def test_an_unknown_option_is_named_with_the_usage() -> None:
    error = error_for("tasks yesterday")
    assert "“yesterday”" in error.message
    assert "tasks [@user] [overdue]" in error.message


def test_pipeline_is_for_one_person_or_the_team() -> None:
    assert "not both" in error_for("pipeline @bob team").message


def test_an_unknown_verb_suggests_the_closest_one() -> None:
    error = error_for("fnid acme")
    assert "Did you mean `/crm find`?" in error.message
    assert error.verb is None


def test_an_unknown_verb_far_from_any_lists_the_verbs() -> None:
    error = error_for("frobnicate")
    assert "Did you mean" not in error.message
    assert all(verb in error.message for verb in VERBS)


def test_help_for_an_unknown_verb_suggests_one() -> None:
    assert "`/crm report`" in error_for("help reprot").message


def test_text_over_the_limit_is_refused() -> None:
    error = error_for("find " + "a" * MAX_TEXT)
    assert "too long" in error.message


# ---------------------------------------------------------------------------
# Help texts


def test_every_verb_of_the_spec_has_help() -> None:
    assert set(VERBS) == {
        *("help", "lead", "log", "deal", "move", "won", "lost", "assign", "convert", "find"),
        *("show", "followup", "tasks", "pipeline", "report", "history", "undo", "delete"),
        *("restore", "settings"),
        "away",  # beyond the spec: reps mark themselves away from web-lead round-robin
    }
    assert set(ALIASES.values()) <= set(VERBS)


COMMAND_OF: dict[str, type] = {
    "away": Away,
    "help": Help,
    "lead": NewLead,
    "log": Log,
    "deal": NewDeal,
    "move": Move,
    "won": Close,
    "lost": Close,
    "assign": Assign,
    "convert": Convert,
    "find": Find,
    "show": Show,
    "followup": FollowUp,
    "tasks": Tasks,
    "pipeline": Pipeline,
    "report": Report,
    "history": History,
    "undo": Undo,
    "delete": Delete,
    "restore": Restore,
    "settings": Settings,
}


@pytest.mark.parametrize(
    ("verb", "example"), [(verb, ex) for verb, info in VERBS.items() for ex in info.examples]
)
def test_every_help_example_parses_as_its_verb(verb: str, example: str) -> None:
    parsed = parse_command(example, is_when=lambda s: True)
    assert type(parsed) is COMMAND_OF[verb]


def test_the_overview_lists_every_verb_without_slack_markup() -> None:
    text = help_text(None)
    assert all(f"`/crm {info.usage}`" in text for info in VERBS.values())
    assert "<" not in text
    assert "&" not in text


def test_help_for_one_verb_shows_usage_aliases_and_examples() -> None:
    text = help_text("followup", command="/sales")
    assert "`/sales followup RECORD WHEN [TEXT]`" in text
    assert "`/sales fu`" in text
    assert "`/sales followup L-12 tomorrow 9am send the proposal`" in text


def test_help_for_an_unknown_verb_falls_back_to_the_overview() -> None:
    assert help_text("nope").startswith("I don't know the command “nope”.")


# ---------------------------------------------------------------------------
# Robustness

FRAGMENTS = [
    *("<@", "<#", "<!", "<", ">", "|", "&lt;", "&gt;", "&amp;", "&amp;lt;", '"', "“", "”", "„"),
    *("<@U1|bob>", "<@U1>", "<mailto:a@b.co|a@b.co>", "<tel:+1 415|+1 415>", "<http://x|x>"),
    *(" ", " ", "\n", "\u200b", "\u00a0", "@", "@bob", ":", "source:", "owner:", "stage:"),
    *("L-12", "d21", "for", "to", "at", "50k", "€", "EUR", "1.2M", "$", "+1", "415", "555"),
    *("tomorrow", "in", "3", "days", "9am", "Zoë", "ß", "🎉", "\u0301", "-", "...", "'"),
]
VERB_WORDS = [*VERBS, *ALIASES, "follow", "xyz"]
texts = st.one_of(
    st.text(max_size=200),
    st.tuples(
        st.sampled_from(VERB_WORDS),
        st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=5), max_size=25),
    ).map(lambda parts: parts[0] + " " + "".join(parts[1])),
)


@settings(max_examples=400, deadline=None)
@given(text=texts, seed=st.integers(0, 3))
def test_parsing_never_raises_anything_but_command_error(text: str, seed: int) -> None:
    def maybe_when(phrase: str) -> bool:
        if seed == 3 and len(phrase) % 5 == 0:
            raise ValueError("bad date")
        return (len(phrase) + seed) % 3 == 0

    outcome: Command | CommandError
    try:
        outcome = parse_command(text, is_when=maybe_when, stage_names=["Proposal", "Won", "Ü"])
    except CommandError as error:
        outcome = error
    if isinstance(outcome, CommandError):
        assert outcome.message
    else:
        assert type(outcome) in COMMAND_OF.values()


@given(name=st.text(st.characters(exclude_characters='"“”„<>&@ \t\n\r'), min_size=1, max_size=30))
def test_a_typed_name_comes_back_exactly_once_unescaped(name: str) -> None:
    escaped = name.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    parsed = parse_command(f'lead "{escaped}"')
    assert isinstance(parsed, NewLead)
    assert parsed.name == (" ".join(name.split()) or None)


@pytest.mark.parametrize(
    "text",
    [
        "followup " + "in " * 1300,
        "deal " + "50k " * 990,
        "lead " + "+1 " * 1300,
        "find " + "owner:@" * 570,
        "lead " + "<@U1|" * 800,
        "log " + '"' * 3990,
        "assign " + "@" + "." * 3990,
        "lead " + "a@" * 1990,
    ],
)
def test_long_adversarial_text_is_parsed_quickly(text: str) -> None:
    started = time.perf_counter()
    with contextlib.suppress(CommandError):
        parse_command(text[:MAX_TEXT], is_when=lambda s: False)
    assert time.perf_counter() - started < 1.0


def test_notes_keep_trailing_emoji_and_punctuation_but_lose_a_leading_dash() -> None:
    assert parse("note L-12 - signed! 🎉") == Log(InteractionKind.NOTE, "L-12", "signed! 🎉")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("away until monday 9am", Away(None, "monday 9am")),
        ("away in 2 weeks", Away(None, "in 2 weeks")),
        ("away off", Away(None, None)),
        ("away Back", Away(None, None)),
        ("away <@U0BOB|bob> until friday", Away(Mention("U0BOB", "bob"), "friday")),
    ],
)
def test_away_reads_who_and_until_when(text: str, expected: Away) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize("text", ["away", "away until", "away @bob @carol friday"])
def test_away_without_a_time_or_with_two_people_says_so(text: str) -> None:
    with pytest.raises(CommandError):
        parse(text)
