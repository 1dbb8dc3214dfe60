import unicodedata
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crmbot.domain import InvalidInput, RecordKind
from crmbot.parsing import (
    MAX_REF_NUMBER,
    REF_RE,
    Ref,
    clean_text,
    email_domain,
    escape_slack,
    find_refs,
    fold,
    format_money,
    looks_like_money,
    parse_email,
    parse_money,
    parse_phone,
    parse_ref,
    unescape_slack,
)

# ---------------------------------------------------------------------------
# References


def test_a_ref_prints_as_prefix_hyphen_number() -> None:
    assert str(Ref(RecordKind.DEAL, 21)) == "D-21"
    assert str(Ref(RecordKind.FOLLOW_UP, 5)) == "T-5"


@pytest.mark.parametrize("text", ["D-21", "d-21", "D21", "d21", "  D-21 ", "\tD21\n", "D\u201321"])
def test_refs_are_read_with_or_without_hyphen_in_any_case(text: str) -> None:
    assert parse_ref(text) == Ref(RecordKind.DEAL, 21)


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("L-12", RecordKind.LEAD),
        ("C-7", RecordKind.CONTACT),
        ("A-3", RecordKind.ACCOUNT),
        ("D-21", RecordKind.DEAL),
        ("T-5", RecordKind.FOLLOW_UP),
    ],
)
def test_every_prefix_maps_to_its_record_kind(text: str, kind: RecordKind) -> None:
    ref = parse_ref(text)
    assert ref is not None
    assert ref.kind is kind


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Acme",
        "d 21",
        "D--21",
        "X-21",
        "D-",
        "D-0",
        "D-2147483648",
        "D-99999999999999999999",
        "D-21a",
        "Deal 21",
        "D-٢١",
    ],
)
def test_text_that_is_not_a_ref_is_left_for_name_matching(text: str) -> None:
    assert parse_ref(text) is None


def test_the_largest_ref_number_is_accepted() -> None:
    assert parse_ref(f"D-{MAX_REF_NUMBER}") == Ref(RecordKind.DEAL, MAX_REF_NUMBER)


def test_refs_are_found_inside_text_once_each_in_order() -> None:
    text = "Moved D-21 after talking to c7 (see D21 and l-12); ignore XD-4, D-0 and A-1b."
    assert find_refs(text) == [
        Ref(RecordKind.DEAL, 21),
        Ref(RecordKind.CONTACT, 7),
        Ref(RecordKind.LEAD, 12),
    ]


def test_ref_pattern_is_word_bounded() -> None:
    assert [m[0] for m in REF_RE.finditer("AD-3 T-5, (A-9)")] == ["T-5", "A-9"]


kinds = st.sampled_from(list(RecordKind))
numbers = st.integers(min_value=1, max_value=MAX_REF_NUMBER)


@given(kinds, numbers)
def test_a_printed_ref_parses_back_to_itself_in_every_spelling(
    kind: RecordKind, number: int
) -> None:
    ref = Ref(kind, number)
    for spelling in (str(ref), str(ref).lower(), str(ref).replace("-", ""), f" {ref} "):
        assert parse_ref(spelling) == ref
    assert find_refs(f"about {ref}.") == [ref]


@given(st.text())
def test_parse_ref_never_raises(text: str) -> None:
    result = parse_ref(text)
    assert result is None or isinstance(result, Ref)
    assert all(isinstance(ref, Ref) for ref in find_refs(text))


# ---------------------------------------------------------------------------
# Money


@pytest.mark.parametrize(
    ("text", "amount", "currency"),
    [
        ("50k", "50000", "USD"),
        ("50K", "50000", "USD"),
        ("$1.2M", "1200000", "USD"),
        ("1.5m", "1500000", "USD"),
        ("$1.250M", "1250000", "USD"),
        ("3mm", "3000000", "USD"),
        ("2.5bn", "2500000000", "USD"),
        ("2.5b", "2500000000", "USD"),
        ("2.5 BN", "2500000000", "USD"),
        ("€3,000", "3000", "EUR"),
        ("€3,000.50", "3000.50", "EUR"),
        ("1.234,56 €", "1234.56", "EUR"),
        ("3.000 €", "3000", "EUR"),
        ("1.000.000 €", "1000000", "EUR"),
        ("12,5 €", "12.50", "EUR"),
        ("£250", "250", "GBP"),
        ("GBP 250", "250", "GBP"),
        ("250 gbp", "250", "GBP"),
        ("250GBP", "250", "GBP"),
        ("USD 1,000,000", "1000000", "USD"),
        ("¥5000", "5000", "JPY"),
        ("₹1,00,000", "100000", "INR"),
        ("CHF 1'000", "1000", "CHF"),
        ("CHF 1\u2019000.50", "1000.50", "CHF"),
        ("1 000 €", "1000", "EUR"),
        ("1\u202f000 €", "1000", "EUR"),
        ("1\u00a0234,56 €", "1234.56", "EUR"),
        ("sek 12 000", "12000", "SEK"),
        ("50k €", "50000", "EUR"),
        ("$ 50", "50", "USD"),
        ("50 USD", "50", "USD"),
        ("$50 USD", "50", "USD"),
        ("C$75", "75", "CAD"),
        ("0", "0", "USD"),
        ("0.125k", "125", "USD"),
        ("1,234.5678k", "1234567.80", "USD"),
        ("0.5", "0.50", "USD"),
        (".5", "0.50", "USD"),
        ("10000000000000", "10000000000000", "USD"),
    ],
)
def test_amounts_are_read_in_common_notations(text: str, amount: str, currency: str) -> None:
    assert parse_money(text) == (Decimal(amount), currency)


def test_amounts_are_quantized_to_cents() -> None:
    amount, _ = parse_money("50k")
    assert amount.as_tuple().exponent == -2
    assert str(amount) == "50000.00"


def test_the_default_currency_applies_when_none_is_written() -> None:
    assert parse_money("1,500", default_currency="eur") == (Decimal(1500), "EUR")
    assert parse_money("$1,500", default_currency="EUR") == (Decimal(1500), "USD")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("-50", "negative"),
        ("\u221250", "negative"),
        ("-$50", "negative"),
        ("$-50", "negative"),
        ("10000000000000.01", "too large"),
        ("20tn", "couldn't read"),
        ("11000bn", "too large"),
        ("1.2345", "2 decimal places"),
        ("0.125", "2 decimal places"),
        ("XYZ 50", "currency"),
        ("$50 €", "two currencies"),
        ("1,2,3", "digit groups"),
        ("1,0000,000", "digit groups"),
        ("1 000'000", "grouping styles"),
        ("1,000.000,5", "decimal separator"),
        ("fifty", "couldn't read"),
        ("50k!", "couldn't read"),
        ("2026-12-01", "couldn't read"),
        ("D-21", "couldn't read"),
        ("1e6", "couldn't read"),
        ("9" * 200, "too long"),
    ],
)
def test_unreadable_amounts_are_rejected_with_an_example(text: str, problem: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_money(text)
    assert caught.value.field == "amount"
    assert problem in caught.value.problem
    assert caught.value.example


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [
        ("1200000", "USD", "$1,200,000"),
        ("3000.5", "EUR", "€3,000.50"),
        ("3000.50", "eur", "€3,000.50"),
        ("1000", "CHF", "CHF 1,000"),
        ("250", "GBP", "£250"),
        ("5000", "JPY", "¥5,000"),
        ("99", "INR", "₹99"),
        ("0", "USD", "$0"),
        ("0.005", "USD", "$0.01"),
        ("-12.5", "CAD", "-CAD 12.50"),
    ],
)
def test_amounts_are_shown_with_symbol_or_code_and_no_empty_cents(
    amount: str, currency: str, shown: str
) -> None:
    assert format_money(Decimal(amount), currency) == shown


@pytest.mark.parametrize("token", ["50k", "$1.2M", "€3,000", "1000", "0", "1.234,56€", "2.5bn"])
def test_money_tokens_are_recognised(token: str) -> None:
    assert looks_like_money(token)


@pytest.mark.parametrize(
    "token",
    [
        "D-21",
        "d21",
        "proposal",
        "2026-12-01",
        "+1 555 123 4567",
        "+15551234567",
        "555 123 456",
        "12345678901",
        "",
        "-50",
        "10:30",
    ],
)
def test_refs_dates_phones_and_words_do_not_look_like_money(token: str) -> None:
    assert not looks_like_money(token)


money_alphabet = st.text(
    alphabet="0123456789.,' \u00a0kKmMbBnN$€£¥₹-\u2212USDEURchfgbpxyz", max_size=20
)


@given(st.one_of(st.text(), money_alphabet))
def test_parse_money_returns_cents_and_a_code_or_raises_invalid_input(text: str) -> None:
    try:
        amount, currency = parse_money(text)
    except InvalidInput as error:
        rejected_field = error.field
    else:
        rejected_field = None
    if rejected_field is not None:
        assert rejected_field == "amount"
        return
    assert isinstance(amount, Decimal)
    assert amount.as_tuple().exponent == -2
    assert Decimal(0) <= amount <= Decimal(10**13)
    assert len(currency) == 3
    assert currency.isascii()
    assert currency.isupper()


@given(st.one_of(st.text(), money_alphabet))
def test_looks_like_money_never_raises(text: str) -> None:
    assert looks_like_money(text) in (True, False)


amounts = st.decimals(min_value=0, max_value=10**12, places=2)


def _european(amount: Decimal) -> str:
    return f"{amount:,.2f}".translate(str.maketrans(",.", ".,")) + " €"


@given(amounts)
def test_formatted_amounts_parse_back_to_the_same_amount(amount: Decimal) -> None:
    assert parse_money(format_money(amount, "USD")) == (amount, "USD")
    assert parse_money(format_money(amount, "EUR")) == (amount, "EUR")
    assert parse_money(format_money(amount, "CHF")) == (amount, "CHF")
    assert parse_money(f"${amount:,.2f}") == (amount, "USD")
    assert parse_money(_european(amount)) == (amount, "EUR")
    assert parse_money(_european(amount).replace(",00 €", " €")) == (amount, "EUR")


# ---------------------------------------------------------------------------
# Search keys


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("Zoë  Müller", "zoe muller"),
        ("ÅNGSTRÖM", "angstrom"),
        ("  José\tGarcía\n", "jose garcia"),
        ("Straße", "strasse"),
        ("\uff26\uff55\uff4c\uff4c\uff57\uff49\uff44\uff54\uff48", "fullwidth"),
        ("Zoe\u0308", "zoe"),
        ("ΆΛΦΑ", "αλφα"),
        ("Йошкар-Ола", "йошкар-ола"),
        ("Ёлка", "ёлка"),
        ("がっこう", "がっこう"),
        ("北京 公司", "北京 公司"),
        ("شركة", "شركة"),
        ("हिन्दी", "हिन्दी"),
    ],
)
def test_fold_drops_latin_accents_case_and_extra_space_but_keeps_other_scripts(
    text: str, key: str
) -> None:
    assert fold(text) == key


@given(st.text())
def test_fold_is_idempotent_for_any_text(text: str) -> None:
    key = fold(text)
    assert fold(key) == key
    assert key == key.strip()
    assert "  " not in key


@given(st.text(alphabet=st.characters(max_codepoint=127)))
def test_fold_of_ascii_takes_the_quick_path_to_the_same_key(text: str) -> None:
    from crmbot.parsing import _fold_once

    slow = _fold_once(text)
    assert fold(text) == slow == _fold_once(slow)


# ---------------------------------------------------------------------------
# Free text


def test_clean_text_strips_and_removes_disguising_characters() -> None:
    dirty = " \ufeffAcme\u200b Corp\u202e\u2066 \x00\x07"
    assert clean_text(dirty, field="name", max_len=50) == "Acme Corp"


def test_single_line_text_turns_line_breaks_and_tabs_into_one_space() -> None:
    assert clean_text("Acme\r\n\n  Corp\tLtd", field="name", max_len=50) == "Acme Corp Ltd"


def test_multiline_text_keeps_newlines_and_tabs() -> None:
    cleaned = clean_text(
        " line one\r\n\tline two\x0b\x1b ", field="notes", max_len=50, multiline=True
    )
    assert cleaned == "line one\n\tline two"


def test_clean_text_keeps_emoji_rtl_letters_and_combining_marks() -> None:
    text = (
        "\U0001f468\u200d\U0001f469\u200d\U0001f467 \u05e9\u05dc\u05d5\u05dd "
        "\u0645\u0631\u062d\u0628\u0627 Zoe\u0308 \u0939\u093f\u0928\u094d\u0926\u0940 "
        "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"
    )
    assert clean_text(text, field="name", max_len=100) == text


def test_a_required_field_left_empty_is_rejected() -> None:
    with pytest.raises(InvalidInput) as caught:
        clean_text(
            " \u200b\n ", field="deal_name", max_len=50, required=True, example="Acme renewal"
        )
    assert caught.value.field == "deal_name"
    assert caught.value.problem == "Deal name is required."
    assert caught.value.example == "Acme renewal"


def test_an_optional_field_may_be_empty() -> None:
    assert clean_text("  ", field="title", max_len=10) == ""


def test_length_is_measured_after_cleaning() -> None:
    assert clean_text("  abc\u200b\u200b  ", field="title", max_len=3) == "abc"
    with pytest.raises(InvalidInput) as caught:
        clean_text("abcd", field="title", max_len=3)
    assert caught.value.problem == "Title is too long (4 characters; at most 3)."


@given(st.text(), st.booleans())
def test_clean_text_never_returns_control_characters(text: str, multiline: bool) -> None:
    cleaned = clean_text(text, field="notes", max_len=10_000, multiline=multiline)
    allowed = {"\n", "\t"} if multiline else set()
    assert all(unicodedata.category(c) != "Cc" or c in allowed for c in cleaned)
    assert not any(c in "\u200b\u202a\u202b\u202c\u202d\u202e\u2066\u2069\ufeff" for c in cleaned)
    assert cleaned == cleaned.strip()


# ---------------------------------------------------------------------------
# Slack escaping


def test_slack_escapes_are_undone_exactly_once() -> None:
    assert unescape_slack("Tom &amp; Jerry &lt;3 &gt;") == "Tom & Jerry <3 >"
    assert unescape_slack("&amp;lt;") == "&lt;"
    assert unescape_slack("&quot; &nbsp;") == "&quot; &nbsp;"


def test_slack_escaping_covers_ampersand_and_angle_brackets() -> None:
    assert escape_slack("<@U123> & co") == "&lt;@U123&gt; &amp; co"


@given(st.text())
def test_unescaping_an_escaped_text_gives_it_back(text: str) -> None:
    assert unescape_slack(escape_slack(text)) == text


# ---------------------------------------------------------------------------
# Email and phone


@pytest.mark.parametrize(
    ("text", "email"),
    [
        ("bob@example.com", "bob@example.com"),
        ("  Bob.Smith+crm@Example.CO.uk ", "Bob.Smith+crm@example.co.uk"),
        ("<mailto:ann@acme.io|ann@acme.io>", "ann@acme.io"),
    ],
)
def test_emails_are_read_with_a_lowercased_domain(text: str, email: str) -> None:
    assert parse_email(text) == email


@pytest.mark.parametrize(
    "text", ["", "bob", "bob@", "@example.com", "bob@example", "bob@@example.com", "a b@x.com"]
)
def test_text_that_is_not_an_email_is_rejected(text: str) -> None:
    assert parse_email(text) is None


def test_email_domain_is_the_lowercased_part_after_the_at() -> None:
    assert email_domain("Bob@Example.COM") == "example.com"
    assert email_domain("no-at-sign") == ""


@pytest.mark.parametrize(
    ("text", "phone"),
    [
        ("+1 555 123 4567", "+1 555 123 4567"),
        ("  (555)  123-4567 ", "(555) 123-4567"),
        ("030.1234.5678", "030.1234.5678"),
        ("5551234", "5551234"),
        ("<tel:+15551234567|+1 555 123 4567>", "+1 555 123 4567"),
    ],
)
def test_phone_numbers_keep_their_human_form_with_spaces_collapsed(text: str, phone: str) -> None:
    assert parse_phone(text) == phone


@pytest.mark.parametrize(
    "text",
    ["", "123456", "1234567890123456", "call me", "555-1234 x12", "1+555 1234567", ")555( 1234"],
)
def test_text_that_is_not_a_phone_number_is_rejected(text: str) -> None:
    assert parse_phone(text) is None
