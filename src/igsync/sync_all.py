"""Sync every Instagram account of `user_tokens`: the job behind `igsync sync-all` (DESIGN §4).

Each account goes through `fetch_account` (token policy, verified write, sync log); this module
adds what many accounts need: a bound on accounts in flight, isolation (one account's failure is
that account's failed FetchResult, never the end of the run), stable shards for N workers side by
side, one `run_id` shared by every sync-log row of a run, and a callback as each account ends.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import time
from collections.abc import Callable, Coroutine, Sequence
from contextlib import AbstractAsyncContextManager, nullcontext, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NoReturn, TypeVar

from igsync.claims import CLAIM_TTL_S, Claims
from igsync.errors import IgsyncError, InputError, StoreError, StoreUnavailableError
from igsync.graph import GraphClient
from igsync.models import FetchResult, SyncReport, TokenRow
from igsync.redact import redact, release_secret
from igsync.store import Store, iter_tokens
from igsync.sync import (
    Gathered,
    RunContext,
    Tally,
    gather_account,
    not_attempted,
    record,
    record_group,
    unkept,
    write_run_log,
)
from igsync.tokens import AppCredentials, account_from_token
from igsync.window import WindowPlan

log = logging.getLogger(__name__)

T = TypeVar("T")

#: an account's claim as the reader decided it: None (sync it), its skipped result, or the
#: error its page's claim met
Decided = FetchResult | Exception | None

#: accounts in flight at once. With Graph batch requests 64 accounts fill a batch or two per
#: round trip (benchmarks/sync_all.py); each call still counts against its own account's
#: rate limit, and usage-header pacing (DESIGN §7) slows every call near a limit.
DEFAULT_CONCURRENCY = 64
MAX_CONCURRENCY = 256

#: accounts claimed in one store call (Claims.check_many) as the reader queues them: one
#: statement (PostgreSQL) or transaction (SQLite) per this many accounts, not one each on every
#: account's critical path; few enough that a run holds few claims ahead of its work.
CLAIM_PAGE = 64
#: seconds a cancelled run gives its one last store call, ending its claims
CANCELLED_CLAIMS_S = 5.0

#: the most PostgreSQL connections sync-all opens, whatever its concurrency: Supabase's session
#: pooler admits as many clients per role and database as its pool size (15 on its smaller
#: computes; the next client queues up to a minute, then fails: supabase/supabase discussion
#: 22305), and PostgreSQL's default max_connections of 100 must hold N shards side by side
#: (4 x 12 = 48) and every other client.
MAX_STORE_CONNECTIONS = 12

_SHARD = re.compile(r"(\d+)/(\d+)", re.ASCII)


@dataclass(frozen=True)
class Shard:
    """The `index`-th (1-based) of `count` partitions of the accounts, the same in every run.

    An account's partition is a SHA-256 of (u_id, account_id), not Python's `hash()`, which
    changes between processes (PYTHONHASHSEED): N workers on N machines must agree.
    """

    index: int
    count: int

    def __post_init__(self) -> None:
        if self.count < 1:
            msg = f"--shard {self.index}/{self.count}: N, the number of shards, must be at least 1"
            raise InputError(msg)
        if not 1 <= self.index <= self.count:
            msg = f"--shard {self.index}/{self.count}: K must be between 1 and N ({self.count})"
            raise InputError(msg)

    def holds(self, token: TokenRow) -> bool:
        key = f"{token.u_id}:{token.account_id or ''}".encode()
        digest = int.from_bytes(hashlib.sha256(key).digest()[:8], "big")
        return digest % self.count == self.index - 1


def parse_shard(text: str) -> Shard:
    """`K/N` (1 ≤ K ≤ N) as a Shard; InputError for anything else."""
    match = _SHARD.fullmatch(text.strip())
    if match is None:
        raise InputError(f"--shard {text!r}: expected K/N, e.g. 1/4 (the first of 4 shards)")
    return Shard(int(match[1]), int(match[2]))


async def sync_all(
    graph: GraphClient,
    store: Store,
    *,
    metrics: Sequence[str] | None = None,
    plan: WindowPlan,
    streams: Sequence[str] | None = None,
    app: AppCredentials | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    shard: Shard | None = None,
    dry_run: bool = False,
    now: datetime | None = None,
    on_result: Callable[[FetchResult], None] | None = None,
    keep_results: bool = True,
    on_queued: Callable[[int, bool], None] | None = None,
    claim_ttl_s: float | None = CLAIM_TTL_S,
    stop: Callable[[], str | None] | None = None,
) -> SyncReport:
    """Fetch and store every instagram row of `user_tokens` (of `shard`), `concurrency` at once.

    The rows are read a page at a time (keyset, `token_id` order) into a queue that
    `concurrency` workers take accounts from, `CLAIM_PAGE` accounts claimed at once as they
    are queued (below), so a worker goes from the queue straight to an account's Graph calls.
    A worker gathers an account's streams, hands them to the writers and takes the next
    account at once, so one account's write (and its output) overlaps the next one's Graph
    calls instead of delaying them. At most `concurrency` accounts gather and `concurrency`
    wait to be written; each of `concurrency` writers takes the account it waited for and
    those waiting then, up to the store's `write_group`, and writes them together
    (`record_group`: a statement per table and one of sync logs, not a few per account), or
    one by one when the store refuses the group. With a page of rows and a queue of
    `max(CLAIM_PAGE, concurrency)`: memory does not grow with the number of accounts.
    `on_result` hears each result as its account is written; the report's `results` are in
    that order, or empty with `keep_results=False` (the totals are kept either way). The env
    fallback (IG_ACCOUNT_ID) is not an account here: only rows are synced.

    When the store stops answering (a `StoreUnavailableError` anywhere), no more accounts are
    sent to Meta: every row read after that (while the store still gives rows: those already
    paged in, or a SQLite file that reads but cannot be written) becomes a failed result with
    `attempted` false, the run ends once the accounts in flight are reported, and the report
    says why (`stopped`) and fails. So too when the Graph API cannot be reached at all
    (`GraphClient.unreachable_reason`: calls in a row that never found a connection); the
    store still answering, the accounts not started take no claim.

    `on_queued(n, final)` hears how many accounts of this run (of this shard) are known so
    far, as pages of rows are read, and once more with `final=True` when every page is in: a
    progress bar's N.

    `stop()` is asked before each account starts and each row is read: once it gives a
    reason (the CLI's on SIGINT or SIGTERM), the accounts in flight finish and are written,
    no more rows are read, and each row already read becomes a failed result with
    `attempted` false, as above; the report's `stopped` is that reason. Cancelled instead (a
    second signal), the run ends every claim it held in one store call (at most
    `CANCELLED_CLAIMS_S`) before the CancelledError goes on: no report.

    Each account is claimed before its first call (igsync.claims, claims lasting `claim_ttl_s`
    seconds and renewed; None: no claims), in pages of `CLAIM_PAGE` as they are queued: one
    another run holds is a skipped result, not synced. An account waiting in the queue holds
    its claim (renewed with the others) until its sync log is written. A claim that fails
    fails each account of its page as its own claim would (not attempted when the store
    stopped answering). Once the store is down no claims are taken or released one by one;
    when the accounts in flight are done, one call ends the claims of every account the run
    did not finish (Claims.expire_abandoned: free for the next run at once, not counted
    done); if that call fails too, they expire within `claim_ttl_s`. A dry run takes no
    claims.
    """
    if not 1 <= concurrency <= MAX_CONCURRENCY:
        raise InputError(f"--concurrency {concurrency}: expected 1 to {MAX_CONCURRENCY}")
    # each queued account holds its claim: a chunk or so ahead of the gatherers is enough
    tokens: asyncio.Queue[tuple[TokenRow, Decided] | None] = asyncio.Queue(
        maxsize=max(CLAIM_PAGE, concurrency)
    )
    gathered: asyncio.Queue[tuple[TokenRow, Gathered | FetchResult] | None] = asyncio.Queue(
        maxsize=concurrency
    )
    tally = Tally(keep=keep_results)
    ctx = RunContext.create(
        graph, store, plan=plan, streams=streams, metrics=metrics, app=app, dry_run=dry_run, now=now
    )
    started = time.monotonic()
    claims = None
    if not dry_run and claim_ttl_s is not None:
        claims = Claims(store, ctx.run_id, ttl_s=claim_ttl_s)

    def halted() -> str | None:
        """Why no more accounts start, the store still answering (None: they do)."""
        return ctx.graph.unreachable_reason or (stop() if stop is not None else None)

    async def decide(page: list[TokenRow]) -> list[Decided]:
        """Each account's claim, in one store call: None (sync it), its skipped result, or
        the error its claim met. A run that starts no more accounts claims none."""
        if claims is None or ctx.health.reason is not None or halted() or not page:
            return [None] * len(page)
        try:
            return list(await claims.check_many(page, ctx.plan.requested))
        except Exception as error:
            ctx.health.saw(error)
            return [error] * len(page)

    async def enqueue(page: list[TokenRow]) -> None:
        queued, page[:] = page[:], []
        for token, decided in zip(queued, await decide(queued), strict=True):
            await tokens.put((token, decided))

    refused: list[StoreError] = []  # the rows could not be read at all: the run's error

    async def read() -> None:
        queued = 0
        page: list[TokenRow] = []
        try:
            async for token in iter_tokens(store):
                if stop is not None and stop() is not None:
                    _release(token)
                    break  # asked to stop: the rows not read yet are in no count
                if shard is None or shard.holds(token):
                    queued += 1
                    if on_queued is not None:
                        on_queued(queued, False)
                    page.append(token)
                    if len(page) >= CLAIM_PAGE:
                        await enqueue(page)
                else:
                    _release(token)  # another's account
            if on_queued is not None:
                on_queued(queued, True)
        except StoreUnavailableError as error:
            # Rows are still read after the store was found down, each reported not
            # attempted, until a page cannot be read: the rows after it are in no count.
            ctx.health.saw(error)
        except StoreError as error:
            # refused (a role without grants): the accounts read so far still end as
            # always, then the run raises it, one line, instead of a TaskGroup's traceback
            refused.append(error)
        # Not in a `finally`: cancelled (a second Ctrl-C), the workers are cancelled too and
        # would never make room in a full queue for these.
        await enqueue(page)  # the last page, or the rows read before a page failed
        for _ in range(concurrency):
            await tokens.put(None)  # one end-of-work mark per worker

    async def gather() -> None:
        while (item := await tokens.get()) is not None:
            token, decided = item
            done: Gathered | FetchResult
            if ctx.health.reason is not None:
                done = _not_attempted(ctx, token, ctx.health.reason)
            elif decided is None and (reason := halted()) is not None:
                done = _not_attempted(ctx, token, reason)
            elif isinstance(decided, Exception):
                # its page's claim failed: this account's failure, as its own claim's was
                done = await _isolated(ctx, token, _raise(decided))
                if ctx.health.reason is not None:
                    # its failure met a dead store: nothing went to Meta for this account
                    done = _not_attempted(ctx, token, ctx.health.reason)
            elif decided is not None:
                done = decided  # another run's account
            else:
                done = await _isolated(ctx, token, _gather(ctx, token))
            await gathered.put((token, done))

    async def write() -> None:
        ended = False
        while not ended and (item := await gathered.get()) is not None:
            group = [item]
            # the accounts that ended meanwhile, up to the store's `write_group`
            while len(group) < store.write_group and not gathered.empty():
                more = gathered.get_nowait()
                if more is None:
                    ended = True  # this writer's end mark: write what it holds, then stop
                    break
                group.append(more)
            await ctx.graph.requests_written()
            for token, done in await write_group(group):
                tally.add(done)
                if on_result is not None:
                    on_result(done)
                # Its result is out and its sync log written: the token the store registered
                # when it read the row can reach no output any more, so the redaction index
                # does not grow with the accounts of a run.
                _release(token)

    async def write_group(
        group: list[tuple[TokenRow, Gathered | FetchResult]],
    ) -> list[tuple[TokenRow, FetchResult]]:
        # The accounts' upserts, sync logs and claim releases in one store session (one
        # pooled connection on PostgreSQL, one transaction on SQLite), written together
        # (record_together) or, failing that, one by one; their claims were taken with
        # their page's.
        written: list[tuple[TokenRow, FetchResult]] = []
        try:
            async with store.session():
                together = await record_together([done for _, done in group])
                for token, done in group:
                    if isinstance(done, Gathered):
                        recorded = together.get(id(done))
                        if recorded is None:
                            work = record(ctx, done)
                            recorded = await _isolated(ctx, token, work, done.started_at)
                        done = recorded
                    if claims is not None:
                        if ctx.health.reason is None:
                            await claims.release(token)
                        else:
                            claims.abandon(token)  # not on a dead store: ended at run's end
                    written.append((token, done))
        except StoreError as error:  # the session's commit: nothing of the group was kept
            ctx.health.saw(error)
            log.warning("%d accounts' writes were not kept: %s", len(written), error)
            if claims is not None:
                for token, _ in written:
                    claims.release_lost(token)
            return [(token, unkept(done, error)) for token, done in written]
        return written

    async def record_together(group: list[Gathered | FetchResult]) -> dict[int, FetchResult]:
        """The results of the group's gathered accounts written together (`record_group`),
        by `id` of their Gathered; {} when they are to be recorded one by one: fewer than
        two, the store's `write_group` is 1, a dry run, a store that stopped answering, or
        the group's writes failed (the error in `ctx.health`, or a bug, logged with -vv)."""
        gathered = [done for done in group if isinstance(done, Gathered)]
        if len(gathered) < 2 or store.write_group < 2 or ctx.dry_run or ctx.health.reason:
            return {}
        try:
            results = await record_group(ctx, gathered)
        except Exception:
            log.debug("accounts written together: unexpected error", exc_info=True)
            return {}
        if results is None:
            return {}
        return {id(done): result for done, result in zip(gathered, results, strict=True)}

    try:
        async with _renewing(claims), asyncio.TaskGroup() as writers:
            for _ in range(concurrency):
                writers.create_task(write())
            async with asyncio.TaskGroup() as gatherers:
                gatherers.create_task(read())
                for _ in range(concurrency):
                    gatherers.create_task(gather())
            for _ in range(concurrency):
                await gathered.put(None)  # one end-of-work mark per writer
    except asyncio.CancelledError:
        # Cancelled part way (a second SIGINT/SIGTERM): the accounts in flight and those
        # queued are dropped; end their claims now, in one call, rather than leave the next
        # runs to skip them until they expire. Bounded: the run was told to stop at once.
        if claims is not None:
            claims.abandon_all()
            with suppress(TimeoutError):
                await asyncio.wait_for(claims.expire_abandoned(), CANCELLED_CLAIMS_S)
        raise
    if claims is not None:  # after the renewals stopped: none moves them out again
        await claims.expire_abandoned()
    if refused:
        raise refused[0]
    return tally.report(time.monotonic() - started, stopped=ctx.health.reason or halted())


def store_connections(concurrency: int) -> int:
    """The PostgreSQL pool size for a run of `concurrency` accounts at once: each account in
    flight needs a connection once, briefly (one session for its writes and its claim's
    release, shared by the accounts written together), plus the reader (user_tokens pages
    and the claims of each page) and the claims' renewal, so concurrency + 2, at most
    MAX_STORE_CONNECTIONS; an account waiting for one waits microseconds to milliseconds,
    never a Graph round trip."""
    return max(1, min(MAX_STORE_CONNECTIONS, concurrency + 2))


def _renewing(claims: Claims | None) -> AbstractAsyncContextManager[object]:
    return nullcontext() if claims is None else claims.renewing()


async def _raise(error: Exception) -> NoReturn:
    raise error


def _release(token: TokenRow) -> None:
    if token.access_token is not None:
        release_secret(token.access_token.get_secret_value())


async def _gather(ctx: RunContext, token: TokenRow) -> Gathered:
    return await gather_account(ctx, account_from_token(token))


async def _isolated(
    ctx: RunContext,
    token: TokenRow,
    work: Coroutine[Any, Any, T],
    started_at: datetime | None = None,
) -> T | FetchResult:
    """`work`, with anything igsync raises turned into this account's failed result (and its
    sync log written): one account must never end a cron run."""
    started, started_at = time.monotonic(), started_at or datetime.now(UTC)
    try:
        return await work
    except Exception as error:
        ctx.health.saw(error)
        if isinstance(error, IgsyncError):
            where = "store" if isinstance(error, StoreError) else "account"
            message = redact(f"{where}: {error}")
        else:
            # A bug, not the account's fault: say so, without a traceback that could hold a
            # token in a local; `-vv` logs the stack.
            log.debug("account %s: unexpected error", token.account_id, exc_info=True)
            message = redact(f"internal error (please report it): {type(error).__name__}: {error}")
        result = FetchResult(
            success=False,
            total_inserted=0,
            total_errors=1,
            metrics_inserted={},
            errors=[message],
            account_id=token.account_id,
            user_id=str(token.u_id),
            window=ctx.plan.requested,
            duration_s=round(time.monotonic() - started, 3),
            dry_run=ctx.dry_run,
        )
        if not ctx.dry_run:
            await write_run_log(ctx, result, started_at)  # logs its own failure
        return result


def _not_attempted(ctx: RunContext, token: TokenRow, reason: str) -> FetchResult:
    return not_attempted(ctx, token.account_id, str(token.u_id), reason)
