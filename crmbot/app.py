"""create_app(settings) -> a Bolt App: the composition root for the web process."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

from slack_bolt import App
from slack_bolt.oauth.oauth_settings import OAuthSettings
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.handler import RetryHandler
from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore

from crmbot.config import Mode, Settings
from crmbot.handlers import (
    actions,
    commands,
    duplicates,
    inline,
    intake,
    modals,
    replies,
    request_keys,
)
from crmbot.handlers.context import Directory
from crmbot.handlers.deps import Deps
from crmbot.handlers.errors import handle_error
from crmbot.handlers.offload import Offload
from crmbot.installations import installation_store as sealed_installation_store
from crmbot.service import CrmService
from crmbot.store.db import Database

SCOPES = (
    "commands",
    "chat:write",
    "chat:write.public",
    "users:read",
    "users:read.email",
    "im:write",
    "channels:read",
    "groups:read",
    "files:write",
)


def retry_handlers() -> list[RetryHandler]:
    """429 (honouring Retry-After), 5xx and dropped connections are retried by slack-sdk."""
    return [
        RateLimitErrorRetryHandler(max_retry_count=3),
        ServerErrorRetryHandler(max_retry_count=2),
        ConnectionErrorRetryHandler(max_retry_count=2),
    ]


def web_client(settings: Settings, token: str | None = None) -> WebClient:
    """A WebClient pointed at SLACK_API_URL with crmbot's retry policy."""
    return WebClient(
        token=token or settings.slack_bot_token,
        base_url=settings.slack_api_url,
        timeout=10,
        retry_handlers=retry_handlers(),
    )


def create_app(
    settings: Settings,
    crm: CrmService,
    *,
    db: Database | None = None,
    offload: Offload | None = None,
    process_before_response: bool = False,
) -> App:
    """Build the Bolt app with every listener registered; no module-level globals.

    `offload` hands `/crm` work that opens no modal to worker processes after the ack;
    the workers build this app with `process_before_response=True` (handlers/offload.py).
    """
    mode = settings.require_http() if not settings.slack_app_token else Mode.SINGLE
    # Acks must not queue behind slow listeners: Bolt's default pool has 5 threads.
    pool = ThreadPoolExecutor(max_workers=settings.threads, thread_name_prefix="crmbot-listener")
    # Submissions and type-ahead run in the request's own thread, a few at a time in order.
    executor = inline.InlineExecutor(
        pool, inline.FifoGate(inline.gate_slots(crm.database_in_process))
    )
    if mode is Mode.OAUTH:
        assert db is not None, "OAuth mode keeps installations in the database"
        # Tokens encrypted at rest when CRMBOT_ENCRYPTION_KEY is set (crmbot/installations.py).
        installation_store = sealed_installation_store(settings, db.engine)
        state_store = SQLAlchemyOAuthStateStore(expiration_seconds=600, engine=db.engine)
        # slack-sdk owns the states table's shape; create it if missing, beside crmbot's own.
        state_store.metadata.create_all(state_store.engine)
        app = App(
            signing_secret=settings.slack_signing_secret,
            client=web_client(settings),
            installation_store=installation_store,
            oauth_settings=OAuthSettings(
                client_id=settings.slack_client_id,
                client_secret=settings.slack_client_secret,
                scopes=list(SCOPES),
                installation_store=installation_store,
                state_store=state_store,
            ),
            listener_executor=executor,
            logger=logging.getLogger("crmbot.bolt"),
            process_before_response=process_before_response,
        )
    else:
        app = App(
            token=settings.slack_bot_token,
            signing_secret=settings.slack_signing_secret or "socket-mode",
            client=web_client(settings),
            listener_executor=executor,
            logger=logging.getLogger("crmbot.bolt"),
            process_before_response=process_before_response,
            request_verification_enabled=bool(settings.slack_signing_secret),
        )
    app.use(inline.Mark(modals.ANSWERED_BY_LISTENER))  # which requests run inline
    replies.install(app)  # response_url replies over kept-alive connections
    # Retries and double submits run once. A worker's app (process_before_response, see
    # handlers/offload.py) claims the commands handed to it; anything else it is given was
    # claimed by the web process already.
    request_keys.install(app, crm, commands_only=process_before_response)
    deps = Deps(
        crm=crm,
        settings=settings,
        directory=Directory(crm),
        offload=offload,
        background=None if process_before_response else pool,
    )
    modals.register_type_ahead(app, deps)  # first: see there
    commands.register(app, deps)
    modals.register(app, deps)
    actions.register(app, deps)
    intake.register(app, deps)
    duplicates.register(app, deps)
    app.error(handle_error)
    return app
