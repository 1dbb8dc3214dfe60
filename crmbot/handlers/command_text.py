"""Parse the text after `/crm` into a typed command: pure and fast, no database, no Slack SDK.

Slack escapes what the person typed (`&` `<` `>` arrive as `&amp;` `&lt;` `&gt;`) and sends
its own markup in angle brackets: `<@U1|bob>`, `<#C1|sales>`, `<mailto:a@b.co|a@b.co>`,
`<tel:+1...|+1 ...>`, `<https://x.com|x.com>`. The text is tokenized first (markup becomes a
token: links by their label, mentions by a `Mention`) and only then is the rest unescaped,
once, so a lead typed as `<!channel>` is named "<!channel>" and pings nobody.

Rules this module had to pick (the spec is silent on them):

- A quote (`"` or `“`) opens a phrase only at the start of a word or right after `key:`;
  an unclosed quote is an ordinary character. Empty quotes are dropped.
- A reference is a whole word (`D-21`, `d21`, `D-21,`) and is returned normalized ("D-21").
- `show`, `history`, `delete`, `restore`, `convert` and `assign` take one record: a reference
  or quoted name followed by more words is an error; unquoted words are one name.
- `deal`: the record is everything after the *last* `for`; the amount is the last
  money-like word (an upper-case ISO code or a symbol may stand apart: `EUR 50k`), bare
  numbers only when no marked amount exists and only with 3 or more digits ("Route 66");
  the stage is the last run of up to 3 words, not the first word, naming one stage by
  prefix (at least 3 letters, or the whole name). Currency is None unless one was typed.
- `move DEAL STAGE`: a leading reference or quoted name is the deal; otherwise the longest
  trailing run naming a stage, else the words after the last `to`, else the last word.
- `won`/`lost`: after a reference or quoted deal, the rest is the reason (a win note for won).
- `followup`: when the first time-like word starts no WHEN, later time-like words are
  tried (at most 10), so "Ana in accounting tomorrow" keeps "Ana in accounting" as record.
- A leading "-", ":" or dash before notes or a reason is dropped ("lost D-3 - budget").
- `lead`: "at" (or a lone "@") splits name from company; a second email or phone is an error.
- `find owner:bob` (no @) is a mention by name, like `owner:@bob`.
- `follow up` (two words) is `followup`; `undo` and `settings` ignore anything after them.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from typing import TypeAlias

from rapidfuzz import fuzz, process

from crmbot.domain import CrmError, InteractionKind, InvalidInput
from crmbot.parsing import (
    CURRENCY_CODES,
    fold,
    looks_like_money,
    parse_email,
    parse_money,
    parse_phone,
    parse_ref,
    unescape_slack,
)

MAX_TEXT = 4000
DEFAULT_STAGES: tuple[str, ...] = (
    "Prospecting",
    "Qualification",
    "Proposal",
    "Negotiation",
    "Won",
    "Lost",
)
FILTER_KEYS = (
    "stage",
    "owner",
    "industry",
    "region",
    "size",
    "source",
    "status",
    "kind",
    "sort",
    "save",
)

# ---------------------------------------------------------------------------
# Commands


@dataclass(frozen=True)
class Mention:
    """A person: `<@U123|bob>` gives the id (and name); a plain `@bob` only the name."""

    user_id: str | None
    name: str | None


@dataclass(frozen=True)
class Help:
    verb: str | None


@dataclass(frozen=True)
class NewLead:
    name: str | None
    company: str | None
    email: str | None
    phone: str | None
    source: str | None


@dataclass(frozen=True)
class Log:
    kind: InteractionKind | None
    record: str | None
    notes: str


@dataclass(frozen=True)
class NewDeal:
    name: str | None
    amount: Decimal | None
    currency: str | None
    stage: str | None
    about: str | None


@dataclass(frozen=True)
class Move:
    deal: str
    stage: str


@dataclass(frozen=True)
class Close:
    deal: str
    won: bool
    reason: str | None


@dataclass(frozen=True)
class Assign:
    record: str
    user: Mention


@dataclass(frozen=True)
class Convert:
    lead: str | None


@dataclass(frozen=True)
class Find:
    text: str
    filters: tuple[tuple[str, str], ...]
    owner: Mention | None


@dataclass(frozen=True)
class Show:
    record: str


@dataclass(frozen=True)
class FollowUp:
    record: str | None
    when: str
    text: str


@dataclass(frozen=True)
class Tasks:
    user: Mention | None
    overdue: bool


@dataclass(frozen=True)
class Pipeline:
    user: Mention | None
    team: bool


@dataclass(frozen=True)
class Report:
    period: str
    user: Mention | None


@dataclass(frozen=True)
class History:
    record: str


@dataclass(frozen=True)
class Undo:
    """Revert the caller's own last change."""


@dataclass(frozen=True)
class Away:
    """Take no round-robin leads until `when` (typed, read in the rep's zone); None: back now."""

    user: Mention | None
    when: str | None


@dataclass(frozen=True)
class Delete:
    record: str


@dataclass(frozen=True)
class Restore:
    record: str


@dataclass(frozen=True)
class Settings:
    """Open the admin settings modal."""


Command: TypeAlias = (
    Help
    | NewLead
    | Log
    | NewDeal
    | Move
    | Close
    | Assign
    | Convert
    | Find
    | Show
    | FollowUp
    | Tasks
    | Pipeline
    | Report
    | History
    | Undo
    | Away
    | Delete
    | Restore
    | Settings
)


class CommandError(CrmError):
    """What the person sees: what was understood, what wasn't, and an example."""

    def __init__(
        self,
        verb: str | None,
        problem: str,
        *,
        understood: Sequence[str] = (),
        example: str = "",
    ) -> None:
        self.verb = verb
        self.problem = problem
        self.understood = tuple(understood)
        self.example = example
        parts = [problem.strip()]
        if self.understood:
            parts.append(f"I understood {', '.join(self.understood)}.")
        if example:
            parts.append(f"For example: `{example}`")
        super().__init__(" ".join(parts))


# ---------------------------------------------------------------------------
# Verbs and help


@dataclass(frozen=True)
class VerbHelp:
    """Help for one verb; usage and examples are written without the slash command."""

    usage: str
    summary: str
    examples: tuple[str, ...]


VERBS: dict[str, VerbHelp] = {
    "help": VerbHelp("help [VERB]", "List the commands, or explain one.", ("help", "help deal")),
    "lead": VerbHelp(
        "lead NAME [at COMPANY] [EMAIL] [PHONE] [source:WORD]",
        "Create a lead. With nothing after it, open the New lead form.",
        ("lead Ana Lima at Acme Corp ana@acme.com +1 415 555 0100 source:referral", "lead"),
    ),
    "log": VerbHelp(
        "log [call|email|meeting|note] [RECORD] [NOTES]",
        "Log a call, email, meeting or note; the form opens with what you typed. "
        "`call`, `email`, `meeting` and `note` work on their own too.",
        ("log call L-12 talked pricing, sending deck", 'meeting "Ana Lima" demo went well'),
    ),
    "deal": VerbHelp(
        "deal NAME [AMOUNT] [STAGE] [for RECORD]",
        "Create a deal. With nothing after it, open the New deal form.",
        ("deal Acme renewal 50k proposal for C-7", "deal Big one €1.2M"),
    ),
    "move": VerbHelp(
        "move DEAL [to] STAGE",
        "Move a deal to a stage; the start of the stage name is enough.",
        ("move D-21 negotiation", 'move "Acme renewal" to prop'),
    ),
    "won": VerbHelp("won DEAL", "Close a deal as won.", ("won D-3",)),
    "lost": VerbHelp(
        "lost DEAL [REASON]",
        "Close a deal as lost, with the reason when you know it.",
        ("lost D-3 went with a competitor", 'lost "Acme renewal" budget'),
    ),
    "assign": VerbHelp(
        "assign RECORD @user",
        "Give a record a new owner; they are told by DM.",
        ("assign L-12 @bob", 'assign "Ana Lima" @bob'),
    ),
    "convert": VerbHelp(
        "convert LEAD",
        "Turn a lead into a contact and account, and optionally a deal.",
        ("convert L-12",),
    ),
    "find": VerbHelp(
        "find QUERY",
        "Search leads, contacts, accounts and deals. Filters: "
        + ", ".join(f"{key}:" for key in FILTER_KEYS if key != "save")
        + " (owner:@user, size:>50, sort:score). save:NAME saves the search; "
        "@NAME runs it again.",
        (
            "find acme",
            "find stage:proposal owner:@bob industry:saas",
            "find industry:saas region:emea size:>50 save:hot-emea",
            "find @hot-emea",
        ),
    ),
    "show": VerbHelp(
        "show RECORD",
        "A record's card: fields, owner, stage, recent interactions, open follow-ups.",
        ("show D-21", 'show "Ana Lima"'),
    ),
    "followup": VerbHelp(
        "followup RECORD WHEN [TEXT]",
        "Create a follow-up. WHEN is in your time zone: tomorrow 9am, in 3 days, "
        "next friday, 2026-12-01 14:00.",
        (
            "followup L-12 tomorrow 9am send the proposal",
            'followup "Ana Lima" next friday call back',
            "followup D-21 in 3 days",
        ),
    ),
    "tasks": VerbHelp(
        "tasks [@user] [overdue]",
        "Open follow-ups, overdue first.",
        ("tasks", "tasks overdue", "tasks @bob"),
    ),
    "pipeline": VerbHelp(
        "pipeline [@user|team]",
        "Deals by stage: count, amount and weighted forecast.",
        ("pipeline", "pipeline @bob", "pipeline team"),
    ),
    "report": VerbHelp(
        "report [week|month|quarter] [@user]",
        "Activity, conversion and won/lost, per rep (this week unless you say otherwise).",
        ("report", "report month"),
    ),
    "history": VerbHelp(
        "history RECORD", "A record's audit trail: who changed what, and when.", ("history D-21",)
    ),
    "undo": VerbHelp("undo", "Revert your own last change (within 15 minutes).", ("undo",)),
    "away": VerbHelp(
        "away [@user] until WHEN | away off",
        "Holidays, sick days: no web leads come your way until WHEN; `away off` when you're "
        "back. Managers mark others.",
        ("away until monday 9am", "away off", "away @bob in 2 weeks"),
    ),
    "delete": VerbHelp(
        "delete RECORD", "Admins: delete a record (restore brings it back).", ("delete L-12",)
    ),
    "restore": VerbHelp(
        "restore RECORD", "Admins: bring back a deleted record.", ("restore L-12",)
    ),
    "settings": VerbHelp(
        "settings",
        "Admins: stages, reminder channels, digest time, roles and teams, web-form intake and "
        "territory rules.",
        ("settings",),
    ),
}

_LOG_KINDS: dict[str, InteractionKind] = {
    "call": InteractionKind.CALL,
    "email": InteractionKind.EMAIL,
    "meeting": InteractionKind.MEETING,
    "note": InteractionKind.NOTE,
}

ALIASES: dict[str, str] = {
    "?": "help",
    **dict.fromkeys(_LOG_KINDS, "log"),
    "search": "find",
    "card": "show",
    "follow-up": "followup",
    "fu": "followup",
    "remind": "followup",
    "todo": "tasks",
}


def canonical_verb(word: str) -> str | None:
    """The verb a word names (`fu` -> "followup", `call` -> "log"), or None."""
    key = word.casefold()
    return key if key in VERBS else ALIASES.get(key)


def help_text(verb: str | None = None, *, command: str = "/crm") -> str:
    """Plain-text help (backticks for code): every verb, or one verb in detail."""
    name = canonical_verb(verb) if verb else None
    if name is not None:
        info = VERBS[name]
        lines = [f"`{command} {info.usage}`", info.summary]
        aliases = [alias for alias, target in ALIASES.items() if target == name]
        if aliases:
            lines.append("Also: " + ", ".join(f"`{command} {alias}`" for alias in aliases))
        lines.append("Examples:")
        lines.extend(f"`{command} {example}`" for example in info.examples)
        return "\n".join(lines)
    lines = [f"I don't know the command {_quote(verb)}."] if verb else []
    lines.append(f"What `{command}` can do:")
    lines.extend(f"`{command} {info.usage}`: {info.summary}" for info in VERBS.values())
    lines.append(f"`{command} help VERB` explains one command.")
    return "\n".join(lines)


def _closest_verb(word: str) -> str | None:
    choices = [*VERBS, *ALIASES]
    best = process.extractOne(
        word.casefold()[:40], choices, scorer=fuzz.ratio, processor=None, score_cutoff=60
    )
    return best[0] if best else None


def _unknown_verb(word: str, command: str) -> CommandError:
    guess = _closest_verb(word)
    hint = f" Did you mean `{command} {guess}`?" if guess else ""
    return CommandError(
        None,
        f"I don't know the command {_quote(word)}.{hint} Commands: {', '.join(VERBS)}.",
        example=f"{command} help",
    )


def _quote(text: str) -> str:
    text = " ".join(text.split())
    return f"“{text if len(text) <= 60 else text[:59] + '…'}”"


# ---------------------------------------------------------------------------
# Tokens


class _Kind(Enum):
    WORD = "word"  # typed, unquoted: may be a keyword, a reference, @name or key:value
    QUOTED = "quoted"  # a "quoted phrase": always literal
    LINK = "link"  # Slack markup shown by its text: link, mailto, tel, #channel, @here
    MENTION = "mention"  # <@U123|bob>


@dataclass(frozen=True)
class _Token:
    text: str
    kind: _Kind
    glued: bool = False  # no space before it
    mention: Mention | None = None

    def is_word(self, *words: str) -> bool:
        return self.kind is _Kind.WORD and self.text.casefold() in words


_QUOTES = '"“”„'
_SCAN_RE = re.compile(
    r"(?P<space>\s+)"
    r"|(?P<markup><[^<>]*>)"
    rf"|(?P<quoted>[\"“„](?P<inner>[^{_QUOTES}]*)[{_QUOTES}])"
    rf"|(?P<word>[^\s<{_QUOTES}]+)"
    r"|(?P<char>.)",
    re.DOTALL,
)
_MARKUP_RE = re.compile(r"<([^<>]*)>")
_USER_RE = re.compile(r"@([A-Z0-9]+)(?:\|(.*))?", re.DOTALL)
_CHANNEL_RE = re.compile(r"#([A-Z0-9]+)(?:\|(.*))?", re.DOTALL)
_SPECIAL_RE = re.compile(r"!([^|^]+)[^|]*(?:\|(.*))?", re.DOTALL)
_LINK_RE = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*):(?P<rest>[^|\s]*)(?:\|(?P<label>.*))?")
_AT_NAME_RE = re.compile(r"@(\w[\w.'-]*)")
_SEPARATOR_RE = re.compile("[-\u2013\u2014:;,.!?|/]+")  # hyphen, en and em dash, ...


def _markup(inner: str, glued: bool) -> _Token | None:
    """Slack markup (without its angle brackets) as a token, or None when it is not markup."""
    if match := _USER_RE.fullmatch(inner):
        label = unescape_slack(match[2] or "").strip().lstrip("@") or None
        mention = Mention(match[1], label)
        return _Token(f"@{label or match[1]}", _Kind.MENTION, glued, mention)
    if match := _CHANNEL_RE.fullmatch(inner):
        return _Token(f"#{unescape_slack(match[2] or '') or match[1]}", _Kind.LINK, glued)
    if match := _SPECIAL_RE.fullmatch(inner):
        return _Token(unescape_slack(match[2] or "") or f"@{match[1]}", _Kind.LINK, glued)
    if match := _LINK_RE.fullmatch(inner):
        plain = match["rest"] if match["scheme"].lower() in ("mailto", "tel") else inner
        text = unescape_slack(match["label"] or "").strip() or unescape_slack(plain)
        return _Token(text, _Kind.LINK, glued) if text else None
    return None


def _flatten(raw: str) -> str:
    """Quoted text: markup replaced by its text, the rest unescaped once."""
    parts: list[str] = []
    pos = 0
    for match in _MARKUP_RE.finditer(raw):
        token = _markup(match[1], glued=False)
        if token is not None:
            parts += [unescape_slack(raw[pos : match.start()]), token.text]
            pos = match.end()
    parts.append(unescape_slack(raw[pos:]))
    return " ".join("".join(parts).split())


def _word(text: str, glued: bool) -> _Token:
    """An unquoted word (already unescaped); `@name` makes it a mention by name."""
    at = _AT_NAME_RE.fullmatch(text.rstrip(".,;:!?)"))
    mention = Mention(None, at[1]) if at else None
    return _Token(text, _Kind.WORD, glued, mention)


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    raw: list[str] = []  # the plain word being read, still escaped
    raw_glued = False
    after_space = True

    def flush() -> None:
        if raw:
            tokens.append(_word(unescape_slack("".join(raw)), raw_glued))
            raw.clear()

    pos = 0
    while pos < len(text):
        match = _SCAN_RE.match(text, pos)
        assert match is not None  # the last alternative takes any character
        pos = match.end()
        if match["space"]:
            flush()
            after_space = True
            continue
        glued, after_space = not after_space, False
        piece = match[0]
        if match["markup"]:
            token = _markup(piece[1:-1], glued)
            if token is not None:
                flush()
                tokens.append(token)
                continue
            piece, pos = "<", match.start() + 1
        elif match["quoted"]:
            if not raw or raw[-1].endswith(":"):
                flush()
                inner = _flatten(match["inner"])
                if inner:
                    tokens.append(_Token(inner, _Kind.QUOTED, glued))
                continue
            piece, pos = piece[0], match.start() + 1
        if not raw:
            raw_glued = glued
        raw.append(piece)
    flush()
    return tokens


def _join(tokens: Sequence[_Token]) -> str:
    parts: list[str] = []
    for token in tokens:
        if parts and not token.glued:
            parts.append(" ")
        parts.append(token.text)
    return "".join(parts).strip()


def _ref(token: _Token) -> str | None:
    if token.kind is not _Kind.WORD:
        return None
    ref = parse_ref(token.text.rstrip(",.;:!?"))
    return str(ref) if ref else None


def _leading_record(tokens: Sequence[_Token]) -> str | None:
    """A first token that is a reference (normalized) or a quoted name."""
    if not tokens:
        return None
    if tokens[0].kind is _Kind.QUOTED:
        return tokens[0].text
    return _ref(tokens[0])


def _is_separator(token: _Token) -> bool:
    return token.kind is _Kind.WORD and _SEPARATOR_RE.fullmatch(token.text) is not None


def _strip_separators(tokens: Sequence[_Token], *, trailing: bool = False) -> list[_Token]:
    """Drop words like "-" or ":" before the text (and after it, when asked)."""
    out = list(tokens)
    while out and _is_separator(out[0]):
        out.pop(0)
    while trailing and out and _is_separator(out[-1]):
        out.pop()
    return out


# ---------------------------------------------------------------------------
# Parsing


@dataclass(frozen=True)
class _Context:
    command: str
    stage_names: Sequence[str] | Callable[[], Sequence[str]]
    is_when: Callable[[str], bool]

    @functools.cached_property
    def stages(self) -> Sequence[tuple[str, str]]:
        """(name, fold(name)) per stage; a loader is called only by verbs that need stages."""
        names = self.stage_names() if callable(self.stage_names) else self.stage_names
        return [(name, fold(name)) for name in names]

    def error(self, verb: str, problem: str, *understood: str) -> CommandError:
        example = f"{self.command} {VERBS[verb].examples[0]}"
        return CommandError(verb, problem, understood=understood, example=example)

    def when(self, phrase: str) -> bool:
        try:
            return self.is_when(phrase)
        except (InvalidInput, ValueError):  # a predicate that raises means "not a date"
            return False


def _always(phrase: str) -> bool:
    return True


def parse_command(
    text: str,
    *,
    stage_names: Sequence[str] | Callable[[], Sequence[str]] = DEFAULT_STAGES,
    is_when: Callable[[str], bool] = _always,
    command: str = "/crm",
) -> Command:
    """Read the text after the slash command as a typed command, or raise CommandError.

    `stage_names` may be a loader, called only when the verb needs the stage names.
    """
    if len(text) > MAX_TEXT:
        raise CommandError(
            None,
            f"That is too long for a command ({len(text)} characters; at most {MAX_TEXT}).",
            example=f"{command} help",
        )
    tokens = _tokenize(text)
    if not tokens:
        return Help(None)
    head, args = tokens[0], tokens[1:]
    if head.kind is not _Kind.WORD:
        raise CommandError(
            None, f"Start with a command, like `{command} find`.", example=f"{command} help"
        )
    word = head.text.casefold()
    if word == "follow" and args and args[0].is_word("up"):
        word, args = "followup", args[1:]
    verb = canonical_verb(word)
    if verb is None:
        raise _unknown_verb(head.text, command)
    ctx = _Context(command, stage_names, is_when)
    if verb == "log":
        kind = _LOG_KINDS.get(word)
        return _parse_log(args, kind, explicit=kind is None)
    return _PARSERS[verb](ctx, args)


def _parse_help(ctx: _Context, args: list[_Token]) -> Command:
    if not args:
        return Help(None)
    verb = canonical_verb(args[0].text)
    if verb is None:
        raise _unknown_verb(args[0].text, ctx.command)
    return Help(verb)


def _parse_lead(ctx: _Context, args: list[_Token]) -> Command:
    found, rest = _split_filters(args, ("source",))
    source = found[-1][1].text if found else None
    email: str | None = None
    keep: list[_Token] = []
    for token in rest:
        address = None
        if token.kind is not _Kind.MENTION and "@" in token.text and len(token.text) <= 300:
            address = parse_email(token.text.rstrip(",;"))
        if address is None:
            keep.append(token)
        elif email is not None and address != email:
            raise ctx.error(
                "lead", "A lead takes one email address; I found two.", f"email {email}"
            )
        else:
            email = address
    phone, keep = _take_phone(ctx, keep)
    at = next((i for i, t in enumerate(keep) if t.is_word("at", "@")), None)
    name, company = (keep, []) if at is None else (keep[:at], keep[at + 1 :])
    return NewLead(_join(name) or None, _join(company) or None, email, phone, source)


_PHONE_PIECE_RE = re.compile(r"[0-9+().-]*[0-9][0-9+().-]*")
_PHONE_LINK_RE = re.compile(r"[0-9+(). -]*[0-9][0-9+(). -]*")


def _phone_piece(token: _Token) -> bool:
    if token.kind is _Kind.WORD:
        return _PHONE_PIECE_RE.fullmatch(token.text) is not None
    return token.kind is _Kind.LINK and _PHONE_LINK_RE.fullmatch(token.text) is not None


def _take_phone(ctx: _Context, tokens: list[_Token]) -> tuple[str | None, list[_Token]]:
    """The phone number among the tokens (it may span several: "+1 415 555 0100")."""
    phone: str | None = None
    keep: list[_Token] = []
    i = 0
    while i < len(tokens):
        if not _phone_piece(tokens[i]):
            keep.append(tokens[i])
            i += 1
            continue
        run_end = i
        while run_end < len(tokens) and _phone_piece(tokens[run_end]):
            run_end += 1
        run = tokens[i:run_end]
        start = next((j for j, t in enumerate(run) if t.text.startswith("+")), 0)
        for end in range(len(run), start, -1):
            candidate = " ".join(t.text for t in run[start:end])
            number = parse_phone(candidate) if len(candidate) <= 40 else None
            if number is None:
                continue
            if phone is not None:
                raise ctx.error("lead", "A lead takes one phone number; I found two.", phone)
            phone, run = number, run[:start] + run[end:]
            break
        keep.extend(run)
        i = run_end
    return phone, keep


def _parse_log(args: list[_Token], kind: InteractionKind | None, *, explicit: bool) -> Command:
    if explicit and args and args[0].kind is _Kind.WORD:
        kind = _LOG_KINDS.get(args[0].text.casefold())
        if kind is not None:
            args = args[1:]
    record = _leading_record(args)
    notes = _join(_strip_separators(args[1:] if record is not None else args))
    return Log(kind, record, notes)


def _match_stage(phrase: str, stages: Sequence[tuple[str, str]]) -> str | None:
    """The one stage a phrase names, exactly or by prefix (3+ letters), after fold()."""
    key = fold(phrase)
    if not key:
        return None
    exact = [name for name, folded in stages if folded == key]
    if exact:
        return exact[0]
    if len(key) < 3:
        return None
    hits = [name for name, folded in stages if folded.startswith(key)]
    return hits[0] if len(hits) == 1 else None


def _stage_in(ctx: _Context, run: Sequence[_Token]) -> str | None:
    """The stage a run of 1 to 3 unquoted words names, if any."""
    if not 1 <= len(run) <= 3 or any(t.kind is not _Kind.WORD for t in run):
        return None
    return _match_stage(_join(run), ctx.stages)


def _last_stage(ctx: _Context, tokens: Sequence[_Token]) -> tuple[str, int, int] | None:
    """The stage named nearest the end (longest run first), never by the first word."""
    for end in range(len(tokens), 1, -1):
        for start in range(max(1, end - 3), end):
            if stage := _stage_in(ctx, tokens[start:end]):
                return stage, start, end
    return None


_BARE_NUMBER_RE = re.compile(r"[0-9]+")
_CURRENCY_WORDS = frozenset({"$", "€", "£", "¥", "₹", "US$", "C$", "A$", *CURRENCY_CODES})


def _amount_at(tokens: Sequence[_Token], i: int) -> tuple[int, int, str] | None:
    """The amount whose number is token i, with a currency word beside it: (start, end, text)."""
    token = tokens[i]
    if token.kind is not _Kind.WORD or len(token.text) > 40 or not looks_like_money(token.text):
        return None
    for start, end in ((i - 1, i + 1), (i, i + 2)):
        if start < 0 or end > len(tokens):
            continue
        other = tokens[start] if start < i else tokens[end - 1]
        if other.kind is _Kind.WORD and other.text in _CURRENCY_WORDS:
            phrase = _join(tokens[start:end])
            if looks_like_money(phrase):
                return start, end, phrase
    return i, i + 1, token.text


def _typed_currency(phrase: str) -> str | None:
    """The currency written in an amount, or None when it would be the default."""
    try:
        as_usd, as_eur = parse_money(phrase, "USD")[1], parse_money(phrase, "EUR")[1]
    except InvalidInput:
        return None
    return as_usd if as_usd == as_eur else None


def _parse_deal(ctx: _Context, args: list[_Token]) -> Command:
    about: str | None = None
    fors = [i for i, t in enumerate(args[:-1]) if t.is_word("for")]
    if fors:
        rest = args[fors[-1] + 1 :]
        about = _leading_record(rest) if len(rest) == 1 else None
        about, args = about or _join(rest), args[: fors[-1]]
    marked: tuple[int, int, str] | None = None
    bare: tuple[int, int, str] | None = None
    for i in range(len(args)):
        found = _amount_at(args, i)
        if found is None:
            continue
        if not _BARE_NUMBER_RE.fullmatch(found[2]):
            marked = found
        elif len(found[2]) >= 3:
            bare = found
    amount = currency = None
    body = list(args)
    if chosen := marked or bare:
        start, end, phrase = chosen
        try:
            amount = parse_money(phrase)[0]
        except InvalidInput:  # looks_like_money said yes; keep the words as the name then
            pass
        else:
            currency = _typed_currency(phrase)
            body = args[:start] + args[end:]
    stage: str | None = None
    if found_stage := _last_stage(ctx, body):
        stage, start, end = found_stage
        body = body[:start] + body[end:]
    return NewDeal(_join(body) or None, amount, currency, stage, about)


def _parse_move(ctx: _Context, args: list[_Token]) -> Command:
    if not args:
        raise ctx.error("move", "Which deal, and to which stage?")
    record = _leading_record(args)
    if record is not None:
        deal, stage_tokens = record, args[1:]
    elif len(args) == 1:
        deal, stage_tokens = args[0].text, []
    else:
        found = _last_stage(ctx, args)
        split = found[1] if found and found[2] == len(args) else None
        if split is None:
            tos = [i for i in range(1, len(args) - 1) if args[i].is_word("to")]
            split = tos[-1] + 1 if tos else len(args) - 1
        deal_tokens = args[:split]
        if deal_tokens[-1].is_word("to"):
            deal_tokens = deal_tokens[:-1]
        deal, stage_tokens = _join(deal_tokens), args[split:]
    if stage_tokens and stage_tokens[0].is_word("to"):
        stage_tokens = stage_tokens[1:]
    typed = _join(stage_tokens)
    if not deal:
        raise ctx.error("move", "Which deal should I move?", f"stage {_quote(typed)}")
    if not typed:
        raise ctx.error("move", "To which stage?", f"deal {_quote(deal)}")
    return Move(deal, _match_stage(typed, ctx.stages) or typed)


def _parse_close(ctx: _Context, args: list[_Token], *, won: bool) -> Command:
    verb = "won" if won else "lost"
    if not args:
        raise ctx.error(verb, "Which deal?")
    record = _leading_record(args)
    if record is None:
        return Close(_join(args), won, None)
    return Close(record, won, _join(_strip_separators(args[1:])) or None)


def _one_record(ctx: _Context, verb: str, tokens: Sequence[_Token]) -> str:
    """One record: a reference, a quoted name, or unquoted words read as a name."""
    record = _leading_record(tokens)
    if record is None:
        return _join(tokens)
    extra = _join(_strip_separators(tokens[1:], trailing=True))
    if extra:
        raise ctx.error(
            verb,
            f"One record at a time: I don't know what to do with {_quote(extra)}.",
            f"record {_quote(record)}",
        )
    return record


def _record_verb(verb: str, make: Callable[[str], Command]) -> _Parser:
    def parse(ctx: _Context, args: list[_Token]) -> Command:
        if not args:
            raise ctx.error(verb, "Which record? Give its reference or its name.")
        return make(_one_record(ctx, verb, args))

    return parse


def _parse_assign(ctx: _Context, args: list[_Token]) -> Command:
    args = _strip_separators(args, trailing=True)
    if not args or args[-1].mention is None:
        understood = [f"record {_quote(_join(args))}"] if args else []
        raise ctx.error("assign", "Who should own it? End with an @mention.", *understood)
    user, record_tokens = args[-1].mention, args[:-1]
    if record_tokens and record_tokens[-1].is_word("to"):
        record_tokens = record_tokens[:-1]
    if not record_tokens:
        raise ctx.error(
            "assign", "Which record? Put it before the @mention.", f"owner {args[-1].text}"
        )
    return Assign(_one_record(ctx, "assign", record_tokens), user)


def _parse_convert(ctx: _Context, args: list[_Token]) -> Command:
    return Convert(_one_record(ctx, "convert", args) if args else None)


_KEY_RE = re.compile(r"([A-Za-z]+):(.*)", re.DOTALL)


def _split_filters(
    tokens: Sequence[_Token], keys: Sequence[str]
) -> tuple[list[tuple[str, _Token]], list[_Token]]:
    """Pull `key:value` pairs with known keys out of the tokens; the value may be quoted."""
    found: list[tuple[str, _Token]] = []
    rest: list[_Token] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        match = _KEY_RE.fullmatch(token.text) if token.kind is _Kind.WORD else None
        if match is None or match[1].casefold() not in keys:
            rest.append(token)
            i += 1
            continue
        value: _Token | None = _word(match[2], glued=False) if match[2] else None
        step = 1
        if value is None and i + 1 < len(tokens):
            after = tokens[i + 1]
            nested = _KEY_RE.fullmatch(after.text) if after.kind is _Kind.WORD else None
            if not (nested and nested[1].casefold() in keys):
                value, step = after, 2
        if value is None or not value.text.strip("@ "):
            rest.append(token)
        else:
            found.append((match[1].casefold(), value))
        i += step
    return found, rest


def _parse_find(ctx: _Context, args: list[_Token]) -> Command:
    found, rest = _split_filters(args, FILTER_KEYS)
    owner: Mention | None = None
    filters: list[tuple[str, str]] = []
    for key, value in found:
        if key == "owner":
            owner = value.mention or Mention(None, value.text.strip().lstrip("@"))
        else:
            filters.append((key, value.text))
    return Find(_join(rest), tuple(filters), owner)


_TIME_STARTERS = frozenset(
    {
        *("today", "tomorrow", "tmrw", "tmr", "tonight", "in", "next", "this", "eod", "eow"),
        *("end", "noon", "midday", "on", "at", "by", "due"),
        *("mon", "tue", "tues", "wed", "weds", "thu", "thur", "thurs", "fri", "sat", "sun"),
        *("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"),
        *("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "sept", "oct", "nov"),
        *("dec", "january", "february", "march", "april", "june", "july", "august"),
        *("september", "october", "november", "december"),
    }
)
_MAX_WHEN_WORDS = 6
_MAX_WHEN_TRIES = 10


def _starts_time(token: _Token) -> bool:
    if token.kind is not _Kind.WORD:
        return False
    word = token.text.casefold().rstrip(",.")
    return word in _TIME_STARTERS or (word[:1].isascii() and word[:1].isdigit())


def _when_end(ctx: _Context, tokens: Sequence[_Token], start: int) -> int:
    """The end of the longest run of words from `start` that reads as a date/time, or start."""
    stop = start
    while stop < len(tokens) and stop - start < _MAX_WHEN_WORDS:
        if tokens[stop].kind is not _Kind.WORD or tokens[stop].mention is not None:
            break
        stop += 1
    for end in range(stop, start, -1):
        if ctx.when(_join(tokens[start:end])):
            return end
    return start


def _parse_followup(ctx: _Context, args: list[_Token]) -> Command:
    no_when = "When? Put a time after the record: tomorrow 9am, in 3 days, next friday."
    if not args:
        raise ctx.error("followup", "Which record, and when?")
    record = _leading_record(args)
    if record is not None:
        end = _when_end(ctx, args, 1)
        if end == 1:
            raise ctx.error("followup", no_when, f"record {_quote(record)}")
        return FollowUp(record, _join(args[1:end]), _join(args[end:]))
    tries = 0
    first_starter: int | None = None
    for i, token in enumerate(args):
        if token.mention is not None or token.kind not in (_Kind.WORD, _Kind.LINK):
            break
        if not _starts_time(token):
            continue
        first_starter = i if first_starter is None else first_starter
        end = _when_end(ctx, args, i)
        if end > i:
            return FollowUp(_join(args[:i]) or None, _join(args[i:end]), _join(args[end:]))
        tries += 1
        if tries >= _MAX_WHEN_TRIES:
            break
    typed = _join(args[:first_starter] if first_starter is not None else args)
    raise ctx.error("followup", no_when, *([f"record {_quote(typed)}"] if typed else []))


def _options(
    ctx: _Context, verb: str, args: list[_Token], words: Sequence[str]
) -> tuple[Mention | None, list[str]]:
    """At most one @mention plus option words; anything else is an error naming it."""
    user: Mention | None = None
    chosen: list[str] = []
    for token in args:
        if token.mention is not None and user is None:
            user = token.mention
        elif token.kind is _Kind.WORD and token.text.casefold() in words:
            chosen.append(token.text.casefold())
        elif not _is_separator(token):
            problem = f"I didn't understand {_quote(token.text)} there."
            raise ctx.error(verb, f"{problem} Usage: `{ctx.command} {VERBS[verb].usage}`")
    return user, chosen


def _parse_tasks(ctx: _Context, args: list[_Token]) -> Command:
    user, words = _options(ctx, "tasks", args, ("overdue",))
    return Tasks(user, bool(words))


def _parse_pipeline(ctx: _Context, args: list[_Token]) -> Command:
    user, words = _options(ctx, "pipeline", args, ("team",))
    if user is not None and words:
        raise ctx.error("pipeline", "Either one person's pipeline or the team's, not both.")
    return Pipeline(user, bool(words))


_PERIODS = {
    **dict.fromkeys(("week", "weekly", "wk"), "week"),
    **dict.fromkeys(("month", "monthly", "mo"), "month"),
    **dict.fromkeys(("quarter", "quarterly", "qtr"), "quarter"),
}


def _parse_report(ctx: _Context, args: list[_Token]) -> Command:
    user, words = _options(ctx, "report", args, tuple(_PERIODS))
    if len(set(map(_PERIODS.get, words))) > 1:
        raise ctx.error("report", "One period at a time: week, month or quarter.")
    return Report(_PERIODS[words[0]] if words else "week", user)


_BACK = frozenset({"off", "back", "none", "no", "stop"})


def _parse_away(ctx: _Context, args: list[_Token]) -> Command:
    user: Mention | None = None
    if args and args[0].mention is not None:
        user, args = args[0].mention, args[1:]
    if any(token.mention is not None for token in args):
        raise ctx.error("away", "One person at a time.")
    words = [t.text for t in args if not _is_separator(t)]
    if len(words) == 1 and words[0].casefold() in _BACK:
        return Away(user, None)
    if words and words[0].casefold() == "until":
        words = words[1:]
    if not words:
        raise ctx.error("away", "Until when? For example `away until monday 9am`.")
    return Away(user, " ".join(words))


_Parser: TypeAlias = Callable[[_Context, list[_Token]], Command]

_PARSERS: dict[str, _Parser] = {
    "help": _parse_help,
    "lead": _parse_lead,
    "deal": _parse_deal,
    "move": _parse_move,
    "won": lambda ctx, args: _parse_close(ctx, args, won=True),
    "lost": lambda ctx, args: _parse_close(ctx, args, won=False),
    "assign": _parse_assign,
    "convert": _parse_convert,
    "find": _parse_find,
    "show": _record_verb("show", Show),
    "followup": _parse_followup,
    "tasks": _parse_tasks,
    "pipeline": _parse_pipeline,
    "report": _parse_report,
    "history": _record_verb("history", History),
    "undo": lambda ctx, args: Undo(),
    "away": _parse_away,
    "delete": _record_verb("delete", Delete),
    "restore": _record_verb("restore", Restore),
    "settings": lambda ctx, args: Settings(),
}
