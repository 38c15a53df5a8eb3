"""The token policy around one account's Graph calls, as one small state machine (DESIGN §4, §7).

    START ──needs_reauth──────────────────────────────────────────────▶ DONE (refused)
      │ (dry run: straight to ATTEMPT)
      ▼
    REFRESH_AHEAD ── due within 7 days: refresh, or take a racing winner's token
      ▼
    ATTEMPT ──answered──▶ DONE
      │ 190 (GraphError AUTH)
      ▼
    REJECTED ──unparseable (other login's host) / env token / dry run──▶ DONE (refused)
      │ first attempt, refreshable, not a dead token     │ otherwise
      ▼                                                  ▼
    REFRESH ──new token / winner's token──▶ ATTEMPT    MARK ──marked──▶ DONE (needs_reauth)
      │ failed or skipped                                │ another process changed the row
      └──────────────────────────────────────▶ MARK      ▼
                                                        ATTEMPT with its token (first attempt
                                                        only), else DONE (refused)

What a 190 says decides (igsync.graph.TokenProblem): a token the host cannot parse (the other
login kind) is reported with the fix and stays usable; an expired, invalidated or removed one
is marked needs_reauth without a pointless refresh; any other is refreshed once and, if still
refused, marked (never erased). A dry run writes nothing: it neither refreshes nor marks.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum, auto
from typing import Generic, TypeVar

from igsync.errors import GraphError, StoreError
from igsync.graph import GraphClient, TokenProblem, token_problem
from igsync.models import Account, UserToken
from igsync.store import Store
from igsync.tokens import (
    REAUTH,
    REFRESH_AHEAD,
    AppCredentials,
    RefreshFailed,
    RefreshRaced,
    RefreshSkipped,
    account_from_token,
    mark_needs_reauth,
    refresh_now,
    reread,
    wrong_kind_message,
)

log = logging.getLogger(__name__)

T = TypeVar("T")


class _State(Enum):
    START = auto()
    REFRESH_AHEAD = auto()
    ATTEMPT = auto()
    REJECTED = auto()
    REFRESH = auto()
    MARK = auto()
    DONE = auto()


@dataclass
class Authorized(Generic[T]):
    """How the policy ended: the work's answer, or the one line saying why there is none."""

    #: what `work` returned; None when the token policy ended the account
    value: T | None = None
    #: "token: …" when it did (refused, marked needs_reauth, or cannot be used)
    error: str | None = None
    #: whether this run refreshed the token
    refreshed: bool = False
    notes: list[str] = field(default_factory=list)


@dataclass
class TokenPolicy(Generic[T]):
    """Runs `work` with an account's token under the policy; one instance per account.

    `work` makes the Graph calls with the Account it is given and raises GraphError (AUTH)
    when the token was refused; it may be run twice (after a refresh, or with the token
    another process saved meanwhile). `now` is UTC.
    """

    graph: GraphClient
    store: Store
    app: AppCredentials | None
    now: datetime
    dry_run: bool
    work: Callable[[Account], Awaitable[T]]
    _account: Account = field(init=False)
    _attempts: int = field(default=0, init=False)
    _rejected: GraphError | None = field(default=None, init=False)
    _problem: TokenProblem = field(default=TokenProblem.UNKNOWN, init=False)
    _result: Authorized[T] = field(default_factory=Authorized, init=False)

    async def run(self, account: Account) -> Authorized[T]:
        self._account = account
        steps: dict[_State, Callable[[], Awaitable[_State]]] = {
            _State.START: self._start,
            _State.REFRESH_AHEAD: self._refresh_ahead,
            _State.ATTEMPT: self._attempt,
            _State.REJECTED: self._on_rejected,
            _State.REFRESH: self._refresh,
            _State.MARK: self._mark,
        }
        state = _State.START
        while state is not _State.DONE:
            state = await steps[state]()
        return self._result

    def _end(self, message: str) -> _State:
        self._result.error = f"token: {message}"
        return _State.DONE

    def _use(self, token: UserToken) -> _State:
        self._account = account_from_token(token)
        return _State.ATTEMPT

    def _winner(self, winner: UserToken | None) -> UserToken | None:
        """The row another process saved meanwhile, if its token is a usable, different one."""
        mine = self._account.row
        if (
            winner is None
            or mine is None
            or winner.status == "needs_reauth"
            or winner.account_id is None
            or winner.access_token == mine.access_token
        ):
            return None
        self._result.notes.append("token: another process refreshed it first; using its token")
        return winner

    async def _start(self) -> _State:
        row = self._account.row
        if row is not None and row.status == "needs_reauth":
            return self._end(f"needs re-authorization; {REAUTH}")
        return _State.ATTEMPT if self.dry_run else _State.REFRESH_AHEAD

    async def _refresh_ahead(self) -> _State:
        """A token due within 7 days is refreshed when it can be (DESIGN §4)."""
        row = self._account.row
        if row is None or row.expires_at is None or row.expires_at > self.now + REFRESH_AHEAD:
            return _State.ATTEMPT
        notes = self._result.notes
        if row.token_kind == "facebook_login" and self.app is None:
            notes.append(
                "token: expires within 7 days; set IG_APP_ID and IG_APP_SECRET to refresh it"
            )
            return _State.ATTEMPT
        try:
            fresh = await refresh_now(self.graph, self.store, row, self.app, self.now)
        except RefreshRaced as race:
            winner = self._winner(race.winner)
            return self._use(winner) if winner else _State.ATTEMPT
        except (RefreshSkipped, RefreshFailed) as reason:
            notes.append(f"token: not refreshed: {reason}")
            return _State.ATTEMPT
        self._result.refreshed = True
        return self._use(fresh)

    async def _attempt(self) -> _State:
        self._attempts += 1
        try:
            self._result.value = await self.work(self._account)
        except GraphError as error:
            self._rejected = error
            self._problem = token_problem(error) or TokenProblem.UNKNOWN
            return _State.REJECTED
        return _State.DONE

    async def _on_rejected(self) -> _State:
        row, rejected = self._account.row, self._rejected
        if self._problem == TokenProblem.UNPARSEABLE:
            # Not a dead token: a host cannot read the other login's tokens. Never marked.
            if row is None:
                return self._end(
                    f"{self.graph.api(self._account.kind).base_url} cannot parse IG_LONG_TOKEN; "
                    "check the token (Facebook Login tokens start EAA, Instagram Login ones "
                    "IG) and IGSYNC_GRAPH_URL / IGSYNC_INSTAGRAM_URL"
                )
            return self._end(wrong_kind_message(self.graph, row))
        if row is None:
            return self._end(f"IG_LONG_TOKEN rejected by the Graph API ({rejected}); replace it")
        if self.dry_run:
            return self._end(f"rejected by the Graph API ({rejected}); dry run: not marked")
        # An expired, invalidated or removed token (Meta's subcode says so) cannot be
        # refreshed: only a new login helps, so it is marked at once.
        refreshable = row.token_kind == "instagram_login" or self.app is not None
        if self._attempts == 1 and refreshable and not self._problem.needs_login:
            return _State.REFRESH
        return _State.MARK

    async def _refresh(self) -> _State:
        row = self._account.row
        assert row is not None  # _on_rejected sends only stored tokens here
        try:
            # forced: Meta just refused the token, so whatever igsync knows of its age, only
            # Meta's answer to a refresh can tell whether a new one can be had
            fresh = await refresh_now(self.graph, self.store, row, self.app, self.now, force=True)
        except RefreshRaced as race:
            winner = self._winner(race.winner)
            return self._use(winner) if winner else _State.MARK
        except (RefreshSkipped, RefreshFailed) as reason:
            log.info("refresh after 190 failed: %s", reason)
            return _State.MARK
        self._result.refreshed = True
        return self._use(fresh)

    async def _mark(self) -> _State:
        row, rejected = self._account.row, self._rejected
        assert row is not None  # _on_rejected sends only stored tokens here
        try:
            marked = await mark_needs_reauth(self.store, row)
            current = None if marked else await reread(self.store, row)
        except StoreError as error:
            return self._end(f"rejected by the Graph API ({rejected}); {REAUTH} ({error})")
        if marked:
            return self._end(
                f"rejected by the Graph API ({rejected}); marked needs_reauth: {REAUTH}"
            )
        # Nothing was marked: another process changed the row since we read it.
        winner = self._winner(current)
        if self._attempts == 1 and winner is not None:
            return self._use(winner)
        return self._end(f"rejected by the Graph API ({rejected}); {REAUTH}")
