"""The shapes of the catalogue: a current metric, a retired one, and a line of `igsync metrics`."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, model_validator

from igsync.models import MetricType, TokenKind

Period = Literal["day", "lifetime"]
#: which stream fetches a metric: `account` = daily values without breakdown, the account stream
#: collects; `audience` = lifetime snapshots with breakdowns or hours
#: (demographics, online_followers), which the audience stream fetches (DESIGN.md §6)
StreamName = Literal["account", "audience"]
BOTH_LOGINS: frozenset[TokenKind] = frozenset({"facebook_login", "instagram_login"})


class MetricSpec(BaseModel):
    """One account metric Meta serves on `GET /{ig-user-id}/insights`, and how igsync asks for it.

    `source` names where each fact comes from (Meta's pages, GRAPH_API.md sections, the samples
    in graph_samples/, peer connectors), so a fact can be checked again when Meta moves.
    """

    model_config = ConfigDict(frozen=True)

    name: str
    #: the metric_type igsync requests it with
    metric_type: MetricType
    #: every metric_type Meta accepts for it (reach takes both; the rest one)
    metric_types: tuple[MetricType, ...]
    period: Period = "day"
    #: the `breakdown` dimensions Meta accepts for it (total_value requests only)
    breakdowns: tuple[str, ...] = ()
    #: the `timeframe` values it takes instead of since/until (demographics)
    timeframes: tuple[str, ...] = ()
    #: how far back the API serves it, in days; None when it takes a timeframe, not a window
    lookback_days: int | None
    #: whether the API refuses the current (incomplete) day for it
    excludes_today: bool = False
    #: part of the default metric set
    default: bool = False
    stream: StreamName = "account"
    #: the token kinds Meta serves it to; every account metric today serves both, while some
    #: media metrics (total_likes, …) are Facebook-Login only (GRAPH_API.md §7)
    logins: frozenset[TokenKind] = BOTH_LOGINS
    description: str
    source: str

    @model_validator(mode="after")
    def _consistent(self) -> MetricSpec:
        if self.metric_type not in self.metric_types:
            raise ValueError(f"{self.name}: {self.metric_type} is not among {self.metric_types}")
        if self.stream == "account" and (self.period != "day" or self.lookback_days is None):
            raise ValueError(f"{self.name}: the account stream fetches daily windows only")
        if self.default and self.stream != "account":
            raise ValueError(f"{self.name}: only account-stream metrics can be defaults")
        return self


class RetiredMetric(BaseModel):
    """A metric Meta no longer serves, with what replaced it (GRAPH_API.md §1, §7)."""

    model_config = ConfigDict(frozen=True)

    name: str
    #: only this form was retired and the name lives on in the other; None: the name is gone
    form: MetricType | None = None
    #: the Graph API version that retired it first; None when Meta announced no retirement
    retired_in: str | None
    #: the day it was retired in every version
    retired_everywhere: date | None
    #: the current metric to ask for instead; None when Meta offers none
    replacement: str | None
    note: str
    source: str

    def refusal(self) -> str:
        """The one line `--metrics` answers when asked for it."""
        when = (
            f"retired by Meta in {self.retired_in} (every version since "
            f"{self.retired_everywhere.isoformat()})"
            if self.retired_in and self.retired_everywhere
            else "not served by Meta's account insights"
        )
        instead = (
            f"ask for {self.replacement} instead"
            if self.replacement
            else "Meta offers no replacement"
        )
        return f"{self.name} is {when}: {self.note}; {instead}"


class RetiredForm(BaseModel):
    """A form of a current metric that Meta retired (profile_views' time_series form)."""

    metric_type: MetricType
    retired_in: str | None
    retired_everywhere: date | None
    description: str
    source: str


class MetricListing(BaseModel):
    """One entry of `igsync metrics`: a current metric or a retired one, one per name.

    A current metric one of whose forms Meta retired keeps `status` current and describes
    that form in `retired_forms`, so `name` is unique across the listing.
    """

    name: str
    status: Literal["current", "retired"]
    #: current: the type igsync asks for; retired: the retired form (None: every form)
    metric_type: MetricType | None
    metric_types: tuple[MetricType, ...]
    period: Period | None
    breakdowns: tuple[str, ...]
    timeframes: tuple[str, ...]
    lookback_days: int | None
    logins: tuple[TokenKind, ...]
    default: bool
    stream: StreamName | None
    description: str
    replacement: str | None
    retired_in: str | None
    retired_everywhere: date | None
    source: str
    #: current metrics only: forms of this name Meta retired (empty: none)
    retired_forms: tuple[RetiredForm, ...] = ()

    @classmethod
    def current(
        cls, spec: MetricSpec, retired_forms: tuple[RetiredMetric, ...] = ()
    ) -> MetricListing:
        return cls(
            name=spec.name,
            status="current",
            metric_type=spec.metric_type,
            metric_types=spec.metric_types,
            period=spec.period,
            breakdowns=spec.breakdowns,
            timeframes=spec.timeframes,
            lookback_days=spec.lookback_days,
            logins=tuple(sorted(spec.logins)),
            default=spec.default,
            stream=spec.stream,
            description=spec.description,
            replacement=None,
            retired_in=None,
            retired_everywhere=None,
            source=spec.source,
            retired_forms=tuple(
                RetiredForm(
                    metric_type=gone.form,
                    retired_in=gone.retired_in,
                    retired_everywhere=gone.retired_everywhere,
                    description=gone.note,
                    source=gone.source,
                )
                for gone in retired_forms
                if gone.form is not None
            ),
        )

    @classmethod
    def retired(cls, gone: RetiredMetric) -> MetricListing:
        return cls(
            name=gone.name,
            status="retired",
            metric_type=gone.form,
            metric_types=(),
            period=None,
            breakdowns=(),
            timeframes=(),
            lookback_days=None,
            logins=(),
            default=False,
            stream=None,
            description=gone.note,
            replacement=gone.replacement,
            retired_in=gone.retired_in,
            retired_everywhere=gone.retired_everywhere,
            source=gone.source,
        )
