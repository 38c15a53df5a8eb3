"""What crosses a boundary: rows, results, tokens and sync logs (metrics: `igsync.catalogue`).

JSON output is always `model_dump(mode="json")` of these models (DESIGN.md §5).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Literal
from uuid import UUID, uuid4

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationInfo, field_validator

from igsync.local_day import day_label

MetricType = Literal["time_series", "total_value"]
Platform = Literal["instagram", "youtube", "tiktok", "facebook"]
TokenKind = Literal["facebook_login", "instagram_login"]
TokenStatus = Literal["ok", "expiring", "expired", "needs_reauth"]
#: what `accounts list` shows: a stored status, or `invalid` for a row igsync cannot use
#: (never stored: the database's status column keeps its own values)
ShownStatus = TokenStatus | Literal["invalid"]
SyncStatus = Literal["ok", "partial", "failed"]


def as_utc(value: datetime) -> datetime:
    """The same instant in UTC; a naive datetime is taken to be UTC already.

    Raises ValueError (not OverflowError, which pydantic would not turn into a validation
    error) for an instant outside what datetime holds in UTC: '0001-01-01T00:00:00+14:00'.
    """
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("out of range once converted to UTC") from None


class InsightRow(BaseModel):
    """One stored value: unique on (u_id, account_id, metric, end_time)."""

    model_config = ConfigDict(frozen=True)

    u_id: UUID
    account_id: str
    metric: str
    metric_type: MetricType
    period: str
    end_time: datetime
    #: None when Meta returned no data: never a made-up 0
    value: int | None
    value_json: Any = None
    #: the account-local date a daily row (period "day") describes (DESIGN.md §6); left out, it
    #: is `day_label(end_time)`. None for rows of other periods.
    local_date: date | None = Field(default=None, validate_default=True)

    @field_validator("end_time")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return as_utc(value)

    @field_validator("local_date")
    @classmethod
    def _label_daily_rows(cls, value: date | None, info: ValidationInfo) -> date | None:
        # Fields validate in order: period and end_time are in info.data unless they failed.
        end_time = info.data.get("end_time")
        if value is None and info.data.get("period") == "day" and end_time is not None:
            return day_label(end_time)
        return value

    @property
    def key(self) -> tuple[UUID, str, str, datetime]:
        return (self.u_id, self.account_id, self.metric, self.end_time)


class AudienceRow(BaseModel):
    """One value of an audience breakdown, as captured on one account-local day (DESIGN §6).

    Unique on (u_id, account_id, metric, timeframe, breakdown, dimension_values, captured_on).
    `breakdown` names Meta's dimension keys joined by commas ("age,gender") and
    `dimension_values` their values in the same order ("18-24,F"), so no dimension is lost.
    Meta serves these as lifetime totals over `timeframe` (this_week, this_month …), top 45
    values only (GRAPH_API.md §7): a daily snapshot keeps what Meta forgets.
    """

    model_config = ConfigDict(frozen=True)

    u_id: UUID
    account_id: str
    metric: str
    timeframe: str
    breakdown: str
    dimension_values: str
    captured_on: date
    value: int

    @property
    def key(self) -> tuple[UUID, str, str, str, str, str, date]:
        return (
            self.u_id,
            self.account_id,
            self.metric,
            self.timeframe,
            self.breakdown,
            self.dimension_values,
            self.captured_on,
        )


class MediaRow(BaseModel):
    """One media object of an account (DESIGN §6): unique on (u_id, account_id, media_id).

    Names are Meta's IG Media fields; stories are rows with media_product_type "STORY".
    `timestamp` is when it was posted, in UTC.
    """

    model_config = ConfigDict(frozen=True)

    u_id: UUID
    account_id: str
    media_id: str
    media_type: str | None = None
    media_product_type: str | None = None
    timestamp: datetime | None = None
    permalink: str | None = None
    like_count: int | None = None
    comments_count: int | None = None

    @field_validator("timestamp")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return None if value is None else as_utc(value)

    @property
    def key(self) -> tuple[UUID, str, str]:
        return (self.u_id, self.account_id, self.media_id)


class MediaInsightRow(BaseModel):
    """A media object's lifetime metric as captured on one account-local day (DESIGN §6).

    Unique on (u_id, account_id, media_id, metric, captured_on): one snapshot a day, so growth
    over time is kept. `value_json` holds breakdown results (profile_activity by action_type,
    navigation by story_navigation_action_type) when the metric has them.
    """

    model_config = ConfigDict(frozen=True)

    u_id: UUID
    account_id: str
    media_id: str
    metric: str
    captured_on: date
    #: None when Meta returned no data: never a made-up 0
    value: int | None
    value_json: Any = None

    @property
    def key(self) -> tuple[UUID, str, str, str, date]:
        return (self.u_id, self.account_id, self.media_id, self.metric, self.captured_on)


@dataclass(frozen=True)
class Account:
    """Who to fetch for and with what: a `user_tokens` row, or the env fallback."""

    user_id: UUID
    account_id: str
    #: kept out of repr: an Account in a log line or a traceback must not print the token
    token: str = field(repr=False)
    #: the `user_tokens` row, None for the env fallback (which cannot be refreshed or marked)
    row: UserToken | None = None
    #: which login issued the token: it decides the host of every call (igsync.graph.LoginApi)
    kind: TokenKind = "facebook_login"


class Window(BaseModel):
    """Inclusive account-local dates."""

    since: date
    until: date


class FetchResult(BaseModel):
    """The outcome of fetching one account (the seed's dataclass; DESIGN.md §5)."""

    success: bool
    total_inserted: int
    total_errors: int
    metrics_inserted: dict[str, int]
    #: rows fetched per metric, written or not (a dry run fetches without writing)
    metrics_fetched: dict[str, int] = Field(default_factory=dict)
    #: rows written and verified per stream (account, audience, …), every table it fills
    streams_written: dict[str, int] = Field(default_factory=dict)
    errors: list[str]
    account_id: str | None
    user_id: str | None
    token_refreshed: bool = False
    window: Window | None = None
    duration_s: float
    dry_run: bool = False
    #: things worth knowing that are not failures (a clamped window, a metric with no data)
    notes: list[str] = Field(default_factory=list)
    #: why this account's instagram_sync_logs row could not be written (None: it was, or a
    #: dry run wrote none)
    sync_log_error: str | None = None
    #: False when `sync-all` never started this account because the store had stopped
    #: answering or the Graph API could not be reached: no Graph call was made for it, and
    #: no sync-log row was written
    attempted: bool = True
    #: not synced by this run because another run holds its claim (igsync.claims): not a
    #: failure, the other run reports the account; `notes` says until when
    skipped: bool = False


class SyncReport(BaseModel):
    """The outcome of `sync-all` (DESIGN.md §5)."""

    success: bool
    accounts_total: int
    accounts_ok: int
    accounts_failed: int
    total_inserted: int
    total_errors: int
    duration_s: float
    results: list[FetchResult]
    #: accounts whose instagram_sync_logs row could not be written (their data may be)
    sync_logs_failed: int = 0
    #: the first such failure, to show without -v
    sync_log_error: str | None = None
    #: `user_tokens` rows this role sees in all shards, counted only when the run had none
    accounts_visible: int | None = None

    #: accounts read from user_tokens but never started: the store had stopped answering or
    #: the Graph API could not be reached (each is also a failed result with `attempted`
    #: false); rows the store could no longer give are in no count at all
    accounts_not_attempted: int = 0
    #: why the run stopped before every account was attempted (None: it did not)
    stopped: str | None = None
    #: accounts another run was syncing (FetchResult.skipped): in accounts_total, neither ok
    #: nor failed
    accounts_skipped: int = 0
    #: rows fetched from Meta, written or not: sum of every result's metrics_fetched (what a
    #: dry run reports, as it writes nothing)
    total_fetched: int = 0


class UserToken(BaseModel):
    """A row of `user_tokens` (DESIGN.md §6). The token is a SecretStr: repr and dumps mask it."""

    token_id: UUID = Field(default_factory=uuid4)
    u_id: UUID
    platform: Platform = "instagram"
    access_token: SecretStr
    account_id: str | None = None
    expires_at: datetime | None = None
    token_kind: TokenKind = "facebook_login"
    status: TokenStatus = "ok"
    last_refreshed_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    #: how the store held the token: plain, or encrypted with IGSYNC_TOKEN_KEYS' first key or
    #: a later one (token_crypto.py); not a column, never written
    at_rest: Literal["plain", "current_key", "older_key"] = Field(default="plain", exclude=True)

    @field_validator("expires_at", "last_refreshed_at", "created_at", "updated_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return None if value is None else as_utc(value)


class BadTokenRow(BaseModel):
    """A `user_tokens` row that cannot become a `UserToken` (issue 11): the app that owns the
    table wrote a value igsync cannot use. It stands in for the row so that the row is its
    account's failure, never the end of a run. Its values are as stored, as text.
    """

    model_config = ConfigDict(frozen=True)

    token_id: str
    u_id: str | None
    account_id: str | None
    #: one line naming the row, the column and the fix; never the token
    problem: str
    #: the stored token when it is text, still a secret (redaction release, token hint)
    access_token: SecretStr | None = None


#: what reading a row of `user_tokens` gives: the row, or why it cannot be used
TokenRow = UserToken | BadTokenRow


class TokenUpdate(BaseModel):
    """New values for one `user_tokens` row, written together or not at all."""

    #: None keeps the stored token (marking a token needs_reauth must never erase it)
    access_token: SecretStr | None = None
    expires_at: datetime | None
    status: TokenStatus
    last_refreshed_at: datetime | None

    @field_validator("expires_at", "last_refreshed_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return None if value is None else as_utc(value)


class SyncLog(BaseModel):
    """A row of `instagram_sync_logs`: one per account per run."""

    run_id: UUID
    u_id: UUID | None
    account_id: str | None
    started_at: datetime
    finished_at: datetime
    status: SyncStatus
    total_inserted: int
    total_errors: int
    errors: list[str]
    token_refreshed: bool = False
    #: the streams the run gathered for the account (igsync.streams)
    streams: list[str] = Field(default_factory=lambda: ["account"])


class RefreshedToken(BaseModel):
    user_id: str
    account_id: str | None
    expires_at: datetime | None


class SkippedToken(BaseModel):
    user_id: str
    account_id: str | None
    reason: str


class FailedToken(BaseModel):
    user_id: str
    account_id: str | None
    error: str


class RefreshReport(BaseModel):
    """The outcome of `refresh-token` (DESIGN.md §5)."""

    refreshed: list[RefreshedToken] = Field(default_factory=list)
    skipped: list[SkippedToken] = Field(default_factory=list)
    failed: list[FailedToken] = Field(default_factory=list)
    #: with --dry-run: the tokens a real run would refresh
    would_refresh: list[RefreshedToken] = Field(default_factory=list)
    dry_run: bool = False


class AccountInfo(BaseModel):
    """A line of `accounts list`: never the token, only its last four characters."""

    user_id: str | None
    account_id: str | None
    source: Literal["db", "env"]
    token_kind: TokenKind
    expires_at: datetime | None
    days_left: int | None
    status: ShownStatus
    token_hint: str
    last_refreshed_at: datetime | None
    #: for status `invalid`: the column that is wrong and the fix
    problem: str | None = None
    #: the account's newest instagram_sync_logs row: when it started (UTC), its status, rows
    last_sync_at: datetime | None = None
    last_sync_status: SyncStatus | None = None
    last_sync_rows: int | None = None


class AccountClaim(BaseModel):
    """Who holds an account's claim in `igsync_claims` after a claim attempt (igsync.claims).

    `claimed` is True when the run that asked holds it now. Otherwise `claimed_by` is the run
    that does, until `claimed_until` (UTC), after which any run may take it over; or, with
    `released_at` set, the run that finished the account then, after the asking run started.
    """

    claimed: bool
    claimed_by: UUID
    claimed_until: datetime
    released_at: datetime | None = None

    @field_validator("claimed_until", "released_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return None if value is None else as_utc(value)
