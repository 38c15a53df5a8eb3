"""Per-account claims: overlapping `sync-all` runs never sync one account twice (issue 12).

Before an account's first Graph call a run takes its claim, a row of `igsync_claims` (schema
migration 6), with the store's compare-and-swap (`Store.claim_account`); an account another run
holds is reported as skipped, not synced and not failed. The run releases each claim when the
account's sync log is written. While it runs, it renews all its claims in one statement every
third of `ttl_s`, so a claim lapses only when its run stops: after a crash (or a `kill -9`)
every account of the run is free again within `ttl_s`.

The expiry is compared with the claiming run's clock (UTC): on PostgreSQL and Supabase with
several machines, their clocks must agree to well under `ttl_s`, which NTP gives.

Dry runs take no claims (they write nothing). Rows igsync cannot use and rows without an
account id take none either: they fail before any request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
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

    @property
    def held(self) -> int:
        """How many accounts this run holds now."""
        return len(self._held)

    async def take(self, token: TokenRow) -> AccountClaim | None:
        """Claim the row's account; None for a row that takes no claim (see the module).

        Raises StoreError when the store fails.
        """
        if not isinstance(token, UserToken) or token.account_id is None:
            return None
        now = self._clock()
        until = now + timedelta(seconds=self.ttl_s)
        claim = await self._store.claim_account(
            token.u_id, token.account_id, self.run_id, now, until, self.started
        )
        if claim.claimed:
            self._held.add((token.u_id, token.account_id))
        return claim

    async def release(self, token: TokenRow) -> None:
        """Give the account back if this run holds it. A failed release is logged, not raised:
        the claim expires on its own, and the account's result is already out."""
        if not isinstance(token, UserToken) or token.account_id is None:
            return
        key = (token.u_id, token.account_id)
        if key not in self._held:
            return
        self._held.discard(key)
        try:
            if not await self._store.release_claim(*key, self.run_id, self._clock()):
                log.warning(
                    "account %s: its claim had expired and another run took it over",
                    token.account_id,
                )
        except StoreError as error:
            log.warning("account %s: claim not released (%s); it expires", key[1], error)

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
        started = time.monotonic()
        claim = await self.take(token)
        if claim is None or claim.claimed:
            return None
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
            duration_s=round(time.monotonic() - started, 3),
        )
