"""Settings.from_env(): one frozen dataclass, validated once, read from the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from dotenv import dotenv_values

from crmbot.tokencrypt import TokenCipher, parse_keys

DEFAULT_API_URL = "https://slack.com/api/"


class ConfigError(Exception):
    """Configuration is missing or wrong; the message says what to set."""


class Mode(StrEnum):
    SINGLE = "single"  # one workspace: SLACK_BOT_TOKEN
    OAUTH = "oauth"  # many workspaces: SLACK_CLIENT_ID / SLACK_CLIENT_SECRET


def _int(env: Mapping[str, str], name: str, default: int, *, low: int, high: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {raw!r}.") from None
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low} and {high}, not {value}.")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, not {raw!r}.")


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite:///crmbot.db"
    slack_bot_token: str | None = None
    slack_signing_secret: str | None = None
    slack_client_id: str | None = None
    slack_client_secret: str | None = None
    slack_app_token: str | None = None
    slack_api_url: str = DEFAULT_API_URL
    port: int = 3000
    reminder_interval: int = 60
    reminder_lease: int = 300
    scheduler_in_web: bool = True
    command: str = "/crm"
    intake_token: str | None = None
    team_id: str | None = None  # the workspace CRMBOT_INTAKE_TOKEN is for (default: auth.test)
    threads: int = 16
    db_pool_size: int | None = None  # connections kept per process; None: max(5, threads)
    db_max_overflow: int | None = None  # extra connections at peaks; None: as many again

    encryption_key: str | None = None  # CRMBOT_ENCRYPTION_KEY: Fernet key(s), first one seals

    workers: int = 2  # `crmbot serve`'s worker processes for post-ack work (0: in-process)
    worker_nice: int = 10  # how much lower their OS priority is than the web process's

    def __repr__(self) -> str:
        # Secrets never reach logs or tracebacks through repr().
        return (
            f"Settings(database={_redact_url(self.database_url)!r}, mode={self.mode_or_none()}, "
            f"api={self.slack_api_url!r}, port={self.port}, command={self.command!r})"
        )

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, *, dotenv: Path | None = None
    ) -> Settings:
        """Read settings from the environment (and a `.env` file if present)."""
        if env is None:
            path = dotenv or Path(".env")
            file_values = (
                {k: v for k, v in dotenv_values(path).items() if v is not None}
                if path.exists()
                else {}
            )
            env = {**file_values, **os.environ}

        def text(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        api_url = text("SLACK_API_URL") or DEFAULT_API_URL
        if not api_url.startswith(("http://", "https://")):
            raise ConfigError(f"SLACK_API_URL must be an http(s) URL, not {api_url!r}.")
        if not api_url.endswith("/"):
            api_url += "/"
        encryption_key = text("CRMBOT_ENCRYPTION_KEY")
        if encryption_key is not None:
            try:
                parse_keys(encryption_key)
            except ValueError as problem:
                raise ConfigError(
                    f"CRMBOT_ENCRYPTION_KEY is not usable: {problem}. It encrypts the Slack "
                    "tokens of OAuth installations in the database; make a key with "
                    "`CRMBOT_ENCRYPTION_KEY= crmbot encrypt-tokens --new-key` and list old keys "
                    "after the new one, separated by commas, while rotating. Leave it unset to "
                    "store tokens unencrypted."
                ) from None
        command = text("CRMBOT_COMMAND") or "/crm"
        if not command.startswith("/") or " " in command:
            raise ConfigError(f"CRMBOT_COMMAND must look like /crm, not {command!r}.")
        return cls(
            database_url=text("DATABASE_URL") or "sqlite:///crmbot.db",
            slack_bot_token=text("SLACK_BOT_TOKEN"),
            slack_signing_secret=text("SLACK_SIGNING_SECRET"),
            slack_client_id=text("SLACK_CLIENT_ID"),
            slack_client_secret=text("SLACK_CLIENT_SECRET"),
            slack_app_token=text("SLACK_APP_TOKEN"),
            slack_api_url=api_url,
            port=_int(env, "PORT", 3000, low=1, high=65535),
            reminder_interval=_int(env, "CRMBOT_REMINDER_INTERVAL", 60, low=5, high=86400),
            reminder_lease=_int(env, "CRMBOT_REMINDER_LEASE", 300, low=10, high=86400),
            scheduler_in_web=_bool(env, "CRMBOT_WEB_SCHEDULER", True),
            command=command,
            intake_token=text("CRMBOT_INTAKE_TOKEN"),
            team_id=text("CRMBOT_TEAM_ID"),
            threads=_int(env, "CRMBOT_THREADS", 16, low=2, high=256),
            db_pool_size=_int(env, "CRMBOT_DB_POOL_SIZE", 0, low=1, high=500) or None,
            db_max_overflow=(
                _int(env, "CRMBOT_DB_MAX_OVERFLOW", 0, low=0, high=500)
                if text("CRMBOT_DB_MAX_OVERFLOW")
                else None
            ),
            encryption_key=encryption_key,
            workers=_int(env, "CRMBOT_WORKERS", 2, low=0, high=64),
            worker_nice=_int(env, "CRMBOT_WORKER_NICE", 10, low=0, high=19),
        )

    def token_cipher(self) -> TokenCipher | None:
        """What seals installation tokens at rest: None when CRMBOT_ENCRYPTION_KEY is unset."""
        return TokenCipher.from_setting(self.encryption_key)

    def mode_or_none(self) -> Mode | None:
        if self.slack_client_id and self.slack_client_secret:
            return Mode.OAUTH
        if self.slack_bot_token:
            return Mode.SINGLE
        return None

    def require_http(self) -> Mode:
        """Check what the HTTP server needs; raise ConfigError saying what to set."""
        missing = []
        if not self.slack_signing_secret:
            missing.append("SLACK_SIGNING_SECRET (Basic Information > App Credentials)")
        mode = self.mode_or_none()
        if mode is None:
            missing.append(
                "either SLACK_BOT_TOKEN (OAuth & Permissions > Bot User OAuth Token, for one "
                "workspace) or SLACK_CLIENT_ID and SLACK_CLIENT_SECRET (to install in many)"
            )
        if missing:
            raise ConfigError(
                "crmbot can't talk to Slack yet: set "
                + " and ".join(missing)
                + " in the environment or in a .env file next to where you run crmbot. "
                "See the README section 'Create the Slack app'. To try crmbot without Slack, "
                "run `make demo`."
            )
        assert mode is not None
        return mode

    def require_socket(self) -> None:
        """Check what Socket Mode needs; raise ConfigError saying what to set."""
        missing = []
        if not self.slack_app_token:
            missing.append(
                "SLACK_APP_TOKEN (Basic Information > App-Level Tokens, scope connections:write)"
            )
        if not self.slack_bot_token:
            missing.append("SLACK_BOT_TOKEN (OAuth & Permissions > Bot User OAuth Token)")
        if missing:
            raise ConfigError(
                "Socket Mode needs " + " and ".join(missing) + ", set in the environment or in "
                "a .env file. Socket Mode serves one workspace; for many, use `crmbot serve` "
                "with SLACK_CLIENT_ID and SLACK_CLIENT_SECRET."
            )


def _redact_url(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
    return url
