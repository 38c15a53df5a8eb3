"""Instagram-Login accounts end to end (issue 8): the installed igsync against the simulator
serving both of Meta's hosts over loopback, each refusing the other login's tokens."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Iterator
from contextlib import closing
from datetime import timedelta
from pathlib import Path
from uuid import uuid4

import pytest

from igsync.simulator import SimAccount, Simulator, serve_in_thread
from test_tokens_e2e import ACCOUNT, APP_SECRET, NOW, Env

pytestmark = pytest.mark.e2e

SECOND = "17841400000000002"


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    sim = Simulator(
        [SimAccount(ACCOUNT, tz="America/Los_Angeles"), SimAccount(SECOND, tz="Asia/Kolkata")],
        strict_tokens=True,
        app_secret=APP_SECRET,
    )
    with serve_in_thread(sim) as served:
        yield Env(sim, served, tmp_path)


def insights_hosts(env: Env) -> Counter[str]:
    return Counter(r.host for r in env.sim.requests if r.path.endswith("/insights"))


def test_an_instagram_login_account_is_fetched_from_the_instagram_host(env: Env) -> None:
    """Finding 1: the data calls went to the Facebook host, which answered 190 "Cannot parse
    access token", and a valid token was marked needs_reauth."""
    user = str(uuid4())
    token = env.sim.issue_token(
        ACCOUNT,
        kind="instagram_login",
        issued_at=NOW - timedelta(days=10),
        expires_at=NOW + timedelta(days=50),
    )
    added = env.add(token, user=user, kind="instagram_login", expires=NOW + timedelta(days=50))
    assert added.returncode == 0, added.stderr
    proc = env.run("fetch", "--user", user, "--days", "3", "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(proc.stdout)
    assert (result["success"], result["total_inserted"]) == (True, 12)
    hosts = insights_hosts(env)
    assert set(hosts) == {"instagram"}
    assert hosts["instagram"] >= 4  # reach's days, then the day-by-day total_value metrics
    assert env.token_row(user)[1] == "ok"
    (count,) = env.sql("select count(*) from instagram_insights")
    assert count == (12,)


def test_a_token_added_the_same_day_is_refreshed_when_it_is_expiring(env: Env) -> None:
    """Finding 2: a 58-day-old token added with 2 days left was skipped as "refreshed less
    than 24 h ago" (the age was taken from when igsync stored it) and died with cron silent."""
    user = str(uuid4())
    token = env.sim.issue_token(
        ACCOUNT,
        kind="instagram_login",
        issued_at=NOW - timedelta(days=58),
        expires_at=NOW + timedelta(days=2),
    )
    # no --kind: the token's shape (IGAA…) tells
    added = env.add(token, user=user, expires=NOW + timedelta(days=2))
    assert added.returncode == 0, added.stderr
    assert "instagram_login" in added.stdout
    proc = env.run("refresh-token", "--all", "--expiring-within", "7d", "--json", app=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    assert [r["user_id"] for r in report["refreshed"]] == [user]
    assert (report["skipped"], report["failed"]) == ([], [])
    new, status, expires = env.token_row(user)
    assert (new != token, status) == (True, "ok")
    assert expires is not None
    assert env.sim.token_info(new) is not None
    refreshes = [r for r in env.sim.requests if r.path.endswith("refresh_access_token")]
    assert [r.host for r in refreshes] == ["instagram"]


def test_a_cannot_parse_190_is_a_kind_mismatch_never_needs_reauth(env: Env) -> None:
    """A row the user's app wrote with the wrong token_kind: the Facebook host cannot parse the
    Instagram token. igsync says so, with the fix, and keeps the token usable."""
    user = str(uuid4())
    token = env.sim.issue_token(
        ACCOUNT, kind="instagram_login", expires_at=NOW + timedelta(days=50)
    )
    assert env.add(token, user=user, expires=NOW + timedelta(days=50)).returncode == 0
    with closing(sqlite3.connect(env.db)) as conn, conn:
        conn.execute("update user_tokens set token_kind = 'facebook_login'")
    proc = env.run("fetch", "--user", user, "--json")
    assert proc.returncode == 1
    (error,) = json.loads(proc.stdout)["errors"]
    assert "cannot parse" in error
    assert f"igsync accounts add --account-id {ACCOUNT} --kind instagram_login" in error
    assert env.token_row(user)[1] == "ok"  # not needs_reauth: the token is fine
    assert not [r for r in env.sim.requests if "access_token" in r.path]  # no refresh tried
    # the fix the message names
    again = env.add(token, user=user, kind="instagram_login", expires=NOW + timedelta(days=50))
    assert again.returncode == 0, again.stderr
    fixed = env.run("fetch", "--user", user, "--json")
    assert fixed.returncode == 0, fixed.stdout


def test_sync_all_sends_each_accounts_calls_to_its_own_host(env: Env) -> None:
    sim = env.sim
    users = {}
    for account in (ACCOUNT, SECOND):
        for kind in ("facebook_login", "instagram_login"):
            user = str(uuid4())
            token = sim.issue_token(account, kind=kind, expires_at=NOW + timedelta(days=50))  # type: ignore[arg-type]
            added = env.add(token, user=user, account=account, expires=NOW + timedelta(days=50))
            assert added.returncode == 0, added.stderr
            users[user] = kind
    proc = env.run("sync-all", "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    assert (report["accounts_ok"], report["total_inserted"]) == (4, 48)
    kinds = {info.kind for token, _ in sim.tokens.items() if (info := sim.token_info(token))}
    assert kinds == {"facebook_login", "instagram_login"}
    calls = [r for r in sim.requests if r.path.endswith("/insights")]
    per_host = Counter(r.host for r in calls)
    assert per_host["facebook"] == per_host["instagram"] > 0
    assert {r.status for r in calls} == {200}  # no call ever reached the other login's host
    # Facebook-Login calls share batches; Meta documents none on graph.instagram.com
    assert {r.in_batch for r in calls if r.host == "facebook"} == {True}
    assert {r.in_batch for r in calls if r.host == "instagram"} == {False}
    for request in calls:
        # alone: in the Authorization header; a batch item: in its own relative_url
        token = request.query.get("access_token") or request.headers["authorization"][7:]
        info = sim.token_info(token)
        assert info is not None
        assert (
            info.kind
            == {"facebook": "facebook_login", "instagram": "instagram_login"}[request.host]
        )


@pytest.mark.parametrize(
    ("token", "kind", "needle"),
    [
        ("EAAG" + "a" * 40, "instagram_login", "looks like a facebook_login token"),
        ("IGAA" + "a" * 40, "facebook_login", "looks like an instagram_login token"),
        ("opaque-token-" + "a" * 30, None, "pass --kind"),
    ],
)
def test_accounts_add_refuses_a_kind_it_cannot_tell_or_that_contradicts_the_token(
    env: Env, token: str, kind: str | None, needle: str
) -> None:
    proc = env.add(token, user=str(uuid4()), kind=kind, expires=NOW + timedelta(days=50))
    assert proc.returncode == 2
    assert needle in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "Traceback" not in proc.stderr
    assert token not in proc.stderr
    assert env.sim.requests == []
