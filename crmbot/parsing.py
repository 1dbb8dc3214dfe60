"""Pure parsing helpers: record references, money, search keys, text cleaning, Slack escaping."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Context, Decimal

from crmbot.domain import KIND_BY_PREFIX, InvalidInput, RecordKind

# ---------------------------------------------------------------------------
# Record references: L-12, C-7, A-3, D-21, T-5

MAX_REF_NUMBER = 2**31 - 1
_PREFIXES = "".join(KIND_BY_PREFIX)
_REF_CLASS = f"[{_PREFIXES}{_PREFIXES.lower()}]"
# Hyphen-minus plus the hyphens and en dash that smart-punctuation keyboards substitute.
_HYPHENS = "-\u2010\u2011\u2013"

REF_RE = re.compile(rf"\b({_REF_CLASS})[{_HYPHENS}]?([0-9]+)\b")
_WHOLE_REF_RE = re.compile(rf"\s*({_REF_CLASS})[{_HYPHENS}]?([0-9]{{1,10}})\s*")


@dataclass(frozen=True)
class Ref:
    """A short per-workspace record reference such as D-21."""

    kind: RecordKind
    number: int

    def __str__(self) -> str:
        return f"{self.kind.prefix}-{self.number}"


def _ref(prefix: str, digits: str) -> Ref | None:
    if len(digits) > 10:
        return None
    number = int(digits)
    if not 1 <= number <= MAX_REF_NUMBER:
        return None
    return Ref(KIND_BY_PREFIX[prefix.upper()], number)


def parse_ref(text: str) -> Ref | None:
    """Read the whole text as a reference (d-21, D21, D-21), or None: then it is a name."""
    match = _WHOLE_REF_RE.fullmatch(text)
    return _ref(match[1], match[2]) if match else None


def find_refs(text: str) -> list[Ref]:
    """Every valid reference mentioned in the text, first mention first, without repeats."""
    found: dict[Ref, None] = {}
    for match in REF_RE.finditer(text):
        ref = _ref(match[1], match[2])
        if ref is not None:
            found.setdefault(ref)
    return list(found)


# ---------------------------------------------------------------------------
# Money

MAX_AMOUNT = Decimal(10**13)
_CENT = Decimal("0.01")
_WIDE = Context(prec=100)  # quantize must not trip over the default 28-digit precision
_MONEY_EXAMPLE = "$50k, €3,000.50, 1.234,56 € or GBP 1.2M"

CURRENCY_CODES = frozenset(
    {
        *("USD", "EUR", "GBP", "JPY", "INR", "CHF", "CAD", "AUD", "NZD", "SEK", "NOK", "DKK"),
        *("PLN", "BRL", "MXN", "SGD", "HKD", "CNY", "ZAR", "CZK", "HUF", "RON", "BGN", "ISK"),
        *("TRY", "ILS", "AED", "SAR", "QAR", "KRW", "TWD", "THB", "MYR", "IDR", "PHP", "VND"),
        *("PKR", "ARS", "CLP", "COP", "PEN", "NGN", "KES", "EGP", "MAD", "UAH", "RUB"),
    }
)

# Symbols read on input; longest first so "US$" wins over "$".
_SYMBOLS: dict[str, str] = {
    "US$": "USD",
    "NZ$": "NZD",
    "HK$": "HKD",
    "C$": "CAD",
    "A$": "AUD",
    "S$": "SGD",
    "R$": "BRL",
    "$": "USD",
    "€": "EUR",
    "£": "GBP",
    "¥": "JPY",
    "￥": "JPY",
    "₹": "INR",
    "₩": "KRW",
}
# Symbols written on output; every other currency is shown as a code prefix ("CHF 1,000").
_DISPLAY_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "INR": "₹"}

_SYMBOL_ALT = "|".join(re.escape(s) for s in sorted(_SYMBOLS, key=len, reverse=True))
_PREFIX_CURRENCY_RE = re.compile(
    rf"(?:(?P<sym>{_SYMBOL_ALT})|(?P<code>[A-Za-z]{{3}})(?![A-Za-z])) ?"
)
_SUFFIX_CURRENCY_RE = re.compile(
    rf" ?(?:(?P<sym>{_SYMBOL_ALT})|(?<![A-Za-z])(?P<code>[A-Za-z]{{3}}))$"
)
_BODY_RE = re.compile(r"(?P<num>[0-9.,' ]*[0-9])(?: ?(?P<mult>[kK]|[mM][mMnN]?|[bB][nN]?))?")
_MULTIPLIERS = {"k": Decimal(10**3), "m": Decimal(10**6), "b": Decimal(10**9)}
_MINUS = "-\u2212"
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u02bc": "'"})


def _money_error(problem: str) -> InvalidInput:
    return InvalidInput("amount", problem, example=_MONEY_EXAMPLE)


def _currency(sym: str | None, code: str | None) -> str:
    if sym is not None:
        return _SYMBOLS[sym]
    assert code is not None
    if code.upper() not in CURRENCY_CODES:
        raise _money_error(f"I don't know the currency “{code}”.")
    return code.upper()


def _strip_minus(body: str) -> tuple[str, bool]:
    if body[:1] and body[0] in _MINUS:
        return body[1:].lstrip(), True
    return body, False


def _split_number(num: str, *, has_multiplier: bool) -> tuple[str, str | None, str]:
    """Return (integer part, grouping separator, fraction) following parse_money's rules."""
    others = {c for c in num if c in " '"}
    if len(others) > 1:
        raise _money_error("That amount mixes different digit grouping styles.")
    group: str | None = others.pop() if others else None
    decimal: str | None = None
    commas, dots = num.count(","), num.count(".")
    if commas and dots:
        decimal = "," if num.rfind(",") > num.rfind(".") else "."
        if num.count(decimal) != 1 or group is not None:
            raise _money_error("I couldn't tell the decimal separator in that amount.")
        group = "." if decimal == "," else ","
    elif commas or dots:
        sep = "," if commas else "."
        if num.count(sep) > 1:
            if group is not None:
                raise _money_error("That amount mixes different digit grouping styles.")
            group = sep
        else:
            whole, frac = num.split(sep)
            grouping = (
                group is None
                and len(frac) == 3
                and whole not in ("", "0")
                and not (sep == "." and has_multiplier)
            )
            if grouping:
                group = sep
            else:
                decimal = sep
    if decimal is None:
        return num, group, ""
    whole, frac = num.split(decimal)
    return whole, group, frac


_DIGITS_RE = re.compile(r"[0-9]+")


def _check_grouping(whole: str, group: str | None) -> str:
    if group is None or group not in whole:
        if whole and not _DIGITS_RE.fullmatch(whole):
            raise _money_error("I couldn't read that amount.")
        return whole
    g = re.escape(group)
    western = rf"[0-9]{{1,3}}(?:{g}[0-9]{{3}})+"
    indian = rf"[0-9]{{1,2}}(?:{g}[0-9]{{2}})*{g}[0-9]{{3}}"
    if not re.fullmatch(western, whole) and not re.fullmatch(indian, whole):
        raise _money_error("The digit groups in that amount look wrong.")
    return whole.replace(group, "")


def parse_money(text: str, default_currency: str = "USD") -> tuple[Decimal, str]:
    """Read an amount and currency ("$1.2M", "1.234,56 €", "CHF 1'000", "50k"), to the cent.

    Currency: a leading or trailing symbol ($ € £ ¥ ₹ ...) or ISO code, else
    `default_currency`. Magnitude suffixes: k, m/mm/mn, b/bn (case-insensitive).
    Separators: spaces and apostrophes only ever group digits. If both ',' and '.'
    appear, the last one is the decimal point and the other groups digits. If only
    one of them appears and more than once, it groups digits; if once and followed by
    exactly 3 digits it groups digits ("3.000 €" and "€3,000" are 3000), except after
    a lone 0 ("0.125"), next to a space/apostrophe grouping, or when '.' comes before
    a magnitude suffix ("$1.250M"); otherwise it is the decimal point. Groups must be
    of three digits (or Indian 2-digit groups ending in three). More than two decimal
    places are rejected unless a suffix was used, when the result is rounded half up.
    Negative amounts and amounts above 10**13 are rejected. Never goes through float.
    """
    flat = " ".join(text.translate(_APOSTROPHES).split())
    if not flat:
        raise _money_error("The amount is empty.")
    if len(flat) > 60:
        raise _money_error("That is too long to be an amount.")
    body, negative = _strip_minus(flat)
    currencies: list[str] = []
    prefix = _PREFIX_CURRENCY_RE.match(body)
    if prefix:
        currencies.append(_currency(prefix["sym"], prefix["code"]))
        body = body[prefix.end() :]
    body, minus = _strip_minus(body)
    negative = negative or minus
    suffix = _SUFFIX_CURRENCY_RE.search(body)
    if suffix and suffix.start() > 0:
        currencies.append(_currency(suffix["sym"], suffix["code"]))
        body = body[: suffix.start()]
    if len(set(currencies)) > 1:
        raise _money_error(f"That amount names two currencies ({' and '.join(currencies)}).")
    currency = currencies[0] if currencies else default_currency.upper()

    match = _BODY_RE.fullmatch(body)
    if match is None:
        raise _money_error(f"I couldn't read “{flat}” as an amount.")
    mult = match["mult"]
    whole, group, frac = _split_number(match["num"], has_multiplier=mult is not None)
    digits = _check_grouping(whole, group)
    if not _DIGITS_RE.fullmatch(frac or "0") or not (digits or frac):
        raise _money_error(f"I couldn't read “{flat}” as an amount.")
    value = Decimal(f"{digits or '0'}.{frac or '0'}")
    if mult is not None:
        value = value * _MULTIPLIERS[mult[0].lower()]
    if negative and value:
        raise _money_error("The amount can't be negative.")
    value = abs(value)
    if value > MAX_AMOUNT:
        raise _money_error(
            f"That amount is too large (at most {format_money(MAX_AMOUNT, currency)})."
        )
    cents = value.quantize(_CENT, rounding=ROUND_HALF_UP, context=_WIDE)
    if cents != value and mult is None:
        raise _money_error("An amount can have at most 2 decimal places.")
    return cents, currency


def format_money(amount: Decimal, currency: str) -> str:
    """Show an amount with its symbol or code and comma grouping: "$1,200,000", "CHF 1,000"."""
    code = currency.upper()
    cents = amount.quantize(_CENT, rounding=ROUND_HALF_UP, context=_WIDE)
    sign = "-" if cents < 0 else ""
    body = f"{abs(cents):,.2f}".removesuffix(".00")
    symbol = _DISPLAY_SYMBOLS.get(code)
    return f"{sign}{symbol}{body}" if symbol else f"{sign}{code} {body}"


_BARE_INT_RE = re.compile(r"[0-9]+")
_CURRENCY_HINT_RE = re.compile(rf"{_SYMBOL_ALT}|[A-Za-z]")


def looks_like_money(token: str) -> bool:
    """Whether a command token reads as an amount (conservative: phones, dates and refs are not)."""
    token = token.strip()
    if not token or token[0] == "+" or parse_ref(token) is not None:
        return False
    if _BARE_INT_RE.fullmatch(token):
        return len(token) <= 10
    if any(c.isspace() for c in token) and not _CURRENCY_HINT_RE.search(token):
        return False  # "555 123 456" is more likely a phone number than an amount
    try:
        parse_money(token)
    except InvalidInput:
        return False
    return True


# ---------------------------------------------------------------------------
# Search keys


def _strips_marks(base: str) -> bool:
    if base.isascii():
        return True
    return unicodedata.name(base, "").startswith(("LATIN", "GREEK"))


def _fold_once(text: str) -> str:
    out: list[str] = []
    after_latin = False
    for ch in unicodedata.normalize("NFKC", text):
        if unicodedata.category(ch).startswith("M"):
            if not after_latin:
                out.append(ch)
            continue
        parts = unicodedata.normalize("NFKD", ch)
        after_latin = _strips_marks(parts[0])
        if after_latin:
            out.extend(c for c in parts if not unicodedata.category(c).startswith("M"))
        else:
            out.append(ch)
    return " ".join("".join(out).casefold().split())


def fold(text: str) -> str:
    """The search/match key: accents off Latin and Greek letters, casefolded, spaces collapsed."""
    # Accents are dropped only after Latin/Greek letters: in Cyrillic, Kana or Devanagari
    # the marks change the letter (й is not и, が is not か).
    if text.isascii():  # NFKC changes no ASCII and casefold is lower: the same key, quicker
        return " ".join(text.lower().split())
    key = _fold_once(text)
    for _ in range(3):  # casefold can un-normalise; repeat until stable
        again = _fold_once(key)
        if again == key:
            break
        key = again
    return key


# ---------------------------------------------------------------------------
# Free text

# Invisible characters that can disguise text ("Pay\u200bPal", a right-to-left override that
# shows "moc.evil" as "live.com"): zero-width space, soft hyphen, word joiner and invisible
# operators, byte-order mark, the bidi marks, embeddings, overrides and isolates, the Mongolian
# vowel separator, deprecated format controls and interlinear annotations. ZWNJ/ZWJ
# (U+200C/U+200D) and variation selectors are kept inside text: emoji sequences and
# Persian/Indic spelling need them. Right-to-left letters are kept: Unicode lays them out.
_INVISIBLE = dict.fromkeys(
    [
        *(0x00AD, 0x061C, 0x180E, 0x200B, 0x200E, 0x200F, 0xFEFF),
        *range(0x202A, 0x202F),
        *range(0x2060, 0x2065),
        *range(0x2066, 0x2070),
        *range(0xFFF9, 0xFFFC),
    ]
)
# Tag characters are invisible ASCII look-alikes (they can smuggle hidden text); the only
# legitimate use is a subdivision flag such as Scotland's, which is kept whole.
_TAGS_RE = re.compile("(\U0001f3f4[\U000e0020-\U000e007e]+\U000e007f)|[\U000e0000-\U000e007f]")
_EDGES_RE = re.compile(r"^[\s\u200c\u200d]+|[\s\u200c\u200d]+$")
_BREAKS = "\n\r\t\v\f\x1c\x1d\x1e\x1f\x85\u2028\u2029"
_SINGLE_LINE_BREAK_RE = re.compile(f"[ ]*[{_BREAKS}][{_BREAKS} ]*")
_NEWLINE_RE = re.compile("\r\n|[\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]")


def _label(field: str) -> str:
    return field.replace("_", " ").strip().capitalize() or "This field"


def clean_text(
    text: str,
    *,
    field: str,
    max_len: int,
    required: bool = False,
    multiline: bool = False,
    example: str = "",
) -> str:
    """Strip, drop control and disguising invisible characters, then enforce required/max_len."""
    if text.isprintable():
        # No control, format (invisible), separator or line-break characters: the steps
        # below would only strip the spaces at the edges. (The fast path for bulk imports.)
        text = text.strip()
    else:
        text = _TAGS_RE.sub(lambda m: m[1] or "", text.translate(_INVISIBLE))
        if multiline:
            text, keep = _NEWLINE_RE.sub("\n", text), "\n\t"
        else:
            text, keep = _SINGLE_LINE_BREAK_RE.sub(" ", text), ""
        text = "".join(c for c in text if c in keep or unicodedata.category(c) not in ("Cc", "Cs"))
        text = _EDGES_RE.sub("", text)
    if required and not text:
        raise InvalidInput(field, f"{_label(field)} is required.", example=example)
    if len(text) > max_len:
        raise InvalidInput(
            field,
            f"{_label(field)} is too long ({len(text)} characters; at most {max_len}).",
            example=example,
        )
    return text


# ---------------------------------------------------------------------------
# Slack escaping

_UNESCAPE_RE = re.compile("&(amp|lt|gt);")
_UNESCAPES = {"amp": "&", "lt": "<", "gt": ">"}
_ESCAPE_RE = re.compile("[&<>]")
_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


def unescape_slack(text: str) -> str:
    """Undo Slack's escaping of & < > once ("&amp;lt;" becomes "&lt;")."""
    return _UNESCAPE_RE.sub(lambda m: _UNESCAPES[m[1]], text)


def escape_slack(text: str) -> str:
    """Escape & < > for Slack's mrkdwn and plain text."""
    return _ESCAPE_RE.sub(lambda m: _ESCAPES[m[0]], text)


# ---------------------------------------------------------------------------
# Email and phone

_EMAIL_RE = re.compile(
    r"(?P<local>[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*)"
    r"@(?P<domain>(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63})"
)
# Slack turns typed addresses and numbers into links: <mailto:a@b.co|a@b.co>, <tel:+1...|...>
_SLACK_LINK_RE = re.compile(r"<(?:mailto|tel):([^|>]*)(?:\|([^>]*))?>")
_PHONE_RE = re.compile(r"\+?[0-9(](?:[0-9 ().-]*[0-9])?")


def _unlink(text: str) -> str:
    text = text.strip()
    link = _SLACK_LINK_RE.fullmatch(text)
    if link:
        return (link[2] or link[1]).strip()
    return text


def parse_email(text: str) -> str | None:
    """A plausible email address with its domain lowercased, or None."""
    text = _unlink(text)
    match = _EMAIL_RE.fullmatch(text)
    if match is None or len(text) > 254 or len(match["local"]) > 64:
        return None
    return f"{match['local']}@{match['domain'].lower()}"


def email_domain(email: str) -> str:
    """The lowercased part after the last '@', or "" when there is none."""
    _, at, domain = email.rpartition("@")
    return domain.strip().lower() if at else ""


def parse_phone(text: str) -> str | None:
    """The phone number with whitespace collapsed, or None unless it has 7 to 15 digits."""
    text = " ".join(_unlink(text).split())
    if not _PHONE_RE.fullmatch(text):
        return None
    digits = sum(c.isdigit() for c in text)
    if not 7 <= digits <= 15 or text.count("(") != text.count(")") or text.count("(") > 1:
        return None
    if "(" in text and text.index("(") > text.index(")"):
        return None
    return text
