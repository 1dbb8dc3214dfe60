"""Secrets at rest: Slack installation tokens sealed with Fernet (CRMBOT_ENCRYPTION_KEY).

`CRMBOT_ENCRYPTION_KEY` holds one Fernet key, or several separated by commas: the first
seals everything written from now on, every one of them opens what is stored (key
rotation). A sealed value is `fernet:` followed by the Fernet token, so a plaintext row
(written before the key was set) is told apart without guessing and is still read.
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import Dialect, Text
from sqlalchemy.types import TypeDecorator

SEALED = "fernet:"


class TokenKeyError(Exception):
    """A stored token can't be opened with the configured key(s); the message says why."""


def parse_keys(raw: str) -> list[str]:
    """The comma-separated Fernet keys of CRMBOT_ENCRYPTION_KEY; ValueError says what's wrong."""
    keys = [part.strip() for part in raw.split(",") if part.strip()]
    if not keys:
        raise ValueError("it holds no key")
    for number, key in enumerate(keys, 1):
        try:
            Fernet(key)
        except (ValueError, TypeError):
            which = f"key {number} of {len(keys)}" if len(keys) > 1 else "the key"
            # Never echo the value: it is a secret, even when it is a wrong one.
            raise ValueError(
                f"{which} is not a Fernet key (32 random bytes, url-safe base64: 44 characters "
                "ending in '=')"
            ) from None
    return keys


def new_key() -> str:
    """A fresh random Fernet key."""
    return Fernet.generate_key().decode()


class TokenCipher:
    """Seals and opens token strings; the first key seals, any key opens."""

    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise ValueError("TokenCipher needs at least one key")
        fernets = [Fernet(key) for key in keys]
        self._first, self._fernet = fernets[0], MultiFernet(fernets)

    @classmethod
    def from_setting(cls, raw: str | None) -> TokenCipher | None:
        """The cipher for a CRMBOT_ENCRYPTION_KEY value, or None when it is unset."""
        return cls(parse_keys(raw)) if raw and raw.strip() else None

    def seal(self, value: str) -> str:
        """The value encrypted with the first key (a sealed value is left as it is)."""
        if is_sealed(value):
            return value
        return SEALED + self._fernet.encrypt(value.encode()).decode()

    def open(self, value: str) -> str:
        """The plaintext of a sealed value (plaintext passes through)."""
        if not is_sealed(value):
            return value
        try:
            return self._fernet.decrypt(value.removeprefix(SEALED).encode()).decode()
        except InvalidToken:
            raise TokenKeyError(
                "A Slack token in the database was encrypted with a key that "
                "CRMBOT_ENCRYPTION_KEY does not hold. Put the key it was written with back into "
                "CRMBOT_ENCRYPTION_KEY (after the new one, separated by a comma), run "
                "`crmbot encrypt-tokens` to re-encrypt everything with the new key, then drop "
                "the old one."
            ) from None

    def reseal(self, value: str) -> str:
        """The value sealed with the first key, whatever key (or none) it had before; a value
        the first key already sealed comes back unchanged."""
        if not is_sealed(value):
            return self.seal(value)
        try:
            self._first.decrypt(value.removeprefix(SEALED).encode())
            return value
        except InvalidToken:
            pass  # an older key's: rotate it
        try:
            token = self._fernet.rotate(value.removeprefix(SEALED).encode())
        except InvalidToken:
            self.open(value)  # raises the explanation
            raise
        return SEALED + token.decode()


def is_sealed(value: str) -> bool:
    """Whether a stored value is encrypted (Slack tokens never start with the marker)."""
    return value.startswith(SEALED)


def open_without_key(value: str) -> str:
    """A stored value read while no key is configured: plaintext, or a clear error."""
    if is_sealed(value):
        raise TokenKeyError(
            "The Slack tokens in the database are encrypted, but CRMBOT_ENCRYPTION_KEY is not "
            "set. Set it to the key they were written with (the README section 'Secrets and "
            "erasure' explains keys and rotation)."
        )
    return value


class SealedToken(TypeDecorator[str]):
    """A text column whose values are sealed on the way in and opened on the way out.

    With no cipher, values are written as they are, and a sealed value read back is an
    error that says to set the key, never a token Slack would reject."""

    impl = Text
    cache_ok = True

    def __init__(self, cipher: TokenCipher | None) -> None:
        super().__init__()
        self.cipher = cipher

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        if value is None or self.cipher is None:
            return value
        return self.cipher.seal(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return self.cipher.open(value) if self.cipher is not None else open_without_key(value)
