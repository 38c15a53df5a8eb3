"""examples/streamlit_app.py under Streamlit's own app-testing API (no browser): it lists the
stored accounts, fetches through the public API from the simulator (served in-process on
loopback, named by IGSYNC_GRAPH_URL as a user would), and shows the result the seed's way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import pytest
from pydantic import SecretStr
from streamlit.testing.v1 import AppTest

import igsync
from igsync.models import UserToken
from igsync.simulator import SimAccount, Simulator, serve_in_thread

APP = Path(__file__).resolve().parent.parent / "examples" / "streamlit_app.py"
GOOD = "17841400000000021"
BAD = "17841400000000022"
ALICE = UUID("00000000-0000-4000-8000-000000000021")
BOB = UUID("00000000-0000-4000-8000-000000000022")


@pytest.fixture
def sim() -> Simulator:
    return Simulator([SimAccount(GOOD), SimAccount(BAD)])


@pytest.fixture
def tokens(sim: Simulator) -> tuple[str, str]:
    """ALICE's token, and BOB's, which Meta refuses (the user logged out: code 190/467)."""
    expires_at = datetime.now(UTC) + timedelta(days=50)
    good = sim.issue_token(GOOD, expires_at=expires_at)
    revoked = sim.issue_token(BAD, expires_at=expires_at)
    sim.revoke_token(revoked)
    return good, revoked


@pytest.fixture
def app(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, sim: Simulator, tokens: tuple[str, str]
) -> Iterator[AppTest]:
    good, revoked = tokens
    url = f"sqlite:///{tmp_path / 'igsync.db'}"

    async def save() -> None:
        async with igsync.open_store(url) as store:
            await store.save_token(
                UserToken(u_id=ALICE, access_token=SecretStr(good), account_id=GOOD)
            )
            await store.save_token(
                UserToken(u_id=BOB, access_token=SecretStr(revoked), account_id=BAD)
            )

    asyncio.run(save())
    for name in ("IG_ACCOUNT_ID", "IG_LONG_TOKEN", "SUPABASE_URL", "SUPABASE_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no .env of the developer's is read
    monkeypatch.setenv("IGSYNC_DATABASE_URL", url)
    with serve_in_thread(sim) as served:
        monkeypatch.setenv("IGSYNC_GRAPH_URL", served.graph_url)
        monkeypatch.setenv("IGSYNC_INSTAGRAM_URL", served.instagram_url)
        yield AppTest.from_file(str(APP), default_timeout=60)


def test_the_page_lists_the_stored_accounts_without_their_tokens(
    app: AppTest, tokens: tuple[str, str]
) -> None:
    app.run()
    assert not app.exception
    picker = app.selectbox(key="account")
    assert sorted(option.split(" ")[0] for option in picker.options) == [GOOD, BAD]
    assert all(token not in " ".join(picker.options) for token in tokens)
    assert app.caption[0].value.startswith("Nothing stored")


def test_a_fetch_shows_success_with_the_total_and_charts_the_stored_values(app: AppTest) -> None:
    app.run()
    app.selectbox(key="account").select_index(_index(app, GOOD)).run()
    app.button(key="fetch").click().run()
    assert not app.exception
    assert len(app.success) == 1
    assert len(app.warning) == 0
    total = int(app.success[0].value.split("Fetched ")[1].split(" ")[0])
    stored = igsync.read_insights(ALICE)
    assert total == len(stored) > 0
    assert app.subheader[0].value == "Stored daily values"
    assert app.get("arrow_vega_lite_chart") or app.get("vega_lite_chart")


def test_a_failed_fetch_shows_the_warning_and_the_error_list(
    app: AppTest, tokens: tuple[str, str]
) -> None:
    app.run()
    app.selectbox(key="account").select_index(_index(app, BAD)).run()
    app.button(key="fetch").click().run()
    assert not app.exception
    assert len(app.success) == 0
    [warning] = app.warning
    # Streamlit shows a leading emoji as the icon
    assert warning.icon == "⚠️"
    assert warning.value.startswith("Inserted 0 records with")
    [error] = app.error
    # the seed's error list: here, why Meta refused the token
    assert "code 190/467" in error.value
    assert all(token not in error.value for token in tokens)
    assert igsync.read_insights(BOB) == []


def _index(app: AppTest, account_id: str) -> int:
    options = app.selectbox(key="account").options
    return next(i for i, text in enumerate(options) if text.startswith(account_id))
