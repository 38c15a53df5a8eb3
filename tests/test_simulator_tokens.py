"""The simulator's token endpoints and token lifecycle behave like Meta's (GRAPH_API.md §4).

Success shapes are checked against graph_samples/ (named next to each test); error messages are
copied from the sources named in `igsync/simulator/_errors.py`, so these tests check the
simulator against what Meta answers, not against its own constants.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from igsync.simulator import Fault, SimAccount, Simulator, TokenInfo, serve_in_thread

pytestmark = pytest.mark.anyio

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)  # 04:00 PST
LA = "17841400000000001"
KOLKATA = "17841400000000002"
APP_ID, APP_SECRET = "123456789012345", "0123456789abcdef0123456789abcdef"
APP_TOKEN = f"{APP_ID}|{APP_SECRET}"
SIXTY_DAYS = timedelta(seconds=5_183_944)  # expires_in of Meta's exchange and refresh samples
ENVELOPE_KEYS = ["message", "type", "code", "fbtrace_id"]
SUBCODE_KEYS = ["message", "type", "code", "error_subcode", "fbtrace_id"]
# error_190_subcode_467_user_logged_out.json
LOGGED_OUT = "Error validating access token: The session is invalid because the user logged out."
CANNOT_PARSE = "Invalid OAuth access token - Cannot parse access token"
INSTAGRAM = "https://graph.instagram.com"  # the in-process transport's Instagram host
FB_SCOPES = [
    "instagram_basic",
    "instagram_manage_insights",
    "pages_read_engagement",
    "pages_show_list",
]


class Clock:
    """The injected clock: tests move time, nothing sleeps."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@pytest.fixture
def clock() -> Clock:
    return Clock()


def make_sim(clock: Clock, *, strict: bool = True, **options: Any) -> Simulator:
    accounts = [SimAccount(LA, tz="America/Los_Angeles"), SimAccount(KOLKATA, tz="Asia/Kolkata")]
    return Simulator(
        accounts, now=clock, strict_tokens=strict, app_id=APP_ID, app_secret=APP_SECRET, **options
    )


@pytest.fixture
def sim(clock: Clock) -> Simulator:
    return make_sim(clock)


@pytest.fixture
async def client(sim: Simulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=sim.transport(), base_url="https://graph.facebook.com"
    ) as client:
        yield client


async def exchange(
    client: httpx.AsyncClient, token: str, path: str = "/v27.0/oauth/access_token", **params: str
) -> httpx.Response:
    query = {
        "grant_type": "fb_exchange_token",
        "client_id": APP_ID,
        "client_secret": APP_SECRET,
        "fb_exchange_token": token,
    }
    query.update(params)
    return await client.get(path, params={k: v for k, v in query.items() if v != "<omit>"})


async def refresh(
    client: httpx.AsyncClient,
    token: str,
    path: str = "/refresh_access_token",
    grant_type: str = "ig_refresh_token",
) -> httpx.Response:
    # refresh_access_token is the Instagram host's (GRAPH_API §4)
    return await client.get(
        INSTAGRAM + path, params={"grant_type": grant_type, "access_token": token}
    )


async def debug(
    client: httpx.AsyncClient, token: str, app_token: str = APP_TOKEN, path: str = "/v27.0"
) -> httpx.Response:
    return await client.get(
        f"{path}/debug_token", params={"input_token": token, "access_token": app_token}
    )


async def insights(client: httpx.AsyncClient, token: str, account: str = LA) -> httpx.Response:
    """Insights on the host of the token's login: an Instagram-Login token's is Instagram's."""
    host = INSTAGRAM if token.startswith("IG") else ""
    return await client.get(
        f"{host}/v27.0/{account}/insights",
        params={"metric": "reach"},
        headers={"Authorization": f"Bearer {token}"},
    )


def error_of(response: httpx.Response) -> dict[str, Any]:
    error: dict[str, Any] = response.json()["error"]
    return error


def info_of(sim: Simulator, token: str) -> TokenInfo:
    info = sim.token_info(token)
    assert info is not None
    return info


def unix(moment: datetime) -> int:
    return int(moment.timestamp())


# -- oauth/access_token (fb_exchange_token) ------------------------------------------------------


async def test_exchange_answers_the_sample_shape_with_a_new_60_day_token(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    old = sim.issue_token(LA, issued_at=NOW - timedelta(days=50), expires_at=NOW + timedelta(9))
    response = await exchange(client, old)
    assert response.status_code == 200
    body = response.json()
    # oauth_access_token_fb_exchange_token_meta_docs_sample.json: keys, order and expires_in
    assert list(body) == ["access_token", "token_type", "expires_in"]
    assert (body["token_type"], body["expires_in"]) == ("bearer", 5183944)
    new = body["access_token"]
    assert new != old
    assert new.startswith("EAA")
    assert len(new) >= 100
    assert info_of(sim, new) == TokenInfo(
        account_id=LA,
        kind="facebook_login",
        issued_at=NOW,
        expires_at=NOW + SIXTY_DAYS,
        data_access_expires_at=info_of(sim, old).data_access_expires_at,  # not extended
    )


async def test_the_old_facebook_token_stays_valid_until_its_own_expiry(
    sim: Simulator, clock: Clock, client: httpx.AsyncClient
) -> None:
    old = sim.issue_token(LA, expires_at=NOW + timedelta(days=2))
    new = (await exchange(client, old)).json()["access_token"]
    assert (await insights(client, old)).status_code == 200
    assert (await insights(client, new)).status_code == 200
    assert info_of(sim, old).revoked is False
    clock.advance(timedelta(days=2))
    assert error_of(await insights(client, old))["error_subcode"] == 463
    assert (await insights(client, new)).status_code == 200


async def test_exchange_is_served_without_a_version_too(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    response = await exchange(client, sim.issue_token(LA), path="/oauth/access_token")
    assert response.status_code == 200


EXCHANGE_ERRORS = {
    # case: (parameters changed, code, message)
    "missing_client_id": ({"client_id": "<omit>"}, 101, "Missing client_id parameter."),
    "missing_grant_type": ({"grant_type": "<omit>"}, 191, "Missing redirect_uri parameter."),
    "other_grant_type": ({"grant_type": "baz"}, 191, "Missing redirect_uri parameter."),
    "missing_token": (
        {"fb_exchange_token": "<omit>"},
        1,
        "fb_exchange_token parameter not specified",
    ),
    "wrong_client_id": (
        {"client_id": "999"},
        101,
        "Error validating application. Invalid application ID.",
    ),
    "wrong_client_secret": ({"client_secret": "nope"}, 1, "Error validating client secret."),
    "missing_client_secret": ({"client_secret": "<omit>"}, 1, "Error validating client secret."),
}


@pytest.mark.parametrize(
    ("params", "code", "message"), EXCHANGE_ERRORS.values(), ids=list(EXCHANGE_ERRORS)
)
async def test_exchange_refuses_a_bad_request_with_graphs_answer(
    sim: Simulator, client: httpx.AsyncClient, params: dict[str, str], code: int, message: str
) -> None:
    response = await exchange(client, sim.issue_token(LA), **params)
    assert response.status_code == 400
    error = error_of(response)
    assert list(error) == ENVELOPE_KEYS
    assert (error["type"], error["code"], error["message"]) == ("OAuthException", code, message)


async def test_exchange_of_an_expired_token_answers_190_463(
    sim: Simulator, clock: Clock, client: httpx.AsyncClient
) -> None:
    token = sim.issue_token(LA, expires_at=NOW + timedelta(hours=1))
    clock.advance(timedelta(hours=2))
    response = await exchange(client, token)
    assert response.status_code == 400
    error = error_of(response)
    # error_190_subcode_463_session_expired.json, the dates in Meta's zone
    assert list(error) == SUBCODE_KEYS
    assert (error["code"], error["error_subcode"]) == (190, 463)
    assert error["message"] == (
        "Error validating access token: Session has expired on Friday, 20-Nov-26 05:00:00 PST. "
        "The current time is Friday, 20-Nov-26 06:00:00 PST."
    )


async def test_exchange_of_a_logged_out_token_answers_190_467(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    token = sim.issue_token(LA)
    sim.revoke_token(token)
    error = error_of(await exchange(client, token))
    assert list(error) == SUBCODE_KEYS
    assert (error["code"], error["error_subcode"], error["message"]) == (190, 467, LOGGED_OUT)


async def test_exchange_of_an_unknown_or_instagram_token_answers_190_in_strict_mode(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    instagram = sim.issue_token(LA, kind="instagram_login")
    for token in ("EAAnever-issued", instagram):
        response = await exchange(client, token)
        assert response.status_code == 400
        error = error_of(response)
        assert list(error) == ENVELOPE_KEYS  # no subcode
        assert (error["code"], error["message"]) == (190, "Invalid OAuth access token.")


async def test_permissive_mode_exchanges_any_token_for_one_of_no_account(clock: Clock) -> None:
    sim = make_sim(clock, strict=False)
    async with httpx.AsyncClient(transport=sim.transport(), base_url="https://g.test") as client:
        response = await exchange(client, "any-demo-token")
        new = response.json()["access_token"]
        assert (await insights(client, new)).status_code == 200
    assert response.status_code == 200
    assert info_of(sim, new).account_id is None


# -- refresh_access_token (ig_refresh_token) -----------------------------------------------------


@pytest.mark.parametrize("path", ["/refresh_access_token", "/v27.0/refresh_access_token"])
async def test_refresh_answers_the_sample_shape_with_a_new_60_day_token(
    sim: Simulator, client: httpx.AsyncClient, path: str
) -> None:
    old = sim.issue_token(
        KOLKATA,
        kind="instagram_login",
        issued_at=NOW - timedelta(days=2),
        expires_at=NOW + timedelta(days=58),
    )
    response = await refresh(client, old, path)
    assert response.status_code == 200
    body = response.json()
    # ig_refresh_access_token_response_meta_docs.json
    assert list(body) == ["access_token", "token_type", "expires_in"]
    assert (body["token_type"], body["expires_in"]) == ("bearer", 5183944)
    new = body["access_token"]
    assert new.startswith("IGAA")
    assert new != old
    info = info_of(sim, new)
    assert (info.account_id, info.kind) == (KOLKATA, "instagram_login")
    assert (info.issued_at, info.expires_at) == (NOW, NOW + SIXTY_DAYS)
    assert (await insights(client, new, KOLKATA)).status_code == 200
    assert (await insights(client, old, KOLKATA)).status_code == 200  # not revoked either


async def test_refresh_needs_a_token_at_least_24_hours_old(
    sim: Simulator, clock: Clock, client: httpx.AsyncClient
) -> None:
    token = sim.issue_token(LA, kind="instagram_login", expires_at=NOW + timedelta(days=60))
    clock.advance(timedelta(hours=23, minutes=59))
    too_young = await refresh(client, token)
    clock.advance(timedelta(minutes=1))
    of_age = await refresh(client, token)
    assert too_young.status_code == 400
    error = error_of(too_young)
    assert list(error) == ENVELOPE_KEYS
    assert (error["type"], error["code"]) == ("IGApiException", 100)
    assert "24 hours" in error["message"]
    assert of_age.status_code == 200


async def test_refresh_of_an_expired_token_answers_190_463(
    sim: Simulator, clock: Clock, client: httpx.AsyncClient
) -> None:
    token = sim.issue_token(
        LA,
        kind="instagram_login",
        issued_at=NOW - timedelta(days=60),
        expires_at=NOW - timedelta(seconds=1),
    )
    error = error_of(await refresh(client, token))
    assert (error["code"], error["error_subcode"]) == (190, 463)


async def test_refresh_of_a_logged_out_token_answers_190_467(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    token = sim.issue_token(LA, kind="instagram_login", issued_at=NOW - timedelta(days=3))
    sim.revoke_token(token)
    error = error_of(await refresh(client, token))
    assert (error["code"], error["error_subcode"], error["message"]) == (190, 467, LOGGED_OUT)


async def test_refresh_of_a_facebook_or_unknown_token_answers_190(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    facebook = sim.issue_token(LA, issued_at=NOW - timedelta(days=3))
    for token in (facebook, "IGAAnever-issued"):
        response = await refresh(client, token)
        assert response.status_code == 400
        error = error_of(response)
        assert list(error) == ENVELOPE_KEYS
        assert (error["code"], error["message"]) == (190, CANNOT_PARSE)


async def test_refresh_refuses_another_grant_type_and_a_missing_token(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    token = sim.issue_token(LA, kind="instagram_login", issued_at=NOW - timedelta(days=3))
    wrong_grant = error_of(await refresh(client, token, grant_type="fb_exchange_token"))
    no_token = error_of(
        await client.get(f"{INSTAGRAM}/refresh_access_token?grant_type=ig_refresh_token")
    )
    assert (wrong_grant["type"], wrong_grant["code"]) == ("IGApiException", 100)
    assert "grant_type" in wrong_grant["message"]
    assert (no_token["code"], no_token["message"]) == (
        104,
        "An access token is required to request this resource.",
    )


# -- the lifecycle on insights -------------------------------------------------------------------


@pytest.mark.parametrize("strict", [True, False])
async def test_a_registered_token_expires_by_the_injected_clock_in_either_mode(
    clock: Clock, strict: bool
) -> None:
    sim = make_sim(clock, strict=strict)
    token = sim.issue_token(LA, expires_at=NOW + timedelta(hours=1))
    async with httpx.AsyncClient(transport=sim.transport(), base_url="https://g.test") as client:
        before = await insights(client, token)
        clock.advance(timedelta(hours=1))
        after = await insights(client, token)
    assert before.status_code == 200
    assert after.status_code == 400
    error = error_of(after)
    assert list(error) == SUBCODE_KEYS
    assert (error["code"], error["error_subcode"]) == (190, 463)
    assert "Session has expired on Friday, 20-Nov-26 05:00:00 PST." in error["message"]


@pytest.mark.parametrize("strict", [True, False])
async def test_a_revoked_token_answers_190_467_in_either_mode(clock: Clock, strict: bool) -> None:
    sim = make_sim(clock, strict=strict)
    token = sim.issue_token(LA)
    sim.revoke_token(token)
    sim.revoke_token("never-issued")  # e.g. a token the permissive mode took on trust
    async with httpx.AsyncClient(transport=sim.transport(), base_url="https://g.test") as client:
        answers = [await insights(client, t) for t in (token, "never-issued")]
    assert info_of(sim, token).revoked is True
    for response in answers:
        assert response.status_code == 400
        error = error_of(response)
        assert list(error) == SUBCODE_KEYS
        assert (error["code"], error["error_subcode"], error["message"]) == (190, 467, LOGGED_OUT)


async def test_expire_token_ends_a_registered_token_now(
    sim: Simulator, clock: Clock, client: httpx.AsyncClient
) -> None:
    token = sim.issue_token(LA, expires_at=NOW + timedelta(days=30))
    clock.advance(timedelta(hours=3))
    sim.expire_token(token)
    assert info_of(sim, token).expires_at == NOW + timedelta(hours=3)
    assert error_of(await insights(client, token))["error_subcode"] == 463


async def test_strict_mode_accepts_an_issued_token_only_for_its_account(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    token = sim.issue_token(LA, kind="instagram_login")
    assert (await insights(client, token)).status_code == 200
    other = await insights(client, token, KOLKATA)
    assert (other.status_code, error_of(other)["code"]) == (400, 190)
    assert sim.tokens[token] == LA


def test_issued_tokens_are_unique_and_the_registry_refuses_typos(sim: Simulator) -> None:
    tokens = {sim.issue_token(LA) for _ in range(50)}
    assert len(tokens) == 50
    assert sim.token_info("never-issued") is None
    with pytest.raises(ValueError, match="no account"):
        sim.issue_token("17841499999999999")
    with pytest.raises(ValueError, match="unknown token kind"):
        sim.issue_token(LA, kind="page")  # type: ignore[arg-type]


# -- debug_token ---------------------------------------------------------------------------------


async def test_debug_token_describes_a_valid_token_like_the_sample(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    issued = NOW - timedelta(days=1)
    token = sim.issue_token(LA, issued_at=issued, expires_at=issued + SIXTY_DAYS)
    response = await debug(client, token)
    assert response.status_code == 200
    data = response.json()["data"]
    # debug_token_response_pyfacebook.json, plus issued_at where Meta's reference puts it
    assert list(data) == [
        "app_id",
        "type",
        "application",
        "data_access_expires_at",
        "expires_at",
        "is_valid",
        "issued_at",
        "scopes",
        "granular_scopes",
        "user_id",
    ]
    assert (data["app_id"], data["type"], data["is_valid"]) == (APP_ID, "USER", True)
    assert data["expires_at"] == unix(issued + SIXTY_DAYS)
    assert data["issued_at"] == unix(issued)
    assert data["data_access_expires_at"] == unix(issued + timedelta(days=90))
    assert data["scopes"] == FB_SCOPES
    assert data["granular_scopes"] == [{"scope": s} for s in FB_SCOPES]
    assert data["user_id"].isdigit()
    assert data["user_id"] == (await debug(client, sim.issue_token(LA))).json()["data"]["user_id"]


async def test_debug_token_says_0_for_a_token_that_never_expires(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    data = (await debug(client, sim.issue_token(LA), path="")).json()["data"]
    assert (data["is_valid"], data["expires_at"]) == (True, 0)


async def test_debug_token_of_an_expired_token_is_invalid_with_the_error_inside(
    sim: Simulator, clock: Clock, client: httpx.AsyncClient
) -> None:
    token = sim.issue_token(LA, expires_at=NOW + timedelta(hours=1))
    clock.advance(timedelta(days=1))
    response = await debug(client, token)
    assert response.status_code == 200  # Meta answers an invalid input_token with 200
    data = response.json()["data"]
    # key order of live captures of an expired token: error between the two expiries
    assert list(data)[3:6] == ["data_access_expires_at", "error", "expires_at"]
    assert "issued_at" not in data
    assert data["is_valid"] is False
    assert data["expires_at"] == unix(NOW + timedelta(hours=1))
    error = data["error"]
    assert list(error) == ["code", "message", "subcode"]
    assert (error["code"], error["subcode"]) == (190, 463)
    assert error["message"].startswith("Error validating access token: Session has expired on")


async def test_debug_token_of_a_revoked_token_reports_the_logout(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    token = sim.issue_token(LA)
    sim.revoke_token(token)
    data = (await debug(client, token)).json()["data"]
    assert data["is_valid"] is False
    assert data["error"] == {"code": 190, "message": LOGGED_OUT, "subcode": 467}


async def test_debug_token_of_an_unknown_token(clock: Clock) -> None:
    strict, permissive = make_sim(clock), make_sim(clock, strict=False)
    answers = []
    for sim in (strict, permissive):
        async with httpx.AsyncClient(transport=sim.transport(), base_url="https://g.t") as client:
            answers.append((await debug(client, "xxxx")).json()["data"])
    assert answers[0] == {
        "error": {"code": 190, "message": CANNOT_PARSE},
        "is_valid": False,
        "scopes": [],
    }
    assert (answers[1]["is_valid"], answers[1]["expires_at"]) == (True, 0)


async def test_debug_token_cannot_parse_an_instagram_login_token(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    """debug_token lives on the Facebook host, which cannot read Instagram-Login tokens."""
    data = (await debug(client, sim.issue_token(KOLKATA, kind="instagram_login"))).json()["data"]
    assert data == {
        "error": {"code": 190, "message": CANNOT_PARSE},
        "is_valid": False,
        "scopes": [],
    }


@pytest.mark.parametrize(
    "path", ["/v27.0/oauth/access_token", "/v27.0/debug_token", "/oauth/access_token"]
)
async def test_the_instagram_host_serves_no_facebook_token_endpoint(
    client: httpx.AsyncClient, path: str
) -> None:
    assert (await client.get(INSTAGRAM + path)).status_code in (400, 404)
    assert (await client.get("/refresh_access_token")).status_code in (400, 404)


DEBUG_ERRORS = {
    # case: (app token, input token, code, message)
    "wrong_app_secret": (f"{APP_ID}|wrong", "t", 190, "Invalid OAuth access token signature."),
    "wrong_app_id": (f"1|{APP_SECRET}", "t", 190, "Invalid OAuth access token signature."),
    "user_token_as_app_token": (
        "EAAsome-user-token",
        "t",
        100,
        "(#100) You must provide an app access token, or a user access token that is an owner "
        "or developer of the app",
    ),
    "missing_input_token": (APP_TOKEN, "", 100, "(#100) The parameter input_token is required"),
}


@pytest.mark.parametrize(
    ("app_token", "input_token", "code", "message"),
    DEBUG_ERRORS.values(),
    ids=list(DEBUG_ERRORS),
)
async def test_debug_token_refuses_a_bad_app_token_with_http_400(
    client: httpx.AsyncClient, app_token: str, input_token: str, code: int, message: str
) -> None:
    response = await debug(client, input_token, app_token=app_token)
    assert response.status_code == 400
    error = error_of(response)
    assert list(error) == ENVELOPE_KEYS
    assert (error["code"], error["message"]) == (code, message)


async def test_debug_token_without_any_access_token_asks_for_an_app_token(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/v27.0/debug_token", params={"input_token": "t"})
    assert (response.status_code, error_of(response)["code"]) == (400, 100)


# -- faults on token endpoints -------------------------------------------------------------------


async def test_a_fault_on_the_exchange_fails_it_once_and_leaves_insights_alone(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    token = sim.issue_token(LA)
    sim.faults.append(Fault("server_error", endpoint="oauth/access_token"))
    assert (await insights(client, token)).status_code == 200
    failed = await exchange(client, token)
    assert failed.status_code == 500
    assert error_of(failed)["is_transient"] is True
    assert (await exchange(client, token)).status_code == 200


@pytest.mark.parametrize(
    ("kind", "endpoint", "subcode"),
    [
        ("expired_token", "refresh_access_token", 463),
        ("logged_out", "oauth/access_token", 467),
        ("invalid_token", "debug_token", None),
    ],
)
async def test_token_faults_answer_190_on_token_endpoints(
    sim: Simulator, client: httpx.AsyncClient, kind: Any, endpoint: Any, subcode: int | None
) -> None:
    sim.faults.append(Fault(kind, endpoint=endpoint))
    token = sim.issue_token(LA, kind="instagram_login", issued_at=NOW - timedelta(days=2))
    answers = {
        "refresh_access_token": await refresh(client, token),
        "oauth/access_token": await exchange(client, sim.issue_token(LA)),
        "debug_token": await debug(client, token),
    }
    for name, response in answers.items():
        if name != endpoint:
            assert response.status_code == 200, name
            continue
        assert response.status_code == 400
        error = error_of(response)
        assert error["code"] == 190
        assert error.get("error_subcode") == subcode


async def test_a_fault_hits_only_its_endpoint_and_account(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    sim.faults.append(Fault("transient"))  # insights by default
    sim.faults.append(Fault("bad_gateway", endpoint="oauth/access_token", account_id=KOLKATA))
    sim.faults.append(Fault("throttle", endpoint=None))  # any endpoint
    assert (await exchange(client, sim.issue_token(LA))).json()["error"]["code"] == 4
    assert (await exchange(client, sim.issue_token(LA))).status_code == 200
    assert (await exchange(client, sim.issue_token(KOLKATA))).status_code == 502
    assert (await insights(client, sim.issue_token(LA))).status_code == 500


def test_a_fault_for_an_unknown_endpoint_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown endpoint"):
        Fault("transient", endpoint="oauth/token")  # type: ignore[arg-type]


# -- bookkeeping ---------------------------------------------------------------------------------


INSTAGRAM_APP_SECRET = "sim-instagram-app-secret"  # the Simulator's default


def proof(token: str, secret: str = APP_SECRET) -> str:
    return hmac.new(secret.encode(), token.encode(), hashlib.sha256).hexdigest()


async def test_token_requests_are_recorded_and_need_appsecret_proof_where_a_token_is_sent(
    clock: Clock,
) -> None:
    """An app requiring appsecret_proof wants it on every call carrying an access_token: the
    refresh (proof of the token refreshed, keyed by the Instagram app's own secret) and
    debug_token (proof of the app token); the exchange carries none (client_secret is its
    authentication), so it needs none."""
    sim = make_sim(clock, require_appsecret_proof=True)
    fb = sim.issue_token(LA)
    ig = sim.issue_token(LA, kind="instagram_login", issued_at=NOW - timedelta(days=2))
    async with httpx.AsyncClient(transport=sim.transport(), base_url="https://g.test") as client:
        assert (await exchange(client, fb)).status_code == 200
        refused = [
            await refresh(client, ig),
            # keyed by the Meta app's secret: the Instagram host wants the Instagram app's
            await client.get(
                f"{INSTAGRAM}/refresh_access_token",
                params={
                    "grant_type": "ig_refresh_token",
                    "access_token": ig,
                    "appsecret_proof": proof(ig),
                },
            ),
            await debug(client, fb),
            # a proof of the wrong token: of the inspected token instead of the app token
            await client.get(
                "/v27.0/debug_token",
                params={"input_token": fb, "access_token": APP_TOKEN, "appsecret_proof": proof(fb)},
            ),
        ]
        for response in refused:
            assert response.status_code == 400
            assert error_of(response)["code"] == 100
            assert "app secret proof" in error_of(response)["message"]
        refreshed = await client.get(
            f"{INSTAGRAM}/refresh_access_token",
            params={
                "grant_type": "ig_refresh_token",
                "access_token": ig,
                "appsecret_proof": proof(ig, INSTAGRAM_APP_SECRET),
            },
        )
        debugged = await client.get(
            "/v27.0/debug_token",
            params={
                "input_token": fb,
                "access_token": APP_TOKEN,
                "appsecret_proof": proof(APP_TOKEN),
            },
        )
    assert refreshed.status_code == 200
    assert debugged.json()["data"]["is_valid"] is True
    assert [(r.host, r.path, r.status) for r in sim.requests] == [
        ("facebook", "/v27.0/oauth/access_token", 200),
        ("instagram", "/refresh_access_token", 400),
        ("instagram", "/refresh_access_token", 400),
        ("facebook", "/v27.0/debug_token", 400),
        ("facebook", "/v27.0/debug_token", 400),
        ("instagram", "/refresh_access_token", 200),
        ("facebook", "/v27.0/debug_token", 200),
    ]
    assert sim.requests[0].query["fb_exchange_token"] == fb


def test_over_loopback_no_secret_or_token_reaches_a_log(
    clock: Clock, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    sim = make_sim(clock)
    token = sim.issue_token(LA)
    caplog.set_level(logging.DEBUG)
    with serve_in_thread(sim) as served:
        response = httpx.get(
            f"{served.graph_url}/v27.0/oauth/access_token",
            params={
                "grant_type": "fb_exchange_token",
                "client_id": APP_ID,
                "client_secret": APP_SECRET,
                "fb_exchange_token": token,
            },
        )
    new = response.json()["access_token"]
    # httpx logs the URL it was handed: that is the client's to redact, not the server's
    logged = [r.getMessage() for r in caplog.records if not r.name.startswith(("httpx", "httpc"))]
    printed = capfd.readouterr()
    assert response.status_code == 200
    for secret in (APP_SECRET, token, new):
        assert not [line for line in logged if secret in line]
        assert secret not in printed.out + printed.err
