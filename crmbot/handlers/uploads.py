"""Charts to Slack: drawn after the text reply went out, shared with files_upload_v2.

A failed upload (bot not in the channel, rate limit after retries, Slack down) is logged and
the person is told in one ephemeral line; the text summary they already have stays complete.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from crmbot.handlers.report_views import ChartedReply

log = logging.getLogger(__name__)


def share_charts(client: WebClient, reply: ChartedReply, channel: str | None, respond: Any) -> int:
    """Upload the reply's charts into the channel or DM the command came from; how many."""
    if reply.charts is None or not channel:
        return 0
    files = list(reply.charts())
    if not files:
        return 0
    try:
        client.files_upload_v2(
            channel=channel,
            file_uploads=[
                {"content": f.png, "filename": f.filename, "title": f.title, "alt_txt": f.alt}
                for f in files
            ],
        )
    except (SlackApiError, SlackClientError, OSError) as error:
        reason = (
            error.response.get("error", "error")
            if isinstance(error, SlackApiError)
            else type(error).__name__
        )
        log.warning("chart upload to %s failed: %s", channel, reason)
        hint = " Invite me to this channel (`/invite`) to get them." if _membership(reason) else ""
        respond(
            response_type="ephemeral",
            replace_original=False,
            text=f"(I couldn't post the charts here: {reason}.{hint} The numbers above are "
            "complete.)",
        )
        return 0
    return len(files)


def _membership(reason: str) -> bool:
    return reason in ("not_in_channel", "channel_not_found", "is_archived")
