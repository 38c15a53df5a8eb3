"""A `user_tokens` row as a `UserToken`, or as a `BadTokenRow` saying what is wrong (issue 11).

The table belongs to the user's app, which can write anything its column types allow: a
SQLite text `expires_at` of 'next tuesday', a `status` of 'banana', an `account_id` of
'../../me' (which would go into a request path), an empty token. Every store reads its rows
through `token_row`, which judges each row on its own, so one bad row is its account's
failure, never the end of a `sync-all`, `accounts list` or `refresh-token`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import SecretStr, ValidationError

from igsync.inputs import ACCOUNT_ID_SHAPE, is_account_id
from igsync.models import BadTokenRow, TokenRow, UserToken
from igsync.redact import redact, register_secret
from igsync.token_crypto import UnreadableToken, is_sealed, unseal

#: what a column must hold, said the way a fix reads
_EXPECTED = {
    "token_id": "is not a UUID",
    "u_id": "is not a UUID",
    "platform": "is not a platform igsync knows",
    "expires_at": "is not a timestamp",
    "last_refreshed_at": "is not a timestamp",
    "created_at": "is not a timestamp",
    "updated_at": "is not a timestamp",
    "token_kind": "is not facebook_login or instagram_login",
    "status": "is not one of ok, expiring, expired, needs_reauth",
}
#: a stored value is shown up to this many characters
_SHOWN = 40


def token_malformation(token: str) -> str | None:
    """Why a stored token cannot be sent in an Authorization header, else None.

    Meta's tokens are printable ASCII without spaces; anything else fails as a protocol
    error in httpx, per metric, instead of once, up front. Never says the token itself.
    """
    if not token.strip():
        return "empty"
    if not token.isascii():
        return "non-ASCII characters"
    # printable ASCII holds one whitespace character: the space (tabs and newlines are not)
    if not token.isprintable() or " " in token:
        return "whitespace or control characters"
    return None


def _clipped(value: object) -> str:
    text = str(value)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 1] + "…"


def _shown(value: object) -> str:
    """A stored value for a message: quoted, clipped, redacted (a token in the wrong column)."""
    return redact(repr(_clipped(value)))


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _timestamp(value: object) -> object:
    """ISO text (SQLite) as a datetime; anything else as it is, for pydantic to judge."""
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return value
    return value


def token_row(values: Mapping[str, Any]) -> TokenRow:
    """The row of `user_tokens` with these column values, judged on its own.

    The token is registered for redaction first, whatever else is wrong with the row: a
    malformed row's token is still a secret. An encrypted token (token_crypto.py) is decrypted
    here, so every reader gets the token itself; one that cannot be decrypted makes the row a
    BadTokenRow naming IGSYNC_TOKEN_KEYS, holding the encrypted value.
    """
    secret = values.get("access_token")
    if isinstance(secret, str) and not is_sealed(secret):
        # an encrypted value is masked by its shape (redact.py); unseal registers the token
        register_secret(secret)
    raw_id = _text(values.get("token_id")) or ""
    user = _text(values.get("u_id"))
    account = _text(values.get("account_id"))

    def bad(problem: str) -> BadTokenRow:
        return BadTokenRow(
            token_id=raw_id,
            u_id=user,
            account_id=account,
            problem=f"user_tokens row {redact(_clipped(raw_id))}: {problem}",
            access_token=SecretStr(secret) if isinstance(secret, str) else None,
        )

    for column in ("token_id", "u_id"):
        try:
            UUID(str(values.get(column)))
        except ValueError:
            return bad(f"{column} {_shown(values.get(column))} is not a UUID; fix the row")
    at_rest = "plain"
    if isinstance(secret, str):
        try:
            secret, at_rest = unseal(secret)
        except UnreadableToken as exc:
            return bad(str(exc))
    if not isinstance(secret, str) or (reason := token_malformation(secret)) is not None:
        reason = "not text" if not isinstance(secret, str) else reason
        return bad(
            f"the stored token is malformed ({reason}); add it again with `igsync accounts add "
            f"--user {user} --account-id {account or 'ID'} --token-stdin`"
        )
    # anything but an account id would change the request path ('../../me' made igsync
    # call GET /me/insights)
    if account is not None and not is_account_id(account):
        return bad(f"account_id {_shown(account)}: expected {ACCOUNT_ID_SHAPE}; fix the row")
    fields = {**values, "access_token": secret, "at_rest": at_rest}
    for column in ("expires_at", "last_refreshed_at", "created_at", "updated_at"):
        fields[column] = _timestamp(fields.get(column))
    try:
        return UserToken.model_validate(fields)
    except ValidationError as exc:
        column = str(exc.errors(include_input=False)[0]["loc"][0])
        expected = _EXPECTED.get(column, "is not valid")
        return bad(f"{column} {_shown(values.get(column))} {expected}; fix the row")
