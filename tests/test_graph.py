"""The Graph client at the HTTP level: real response bodies (fixtures/graph_samples) via respx."""

from __future__ import annotations

import asyncio
import email
import json
import ssl
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qsl

import httpx
import pytest
import respx
import stamina

from igsync.errors import ErrorKind, GraphError
from igsync.graph import (
    GraphClient,
    RetryPolicy,
    TokenProblem,
    accepted_metrics,
    appsecret_proof,
    classify,
    error_from_response,
    token_problem,
    usage_percent,
)
from igsync.graph._retry import should_retry as _should_retry
from samples import sample

pytestmark = pytest.mark.anyio

BASE = "https://graph.test"
URL = f"{BASE}/v27.0/17841400008460056/insights"
TOKEN = "EAAJ-long-lived-token-that-must-never-leak-0123456789"
SINCE, UNTIL = datetime(2017, 5, 3, 10, tzinfo=UTC), datetime(2017, 5, 5, 10, tzinfo=UTC)


def form_fields(request: httpx.Request) -> dict[str, str]:
    """The fields of a multipart/form-data body (a batch's), read by the standard library."""
    assert request.headers["content-type"].startswith("multipart/form-data; boundary=")
    head = f"Content-Type: {request.headers['content-type']}\r\n\r\n".encode()
    message = email.message_from_bytes(head + request.content)
    return {
        str(part.get_param("name", header="content-disposition")): part.get_payload(
            decode=True
        ).decode()
        for part in message.get_payload()
    }


def client(**kwargs: object) -> GraphClient:
    return GraphClient(base_url=BASE, version="v27.0", **kwargs)  # type: ignore[arg-type]


async def insights(graph: GraphClient, metrics: list[str], metric_type: str = "time_series"):  # type: ignore[no-untyped-def]
    return await graph.get_insights(
        "17841400008460056",
        TOKEN,
        metrics=metrics,
        metric_type=metric_type,  # type: ignore[arg-type]
        since=SINCE,
        until=UNTIL,
    )


@respx.mock
async def test_time_series_points_parse_with_plus0000_offsets_as_utc() -> None:
    respx.get(URL).respond(
        200, json=sample("insights_time_series_impressions_reach_profile_views_pyfacebook.json")
    )
    async with client() as graph:
        items = await insights(graph, ["reach"])
    reach = next(i for i in items if i.name == "reach")
    assert [(p.end_time, p.value) for p in reach.points] == [
        (datetime(2017, 5, 4, 7, tzinfo=UTC), 3),
        (datetime(2017, 5, 5, 7, tzinfo=UTC), 36),
    ]


@respx.mock
async def test_total_value_parses_value_and_breakdowns_without_end_time() -> None:
    respx.get(URL).respond(
        200,
        json=sample(
            "insights_total_value_reach_breakdown_media_product_type_follow_type_pyfacebook.json"
        ),
    )
    async with client() as graph:
        (reach,) = await insights(graph, ["reach"], "total_value")
    assert reach.total == 14516883
    assert reach.points == []
    assert reach.breakdowns[0]["dimension_keys"] == ["media_product_type", "follow_type"]


@respx.mock
async def test_empty_data_is_no_items_not_zero() -> None:
    respx.get(URL).respond(200, json=sample("insights_empty_data_documented.json"))
    async with client() as graph:
        assert await insights(graph, ["follower_count"]) == []


@respx.mock
async def test_every_request_names_its_metric_type_and_sends_the_token_in_a_header() -> None:
    route = respx.get(URL).respond(200, json={"data": []})
    async with client() as graph:
        await insights(graph, ["profile_views", "accounts_engaged"], "total_value")
    request = route.calls.last.request
    assert request.url.params["metric_type"] == "total_value"
    assert request.url.params["metric"] == "profile_views,accounts_engaged"
    assert request.url.params["since"] == str(int(SINCE.timestamp()))
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert TOKEN not in str(request.url)


IG_TOKEN = "IGAAlong-lived-instagram-login-token-never-leak-0123456789"
IG_URL = "https://ig.test/v27.0/17841400008460056/insights"


@respx.mock
async def test_instagram_login_insights_go_to_the_instagram_host_with_its_own_proof() -> None:
    """GRAPH_API §7: graph.instagram.com serves Instagram-Login tokens; the proof is keyed by
    the Instagram app's secret, never the Meta app's (docs/instagram-login.md)."""
    facebook = respx.get(URL).respond(200, json={"data": []})
    instagram = respx.get(IG_URL).respond(
        200, json=sample("insights_time_series_follower_count_reach_day_airbyte.json")
    )
    async with client(
        instagram_url="https://ig.test/",
        app_secret="meta-app-secret-123",
        instagram_app_secret="instagram-app-secret-456",
    ) as graph:
        items = await graph.get_insights(
            "17841400008460056",
            IG_TOKEN,
            kind="instagram_login",
            metrics=["reach"],
            metric_type="time_series",
            since=SINCE,
            until=UNTIL,
        )
        await insights(graph, ["reach"])  # a Facebook-Login token: the Facebook host
    assert {i.name for i in items} == {"follower_count", "reach"}
    request = instagram.calls.last.request
    assert request.headers["authorization"] == f"Bearer {IG_TOKEN}"
    assert request.url.params["appsecret_proof"] == appsecret_proof(
        IG_TOKEN, "instagram-app-secret-456"
    )
    assert IG_TOKEN not in str(request.url)
    assert facebook.calls.last.request.url.params["appsecret_proof"] == appsecret_proof(
        TOKEN, "meta-app-secret-123"
    )
    assert (instagram.call_count, facebook.call_count) == (1, 1)


@respx.mock
async def test_a_cannot_parse_190_is_an_unparseable_token_not_a_dead_one() -> None:
    body = {
        "error": {
            "message": "Invalid OAuth access token - Cannot parse access token",
            "type": "OAuthException",
            "code": 190,
            "fbtrace_id": "AbCdEf",
        }
    }
    respx.get(URL).respond(400, json=body)
    async with client() as graph:
        with pytest.raises(GraphError) as caught:
            await insights(graph, ["reach"])
    assert caught.value.kind == ErrorKind.AUTH
    assert token_problem(caught.value) == TokenProblem.UNPARSEABLE
    assert not TokenProblem.UNPARSEABLE.needs_login


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("error_190_subcode_463_session_expired.json", TokenProblem.EXPIRED),
        ("error_190_session_expired_subcode_0_n8n_issue8.json", TokenProblem.EXPIRED),
        ("error_190_subcode_467_user_logged_out.json", TokenProblem.INVALIDATED),
        ("error_190_subcode_460_generic_meta_docs.json", TokenProblem.INVALIDATED),
    ],
)
def test_190_bodies_say_what_is_wrong_with_the_token(name: str, problem: TokenProblem) -> None:
    error = error_from_response(httpx.Response(400, json=sample(name)))
    assert token_problem(error) == problem
    assert problem.needs_login


@pytest.mark.parametrize(
    ("subcode", "problem"),
    [(458, TokenProblem.APP_REMOVED), (459, TokenProblem.CHECKPOINT), (None, TokenProblem.UNKNOWN)],
)
def test_other_190_subcodes(subcode: int | None, problem: TokenProblem) -> None:
    error = GraphError(
        "Error validating access token", kind=ErrorKind.AUTH, code=190, subcode=subcode
    )
    assert token_problem(error) == problem
    assert token_problem(GraphError("(#100) bad", kind=ErrorKind.INVALID, code=100)) is None


def test_must_be_one_of_names_every_metric_meta_accepts() -> None:
    body = sample("error_100_metric_must_be_one_of_partial.json")
    accepted = accepted_metrics(error_from_response(httpx.Response(400, json=body)))
    assert accepted is not None
    assert len(accepted) == 28
    assert {"reach", "views", "reposts", "follower_demographics", "threads_views"} <= accepted
    assert "impressions" not in accepted
    assert "profile_visits" not in accepted


@pytest.mark.parametrize(
    "name",
    [
        "error_100_metric_type_total_value_required_partial.json",
        "error_100_impressions_unsupported_v22_postiz_issue622_partial.json",
        "error_100_since_param_not_valid_airbyte_fixture.json",
        "error_100_follower_count_last_30_days_partial.json",
        "error_10_application_no_permission_airbyte.json",
        "error_190_subcode_463_session_expired.json",
    ],
)
def test_other_errors_name_no_accepted_metrics(name: str) -> None:
    assert accepted_metrics(error_from_response(httpx.Response(400, json=sample(name)))) is None


@respx.mock
async def test_a_refused_metric_raises_an_error_that_lists_what_meta_accepts() -> None:
    respx.get(URL).respond(400, json=sample("error_100_metric_must_be_one_of_partial.json"))
    async with client() as graph:
        with pytest.raises(GraphError) as caught:
            await insights(graph, ["impressions"])
    assert caught.value.kind == ErrorKind.INVALID
    accepted = accepted_metrics(caught.value)
    assert accepted is not None
    assert "views" in accepted


@respx.mock
async def test_appsecret_proof_is_the_hmac_of_the_token() -> None:
    route = respx.get(URL).respond(200, json={"data": []})
    async with client(app_secret="app-secret-value-123") as graph:
        await insights(graph, ["reach"])
    params = route.calls.last.request.url.params
    assert params["appsecret_proof"] == appsecret_proof(TOKEN, "app-secret-value-123")
    assert "app-secret-value-123" not in str(route.calls.last.request.url)


@pytest.mark.parametrize(
    ("name", "kind", "code"),
    [
        ("error_4_application_request_limit_nodejs_sdk_issue97.json", ErrorKind.THROTTLED, 4),
        ("error_17_user_request_limit_python_sdk_issue416.json", ErrorKind.THROTTLED, 17),
        ("error_32_page_request_limit_meta_docs_sample.json", ErrorKind.THROTTLED, 32),
        ("error_613_rate_limit_partial.json", ErrorKind.THROTTLED, 613),
        ("error_2_unexpected_transient_airbyte_issue1814_partial.json", ErrorKind.TRANSIENT, 2),
        ("error_190_subcode_463_session_expired.json", ErrorKind.AUTH, 190),
        ("error_190_subcode_467_user_logged_out.json", ErrorKind.AUTH, 190),
        ("error_190_session_expired_subcode_0_n8n_issue8.json", ErrorKind.AUTH, 190),
        ("error_10_application_no_permission_airbyte.json", ErrorKind.PERMISSION, 10),
        ("error_100_metric_must_be_one_of_partial.json", ErrorKind.INVALID, 100),
        ("error_100_metric_type_total_value_required_partial.json", ErrorKind.INVALID, 100),
        ("error_100_since_param_not_valid_airbyte_fixture.json", ErrorKind.INVALID, 100),
    ],
)
@respx.mock
async def test_errors_are_classified_from_real_bodies(
    name: str, kind: ErrorKind, code: int
) -> None:
    # Meta sends throttling as HTTP 400 too (GRAPH_API.md §3).
    route = respx.get(URL).respond(400, json=sample(name))
    async with client(retry=RetryPolicy(attempts=3)) as graph:
        with pytest.raises(GraphError) as caught:
            await insights(graph, ["reach"])
    assert caught.value.kind == kind
    assert caught.value.code == code
    assert caught.value.http_status == 400
    retried = kind in (ErrorKind.THROTTLED, ErrorKind.TRANSIENT)
    assert route.call_count == (3 if retried else 1)


@respx.mock
async def test_throttled_then_ok_succeeds_through_retries() -> None:
    route = respx.get(URL)
    route.side_effect = [
        httpx.Response(
            400, json=sample("error_4_application_request_limit_nodejs_sdk_issue97.json")
        ),
        httpx.Response(
            500, json={"error": {"message": "An unknown error has occurred.", "code": 1}}
        ),
        httpx.Response(502, text="<html>Bad Gateway</html>"),
        httpx.Response(
            200, json=sample("insights_time_series_follower_count_reach_day_airbyte.json")
        ),
    ]
    async with client() as graph:
        items = await insights(graph, ["follower_count", "reach"])
    assert [i.name for i in items] == ["follower_count", "reach"]
    assert route.call_count == 4


@respx.mock
async def test_instagram_throttle_waits_for_estimated_time_to_regain_access() -> None:
    usage = {
        "17841400008460056": [
            {"type": "instagram", "call_count": 100, "estimated_time_to_regain_access": 2}
        ]
    }
    body = {
        "error": {"message": "(#80002) too many calls", "type": "OAuthException", "code": 80002}
    }
    route = respx.get(URL)
    route.side_effect = [
        httpx.Response(400, json=body, headers={"x-business-use-case-usage": json.dumps(usage)}),
        httpx.Response(200, json={"data": []}),
    ]
    async with client() as graph:
        assert await insights(graph, ["reach"]) == []
    assert route.call_count == 2
    # The wait stamina is told to take (test mode then skips it): Meta's minutes, in seconds.
    error = error_from_response(route.calls[0].response)
    assert error.kind == ErrorKind.THROTTLED
    assert _should_retry(RetryPolicy())(error) == 120.0


@respx.mock
async def test_requests_slow_down_as_usage_nears_the_quota_and_not_before() -> None:
    def answer(call_count: int | None) -> httpx.Response:
        usage = {"call_count": call_count, "total_cputime": 1, "total_time": 1}
        headers = {} if call_count is None else {"x-app-usage": json.dumps(usage)}
        return httpx.Response(200, json={"data": []}, headers=headers)

    route = respx.get(URL)
    route.side_effect = [answer(None), answer(50), answer(90), answer(100), answer(None)]
    policy = RetryPolicy(pace_from=80, pace_max=30)
    async with client(retry=policy) as graph:
        paced = []
        for _ in range(5):
            await insights(graph, ["reach"])
            paced.append(graph.paced_s)
    # A pause comes before the request after a high answer: 90% -> 7.5 s, then 100% -> 30 s.
    assert paced == [0.0, 0.0, 0.0, 7.5, 37.5]
    assert policy.pace(None) == policy.pace(79.9) == 0.0


@respx.mock
async def test_regain_estimate_longer_than_the_budget_fails_fast() -> None:
    usage = {"1": [{"type": "instagram", "call_count": 100, "estimated_time_to_regain_access": 60}]}
    route = respx.get(URL).respond(
        400,
        json={"error": {"message": "(#80002) too many calls", "code": 80002}},
        headers={"x-business-use-case-usage": json.dumps(usage)},
    )
    async with client(retry=RetryPolicy(max_regain_wait=300)) as graph:
        with pytest.raises(GraphError) as caught:
            await insights(graph, ["reach"])
    assert caught.value.retry_after == 3600
    assert route.call_count == 1


@respx.mock
async def test_object_missing_subcode_33_is_retried_once_then_permanent() -> None:
    route = respx.get(URL).respond(
        400, json=sample("error_100_subcode_33_unsupported_get_airbyte_fixture.json")
    )
    async with client() as graph:
        with pytest.raises(GraphError) as caught:
            await insights(graph, ["reach"])
    assert route.call_count == 2
    assert caught.value.kind == ErrorKind.INVALID


@respx.mock
async def test_timeouts_and_resets_are_transient_and_name_no_url() -> None:
    route = respx.get(URL)
    route.side_effect = [httpx.ReadTimeout("timed out"), httpx.ConnectError("reset")] * 3
    async with client(retry=RetryPolicy(attempts=3)) as graph:
        with pytest.raises(GraphError) as caught:
            await insights(graph, ["reach"])
    assert caught.value.kind == ErrorKind.TRANSIENT
    assert route.call_count == 3
    assert "?" not in str(caught.value)
    assert TOKEN not in repr(caught.value)


@respx.mock
async def test_a_token_echoed_in_an_error_message_is_redacted() -> None:
    body = {
        "error": {
            "message": f"Malformed access token {TOKEN}?access_token={TOKEN}",
            "type": "OAuthException",
            "code": 190,
        }
    }
    respx.get(URL).respond(400, json=body)
    from igsync.redact import register_secret

    register_secret(TOKEN)
    async with client() as graph:
        with pytest.raises(GraphError) as caught:
            await insights(graph, ["reach"])
    assert TOKEN not in str(caught.value)
    assert TOKEN not in repr(caught.value)


def test_usage_headers_take_the_worst_figure_and_absent_is_unknown() -> None:
    two_ids = json.dumps(
        sample("header_x_business_use_case_usage_instagram_two_ids_live_capture.json")
    )
    app = json.dumps(sample("header_x_app_usage_pyfacebook_test.json"))
    assert usage_percent(httpx.Headers({"x-business-use-case-usage": two_ids})) == 1
    assert usage_percent(httpx.Headers({"x-app-usage": app})) == 91
    assert usage_percent(httpx.Headers({})) is None


def test_classification_table() -> None:
    assert classify(80002, None, False, 400) == ErrorKind.THROTTLED
    assert classify(None, None, False, 429) == ErrorKind.THROTTLED
    assert classify(None, None, False, 503) == ErrorKind.TRANSIENT
    assert classify(200, None, False, 403) == ErrorKind.PERMISSION
    assert classify(100, None, False, 400) == ErrorKind.INVALID
    # "Error validating client secret." is code 1 too: retrying a wrong secret is pointless.
    assert classify(1, None, False, 400) == ErrorKind.INVALID
    assert classify(1, None, True, 400) == ErrorKind.TRANSIENT
    assert classify(1, None, False, 500) == ErrorKind.TRANSIENT


TOKEN_URL = f"{BASE}/v27.0/oauth/access_token"
IG_REFRESH_URL = "https://ig.test/refresh_access_token"
DEBUG_URL = f"{BASE}/v27.0/debug_token"


@respx.mock
async def test_fb_exchange_sends_the_documented_parameters_and_computes_expiry() -> None:
    route = respx.get(TOKEN_URL).respond(
        200, json=sample("oauth_access_token_fb_exchange_token_response_pyfacebook.json")
    )
    async with client() as graph:
        before = datetime.now(UTC)
        grant = await graph.exchange_token(TOKEN, app_id="123", app_secret="app-secret-xyz-123")
    params = route.calls.last.request.url.params
    assert params["grant_type"] == "fb_exchange_token"
    assert params["client_id"] == "123"
    assert params["fb_exchange_token"] == TOKEN
    assert grant.access_token.get_secret_value() == "token"
    assert grant.expires_at is not None
    assert abs((grant.expires_at - before).total_seconds() - 5184000) < 5


@respx.mock
async def test_a_grant_without_expires_in_has_no_expiry() -> None:
    respx.get(TOKEN_URL).respond(200, json={"access_token": "EAAG-new", "token_type": "bearer"})
    async with client() as graph:
        grant = await graph.exchange_token(TOKEN, app_id="1", app_secret="s" * 12)
    assert grant.expires_at is None


@respx.mock
async def test_instagram_refresh_goes_to_the_instagram_host() -> None:
    route = respx.get(IG_REFRESH_URL).respond(
        200, json=sample("ig_refresh_access_token_response_meta_docs.json")
    )
    async with client(instagram_url="https://ig.test") as graph:
        grant = await graph.refresh_instagram_token(TOKEN)
    assert route.calls.last.request.url.params["grant_type"] == "ig_refresh_token"
    assert grant.access_token.get_secret_value() == "c3oxd..."


@respx.mock
async def test_debug_token_reads_validity_expiry_and_scopes() -> None:
    route = respx.get(DEBUG_URL).respond(200, json=sample("debug_token_response_pyfacebook.json"))
    async with client() as graph:
        info = await graph.debug_token(TOKEN, app_id="appId", app_secret="app-secret-xyz-123")
    assert route.calls.last.request.url.params["access_token"] == "appId|app-secret-xyz-123"
    assert info.is_valid
    assert info.expires_at == datetime.fromtimestamp(1577347200, UTC)
    assert info.data_access_expires_at == datetime.fromtimestamp(1585040349, UTC)
    assert "read_insights" in info.scopes


@respx.mock
async def test_debug_token_zero_expiry_means_never() -> None:
    body = {"data": {"is_valid": True, "expires_at": 0, "scopes": []}}
    respx.get(DEBUG_URL).respond(200, json=body)
    async with client() as graph:
        info = await graph.debug_token(TOKEN, app_id="1", app_secret="s" * 12)
    assert info.expires_at is None


@respx.mock
async def test_token_endpoint_errors_never_carry_the_url_or_secrets() -> None:
    respx.get(TOKEN_URL).respond(400, json=sample("error_190_subcode_463_session_expired.json"))
    async with client() as graph:
        with pytest.raises(GraphError) as caught:
            await graph.exchange_token(TOKEN, app_id="1", app_secret="app-secret-xyz-123")
    text = str(caught.value) + repr(caught.value)
    assert caught.value.kind == ErrorKind.AUTH
    assert TOKEN not in text
    assert "app-secret-xyz-123" not in text
    assert "?" not in text
    assert "client_secret" not in text


@respx.mock
async def test_token_calls_carrying_an_access_token_send_its_appsecret_proof() -> None:
    """§4: the proof goes with every access_token sent. debug_token sends the app token, so it
    proves that; the Instagram refresh proves the token it refreshes, with the Instagram app's
    secret; the exchange sends no access_token (client_secret authenticates it), so it has
    nothing to prove."""
    secret, instagram_secret = "app-secret-xyz-123", "instagram-secret-456"
    debug = respx.get(DEBUG_URL).respond(200, json=sample("debug_token_response_pyfacebook.json"))
    refresh = respx.get(IG_REFRESH_URL).respond(
        200, json=sample("ig_refresh_access_token_response_meta_docs.json")
    )
    exchange = respx.get(TOKEN_URL).respond(
        200, json=sample("oauth_access_token_fb_exchange_token_response_pyfacebook.json")
    )
    async with client(
        app_secret=secret, instagram_app_secret=instagram_secret, instagram_url="https://ig.test"
    ) as graph:
        await graph.debug_token(TOKEN, app_id="appId", app_secret=secret)
        await graph.refresh_instagram_token(TOKEN)
        await graph.exchange_token(TOKEN, app_id="appId", app_secret=secret)
    debug_params = debug.calls.last.request.url.params
    assert debug_params["appsecret_proof"] == appsecret_proof(f"appId|{secret}", secret)
    refresh_params = refresh.calls.last.request.url.params
    assert refresh_params["appsecret_proof"] == appsecret_proof(TOKEN, instagram_secret)
    assert "appsecret_proof" not in exchange.calls.last.request.url.params
    assert "access_token" not in exchange.calls.last.request.url.params


@respx.mock
async def test_instagram_refresh_sends_no_proof_without_an_instagram_app_secret() -> None:
    route = respx.get(IG_REFRESH_URL).respond(
        200, json=sample("ig_refresh_access_token_response_meta_docs.json")
    )
    # the Meta app's secret keys no proof for the Instagram host: it would be refused there
    async with client(instagram_url="https://ig.test", app_secret="meta-app-secret-1") as graph:
        await graph.refresh_instagram_token(TOKEN)
    assert "appsecret_proof" not in route.calls.last.request.url.params


BATCH_URL = f"{BASE}/v27.0/"


def batch_item(status: int, body: object) -> dict[str, object]:
    # the item shape of batch_response_meta_docs.json, with headers as Meta lists them
    headers = [{"name": "Content-Type", "value": "text/javascript; charset=UTF-8"}]
    return {"code": status, "headers": headers, "body": json.dumps(body)}


@respx.mock
async def test_batched_calls_share_one_post_and_each_item_ends_as_if_alone() -> None:
    items = [
        batch_item(
            200, sample("insights_time_series_impressions_reach_profile_views_pyfacebook.json")
        ),
        batch_item(400, sample("error_100_metric_must_be_one_of_partial.json")),
    ]
    route = respx.post(BATCH_URL).respond(200, json=items)
    async with client(app_id="appId", app_secret="app-secret-xyz-123", batch=True) as graph:
        good, bad = await asyncio.gather(
            insights(graph, ["reach"]), insights(graph, ["nope"]), return_exceptions=True
        )
    assert route.call_count == 1
    assert isinstance(good, list)
    assert {i.name for i in good} >= {"reach"}
    assert isinstance(bad, GraphError)
    assert (bad.kind, bad.code) == (ErrorKind.INVALID, 100)
    sent = form_fields(route.calls.last.request)
    assert sent["access_token"] == "appId|app-secret-xyz-123"  # the fallback: the app token
    operations = json.loads(sent["batch"])
    assert len(operations) == 2
    for operation in operations:
        query = dict(parse_qsl(operation["relative_url"].split("?", 1)[1]))
        assert query["access_token"] == TOKEN  # each its own token, in the POST body
        assert query["appsecret_proof"] == appsecret_proof(TOKEN, "app-secret-xyz-123")
    assert TOKEN not in str(route.calls.last.request.url)


@respx.mock
async def test_a_refused_app_token_fails_the_batch_without_blaming_any_account() -> None:
    respx.post(BATCH_URL).respond(400, json=sample("error_190_subcode_460_generic_meta_docs.json"))
    async with client(app_id="appId", app_secret="app-secret-xyz-123", batch=True) as graph:
        with pytest.raises(GraphError) as caught:
            # two at once: a batch of one would be sent as the plain GET it stands for
            await asyncio.gather(insights(graph, ["reach"]), insights(graph, ["reach"]))
    assert caught.value.kind == ErrorKind.INVALID
    assert "the app token (IG_APP_ID/IG_APP_SECRET) was refused" in str(caught.value)
    assert token_problem(caught.value) is None  # so no account is marked needs_reauth


@respx.mock
async def test_an_accounts_own_quota_near_its_end_slows_only_that_accounts_calls() -> None:
    """x-business-use-case-usage is per account (GRAPH_API.md §3): one account at 95% must not
    pace the thousands of others a sync-all runs beside it; x-app-usage paces every call."""
    busy, calm = TOKEN, "EAAJ-another-accounts-token-0123456789"
    usage = {"1": [{"type": "instagram", "call_count": 95, "total_cputime": 1, "total_time": 1}]}
    high = {"x-business-use-case-usage": json.dumps(usage)}
    route = respx.get(URL)
    route.side_effect = [httpx.Response(200, json={"data": []}, headers=high)] + [
        httpx.Response(200, json={"data": []})
    ] * 3
    policy = RetryPolicy(pace_from=80, pace_max=30)

    async def call(graph: GraphClient, token: str) -> float:
        before = graph.paced_s
        await graph.get_insights(
            "17841400008460056",
            token,
            metrics=["reach"],
            metric_type="time_series",
            since=SINCE,
            until=UNTIL,
        )
        return graph.paced_s - before

    async with client(retry=policy) as graph:
        assert await call(graph, busy) == 0.0  # its answer says 95%
        assert await call(graph, calm) == 0.0  # another account: not slowed
        assert await call(graph, busy) == pytest.approx(30 * 0.75**2)  # (95-80)/20 = 0.75
        assert await call(graph, busy) == 0.0  # that answer reported no high usage


@respx.mock
async def test_a_batch_of_one_is_the_plain_get_it_stands_for() -> None:
    """Without an app token a lone call has nobody to share a batch with: no envelope."""
    alone = respx.get(URL).respond(200, json={"data": []})
    batch = respx.post(BATCH_URL).respond(200, json=[])
    async with client(batch=True) as graph:
        await insights(graph, ["reach"])
    assert (alone.call_count, batch.call_count) == (1, 0)
    assert alone.calls.last.request.headers["authorization"] == f"Bearer {TOKEN}"


@respx.mock
async def test_the_apps_quota_still_paces_batched_calls() -> None:
    """x-app-usage comes on the batch's own answer, not on its items: it must still pace."""
    app_usage = json.dumps({"call_count": 95, "total_cputime": 1, "total_time": 1})
    two = [batch_item(200, {"data": []})] * 2
    route = respx.post(BATCH_URL)
    route.side_effect = [
        httpx.Response(200, json=two, headers={"x-app-usage": app_usage}),
        httpx.Response(200, json=two),
    ]
    policy = RetryPolicy(pace_from=80, pace_max=30)
    async with client(
        app_id="appId", app_secret="app-secret-xyz-123", batch=True, retry=policy
    ) as graph:
        # two at once: a batch of one would be sent as the plain GET it stands for
        await asyncio.gather(insights(graph, ["reach"]), insights(graph, ["reach"]))
        before = graph.paced_s
        await asyncio.gather(insights(graph, ["reach"]), insights(graph, ["reach"]))
    assert graph.paced_s - before == pytest.approx(2 * 30 * 0.75**2)  # each call is paced


@pytest.mark.parametrize(("first_took_s", "requests"), [(1.0, 3), (10.0, 1)])
@respx.mock
async def test_the_first_attempt_spends_the_retry_time_budget_too(
    monkeypatch: pytest.MonkeyPatch, first_took_s: float, requests: int
) -> None:
    # The first attempt runs outside stamina; the time it took must still count against
    # RetryPolicy.timeout, as when stamina ran every attempt. stamina's test mode drops its
    # time budget, so this test runs it for real, with no backoff to wait.
    clock = iter([0.0, first_took_s])
    monkeypatch.setattr("igsync.graph._client.monotonic", lambda: next(clock, first_took_s))
    route = respx.get(URL).respond(
        500, json={"error": {"message": "An unknown error has occurred.", "code": 1}}
    )
    policy = RetryPolicy(attempts=3, timeout=5.0, wait_initial=0, wait_max=0, wait_jitter=0)
    with stamina.set_testing(False):
        async with client(retry=policy) as graph:
            with pytest.raises(GraphError) as caught:
                await insights(graph, ["reach"])
    assert caught.value.kind == ErrorKind.TRANSIENT
    assert route.call_count == requests


class _HeldTransport(httpx.AsyncBaseTransport):
    """Writes a request only when `write` is set and answers it only when `answer` is, telling
    the request's `trace` extension as httpcore does (httpx's "Extensions" page)."""

    def __init__(self, body: object) -> None:
        self.body = body
        self.arrived, self.write, self.answer = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        trace = request.extensions["trace"]
        self.arrived.set()
        await self.write.wait()
        await trace("http11.send_request_body.complete", {"request": request})
        await self.answer.wait()
        return httpx.Response(200, json=self.body)


async def test_requests_written_waits_for_a_started_request_to_be_written_not_answered() -> None:
    """sync_all's writers wait on it, so that a SQLite write never holds a Graph request
    that is ready to leave."""
    transport = _HeldTransport(
        sample("insights_time_series_impressions_reach_profile_views_pyfacebook.json")
    )
    async with client(transport=transport) as graph:
        await graph.requests_written()  # nothing started: returns at once
        call = asyncio.create_task(insights(graph, ["reach"]))
        await transport.arrived.wait()
        written = asyncio.create_task(graph.requests_written())
        for _ in range(5):
            await asyncio.sleep(0)
        assert not written.done()  # started, not yet written
        transport.write.set()
        await written
        assert not call.done()  # written, not yet answered
        transport.answer.set()
        assert "reach" in [i.name for i in await call]


async def test_a_request_that_fails_before_it_is_written_holds_no_writer() -> None:
    class Refusing(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            raise httpx.ConnectError("refused")

    async with client(transport=Refusing(), retry=RetryPolicy(attempts=1)) as graph:
        with pytest.raises(GraphError, match="could not reach"):
            await insights(graph, ["reach"])
        await asyncio.wait_for(graph.requests_written(), timeout=5)


def test_the_tls_context_is_built_once_per_trust_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Graph connections verify with one TLS context per process (its CA bundle is loaded on
    a thread the CLI starts early); new trust settings get a context of their own, and one
    that cannot be loaded fails where the context is wanted."""
    from igsync.graph._pools import load_tls_context, tls_context

    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    first = tls_context()
    assert load_tls_context().result() is first
    assert tls_context() is first
    assert first.verify_mode is ssl.CERT_REQUIRED
    assert first.check_hostname
    assert first.get_ca_certs()  # certifi's bundle is in

    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "missing.pem"))
    with pytest.raises(FileNotFoundError):
        tls_context()
    monkeypatch.delenv("SSL_CERT_FILE")
    assert tls_context() is not first  # built again for the settings of the moment


def test_a_process_that_exits_at_once_waits_for_the_tls_context_being_built(
    tmp_path: Path,
) -> None:
    """The CLI starts building the TLS context before it has read its options; a command
    that then fails at once must not exit under it: OpenSSL's exit handler freed what the
    loading thread used (SIGSEGV, 11 runs in 150 of `refresh-token --expiring-within '7 d'`)."""
    import subprocess
    import sys

    marker = tmp_path / "built"
    script = (
        "import time, httpx\n"
        "from igsync.graph import _pools\n"
        "build = httpx.create_ssl_context\n"
        "def slow():\n"
        "    time.sleep(0.5)\n"
        "    context = build()\n"
        f"    open({str(marker)!r}, 'w').close()\n"
        "    return context\n"
        "_pools.httpx.create_ssl_context = slow\n"
        "_pools.load_tls_context()\n"
        "raise SystemExit(2)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert marker.exists()  # the build ran to its end before the process was gone
