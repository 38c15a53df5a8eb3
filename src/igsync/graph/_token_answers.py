"""What Meta's token endpoints answer: a new token and its expiry, or what debug_token says of
one (GRAPH_API.md §4)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import SecretStr

from igsync.errors import ErrorKind, GraphError
from igsync.redact import register_secret


@dataclass(frozen=True)
class TokenGrant:
    """A token Meta just issued; `expires_at` is None when Meta left out `expires_in`."""

    access_token: SecretStr
    expires_at: datetime | None


@dataclass(frozen=True)
class TokenDebug:
    """What `debug_token` says of a token (§4)."""

    is_valid: bool
    #: None: never expires (Meta's `expires_at: 0`) or not said
    expires_at: datetime | None
    #: when Meta issued the token (None: not said, as for an invalid token)
    issued_at: datetime | None
    #: data access can end before the token does
    data_access_expires_at: datetime | None
    scopes: list[str]
    error: str | None


def unix_time(value: Any) -> datetime | None:
    """Meta's unix seconds as UTC; None for 0 ("never") or anything that is not a number."""
    if isinstance(value, int) and value > 0:
        return datetime.fromtimestamp(value, UTC)
    return None


def grant_of(body: Any, now: datetime) -> TokenGrant:
    """The token in an exchange or refresh answer, its expiry counted from `now` (when the
    request was sent). Raises GraphError when there is no token; registers it as a secret."""
    token = body.get("access_token") if isinstance(body, dict) else None
    if not isinstance(token, str) or not token:
        raise GraphError(
            "the token endpoint answered without an access_token", kind=ErrorKind.INVALID
        )
    register_secret(token)
    expires_in = body.get("expires_in")
    expires_at = now + timedelta(seconds=expires_in) if isinstance(expires_in, int) else None
    return TokenGrant(SecretStr(token), expires_at)
