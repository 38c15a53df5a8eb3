"""Instagram-Login accounts end to end (issue 8): the installed igsync against the simulator
serving both of Meta's hosts over loopback, each refusing the other login's tokens."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from uuid import uuid4

import pytest

from igsync.simulator import Fault, SimAccount, Simulator, serve_in_thread
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


def instagram_token(env: Env, *, age: timedelta, life: timedelta) -> str:
    """An Instagram-Login token of ACCOUNT issued `age` ago, expiring in `life`."""
    return env.sim.issue_token(
        ACCOUNT, kind="instagram_login", issued_at=NOW - age, expires_at=NOW + life
    )


def insights_hosts(env: Env) -> Counter[str]:
    return Counter(r.host for r in env.sim.requests if r.path.endswith("/insights"))


def test_an_instagram_login_account_is_fetched_from_the_instagram_host(env: Env) -> None:
    """Finding 1: the data calls went to the Facebook host, which answered 190 "Cannot parse
    access token", and a valid token was marked needs_reauth."""
    user = str(uuid4())
    token = instagram_token(env, age=timedelta(days=10), life=timedelta(days=50))
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
    token = instagram_token(env, age=timedelta(days=58), life=timedelta(days=2))
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
    env.sql("update user_tokens set token_kind = 'facebook_login'")
    proc = env.run("fetch", "--user", user, "--json")
    assert proc.returncode == 1
    (error,) = json.loads(proc.stdout)["errors"]
    assert "cannot parse" in error
    assert (
        f"igsync accounts add --user {user} --account-id {ACCOUNT} --kind instagram_login" in error
    )
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


def test_swapped_host_urls_are_named_as_the_fault_when_the_kind_fits_the_token(env: Env) -> None:
    user = str(uuid4())
    token = instagram_token(env, age=timedelta(days=3), life=timedelta(days=50))
    assert env.add(token, user=user, expires=NOW + timedelta(days=50)).returncode == 0
    swapped = {"IGSYNC_INSTAGRAM_URL": env.served.graph_url}
    proc = env.run("fetch", "--user", user, "--json", extra_env=swapped)
    (error,) = json.loads(proc.stdout)["errors"]
    assert "check that IGSYNC_INSTAGRAM_URL points at graph.instagram.com" in error
    assert env.token_row(user)[1] == "ok"


def test_a_190_refreshes_even_a_token_meta_issued_hours_ago(env: Env) -> None:
    """Our record says Meta issued it 2 h ago, but Meta now refuses it: only a refresh can tell
    whether a new token can be had, so one is tried before anything is marked."""
    user = str(uuid4())
    token = instagram_token(env, age=timedelta(days=3), life=timedelta(days=50))
    assert env.add(token, user=user, expires=NOW + timedelta(days=50)).returncode == 0
    env.sql("update user_tokens set last_refreshed_at = %s", (NOW - timedelta(hours=2)).isoformat())
    env.sim.faults.append(Fault("invalid_token", times=1))
    proc = env.run("fetch", "--user", user, "--json", app=False)
    assert proc.returncode == 0, proc.stdout
    assert json.loads(proc.stdout)["token_refreshed"] is True


@pytest.mark.parametrize(
    ("stdin", "extra", "needle"),
    [
        ("EAAG" + "a" * 60, ["--expires-at", "2020-01-01"], "in the past"),
        ("EAAGshort", [], "too short"),
    ],
)
def test_accounts_add_refuses_a_dead_or_truncated_token(
    env: Env, stdin: str, extra: list[str], needle: str
) -> None:
    args = ["accounts", "add", "--user", str(uuid4()), "--account-id", ACCOUNT, "--token-stdin"]
    proc = env.run(*args, *extra, stdin=stdin)
    assert (proc.returncode, needle in proc.stderr) == (2, True), proc.stderr
    assert stdin not in proc.stderr


def test_accounts_list_shows_the_env_tokens_kind_as_fetch_uses_it(env: Env) -> None:
    fallback = {"IG_ACCOUNT_ID": ACCOUNT, "IG_LONG_TOKEN": "IGAA" + "z" * 60}
    env.run("db", "init")  # accounts list only reads: a missing database is exit 2
    proc = env.run("accounts", "list", "--json", extra_env=fallback)
    (row,) = json.loads(proc.stdout)
    assert (row["source"], row["token_kind"]) == ("env", "instagram_login")
