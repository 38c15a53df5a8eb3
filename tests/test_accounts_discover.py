"""`igsync accounts discover` and the simulator's `/me/accounts`: the Instagram accounts behind
a Facebook user token, with Meta's cursor paging, Pages without Instagram skipped, the user
token stored per account, and never the token in any output."""

from __future__ import annotations

import io
import json
import sqlite3
import sys
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit
from uuid import UUID

import httpx
import pytest
import respx

from cli_runner import run_cli
from igsync.discover import discover_accounts, list_instagram_accounts
from igsync.graph import GraphClient
from igsync.models import UserToken
from igsync.simulator import Fault, SimAccount, SimPage, Simulator
from igsync.store.sqlite import SQLiteStore
from samples import sample

pytestmark = pytest.mark.anyio

ALICE = UUID("00000000-0000-4000-8000-00000000a11c")
NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)
IDS = [f"1784140000000000{n}" for n in range(1, 5)]


def simulator(**kwargs: object) -> Simulator:
    return Simulator([SimAccount(a) for a in IDS], now=lambda: NOW, **kwargs)  # type: ignore[arg-type]


def agency_pages() -> list[SimPage]:
    """Seven Pages: five linked to four Instagram accounts, two (the 2nd and 5th) to none."""
    return [
        SimPage("101", "Bakery", IDS[0], "bakery"),
        SimPage("102", "Old page"),
        SimPage("103", "Florist", IDS[1], "florist"),
        SimPage("104", "Gym", IDS[2], "gym"),
        SimPage("105", "Events only"),
        SimPage("106", "Cafe", IDS[3], None),
        SimPage("107", "Cafe (old page)", IDS[3], None),  # the same account, linked twice
    ]


def graph_on(sim: Simulator) -> GraphClient:
    return GraphClient(
        base_url="https://graph.facebook.com", version="v27.0", transport=sim.transport()
    )


async def get(sim: Simulator, url: str, **params: str) -> httpx.Response:
    async with httpx.AsyncClient(transport=sim.transport()) as client:
        # no `params` at all for a paging URL: an empty one would drop its query
        return await client.get(url, params=params) if params else await client.get(url)


ME_ACCOUNTS = "https://graph.facebook.com/v27.0/me/accounts"


# --- the simulator's /me/accounts ---


async def test_me_accounts_pages_with_cursors_like_meta() -> None:
    sim = simulator()
    token = sim.issue_user_token(agency_pages())
    fields = "instagram_business_account{id,username},name"
    first = (await get(sim, ME_ACCOUNTS, access_token=token, fields=fields, limit="4")).json()
    assert first["data"][:2] == [
        {
            "instagram_business_account": {"id": IDS[0], "username": "bakery"},
            "name": "Bakery",
            "id": "101",
        },
        {"name": "Old page", "id": "102"},  # no linked account: the key is left out
    ]
    assert set(first["paging"]) == {"cursors", "next"}
    assert set(first["paging"]["cursors"]) == {"before", "after"}
    next_query = dict(parse_qsl(urlsplit(first["paging"]["next"]).query))
    assert next_query == {
        "access_token": token,
        "fields": fields,
        "limit": "4",
        "after": first["paging"]["cursors"]["after"],
    }
    last = (await get(sim, first["paging"]["next"])).json()
    assert [p["id"] for p in last["data"]] == ["105", "106", "107"]
    assert last["data"][1]["instagram_business_account"] == {"id": IDS[3]}  # no username
    # the last page: no `next`, no `after` (graph_samples/me_accounts_…_before_only_airbyte)
    assert set(last["paging"]) == {"cursors", "previous"}
    assert set(last["paging"]["cursors"]) == {"before"}


async def test_me_accounts_default_fields_and_unknown_field() -> None:
    sim = simulator()
    token = sim.issue_user_token(agency_pages()[:1])
    body = (await get(sim, ME_ACCOUNTS, access_token=token)).json()
    # the default fields of the pyfacebook sample, a Page token among them
    assert set(body["data"][0]) == {
        "access_token",
        "category",
        "category_list",
        "name",
        "id",
        "tasks",
    }
    wrong = await get(sim, ME_ACCOUNTS, access_token=token, fields="name,fans")
    assert wrong.status_code == 400
    assert wrong.json()["error"]["message"] == (
        "(#100) Tried accessing nonexisting field (fans) on node type (Page)"
    )


async def test_me_accounts_checks_the_token_as_every_call_does() -> None:
    sim = simulator(strict_tokens=True)
    token = sim.issue_user_token(agency_pages(), expires_at=NOW - timedelta(hours=1))
    missing = await get(sim, ME_ACCOUNTS)
    expired = await get(sim, ME_ACCOUNTS, access_token=token)
    instagram = await get(
        sim, "https://graph.instagram.com/v27.0/me/accounts", access_token="IGAA" + "x" * 60
    )
    assert (missing.status_code, missing.json()["error"]["code"]) == (400, 104)
    assert expired.json()["error"]["code"] == 190
    assert instagram.status_code == 400  # graph.instagram.com has no /me/accounts


async def test_a_user_token_reads_its_pages_accounts_in_strict_mode_and_no_others() -> None:
    sim = simulator(strict_tokens=True)
    token = sim.issue_user_token(agency_pages()[:1])  # Bakery only: IDS[0]
    params = {"metric": "reach", "period": "day", "access_token": token}
    own = await get(sim, f"https://graph.facebook.com/v27.0/{IDS[0]}/insights", **params)
    other = await get(sim, f"https://graph.facebook.com/v27.0/{IDS[1]}/insights", **params)
    assert own.status_code == 200
    assert other.json()["error"]["code"] == 190


async def test_a_token_issued_for_one_account_lists_that_accounts_page() -> None:
    sim = simulator()
    token = sim.issue_token(IDS[2])
    body = (
        await get(sim, ME_ACCOUNTS, access_token=token, fields="instagram_business_account")
    ).json()
    assert [p["instagram_business_account"]["id"] for p in body["data"]] == [IDS[2]]


# --- listing the accounts: in-process against the simulator, and real bodies via respx ---


async def test_listing_follows_every_page_and_skips_pages_without_instagram() -> None:
    sim = simulator()
    token = sim.issue_user_token(agency_pages())
    async with graph_on(sim) as graph:
        found, without = await list_instagram_accounts(graph, token, page_size=2)
    assert [(a.account_id, a.username, a.page_id) for a in found] == [
        (IDS[0], "bakery", "101"),
        (IDS[1], "florist", "103"),
        (IDS[2], "gym", "104"),
        (IDS[3], None, "106"),
    ]
    assert without == 2
    calls = [r for r in sim.requests if r.path.endswith("/me/accounts")]
    assert len(calls) == 4
    assert calls[0].query["fields"] == "instagram_business_account{id,username},name"


@respx.mock
async def test_listing_with_metas_bodies_stops_at_the_page_without_next() -> None:
    token = "EAAJ-user-token-that-must-never-leak-0123456789"
    first = sample("me_accounts_with_page_tokens_paging_cursors_pyfacebook.json")
    first["data"][0]["instagram_business_account"] = {"id": "17841400000000077"}
    first["paging"]["next"] = f"{ME_ACCOUNTS}?after=after&access_token={token}"
    last = sample("me_accounts_instagram_business_account_paging_before_only_airbyte.json")
    route = respx.get(ME_ACCOUNTS).mock(
        side_effect=[httpx.Response(200, json=first), httpx.Response(200, json=last)]
    )
    async with GraphClient(base_url="https://graph.facebook.com", version="v27.0") as graph:
        found, without = await list_instagram_accounts(graph, token)
    assert [(a.account_id, a.page_id, a.page_name) for a in found] == [
        ("17841400000000077", "2121008874780932", "MyLife"),
        ("17841462785487205", "118981261308043", None),
    ]
    assert without == 0
    sent = [dict(parse_qsl(c.request.url.query.decode())) for c in route.calls]
    assert "after" not in sent[0]
    assert sent[1]["after"] == "after"  # the cursor of the first answer
    assert len(route.calls) == 2


async def test_discover_saves_the_user_token_per_account_with_debug_tokens_expiry(
    tmp_path: Path,
) -> None:
    from igsync.tokens import AppCredentials

    sim = simulator()
    expiry = NOW + timedelta(days=59)
    token = sim.issue_user_token(agency_pages(), expires_at=expiry)
    app = AppCredentials(sim.app_id, sim.app_secret)
    async with graph_on(sim) as graph, SQLiteStore(tmp_path / "d.db") as store:
        report = await discover_accounts(graph, store, user_id=ALICE, token=token, app=app)
        rows = await store.list_tokens()
    assert (report.saved, report.pages_without_instagram, report.expires_at) == (4, 2, expiry)
    assert all(isinstance(r, UserToken) for r in rows)
    assert {
        (r.account_id, r.token_kind, r.expires_at) for r in rows if isinstance(r, UserToken)
    } == {(a, "facebook_login", expiry) for a in IDS}
    assert {r.access_token.get_secret_value() for r in rows if isinstance(r, UserToken)} == {token}
    assert token not in report.model_dump_json()


# --- the command, in-process, its Graph client on the simulator ---


@pytest.fixture
def sim(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Simulator:
    import igsync.cli._common as common

    sim = simulator()

    def on_simulator(settings: object, **kwargs: object) -> GraphClient:
        return graph_on(sim)

    monkeypatch.setattr(common, "graph_client", on_simulator)
    monkeypatch.chdir(tmp_path)
    for name in (
        "IGSYNC_DATABASE_URL",
        "SUPABASE_URL",
        "SUPABASE_KEY",
        "IG_APP_ID",
        "IG_APP_SECRET",
    ):
        monkeypatch.delenv(name, raising=False)
    return sim


def _stdin(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text.encode()), encoding="utf-8"))


def _stored(path: Path) -> list[tuple[str, str, str]]:
    if not path.exists():
        return []
    with closing(sqlite3.connect(path)) as conn:
        return conn.execute(
            "select u_id, account_id, token_kind from user_tokens order by account_id"
        ).fetchall()


def test_discover_dry_run_shows_the_accounts_and_saves_nothing(
    sim: Simulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    token = sim.issue_user_token(agency_pages())
    db = tmp_path / "igsync.db"
    _stdin(monkeypatch, token + "\n")
    code, out, err = run_cli(
        monkeypatch, capsys, "--db", f"sqlite:///{db}", "accounts", "discover",
        "--user", str(ALICE), "--token-stdin", "--dry-run",
    )  # fmt: skip
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        f"account {IDS[0]} @bakery via Page 'Bakery' (101): found (dry run: nothing saved)",
        f"account {IDS[1]} @florist via Page 'Florist' (103): found (dry run: nothing saved)",
        f"account {IDS[2]} @gym via Page 'Gym' (104): found (dry run: nothing saved)",
        f"account {IDS[3]} (no username) via Page 'Cafe' (106): found (dry run: nothing saved)",
        f"4 Instagram account(s) found (dry run: nothing saved) for user {ALICE} "
        "(facebook_login, expiry unknown)",
        "2 Page(s) without an Instagram account skipped",
    ]
    assert _stored(db) == []


def test_discover_saves_and_its_json_is_one_document_without_the_token(
    sim: Simulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    token = sim.issue_user_token(agency_pages())
    db = tmp_path / "igsync.db"
    _stdin(monkeypatch, token)
    code, out, err = run_cli(
        monkeypatch, capsys, "--db", f"sqlite:///{db}", "accounts", "discover",
        "--user", str(ALICE), "--token-stdin", "--json",
    )  # fmt: skip
    document = json.loads(out)
    assert (code, err) == (0, "")
    assert document["saved"] == 4
    assert [a["account_id"] for a in document["accounts"]] == IDS
    assert token not in out
    assert _stored(db) == [(str(ALICE), a, "facebook_login") for a in IDS]


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("instagram", "this is an Instagram Login token (IG…)"),
        ("expired", "Meta refused the token"),
        ("empty", "standard input was empty"),
    ],
)
def test_discover_refuses_a_token_it_cannot_use_with_exit_2(
    sim: Simulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    case: str,
    message: str,
) -> None:
    token = {
        "instagram": "IGAA" + "k" * 100,
        "expired": sim.issue_user_token(agency_pages(), expires_at=NOW - timedelta(days=1)),
        "empty": "",
    }[case]
    db = tmp_path / "igsync.db"
    _stdin(monkeypatch, token)
    code, out, err = run_cli(
        monkeypatch, capsys, "--db", f"sqlite:///{db}", "accounts", "discover",
        "--user", str(ALICE), "--token-stdin",
    )  # fmt: skip
    assert (code, out) == (2, "")
    assert message in err
    assert len(err.strip().splitlines()) == 1
    if token:
        assert token not in err
    assert _stored(db) == []


def test_discover_after_a_server_error_that_persists_exits_1(
    sim: Simulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    token = sim.issue_user_token(agency_pages())
    sim.faults.append(Fault("server_error", times=100, endpoint="me/accounts"))
    _stdin(monkeypatch, token)
    code, out, err = run_cli(
        monkeypatch, capsys, "--db", f"sqlite:///{tmp_path / 'igsync.db'}", "accounts",
        "discover", "--user", str(ALICE), "--token-stdin",
    )  # fmt: skip
    assert (code, out) == (1, "")
    assert err.startswith("igsync: error: ")
    assert token not in err


class _Terminal(io.StringIO):
    """Standard input at a terminal: reading it directly would echo what is typed."""

    def isatty(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> str:
        raise AssertionError("a token at a terminal must be read with getpass, not echoed")


def _prompted(monkeypatch: pytest.MonkeyPatch, token: str) -> list[str]:
    """Standard input is a terminal where the user types `token`; returns the prompts shown."""
    prompts: list[str] = []

    def getpass(prompt: str = "Password: ", stream: object = None) -> str:
        prompts.append(prompt)
        return token

    monkeypatch.setattr(sys, "stdin", _Terminal())
    monkeypatch.setattr("getpass.getpass", getpass)
    return prompts


def test_discover_at_a_terminal_reads_the_token_hidden(
    sim: Simulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    token = sim.issue_user_token(agency_pages())
    prompts = _prompted(monkeypatch, token + "\n")
    code, out, err = run_cli(
        monkeypatch, capsys, "--db", f"sqlite:///{tmp_path / 'igsync.db'}", "accounts",
        "discover", "--user", str(ALICE), "--token-stdin", "--dry-run",
    )  # fmt: skip
    assert (code, err) == (0, ""), err
    assert prompts == ["Access token (input hidden): "]
    assert "4 Instagram account(s) found" in out
    assert token not in out


def test_accounts_add_at_a_terminal_reads_the_token_hidden(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # a token cut short while pasting: refused by its shape, before any I/O
    prompts = _prompted(monkeypatch, "IGQVJ")
    code, out, err = run_cli(
        monkeypatch, capsys, "--db", f"sqlite:///{tmp_path / 'igsync.db'}", "accounts", "add",
        "--user", str(ALICE), "--account-id", IDS[0], "--token-stdin",
    )  # fmt: skip
    assert prompts == ["Access token (input hidden): "]
    assert (code, out) == (2, "")
    assert err.startswith("igsync: error: --token-stdin: the token ")
    assert "IGQVJ" not in err
