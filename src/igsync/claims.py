"""Per-account claims: overlapping `sync-all` runs never sync one account twice (issue 12).

Before an account's first Graph call a run takes its claim, a row of `igsync_claims` (schema
migration 6), with the store's compare-and-swap (`Store.claim_accounts`, a page of accounts at
once: `sync_all` claims the accounts it queues, so an account's claim is off its critical path);
an account another run holds is reported as skipped, not synced and not failed. The run
releases each claim when the account's sync log is written. While it runs, it renews all its
claims in one statement every third of `ttl_s`, so a claim lapses only when its run stops:
after a crash (or a `kill -9`) every account of the run is free again within `ttl_s`. An
account waiting in a run's queue holds its claim and is renewed with the others. A run that
stops early (its store stopped answering) ends the claims of the accounts it never finished
with one last store call, as if it had crashed (`Claims.abandon`, `expire_abandoned`): any
run may take them at once, none counts them done; when that call fails too, they expire
within `ttl_s`.

The expiry is compared with the claiming run's clock (UTC): on PostgreSQL and Supabase with
several machines, their clocks must agree to well under `ttl_s`, which NTP gives.

Dry runs take no claims (they write nothing). Rows igsync cannot use and rows without an
account id take none either: they fail before any request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from datetime import UTC, datetime, timedelta
from uuid import UUID

from igsync.errors import StoreError
from igsync.graph import RetryPolicy
from igsync.models import AccountClaim, FetchResult, TokenRow, UserToken, Window
from igsync.store import Store

log = logging.getLogger(__name__)

#: seconds a claim lasts unless renewed. Twice the budget of one Graph request, retries
#: included (RetryPolicy.timeout, 180 s): a run renews every third of it, so a store that
#: fails two renewals in a row still leaves the claims a minute; a crashed run's accounts are
#: free again six minutes after it stopped, well inside any cron interval.
CLAIM_TTL_S = 2 * RetryPolicy().timeout

SKIPPED = "skipped: being synced by another run"
DONE = "skipped: synced by another run while this one ran"


def skipped_note(claim: AccountClaim) -> str:
    """The note of an account another run holds or finished during this one:
    `skipped: … (claimed until <UTC time>)` or `skipped: … (finished at <UTC time>)`."""
    if claim.released_at is not None:
        return f"{DONE} (finished at {_utc_text(claim.released_at)})"
    return f"{SKIPPED} (claimed until {_utc_text(claim.claimed_until)})"


def _utc_text(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


class Claims:
    """The claims of one run (`run_id`, the run's sync-log run_id) on one store.

    `clock` gives the current time, UTC (tests move it). Not thread-safe; one event loop.
    """

    def __init__(
        self,
        store: Store,
        run_id: UUID,
        *,
        ttl_s: float = CLAIM_TTL_S,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if ttl_s <= 0:
            raise ValueError(f"a claim must last some time, not {ttl_s} s")
        self._store = store
        self.run_id = run_id
        self.ttl_s = ttl_s
        self._clock = clock or (lambda: datetime.now(UTC))
        #: accounts another run finished after this moment are not synced again
        self.started = self._clock()
        self._held: set[tuple[UUID, str]] = set()
        self._abandoned = 0

    @property
    def held(self) -> int:
        """How many accounts this run holds now."""
        return len(self._held)

    async def take(self, token: TokenRow) -> AccountClaim | None:
        """Claim the row's account; None for a row that takes no claim (see the module).

        Raises StoreError when the store fails.
        """
        return (await self.take_many([token]))[0]

    async def take_many(self, tokens: Sequence[TokenRow]) -> list[AccountClaim | None]:
        """Claim the rows' accounts in one store call (`Store.claim_accounts`): each row's
        claim, in order, None for a row that takes no claim (see the module).

        Raises StoreError when the store fails: then this run holds none of them (SQLite,
        PostgreSQL: nothing was taken; Supabase: what was taken expires in `ttl_s`).
        """
        keys = [_key(token) for token in tokens]
        wanted = [key for key in keys if key is not None]
        if not wanted:
            return [None] * len(keys)
        now = self._clock()
        until = now + timedelta(seconds=self.ttl_s)
        claims = await self._store.claim_accounts(wanted, self.run_id, now, until, self.started)
        self._held.update(key for key, claim in claims.items() if claim.claimed)
        return [None if key is None else claims[key] for key in keys]

    async def release(self, token: TokenRow) -> None:
        """Give the account back if this run holds it. A failed release is logged, not raised:
        the claim expires on its own, and the account's result is already out."""
        key = _key(token)
        if key is None or key not in self._held:
            return
        self._held.discard(key)
        try:
            if not await self._store.release_claim(*key, self.run_id, self._clock()):
                log.warning(
                    "account %s: its claim had expired and another run took it over",
                    key[1],
                )
        except StoreError as error:
            log.warning("account %s: claim not released (%s); it expires", key[1], error)

    def abandon(self, token: TokenRow) -> None:
        """Stop holding the account without asking the store (it stopped answering): its
        claim is no longer renewed; `expire_abandoned` ends it, else it expires within
        `ttl_s`."""
        key = _key(token)
        if key is not None and key in self._held:
            self._held.discard(key)
            self._abandoned += 1

    def abandon_all(self) -> None:
        """`abandon` every account this run holds: a run cancelled part way (a second
        SIGINT/SIGTERM), whose accounts in flight were dropped; `expire_abandoned` then ends
        their claims in one call."""
        self._abandoned += len(self._held)
        self._held.clear()

    def release_lost(self, token: TokenRow) -> None:
        """The store lost the account's release (the transaction it was in was rolled back):
        its claim is still in the store, so `expire_abandoned` ends it as an abandoned one."""
        if _key(token) is not None:
            self._abandoned += 1

    async def expire_abandoned(self) -> int:
        """End every claim this run still has in the store now, in one call, once no account
        of the run is in flight: each ends as a crashed run's does on expiry (any run takes it
        at once; none counts it done, as a release would), so the next run does not skip
        the accounts this one abandoned. Nothing to do (no call) when none was abandoned.
        Returns how many claims ended; a store that fails is logged, not raised: the claims
        then expire within `ttl_s`."""
        if not self._abandoned:
            return 0
        self._abandoned = 0
        try:
            # renew_claims to now: the store's compare-and-swap takes over a claim whose
            # expiry is at or before the asking run's now
            return await self._store.renew_claims(self.run_id, self._clock())
        except StoreError as error:
            log.warning(
                "the claims of the accounts not synced were not ended (%s); they expire in %.0f s",
                error,
                self.ttl_s,
            )
            return 0

    async def renew(self) -> int:
        """Push every claim of this run `ttl_s` past now; returns how many the store holds."""
        return await self._store.renew_claims(
            self.run_id, self._clock() + timedelta(seconds=self.ttl_s)
        )

    @asynccontextmanager
    async def renewing(self) -> AsyncIterator[Claims]:
        """Renew this run's claims every `ttl_s / 3` while the block runs."""

        async def loop() -> None:
            while True:
                await asyncio.sleep(self.ttl_s / 3)
                if not self._held:
                    continue
                try:
                    await self.renew()
                except StoreError as error:
                    # the next tick tries again; two misses still leave a third of the time
                    log.warning("claims not renewed: %s", error)

        task = asyncio.create_task(loop(), name="igsync-claims-renewal")
        try:
            yield self
        finally:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task

    async def check(self, token: TokenRow, window: Window) -> FetchResult | None:
        """Claim the account: None when this run may sync it, else its skipped result."""
        return (await self.check_many([token], window))[0]

    async def check_many(
        self, tokens: Sequence[TokenRow], window: Window
    ) -> list[FetchResult | None]:
        """Claim the rows' accounts in one store call (`take_many`): for each row, in order,
        None when this run may sync it (or it takes no claim), else its skipped result.

        Raises StoreError when the store fails.
        """
        started = time.monotonic()
        claims = await self.take_many(tokens)
        duration_s = round(time.monotonic() - started, 3)
        return [
            None if claim is None or claim.claimed else _skipped(token, claim, window, duration_s)
            for token, claim in zip(tokens, claims, strict=True)
        ]


def _key(token: TokenRow) -> tuple[UUID, str] | None:
    """The claim's key of a row that takes one (see the module), else None."""
    if not isinstance(token, UserToken) or token.account_id is None:
        return None
    return (token.u_id, token.account_id)


def _skipped(
    token: TokenRow, claim: AccountClaim, window: Window, duration_s: float
) -> FetchResult:
    return FetchResult(
        success=True,
        skipped=True,
        total_inserted=0,
        total_errors=0,
        metrics_inserted={},
        errors=[],
        notes=[skipped_note(claim)],
        account_id=token.account_id,
        user_id=str(token.u_id),
        window=window,
        duration_s=duration_s,
    )
