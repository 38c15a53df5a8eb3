"""The public Python API (DESIGN §10): pinned names, a light `import igsync`, and each of the
seed's functions against the in-process simulator with a SQLite store, blocking and async."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import traceback
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import pytest
from pydantic import SecretStr

import igsync
from igsync.config import DEFAULT_GRAPH_VERSION, Settings
from igsync.graph import GraphClient
from igsync.models import UserToken
from igsync.simulator import SimAccount, Simulator

ACCOUNT = "17841400000000031"
OTHER = "17841400000000032"


def test_the_exported_names_are_pinned() -> None:
    assert igsync.__all__ == [
        "AccountInfo",
        "AudienceRow",
        "ConfigError",
        "ErrorKind",
        "FetchResult",
        "GraphError",
        "IgsyncError",
        "InputError",
        "InsightRow",
        "MediaInsightRow",
        "MediaRow",
        "RefreshReport",
        "SchemaMissingError",
        "Settings",
        "Store",
        "StoreConfigError",
        "StoreError",
        "SyncReport",
        "TokenGrant",
        "UserToken",
        "Window",
        "__version__",
        "fetch_and_store_instagram_insights",
        "fetch_and_store_instagram_insights_async",
        "get_user_instagram_account",
        "get_user_instagram_account_async",
        "list_instagram_accounts",
        "list_instagram_accounts_async",
        "normalize_timestamp",
        "open_store",
        "read_insights",
        "read_insights_async",
        "refresh_instagram_token",
        "refresh_instagram_token_async",
    ]
    for name in igsync.__all__:
        assert getattr(igsync, name) is not None, name
        assert name in dir(igsync)
    assert issubclass(igsync.StoreError, igsync.IgsyncError)
    assert issubclass(igsync.SchemaMissingError, igsync.StoreError)
    for name in ("fetch_and_store_instagram_insights", "get_user_instagram_account"):
        assert getattr(igsync, name).__doc__.startswith("Blocking"), name
    with pytest.raises(AttributeError, match="no attribute 'fetch'"):
        _ = igsync.fetch  # type: ignore[attr-defined]


def test_import_igsync_loads_nothing_heavy() -> None:
    probe = (
        "import sys, igsync; print(sorted(m for m in sys.modules"
        " if 'pydantic' in m or m.startswith(('igsync.', 'httpx'))))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], check=True, capture_output=True, text=True
    ).stdout
    assert loaded.strip() == "[]"


def test_normalize_timestamp_keys_the_same_instant_alike() -> None:
    same = {
        igsync.normalize_timestamp("2026-11-20T08:00:00+0000"),  # Meta's spelling
        igsync.normalize_timestamp("2026-11-20T08:00:00Z"),
        igsync.normalize_timestamp("2026-11-20T00:00:00-08:00"),
        igsync.normalize_timestamp("2026-11-20T08:00:00"),  # naive: UTC already
        igsync.normalize_timestamp(datetime(2026, 11, 20, 8, tzinfo=UTC)),
    }
    assert same == {"2026-11-20T08:00:00+00:00"}
    assert igsync.normalize_timestamp(None) is None
    assert igsync.normalize_timestamp("") is None
    with pytest.raises(ValueError, match="Invalid isoformat"):
        igsync.normalize_timestamp("yesterday")


@pytest.fixture
def sim() -> Simulator:
    return Simulator([SimAccount(ACCOUNT), SimAccount(OTHER, tz="Europe/Berlin")])


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'igsync.db'}"


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name in ("IG_ACCOUNT_ID", "IG_LONG_TOKEN", "IG_APP_ID", "IG_APP_SECRET"):
        monkeypatch.delenv(name, raising=False)
    return Settings(ig_app_id="sim-app-id", ig_app_secret=SecretStr("sim-app-secret"))


@pytest.fixture
def graphs(sim: Simulator) -> Iterator[list[GraphClient]]:
    """Fresh Graph clients on the simulator's transport, closed afterwards: a client belongs
    to the event loop it first ran on, and each blocking call runs its own."""
    made: list[GraphClient] = []
    yield made
    for graph in made:
        asyncio.run(graph.aclose())


def graph_on(sim: Simulator, graphs: list[GraphClient]) -> GraphClient:
    graph = GraphClient(
        base_url="https://graph.facebook.com",
        instagram_url="https://graph.instagram.com",
        version=DEFAULT_GRAPH_VERSION,
        transport=sim.transport(),
    )
    graphs.append(graph)
    return graph


def save(url: str, *tokens: UserToken) -> None:
    async def run() -> None:
        async with igsync.open_store(url) as store:
            for token in tokens:
                await store.save_token(token)

    asyncio.run(run())


def test_fetch_stores_the_users_insights_and_reports_them_the_seeds_way(
    sim: Simulator, url: str, settings: Settings, graphs: list[GraphClient]
) -> None:
    user = uuid4()
    token = sim.issue_token(ACCOUNT, expires_at=datetime.now(UTC) + timedelta(days=50))
    save(url, UserToken(u_id=user, access_token=SecretStr(token), account_id=ACCOUNT))

    result = igsync.fetch_and_store_instagram_insights(
        str(user), days=3, store=url, settings=settings, graph=graph_on(sim, graphs)
    )
    assert isinstance(result, igsync.FetchResult)
    assert result.success, result.errors
    assert (result.total_errors, result.errors) == (0, [])
    assert result.account_id == ACCOUNT
    assert result.user_id == str(user)
    assert result.total_inserted == sum(result.metrics_inserted.values()) > 0
    assert not result.token_refreshed  # 50 days left: no refresh needed

    stored = igsync.read_insights(user, store=url)
    assert len(stored) == result.total_inserted
    assert {r.account_id for r in stored} == {ACCOUNT}
    assert set(result.metrics_inserted) == {r.metric for r in stored}
    days = sorted({r.local_date for r in stored if r.local_date})
    assert igsync.read_insights(user, since=days[-1], store=url)
    assert all(
        r.local_date == days[-1] for r in igsync.read_insights(user, since=days[-1], store=url)
    )

    with pytest.raises(igsync.InputError, match="no Instagram account"):
        igsync.fetch_and_store_instagram_insights(
            uuid4(), store=url, settings=settings, graph=graph_on(sim, graphs)
        )
    with pytest.raises(igsync.InputError, match="not a UUID"):
        igsync.fetch_and_store_instagram_insights("nobody", store=url, settings=settings)


def test_get_user_instagram_account_gives_the_row_or_none(
    sim: Simulator, url: str, settings: Settings
) -> None:
    user, twice = uuid4(), uuid4()
    save(
        url,
        UserToken(
            u_id=user, access_token=SecretStr("EAAJ-api-token-one-123456"), account_id=ACCOUNT
        ),
        UserToken(
            u_id=twice, access_token=SecretStr("EAAJ-api-token-two-123456"), account_id=ACCOUNT
        ),
        UserToken(
            u_id=twice, access_token=SecretStr("EAAJ-api-token-three-1234"), account_id=OTHER
        ),
    )
    found = igsync.get_user_instagram_account(user, store=url)
    assert found is not None
    assert (found.account_id, found.access_token.get_secret_value()) == (
        ACCOUNT,
        "EAAJ-api-token-one-123456",
    )
    assert "EAAJ" not in repr(found)
    assert igsync.get_user_instagram_account(uuid4(), store=url) is None
    with pytest.raises(igsync.InputError, match="several Instagram accounts"):
        igsync.get_user_instagram_account(twice, store=url)
    chosen = igsync.get_user_instagram_account(twice, account_id=OTHER, store=url)
    assert chosen is not None
    assert chosen.account_id == OTHER

    listed = igsync.list_instagram_accounts(store=url, settings=settings)
    assert sorted((a.user_id, a.account_id) for a in listed) == sorted(
        [(str(user), ACCOUNT), (str(twice), ACCOUNT), (str(twice), OTHER)]
    )
    dumped = str([a.model_dump() for a in listed])
    assert "EAAJ-api-token" not in dumped  # the last four characters at most


def test_refresh_instagram_token_exchanges_an_old_token_for_a_new_one(
    sim: Simulator, settings: Settings, graphs: list[GraphClient]
) -> None:
    old = sim.issue_token(ACCOUNT, expires_at=datetime.now(UTC) + timedelta(days=3))
    grant = igsync.refresh_instagram_token(old, settings=settings, graph=graph_on(sim, graphs))
    assert isinstance(grant, igsync.TokenGrant)
    new = grant.access_token.get_secret_value()
    assert new != old
    info = sim.token_info(new)
    assert info is not None
    assert info.account_id == ACCOUNT
    assert grant.expires_at is not None
    assert grant.expires_at > datetime.now(UTC) + timedelta(days=50)

    with pytest.raises(igsync.ConfigError, match="IG_APP_ID and IG_APP_SECRET"):
        igsync.refresh_instagram_token(old, settings=Settings(), graph=graph_on(sim, graphs))


def test_a_blocking_call_inside_a_running_loop_says_what_to_await() -> None:
    async def inside() -> None:
        with pytest.raises(RuntimeError, match=r"await igsync\.get_user_instagram_account_async"):
            igsync.get_user_instagram_account(uuid4(), store="sqlite:///unused.db")

    asyncio.run(inside())


def test_the_async_api_uses_the_callers_open_store_and_leaves_it_open(
    sim: Simulator, url: str, settings: Settings
) -> None:
    user = uuid4()
    token = sim.issue_token(OTHER, expires_at=datetime.now(UTC) + timedelta(days=50))

    async def run() -> tuple[igsync.FetchResult, int]:
        async with (
            igsync.open_store(url) as store,
            GraphClient(
                base_url="https://graph.facebook.com",
                instagram_url="https://graph.instagram.com",
                version=DEFAULT_GRAPH_VERSION,
                transport=sim.transport(),
            ) as graph,
        ):
            await store.save_token(
                UserToken(u_id=user, access_token=SecretStr(token), account_id=OTHER)
            )
            result = await igsync.fetch_and_store_instagram_insights_async(
                user, streams=["account"], days=2, store=store, settings=settings, graph=graph
            )
            # still open: the caller's store
            rows = await igsync.read_insights_async(user, account_id=OTHER, store=store)
            return result, len(rows)

    result, stored = asyncio.run(run())
    assert result.success, result.errors
    assert stored == result.total_inserted > 0


def test_open_store_reads_the_configured_url(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("IGSYNC_DATABASE_URL", url)
    store = igsync.open_store()
    assert type(store).__name__ == "SQLiteStore"
    with pytest.raises(igsync.ConfigError, match="SUPABASE_URL and SUPABASE_KEY"):
        igsync.open_store("supabase", settings=Settings(supabase_url=None, supabase_key=None))


def test_metrics_and_streams_may_be_a_comma_separated_str(
    sim: Simulator, url: str, settings: Settings, graphs: list[GraphClient]
) -> None:
    user = uuid4()
    token = sim.issue_token(ACCOUNT, expires_at=datetime.now(UTC) + timedelta(days=50))
    save(url, UserToken(u_id=user, access_token=SecretStr(token), account_id=ACCOUNT))

    result = igsync.fetch_and_store_instagram_insights(
        user,
        metrics="reach",
        streams="account",
        days=2,
        store=url,
        settings=settings,
        graph=graph_on(sim, graphs),
    )
    assert result.success, result.errors
    assert set(result.metrics_inserted) == {"reach"}
    both = igsync.fetch_and_store_instagram_insights(
        user,
        metrics="reach, follower_count",
        days=2,
        dry_run=True,
        store=url,
        settings=settings,
        graph=graph_on(sim, graphs),
    )
    assert set(both.metrics_fetched) == {"reach", "follower_count"}


def test_a_blocking_calls_error_is_not_chained_after_the_loop_check_and_names_parameters(
    url: str, settings: Settings
) -> None:
    with pytest.raises(igsync.InputError) as raised:
        igsync.fetch_and_store_instagram_insights(uuid4(), days=0, store=url, settings=settings)
    assert not any(isinstance(e, RuntimeError) for e in contexts(raised.value))
    shown = "".join(traceback.format_exception(raised.value))
    assert "During handling" not in shown
    assert "no running event loop" not in shown
    assert str(raised.value).startswith("days must be between 1 and")
    with pytest.raises(igsync.InputError, match=r"^until needs since") as raised:
        igsync.fetch_and_store_instagram_insights(
            uuid4(), until=datetime.now(UTC).date(), store=url, settings=settings
        )
    assert "--" not in str(raised.value)
    assert not any(isinstance(e, RuntimeError) for e in contexts(raised.value))


def contexts(error: BaseException) -> list[BaseException]:
    """Every exception `error` was raised while handling, innermost last."""
    found: list[BaseException] = []
    while error.__context__ is not None:
        error = error.__context__
        found.append(error)
    return found
