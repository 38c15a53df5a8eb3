"""The token registry: which tokens exist, whose they are, and when they stop working (§4).

A token the simulator never heard of is neither expired nor revoked: whether it is accepted is
up to the token mode (`strict_tokens`), which the callers apply.
"""

from __future__ import annotations

import dataclasses
import secrets
import string
from datetime import datetime, timedelta

from ._errors import JSON, USER_LOGGED_OUT, from_sample, session_expired
from ._metrics import stable_hash
from ._model import TOKEN_KINDS, TokenInfo, TokenKind

# A fresh long-lived token's expires_in in Meta's docs samples of both the exchange and the
# refresh (5183944 s: 60 days less the seconds Meta spent issuing it).
LONG_LIVED = timedelta(seconds=5_183_944)
DATA_ACCESS = timedelta(days=90)  # GRAPH_API §4: data access ends 90 days on
# Facebook Login user tokens start "EAA"; Instagram Login ones "IGAA" (the Basic Display
# API's "IGQV" tokens died with it). The rest is opaque and long, like Meta's.
_PREFIXES: dict[str, str] = {"facebook_login": "EAAG", "instagram_login": "IGAA"}
_SHAPES: tuple[tuple[str, TokenKind], ...] = (("EAA", "facebook_login"), ("IG", "instagram_login"))
_ALPHABET = string.ascii_letters + string.digits
_TOKEN_LENGTH = 180


def kind_of_shape(token: str) -> TokenKind | None:
    """The login a token's prefix shows (None: neither), as a host tells whose token it got:
    Facebook Login tokens start "EAA", Instagram Login ones "IG" ("IGAA", formerly "IGQV")."""
    for prefix, kind in _SHAPES:
        if token.startswith(prefix):
            return kind
    return None


def mint_token(kind: TokenKind) -> str:
    """A new opaque token of that kind; unique with overwhelming probability."""
    body = "".join(secrets.choice(_ALPHABET) for _ in range(_TOKEN_LENGTH - 4))
    return _PREFIXES[kind] + body


def user_id_of(info: TokenInfo | None, token: str) -> str:
    """debug_token's `user_id`: the Instagram user for an Instagram Login token; for Facebook
    Login, the app-scoped id of the Facebook user who linked the account (a stable 16-digit
    id, like the live captures')."""
    if info is not None and info.account_id is not None and info.kind == "instagram_login":
        return info.account_id
    seed = info.account_id if info is not None and info.account_id is not None else token
    return str(10**15 + stable_hash("facebook-user", seed) % (9 * 10**15))


class TokenRegistry:
    """Every token the simulator knows, plus expiries and logouts of tokens it does not."""

    def __init__(self) -> None:
        self._tokens: dict[str, TokenInfo] = {}
        # `expire_token` / `revoke_token` also work on tokens nobody registered (permissive mode)
        self._expired_strays: dict[str, datetime] = {}
        self._revoked_strays: set[str] = set()

    def issue(
        self,
        account_id: str | None,
        kind: TokenKind,
        *,
        issued_at: datetime,
        expires_at: datetime | None,
        data_access_expires_at: datetime | None = None,
    ) -> str:
        if kind not in TOKEN_KINDS:
            msg = f"unknown token kind {kind!r}; expected one of {sorted(TOKEN_KINDS)}"
            raise ValueError(msg)
        token = mint_token(kind)
        while token in self._tokens:  # pragma: no cover - 1 in 62**176
            token = mint_token(kind)
        self.register(
            token,
            TokenInfo(
                account_id=account_id,
                kind=kind,
                issued_at=issued_at,
                expires_at=expires_at,
                data_access_expires_at=data_access_expires_at or issued_at + DATA_ACCESS,
            ),
        )
        return token

    def register(self, token: str, info: TokenInfo) -> None:
        self._tokens[token] = info

    def get(self, token: str) -> TokenInfo | None:
        return self._tokens.get(token)

    def expires_at(self, token: str) -> datetime | None:
        """When the token expires or expired (None: never, or not known)."""
        info = self._tokens.get(token)
        return info.expires_at if info is not None else self._expired_strays.get(token)

    def owners(self) -> dict[str, str | None]:
        return {token: info.account_id for token, info in self._tokens.items()}

    def expire(self, token: str, now: datetime) -> None:
        """Expired as of `now`, unless it expired earlier already."""
        info = self._tokens.get(token)
        if info is None:
            self._expired_strays.setdefault(token, now)
        elif info.expires_at is None or info.expires_at > now:
            self._tokens[token] = dataclasses.replace(info, expires_at=now)

    def revoke(self, token: str) -> None:
        info = self._tokens.get(token)
        if info is None:
            self._revoked_strays.add(token)
        else:
            self._tokens[token] = dataclasses.replace(info, revoked=True)

    def problem(self, token: str, now: datetime) -> JSON | None:
        """The error body a logged-out or expired token earns, in either token mode; None if
        it is neither (which does not make an unknown token valid in strict mode)."""
        info = self._tokens.get(token)
        if token in self._revoked_strays or (info is not None and info.revoked):
            return from_sample(USER_LOGGED_OUT)
        expired_at = self._expired_strays.get(token)
        if info is not None and info.expires_at is not None and info.expires_at <= now:
            expired_at = info.expires_at
        if expired_at is not None:
            return session_expired(expired_at, now)
        return None
