"""Tokens encrypted at rest (issue 11): optional, with Fernet keys from IGSYNC_TOKEN_KEYS.

IGSYNC_TOKEN_KEYS is a comma-separated list of Fernet keys (`cryptography`, the `igsync[crypto]`
extra). The first key encrypts every token igsync writes (`accounts add`, each refresh); every
key decrypts, so keys rotate without downtime: put the new key first, run
`igsync accounts rekey`, then drop the old one (README, "Tokens at rest"). Fernet is
authenticated encryption (AES-128-CBC with HMAC-SHA256, https://cryptography.io/en/latest/fernet/):
a value changed in the database or read with the wrong key fails to decrypt, it never yields a
wrong token.

An encrypted value is `igsync:fernet:` + the Fernet token, so plain rows (written by the user's
app) and encrypted ones live side by side: a value without the prefix is a plain token. The
stores encrypt on write (`seal`) and `token_rows.token_row` decrypts on read (`unseal`); a row
that cannot be decrypted is that account's failure, naming IGSYNC_TOKEN_KEYS, never the value.

The keys are process-wide (`use_keys`), set where settings are loaded, because every store
reads and writes tokens through the same two functions.
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING, Literal

from igsync.errors import ConfigError
from igsync.redact import register_secret

if TYPE_CHECKING:
    from cryptography.fernet import Fernet, MultiFernet

#: the environment variable holding the keys
VARIABLE = "IGSYNC_TOKEN_KEYS"
#: what starts every encrypted token; Meta's tokens (EAA…, IG…) never hold a colon
PREFIX = "igsync:fernet:"
#: how a token is stored: plain, or encrypted with the first key, or with a later one
AtRest = Literal["plain", "current_key", "older_key"]
#: how to make a key, for messages and the README
KEYGEN = 'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'


class UnreadableToken(Exception):
    """A stored token is encrypted and cannot be decrypted; the message names IGSYNC_TOKEN_KEYS
    and the fix, never the value or a key."""


class TokenKeys:
    """Parsed IGSYNC_TOKEN_KEYS: the first key encrypts, all of them decrypt.

    Raises ConfigError (one line naming IGSYNC_TOKEN_KEYS, never a key) when the text holds no
    key, a key is not a Fernet key (32 url-safe base64-encoded bytes), or `cryptography` is
    not installed.
    """

    def __init__(self, text: str) -> None:
        try:
            from cryptography.fernet import Fernet, MultiFernet
        except ImportError:
            raise ConfigError(
                f"{VARIABLE}: encrypting tokens needs cryptography, the crypto extra: uv tool"
                " install '.[crypto]' in the igsync checkout"
            ) from None
        keys = [k.strip() for k in text.split(",")]
        if not any(keys):
            raise ConfigError(f"{VARIABLE}: no key; generate one with {KEYGEN}")
        for key in keys:
            register_secret(key)
        fernets: list[Fernet] = []
        for number, key in enumerate(keys, start=1):
            try:
                fernets.append(Fernet(key))
            except ValueError:  # binascii.Error is one too
                raise ConfigError(
                    f"{VARIABLE}: key {number} of {len(keys)} is not a Fernet key (32 url-safe"
                    f" base64-encoded bytes); generate one with {KEYGEN}"
                ) from None
        self._first: Fernet = fernets[0]
        self._all: MultiFernet = MultiFernet(fernets)
        self.count = len(fernets)

    def encrypt(self, token: str) -> str:
        """`token` encrypted with the first key, with PREFIX."""
        return PREFIX + self._first.encrypt(token.encode()).decode("ascii")

    def decrypt(self, stored: str) -> tuple[str, AtRest]:
        """The token in a value with PREFIX, and whether the first key or a later one opened
        it. Raises UnreadableToken when no key does (or the value was altered)."""
        from cryptography.fernet import InvalidToken

        body = stored.removeprefix(PREFIX).encode("ascii", "replace")
        try:
            return self._first.decrypt(body).decode(), "current_key"
        except InvalidToken:
            pass
        try:
            return self._all.decrypt(body).decode(), "older_key"
        except (InvalidToken, UnicodeDecodeError):
            raise UnreadableToken(
                f"the stored token is encrypted with a key that is not in {VARIABLE} (or it was"
                f" altered); add the key it was encrypted with to {VARIABLE}"
            ) from None


_active: TokenKeys | None = None


def use_keys(keys: TokenKeys | None) -> None:
    """Encrypt (and decrypt) with these keys from now on, in this process; None: no keys."""
    global _active
    _active = keys


def active_keys() -> TokenKeys | None:
    """The keys in use, or None when tokens are stored plain."""
    return _active


def is_sealed(stored: str) -> bool:
    """Whether a stored value is an encrypted token (has PREFIX)."""
    return stored.startswith(PREFIX)


def seal(token: str) -> str:
    """The value to store for `token`: encrypted with the first key, or plain without keys."""
    return token if _active is None else _active.encrypt(token)


def unseal(stored: str) -> tuple[str, AtRest]:
    """The token a stored value holds, and how it was stored.

    Raises UnreadableToken for an encrypted value without keys, or with none that fits.
    """
    if not is_sealed(stored):
        return stored, "plain"
    if _active is None:
        raise UnreadableToken(
            f"the stored token is encrypted and {VARIABLE} is not set; set it to the key(s)"
            " igsync encrypted it with"
        )
    token, at_rest = _active.decrypt(stored)
    register_secret(token)
    return token, at_rest


def holds(stored: object, expected: str) -> bool:
    """Whether a stored value (plain or encrypted) holds the token `expected`: the stores'
    compare-and-swap compares tokens, and an encrypted value differs at every write. A value
    that is not text (SQLite takes anything the app writes) holds no token."""
    if not isinstance(stored, str):
        return False
    try:
        token, _ = unseal(stored)
    except UnreadableToken:
        return False
    return hmac.compare_digest(token.encode(), expected.encode())


def parse_keys(text: str | None) -> TokenKeys | None:
    """IGSYNC_TOKEN_KEYS as keys (None when unset); raises ConfigError as TokenKeys does."""
    return None if text is None else TokenKeys(text)


__all__ = [
    "KEYGEN",
    "PREFIX",
    "VARIABLE",
    "AtRest",
    "TokenKeys",
    "UnreadableToken",
    "active_keys",
    "holds",
    "is_sealed",
    "parse_keys",
    "seal",
    "unseal",
    "use_keys",
]
