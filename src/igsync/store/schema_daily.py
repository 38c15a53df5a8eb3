"""Migration 7 (schema.py): the `instagram_daily` view gets a column for every daily account
metric (issue 13 item 3).

Migration 3 gave it five (igsync's defaults and `views`); the account stream fetches every
daily metric of the catalogue (`igsync metrics`), so ten had no column. The five keep their
place and type (PostgreSQL's `create or replace view` may only add columns at the end); the
others follow in the catalogue's order. A metric with no stored value reads null, never 0.

Like every published migration, this text never changes once shipped (schema.py): it holds its
own list rather than reading the catalogue, which a later change could edit.
"""

from __future__ import annotations

#: the columns of instagram_daily after this migration, migration 3's first
DAILY_COLUMNS = (
    "reach",
    "profile_views",
    "accounts_engaged",
    "follower_count",
    "views",
    "website_clicks",
    "total_interactions",
    "likes",
    "comments",
    "shares",
    "saves",
    "replies",
    "follows_and_unfollows",
    "profile_links_taps",
    "reposts",
)

_PIVOT_POSTGRES = ",\n".join(
    f"    max(value) filter (where metric = '{m}') as {m}" for m in DAILY_COLUMNS
)
_PIVOT_SQLITE = ",\n".join(
    f"    max(case when metric = '{m}' then value end) as {m}" for m in DAILY_COLUMNS
)
_METRIC_LIST = ", ".join(f"'{m}'" for m in DAILY_COLUMNS)

# `create or replace` keeps the view's grants; security_invoker is given again, as the option
# list of the new definition replaces the old one. Running it again changes nothing.
POSTGRES_DAILY = f"""\
create or replace view instagram_daily with (security_invoker = true) as
select u_id, account_id, local_date,
{_PIVOT_POSTGRES}
from instagram_insights
where local_date is not null and metric in ({_METRIC_LIST})
group by u_id, account_id, local_date;
"""  # noqa: S608 - built from the constant DAILY_COLUMNS

# SQLite cannot replace a view: drop and create, in the store's migration transaction.
SQLITE_DAILY = f"""\
drop view if exists instagram_daily;
create view instagram_daily as
select u_id, account_id, local_date,
{_PIVOT_SQLITE}
from instagram_insights
where local_date is not null and metric in ({_METRIC_LIST})
group by u_id, account_id, local_date;
"""  # noqa: S608 - built from the constant DAILY_COLUMNS
