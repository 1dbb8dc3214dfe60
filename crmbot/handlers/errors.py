"""The one error handler: domain errors become friendly text; the rest get an error id."""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Callable
from typing import Any

from crmbot.domain import AmbiguousName, CrmError
from crmbot.handlers import render, request_keys
from crmbot.handlers.command_text import CommandError

log = logging.getLogger("crmbot")


def reply_for(error: BaseException) -> render.Reply:
    """What the person who caused `error` should read."""
    if isinstance(error, AmbiguousName):
        return render.ambiguous(error)
    if isinstance(error, CrmError):
        return render.text(render.esc(error.message))
    if isinstance(error, CommandError):
        return render.text(render.esc(error.message))
    error_id = uuid.uuid4().hex[:8]
    log.error("unexpected error %s", error_id, exc_info=error)
    return render.text(
        f"Something went wrong on our side (error id `{error_id}`). Please try again."
    )


def handle_error(
    error: Exception, body: dict[str, Any], respond: Any, logger: Any, ack: Any = None
) -> None:
    """Bolt's global error handler: answer the person privately when we can."""
    request_keys.failed(ack, error)
    reply = reply_for(error)
    if respond is not None:
        try:
            respond(response_type="ephemeral", replace_original=False, **reply.payload())
            return
        except Exception:  # the reply itself failed: the log keeps it
            log.exception("could not tell the user about an error")
    log.warning("error without a way to answer: %s", reply.text)


Listener = Callable[..., Any]


def _on_form(error: Exception, body: dict[str, Any]) -> dict[str, str] | None:
    """For a modal submission: the error shown on its first input (a submission has no
    response_url, so an error acked away would reach nobody)."""
    view = body.get("view") if body.get("type") == "view_submission" else None
    blocks = view.get("blocks") if isinstance(view, dict) else None
    inputs = [
        str(b["block_id"])
        for b in blocks or []
        if isinstance(b, dict) and b.get("type") == "input" and b.get("block_id")
    ]
    if not inputs:
        return None
    message = error.message if isinstance(error, CrmError) else reply_for(error).text
    return {inputs[0]: render.clip(message, 300)}


def guarded(listener: Listener) -> Listener:
    """Route a listener's errors to `handle_error` ourselves.

    Bolt (1.30) loses the HTTP ack when a listener raises within ~10 ms of acking: its
    runner overwrites `ack.response` with None while the request thread is still polling.
    Answering errors here keeps the ack, and still goes through the one error handler.
    """

    @functools.wraps(listener)
    def run(**kwargs: Any) -> Any:
        try:
            return listener(**kwargs)
        except request_keys.DuplicateRequest as duplicate:  # acked already; nothing to do
            log.info("%s answered with an empty ack", duplicate)
            return None
        except Exception as error:
            ack = kwargs.get("ack")
            body = kwargs.get("body") or {}
            request_keys.failed(ack, error)  # before the ack below, which would settle it
            if ack is not None and getattr(ack, "response", None) is None:
                errors = _on_form(error, body)
                if errors is not None:  # keep the modal open and say why on it
                    ack(response_action="errors", errors=errors)
                    return None
                ack()
            handle_error(error, body, kwargs.get("respond"), log)
            return None

    return run
