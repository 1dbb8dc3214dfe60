"""`POST /intake/lead`: web-form leads in over HTTP (a WSGI app; no Slack in here).

Parse (JSON or form-encoded, size-limited) -> authenticate -> call the service -> answer.
Domain errors map to 400/401/413/415/422; the service writes everything in one transaction
or nothing. Telling Slack is handed to `notify` after the transaction, and a failure there is
logged, never turned into a failed intake: the lead is saved either way.
"""

from __future__ import annotations

import hmac
import json
import logging
import uuid
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl

from crmbot.domain import CrmError, InvalidInput
from crmbot.service import CrmService
from crmbot.service.intake import IntakeOutcome, IntakeTokenInvalid
from crmbot.service.intake_form import IdempotencyKeyReused

log = logging.getLogger(__name__)

PATH = "/intake/lead"
MAX_BODY = 64 * 1024
MAX_FIELDS = 200

StartResponse = Callable[..., Any]
Notify = Callable[[str, IntakeOutcome], object]
TeamOf = Callable[[], str | None]

# JSON that is also safe to paste into HTML: <, > and & never appear literally.
_HTML_SAFE = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})


class HttpError(Exception):
    def __init__(self, status: str, body: dict[str, Any], headers: list[tuple[str, str]]) -> None:
        super().__init__(status)
        self.status, self.body, self.headers = status, body, headers


def _error(status: str, message: str, *, field: str | None = None, **extra: str) -> HttpError:
    body: dict[str, Any] = {"error": status.split(" ", 1)[1].lower(), "message": message}
    if field is not None:
        body["field"] = field
    return HttpError(status, body, list(extra.items()))


def respond(
    start_response: StartResponse,
    status: str,
    body: dict[str, Any],
    headers: list[tuple[str, str]] | None = None,
) -> list[bytes]:
    data = json.dumps(body, ensure_ascii=False).translate(_HTML_SAFE).encode()
    start_response(
        status,
        [
            ("Content-Type", "application/json; charset=utf-8"),
            ("Content-Length", str(len(data))),
            ("Cache-Control", "no-store"),
            ("X-Content-Type-Options", "nosniff"),
            *(headers or []),
        ],
    )
    return [data]


def bearer(environ: dict[str, Any]) -> str | None:
    """The token of an `Authorization: Bearer …` header."""
    scheme, _, token = str(environ.get("HTTP_AUTHORIZATION", "")).strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def read_body(environ: dict[str, Any], limit: int = MAX_BODY) -> bytes:
    """The request body, refusing (413) more than `limit` bytes before reading it all."""
    raw_length = str(environ.get("CONTENT_LENGTH") or "").strip()
    stream = environ["wsgi.input"]
    if raw_length:
        try:
            length = int(raw_length)
        except ValueError:
            raise _error("400 Bad Request", "Content-Length is not a number.") from None
        if length > limit:
            raise _too_large(limit)
        return bytes(stream.read(length)) if length > 0 else b""
    body = bytes(stream.read(limit + 1))
    if len(body) > limit:
        raise _too_large(limit)
    return body


def _too_large(limit: int) -> HttpError:
    return _error(
        "413 Payload Too Large",
        f"The body is larger than {limit // 1024} KiB; send only the form's fields.",
    )


def parse_fields(content_type: str, body: bytes) -> dict[str, Any]:
    """The submitted fields from a JSON object or a form-encoded body."""
    kind, _, params = content_type.partition(";")
    kind = kind.strip().lower()
    charset = "utf-8"
    for param in params.split(";"):
        name, _, value = param.strip().partition("=")
        if name.lower() == "charset" and value:
            charset = value.strip('"').lower()
    if charset not in ("utf-8", "utf8", "us-ascii"):
        raise _error("415 Unsupported Media Type", "Send the body as UTF-8.")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise _error("400 Bad Request", "The body is not valid UTF-8.", field="body") from None
    if kind == "application/json" or kind.endswith("+json"):
        try:
            data = json.loads(text) if text.strip() else None
        except json.JSONDecodeError as exc:
            raise _error(
                "400 Bad Request", f"The body is not valid JSON ({exc.msg}).", field="body"
            ) from None
        except RecursionError:  # "[[[[…" deeper than the parser goes
            raise _error(
                "400 Bad Request", "The JSON is nested too deeply.", field="body"
            ) from None
        if not isinstance(data, dict):
            raise _error("400 Bad Request", "The body must be a JSON object.", field="body")
        if len(data) > MAX_FIELDS:
            raise _error("400 Bad Request", "Too many fields.", field="body")
        return data
    if kind == "application/x-www-form-urlencoded":
        try:
            pairs = parse_qsl(
                text, keep_blank_values=True, max_num_fields=MAX_FIELDS, errors="strict"
            )
        except (ValueError, UnicodeDecodeError):
            raise _error("400 Bad Request", "The form body can't be read.", field="body") from None
        fields: dict[str, Any] = {}
        for key, value in pairs:
            if not fields.get(key):  # a repeated field: the first non-empty value counts
                fields[key] = value
        return fields
    raise _error(
        "415 Unsupported Media Type",
        "Send application/json or application/x-www-form-urlencoded.",
    )


class IntakeEndpoint:
    """The WSGI app behind `POST /intake/lead`."""

    def __init__(
        self,
        crm: CrmService,
        *,
        env_token: str | None = None,
        env_team: TeamOf = lambda: None,
        notify: Notify | None = None,
        max_body: int = MAX_BODY,
    ) -> None:
        self._crm = crm
        self._env_token = env_token
        self._env_team = env_team
        self._notify = notify
        self._max_body = max_body

    def close(self) -> None:
        """Let the notifier finish what it is posting (server shutdown)."""
        close = getattr(self._notify, "close", None)
        if close is not None:
            close()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        try:
            status, body, headers = self._handle(environ)
        except HttpError as error:
            return respond(start_response, error.status, error.body, error.headers)
        return respond(start_response, status, body, headers)

    def _handle(self, environ: dict[str, Any]) -> tuple[str, dict[str, Any], list[tuple[str, str]]]:
        if environ.get("REQUEST_METHOD") != "POST":
            raise _error("405 Method Not Allowed", "Use POST.", Allow="POST")
        ws = self._workspace(bearer(environ))
        body = read_body(environ, self._max_body)
        fields = parse_fields(str(environ.get("CONTENT_TYPE") or ""), body)
        key = environ.get("HTTP_IDEMPOTENCY_KEY")
        try:
            outcome = self._crm.intake_lead(ws, fields, idempotency_key=key)
        except IdempotencyKeyReused as error:
            raise _error("422 Unprocessable Entity", error.message, field=error.field) from None
        except InvalidInput as error:
            raise _error("400 Bad Request", error.message, field=error.field) from None
        except CrmError as error:
            raise _error("400 Bad Request", error.message) from None
        except Exception:  # the answer must still be JSON; the details go to the log
            error_id = uuid.uuid4().hex[:8]
            log.exception("intake failed (error id %s)", error_id)
            raise _error(
                "500 Internal Server Error", f"Something went wrong (error id {error_id})."
            ) from None
        if outcome.replayed:
            return _status(outcome.status), outcome.answer, [("Idempotent-Replayed", "true")]
        if self._notify is not None:
            try:
                self._notify(ws, outcome)
            except Exception:  # the lead is saved; telling Slack is best effort, and logged
                log.exception("intake %s saved, but Slack could not be told", outcome.answer)
        return _status(outcome.status), outcome.answer, []

    def _workspace(self, token: str | None) -> str:
        """The workspace the bearer token belongs to, or 401."""
        refused = _error(
            "401 Unauthorized",
            "Send the workspace's intake token as `Authorization: Bearer TOKEN`.",
            **{"WWW-Authenticate": 'Bearer realm="crmbot intake"'},
        )
        if token is None:
            raise refused
        if self._env_token and hmac.compare_digest(token.encode(), self._env_token.encode()):
            team = self._env_team()
            if team is None:
                raise _error(
                    "503 Service Unavailable",
                    "CRMBOT_INTAKE_TOKEN is set, but the workspace it is for is unknown: "
                    "set CRMBOT_TEAM_ID.",
                )
            return team
        try:
            return self._crm.workspace_for_intake_token(token)
        except IntakeTokenInvalid:
            raise refused from None


def _status(code: int) -> str:
    return {200: "200 OK", 201: "201 Created"}.get(code, f"{code} OK")
