"""`igsync accounts rekey`: every stored token encrypted with IGSYNC_TOKEN_KEYS' first key.

Key rotation (README, "Tokens at rest"): put the new key first in IGSYNC_TOKEN_KEYS and keep
the old ones after it, run rekey, then drop the old keys. Plain rows (written by the user's app)
are encrypted on the way. Each row is rewritten through the store's compare-and-swap
`update_token`, so a row a refresh changed meanwhile is left alone (and reported), never
overwritten with a stale token.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from igsync.errors import ConfigError, StoreError
from igsync.models import BadTokenRow, TokenUpdate
from igsync.store import Store, iter_tokens
from igsync.token_crypto import KEYGEN, VARIABLE, active_keys


class RekeyFailure(BaseModel):
    """A row rekey could not rewrite, and why (never its token)."""

    token_id: str
    user_id: str | None
    account_id: str | None
    error: str


class RekeyReport(BaseModel):
    """What `accounts rekey` did (with --dry-run: would do), in rows of `user_tokens`."""

    dry_run: bool
    #: keys in IGSYNC_TOKEN_KEYS; the first one encrypts
    keys: int
    #: plain tokens encrypted with the first key
    encrypted: int = 0
    #: tokens re-encrypted from a later key to the first
    reencrypted: int = 0
    #: tokens already encrypted with the first key, left as they are
    current: int = 0
    failed: list[RekeyFailure] = Field(default_factory=list)


async def rekey_tokens(store: Store, *, dry_run: bool = False) -> RekeyReport:
    """Encrypt every instagram token of `store` with the first key of IGSYNC_TOKEN_KEYS.

    Rows are walked a page at a time (iter_tokens). A row that cannot be read (a BadTokenRow:
    no key fits, or a malformed value), that another process changed meanwhile, or whose write
    failed is a failure of its own; the other rows go on. Raises ConfigError when no keys are
    set (token_crypto.use_keys).
    """
    keys = active_keys()
    if keys is None:
        raise ConfigError(
            f"{VARIABLE} is not set: set it to the key to encrypt with first, then any older"
            f" keys, comma-separated (a new key: {KEYGEN})"
        )
    report = RekeyReport(dry_run=dry_run, keys=keys.count)
    async for token in iter_tokens(store):
        if isinstance(token, BadTokenRow):
            report.failed.append(
                RekeyFailure(
                    token_id=token.token_id,
                    user_id=token.u_id,
                    account_id=token.account_id,
                    error=token.problem,
                )
            )
            continue
        if token.at_rest == "current_key":
            report.current += 1
            continue
        error = None
        if not dry_run:
            update = TokenUpdate(
                access_token=token.access_token,
                expires_at=token.expires_at,
                status=token.status,
                last_refreshed_at=token.last_refreshed_at,
            )
            secret = token.access_token.get_secret_value()
            try:
                if not await store.update_token(token.token_id, secret, update):
                    error = "changed by another process meanwhile; run rekey again"
            except StoreError as exc:
                error = f"could not rewrite it: {exc}"
        if error is not None:
            report.failed.append(
                RekeyFailure(
                    token_id=str(token.token_id),
                    user_id=str(token.u_id),
                    account_id=token.account_id,
                    error=error,
                )
            )
        elif token.at_rest == "plain":
            report.encrypted += 1
        else:
            report.reencrypted += 1
    return report


__all__ = ["RekeyFailure", "RekeyReport", "rekey_tokens"]
