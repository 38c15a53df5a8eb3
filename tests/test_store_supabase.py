"""The Supabase store against a fake PostgREST (tests/fake_postgrest.py), and, when asked, live.

The fake checks and answers what supabase-py and PostgREST really exchange (SUPABASE.md); these
tests pin what the store sends, how it verifies writes, when it retries, and that no key,
token or URL ever reaches an error or a log. The store contract (upserts, reads, tokens) runs
in test_store_contract.py; the live section at the end runs against a real project.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest

from fake_postgrest import SERVICE_KEY, SUPABASE_URL, FakePostgrest, Fault, failing_row
from igsync.errors import ConfigError, SchemaMissingError, StoreError
from igsync.models import (
    AudienceRow,
    InsightRow,
    MediaInsightRow,
    MediaRow,
    SyncLog,
    TokenUpdate,
    UserToken,
)
from igsync.store import open_store, open_supabase_store
from igsync.store.schema import LATEST
from igsync.store.supabase import ATTEMPTS, SupabaseStore

pytest_plugins = ["fake_postgrest"]  # its fixtures: fake_postgrest, supabase_store
pytestmark = pytest.mark.anyio

ALICE = UUID("00000000-0000-4000-8000-00000000a11c")
DAY0 = datetime(2026, 11, 20, 8, tzinfo=UTC)
TOKENS_URL = "https://fake-project.supabase.co/rest/v1/user_tokens"
INSIGHT_COLUMNS = {
    "u_id",
    "account_id",
    "metric",
    "metric_type",
    "period",
    "end_time",
    "local_date",
    "value",
    "value_json",
    "fetched_at",
}


def row(day: int = 0, value: int | None = 1, **fields: Any) -> InsightRow:
    base: dict[str, Any] = {
        "u_id": ALICE,
        "account_id": "1784001",
        "metric": "reach",
        "metric_type": "time_series",
        "period": "day",
        "end_time": DAY0 + timedelta(days=day),
        "value": value,
    }
    return InsightRow(**(base | fields))


def token(secret: str | None = None, **fields: Any) -> UserToken:
    base: dict[str, Any] = {"u_id": ALICE, "account_id": "1784001"}
    return UserToken(access_token=secret or f"EAAG{uuid4().hex}", **(base | fields))


def prefer(request: httpx.Request) -> set[str]:
    return {p.strip() for p in request.headers["prefer"].split(",")}


def writes(fake: FakePostgrest, table: str | None = None) -> list[httpx.Request]:
    return [
        r
        for r in fake.requests
        if r.method != "GET" and (table is None or r.url.path == f"/rest/v1/{table}")
    ]


# --- what goes over the wire ---


async def test_upsert_posts_the_rows_with_on_conflict_columns_and_prefer(
    supabase_store: SupabaseStore, fake_postgrest: FakePostgrest
) -> None:
    kolkata = timezone(timedelta(hours=5, minutes=30))
    await supabase_store.upsert_insights(
        [row(0, 5, end_time=datetime(2026, 11, 20, 13, 30, tzinfo=kolkata)), row(1, None)]
    )

    [post] = fake_postgrest.requests
    assert (post.method, post.url.host, post.url.path) == (
        "POST",
        "fake-project.supabase.co",
        "/rest/v1/instagram_insights",
    )
    assert post.url.params["on_conflict"] == "u_id,account_id,metric,end_time"
    columns = post.url.params["columns"].split(",")
    assert {c.strip('"') for c in columns} == INSIGHT_COLUMNS
    assert all(c.startswith('"') and c.endswith('"') for c in columns)
    assert post.url.params["select"] == "id"
    assert prefer(post) == {"return=representation", "resolution=merge-duplicates", "count=exact"}
    assert post.headers["content-type"] == "application/json"
    body = json.loads(post.content)
    assert [r["end_time"] for r in body] == [
        "2026-11-20T08:00:00+00:00",
        "2026-11-21T08:00:00+00:00",
    ]
    assert [r["value"] for r in body] == [5, None]
    assert [r["local_date"] for r in body] == ["2026-11-19", "2026-11-20"]


async def test_stream_upserts_post_to_their_table_on_its_key_with_the_time_of_the_write(
    supabase_store: SupabaseStore, fake_postgrest: FakePostgrest
) -> None:
    kolkata = timezone(timedelta(hours=5, minutes=30))
    posted = datetime(2026, 11, 18, 23, 0, tzinfo=kolkata)
    await supabase_store.upsert_media(
        [MediaRow(u_id=ALICE, account_id="1784001", media_id="m1", timestamp=posted)]
    )
    await supabase_store.upsert_media_insights(
        [
            MediaInsightRow(
                u_id=ALICE,
                account_id="1784001",
                media_id="m1",
                metric="navigation",
                captured_on=date(2026, 11, 20),
                value=4,
                value_json={"story_navigation_action_type": {"tap_forward": 4}},
            )
        ]
    )
    await supabase_store.upsert_audience(
        [
            AudienceRow(
                u_id=ALICE,
                account_id="1784001",
                metric="follower_demographics",
                timeframe="this_month",
                breakdown="age,gender",
                dimension_values="18-24,F",
                captured_on=date(2026, 11, 20),
                value=9,
            )
        ]
    )

    media, insights, audience = fake_postgrest.requests
    assert [r.url.path for r in (media, insights, audience)] == [
        "/rest/v1/instagram_media",
        "/rest/v1/instagram_media_insights",
        "/rest/v1/instagram_audience",
    ]
    assert [r.url.params["on_conflict"] for r in (media, insights, audience)] == [
        "u_id,account_id,media_id",
        "u_id,account_id,media_id,metric,captured_on",
        "u_id,account_id,metric,timeframe,breakdown,dimension_values,captured_on",
    ]
    assert all(
        prefer(r) == {"return=representation", "resolution=merge-duplicates", "count=exact"}
        for r in (media, insights, audience)
    )
    [media_row] = json.loads(media.content)
    assert media_row["timestamp"] == "2026-11-18T17:30:00+00:00"
    assert datetime.fromisoformat(media_row["updated_at"]).utcoffset() == timedelta(0)
    [insight_row] = json.loads(insights.content)
    assert insight_row["captured_on"] == "2026-11-20"
    assert insight_row["value_json"] == {"story_navigation_action_type": {"tap_forward": 4}}
    assert "fetched_at" in insight_row
    [audience_row] = json.loads(audience.content)
    assert (audience_row["breakdown"], audience_row["dimension_values"]) == (
        "age,gender",
        "18-24,F",
    )


async def test_the_fake_refuses_a_malformed_date_as_postgresql_does(
    fake_postgrest: FakePostgrest,
) -> None:
    row = {
        "u_id": str(ALICE),
        "account_id": "1784001",
        "media_id": "m1",
        "metric": "reach",
        "captured_on": "2026-11-31",
    }
    headers = {"apikey": SERVICE_KEY, "Authorization": f"Bearer {SERVICE_KEY}"}
    async with httpx.AsyncClient(transport=fake_postgrest.transport()) as client:
        response = await client.post(
            f"{SUPABASE_URL}/rest/v1/instagram_media_insights", json=[row], headers=headers
        )

    assert response.status_code == 400
    assert response.json()["code"] == "22007"
    assert response.json()["message"] == 'invalid input syntax for type date: "2026-11-31"'


async def test_every_request_carries_the_key_as_apikey_and_bearer(
    supabase_store: SupabaseStore, fake_postgrest: FakePostgrest
) -> None:
    await supabase_store.init_schema()
    await supabase_store.upsert_insights([row()])
    await supabase_store.read_insights()
    await supabase_store.save_token(token())
    await supabase_store.list_tokens()
    await supabase_store.delete_tokens(ALICE)

    assert len(fake_postgrest.requests) >= 9
    for request in fake_postgrest.requests:
        assert request.headers["apikey"] == SERVICE_KEY
        assert request.headers["authorization"] == f"Bearer {SERVICE_KEY}"
        assert request.headers["accept-profile"] == "public"


async def test_reads_filter_with_eq_order_and_page_with_an_exact_count(
    supabase_store: SupabaseStore, fake_postgrest: FakePostgrest
) -> None:
    await supabase_store.read_insights(u_id=ALICE, account_id="1784001")

    [get] = fake_postgrest.requests
    params = get.url.params
    assert get.method == "GET"
    assert params["u_id"] == f"eq.{ALICE}"
    assert params["account_id"] == "eq.1784001"
    assert params["order"].split(",")[:3] == [
        "account_id.asc.nullsfirst",
        "metric.asc",
        "end_time.asc",
    ]
    assert (params["offset"], params["limit"]) == ("0", "1000")
    assert prefer(get) == {"count=exact"}


async def test_save_token_adds_the_user_then_inserts_ignoring_duplicates(
    supabase_store: SupabaseStore, fake_postgrest: FakePostgrest
) -> None:
    await supabase_store.save_token(token("EAAG-first-token"))

    user, insert = writes(fake_postgrest)
    assert user.url.path == "/rest/v1/users"
    assert user.url.params["on_conflict"] == "u_id"
    assert "resolution=ignore-duplicates" in prefer(user)
    assert json.loads(user.content) == [{"u_id": str(ALICE)}]
    assert insert.url.path == "/rest/v1/user_tokens"
    assert insert.url.params["on_conflict"] == "u_id,platform,account_id"
    assert prefer(insert) == {"return=representation", "resolution=ignore-duplicates"}
    assert insert.url.params["select"] == "token_id"  # the answer never echoes the token


async def test_saving_an_existing_account_patches_it_in_place(
    supabase_store: SupabaseStore, fake_postgrest: FakePostgrest
) -> None:
    first = token("EAAG-first-token")
    await supabase_store.save_token(first)
    await supabase_store.save_token(token("EAAG-second-token", status="expiring"))

    patch = writes(fake_postgrest)[-1]
    assert patch.method == "PATCH"
    assert dict(patch.url.params) == {
        "u_id": f"eq.{ALICE}",
        "platform": "eq.instagram",
        "account_id": "eq.1784001",
        "select": "token_id",
    }
    assert set(json.loads(patch.content)) == {
        "access_token",
        "expires_at",
        "token_kind",
        "status",
        "last_refreshed_at",
        "updated_at",
    }
    [saved] = await supabase_store.list_tokens()
    assert saved.token_id == first.token_id
    assert (saved.access_token.get_secret_value(), saved.status) == (
        "EAAG-second-token",
        "expiring",
    )


async def test_update_token_is_a_patch_filtered_by_id_and_the_updated_at_it_read(
    supabase_store: SupabaseStore, fake_postgrest: FakePostgrest
) -> None:
    saved = token("EAAG-old-token-1")
    await supabase_store.save_token(saved)
    update = TokenUpdate(expires_at=None, status="needs_reauth", last_refreshed_at=None)

    assert await supabase_store.update_token(saved.token_id, "EAAG-old-token-1", update)

    read, patch = fake_postgrest.requests[-2:]
    assert (read.method, read.url.params["token_id"]) == ("GET", f"eq.{saved.token_id}")
    assert patch.method == "PATCH"
    assert patch.url.params["token_id"] == f"eq.{saved.token_id}"
    assert patch.url.params["updated_at"].startswith("eq.")
    assert "return=representation" in prefer(patch)
    assert "access_token" not in json.loads(patch.content)  # no new token: the old one stays


async def test_no_token_ever_travels_in_a_url(
    supabase_store: SupabaseStore, fake_postgrest: FakePostgrest
) -> None:
    # PostgREST filters are query parameters, and Supabase logs request URLs.
    saved = token("EAAG-in-no-url-1")
    await supabase_store.save_token(saved)
    fresh = TokenUpdate(
        access_token="EAAG-in-no-url-2", expires_at=None, status="ok", last_refreshed_at=None
    )
    assert await supabase_store.update_token(saved.token_id, "EAAG-in-no-url-1", fresh)
    assert not await supabase_store.update_token(saved.token_id, "EAAG-in-no-url-1", fresh)
    await supabase_store.list_tokens(u_id=saved.u_id)
    await supabase_store.delete_tokens(saved.u_id)

    assert len(fake_postgrest.requests) >= 6
    for request in fake_postgrest.requests:
        assert "in-no-url" not in str(request.url)


async def test_a_write_between_read_and_swap_makes_the_swap_miss(
    supabase_store: SupabaseStore, fake_postgrest: FakePostgrest, monkeypatch: pytest.MonkeyPatch
) -> None:
    saved = token("EAAG-raced-old")
    await supabase_store.save_token(saved)
    ours = TokenUpdate(
        access_token="EAAG-raced-ours", expires_at=None, status="ok", last_refreshed_at=None
    )
    real_update = fake_postgrest._update

    def another_process_writes_first(*args: Any) -> httpx.Response:
        # Lands after our read and before our PATCH, as the app's own write would (the trigger
        # moves updated_at on every update).
        fake_postgrest.db.execute(
            "update user_tokens set access_token = 'EAAG-raced-theirs', updated_at = ?"
            " where token_id = ?",
            ("2099-01-01T00:00:00+00:00", str(saved.token_id)),
        )
        return real_update(*args)

    monkeypatch.setattr(fake_postgrest, "_update", another_process_writes_first)
    assert not await supabase_store.update_token(saved.token_id, "EAAG-raced-old", ours)
    [stored] = await supabase_store.list_tokens(u_id=saved.u_id)
    assert stored.access_token.get_secret_value() == "EAAG-raced-theirs"


async def test_delete_tokens_filters_by_platform_user_and_account(
    supabase_store: SupabaseStore, fake_postgrest: FakePostgrest
) -> None:
    await supabase_store.save_token(token(account_id="101"))
    await supabase_store.save_token(token(account_id="102"))

    assert await supabase_store.delete_tokens(ALICE, account_id="102") == 1

    delete = fake_postgrest.requests[-1]
    assert delete.method == "DELETE"
    assert dict(delete.url.params) == {
        "platform": "eq.instagram",
        "u_id": f"eq.{ALICE}",
        "account_id": "eq.102",
        "select": "token_id",
    }
    assert [t.account_id for t in await supabase_store.list_tokens()] == ["101"]


async def test_sync_logs_are_plain_inserts_verified_by_their_row(
    supabase_store: SupabaseStore, fake_postgrest: FakePostgrest
) -> None:
    secret = f"EAAG{uuid4().hex}"
    await supabase_store.save_token(token(secret))  # registers the secret for redaction
    started = datetime(2026, 11, 24, 6, tzinfo=UTC)
    await supabase_store.write_sync_logs(
        [
            SyncLog(
                run_id=uuid4(),
                u_id=ALICE,
                account_id="a1",
                started_at=started,
                finished_at=started,
                status="partial",
                total_inserted=3,
                total_errors=1,
                errors=[f"reach: bad token {secret}"],
                token_refreshed=True,
            )
        ]
    )

    insert = fake_postgrest.requests[-1]
    assert "on_conflict" not in insert.url.params
    assert prefer(insert) == {"return=representation"}
    assert await fake_postgrest.sql("select errors, token_refreshed from instagram_sync_logs") == [
        ('["reach: bad token ***"]', 1)
    ]


# --- chunks and verification ---


async def test_1201_rows_go_out_in_three_posts_of_at_most_500(
    supabase_store: SupabaseStore, fake_postgrest: FakePostgrest
) -> None:
    rows = [row(day) for day in range(1201)]

    assert await supabase_store.upsert_insights(rows) == 1201

    assert [len(json.loads(p.content)) for p in writes(fake_postgrest)] == [500, 500, 201]
    # Reads page past Supabase's max-rows (1000) instead of stopping at it.
    assert len(await supabase_store.read_insights()) == 1201


async def test_duplicate_keys_are_collapsed_before_sending(
    supabase_store: SupabaseStore, fake_postgrest: FakePostgrest
) -> None:
    # PostgreSQL refuses an upsert that touches one key twice (21000); the fake does too.
    assert await supabase_store.upsert_insights([row(0, 1), row(0, 2)]) == 1

    assert [r["value"] for r in json.loads(writes(fake_postgrest)[0].content)] == [2]


async def test_a_representation_one_row_short_raises_and_is_not_counted(
    supabase_store: SupabaseStore, fake_postgrest: FakePostgrest
) -> None:
    fake_postgrest.answer_one_row_short(method="POST")

    with pytest.raises(StoreError, match="confirmed 2 of 3 insight rows"):
        await supabase_store.upsert_insights([row(0), row(1), row(2)])


async def test_an_empty_body_is_never_counted_as_success(
    supabase_store: SupabaseStore, fake_postgrest: FakePostgrest
) -> None:
    fake_postgrest.answer_empty(method="POST")

    with pytest.raises(StoreError, match="confirmed 0 of 3 insight rows"):
        await supabase_store.upsert_insights([row(0), row(1), row(2)])


async def test_rows_the_database_skips_are_not_confirmed(
    supabase_store: SupabaseStore, fake_postgrest: FakePostgrest
) -> None:
    await fake_postgrest.drop_rows_silently("refused")

    with pytest.raises(StoreError, match="confirmed 2 of 3"):
        await supabase_store.upsert_insights([row(0), row(1), row(0, account_id="refused")])


async def test_a_short_chunk_says_how_many_rows_earlier_chunks_wrote(
    supabase_store: SupabaseStore, fake_postgrest: FakePostgrest
) -> None:
    fake_postgrest.answer_one_row_short(method="POST", skip=1)

    with pytest.raises(StoreError, match=r"confirmed 499 of 500 .* 500 rows of earlier chunks"):
        await supabase_store.upsert_insights([row(day) for day in range(1000)])


# --- retries ---


async def test_a_503_is_retried_and_the_upsert_then_succeeds(
    supabase_store: SupabaseStore, fake_postgrest: FakePostgrest
) -> None:
    fake_postgrest.fail(503, method="POST")

    assert await supabase_store.upsert_insights([row(0), row(1)]) == 2

    assert len(writes(fake_postgrest)) == 2


async def test_a_proxy_error_page_and_a_lost_connection_are_retried(
    supabase_store: SupabaseStore, fake_postgrest: FakePostgrest
) -> None:
    fake_postgrest.inject(Fault(status=520, body="<html>Web server is down</html>", method="POST"))
    fake_postgrest.fail_connection(method="POST")

    assert await supabase_store.upsert_insights([row()]) == 1

    assert len(writes(fake_postgrest)) == 3


async def test_reads_are_retried_by_the_store_not_by_postgrest_sleeping(
    supabase_store: SupabaseStore, fake_postgrest: FakePostgrest
) -> None:
    fake_postgrest.fail(503, method="GET")

    assert await supabase_store.read_insights() == []

    assert len(fake_postgrest.requests) == 2


async def test_server_errors_are_retried_a_bounded_number_of_times(
    supabase_store: SupabaseStore, fake_postgrest: FakePostgrest
) -> None:
    fake_postgrest.fail(503, method="POST", times=100)

    with pytest.raises(StoreError, match=r"upsert insight rows: .*\[PGRST000\]"):
        await supabase_store.upsert_insights([row()])

    assert len(writes(fake_postgrest)) == ATTEMPTS


async def test_client_errors_are_not_retried(
    supabase_store: SupabaseStore, fake_postgrest: FakePostgrest
) -> None:
    fake_postgrest.fail(400, "23514", "new row violates check constraint", method="POST")

    with pytest.raises(StoreError):
        await supabase_store.upsert_insights([row()])

    assert len(writes(fake_postgrest)) == 1


async def test_the_compare_and_swap_is_not_resent_after_an_ambiguous_failure(
    supabase_store: SupabaseStore, fake_postgrest: FakePostgrest
) -> None:
    saved = token("EAAG-old-token-2")
    await supabase_store.save_token(saved)
    update = TokenUpdate(
        access_token="EAAG-new-token-2", expires_at=None, status="ok", last_refreshed_at=None
    )
    fake_postgrest.fail(503, method="PATCH")

    # A 503 may come after the commit: resending would find the new token and answer False.
    with pytest.raises(StoreError):
        await supabase_store.update_token(saved.token_id, "EAAG-old-token-2", update)
    assert len(writes(fake_postgrest, "user_tokens")) == 2  # the insert and one PATCH

    fake_postgrest.fail_connection(method="PATCH")  # never left: safe to send again
    assert await supabase_store.update_token(saved.token_id, "EAAG-old-token-2", update)


# --- error messages ---


@pytest.mark.parametrize(
    ("status", "code", "message", "says"),
    [
        (409, "23505", 'duplicate key value violates unique constraint "x_key"', "already exists"),
        (409, "23503", "insert or update on table violates foreign key", "no row in `users`"),
        (400, "23502", 'null value in column "metric" violates not-null', "required value"),
        (400, "23514", 'violates check constraint "x_metric_type_check"', "not allowed"),
        (403, "42501", "permission denied for table instagram_insights", "service-role key"),
        (401, "42501", "new row violates row-level security policy", "service-role key"),
        (404, "42P01", 'relation "instagram_insights" does not exist', "igsync db schema"),
        (404, "PGRST205", "Could not find the table 'public.x'", "--dialect postgres"),
        (401, "PGRST301", "JWSError JWSInvalidSignature", "bad or expired"),
        (401, "PGRST303", "JWT expired", "bad or expired"),
    ],
)
async def test_each_postgrest_error_becomes_one_clear_line(
    supabase_store: SupabaseStore,
    fake_postgrest: FakePostgrest,
    status: int,
    code: str,
    message: str,
    says: str,
) -> None:
    fake_postgrest.fail(status, code, message, details="Key (u_id)=(x) is what it is.")

    with pytest.raises(StoreError) as caught:
        await supabase_store.upsert_insights([row()])

    text = str(caught.value)
    assert text.startswith("Supabase could not upsert insight rows: ")
    assert says in text
    assert f"[{code}]" in text
    assert "\n" not in text
    assert "Key (u_id)" not in text  # details never


async def test_a_proxy_error_page_becomes_its_status_without_the_page(
    supabase_store: SupabaseStore, fake_postgrest: FakePostgrest
) -> None:
    page = "<html><body>413 Request Entity Too Large <!-- nginx --></body></html>"
    fake_postgrest.inject(Fault(status=413, body=page, method="POST"))

    with pytest.raises(StoreError) as caught:
        await supabase_store.upsert_insights([row()])

    assert str(caught.value) == (
        "Supabase could not upsert insight rows: Request Entity Too Large [413]"
    )
    assert len(writes(fake_postgrest)) == 1


async def test_a_wrong_key_is_refused_with_a_clear_message(fake_postgrest: FakePostgrest) -> None:
    wrong = "eyJ-not-the-right-key-at-all"
    # Opening reads the schema version: the first request, and the key's first test.
    with pytest.raises(StoreError, match="bad or expired; check SUPABASE_KEY") as caught:
        async with fake_postgrest.open(key=wrong):
            pass

    assert caught.value.__cause__ is None
    assert wrong not in str(caught.value)


async def test_a_foreign_key_failure_from_the_database_names_the_users_table(
    supabase_store: SupabaseStore, fake_postgrest: FakePostgrest
) -> None:
    fake_postgrest.fail(
        409, "23503", 'violates foreign key constraint "user_tokens_u_id_fkey"', table="user_tokens"
    )

    with pytest.raises(StoreError, match="the user has no row in `users`"):
        await supabase_store.save_token(token())


# --- secrets ---


async def test_a_failing_row_detail_never_reaches_the_error(
    supabase_store: SupabaseStore, fake_postgrest: FakePostgrest
) -> None:
    secret = f"EAAG{uuid4().hex}"
    refused = UserToken.model_construct(**{**dict(token(secret)), "token_kind": "bogus"})

    with pytest.raises(StoreError) as caught:
        await supabase_store.save_token(refused)

    answer = json.loads(fake_postgrest.router.calls[-1].response.content)
    assert answer["code"] == "23514"
    assert secret in answer["details"]  # PostgreSQL really prints it: the store must drop it
    assert "token_kind" in str(caught.value)
    assert secret not in str(caught.value)
    assert secret not in repr(caught.value)


async def test_an_unregistered_token_in_details_or_a_url_in_a_message_is_dropped(
    supabase_store: SupabaseStore, fake_postgrest: FakePostgrest
) -> None:
    stranger = f"IGQW{uuid4().hex}"  # never read or registered by this process
    fake_postgrest.fail(
        400,
        "23514",
        f"check failed near {TOKENS_URL}?access_token=eq.{stranger}",
        details=failing_row([uuid4(), ALICE, "instagram", stranger, "a1"]),
    )

    with pytest.raises(StoreError) as caught:
        await supabase_store.upsert_insights([row()])

    assert stranger not in str(caught.value)
    assert "supabase.co" not in str(caught.value)


async def test_the_key_never_appears_in_a_repr_or_an_error(fake_postgrest: FakePostgrest) -> None:
    store = fake_postgrest.open()
    assert SERVICE_KEY not in repr(store)
    assert SERVICE_KEY not in str(vars(store))
    message = f"internal error for apikey {SERVICE_KEY}"
    fake_postgrest.fail(500, "XX000", message, times=10, table="instagram_insights")

    async with store:
        with pytest.raises(StoreError) as caught:
            await store.read_insights()

    assert SERVICE_KEY not in str(caught.value)
    assert SERVICE_KEY not in repr(caught.value)


async def test_request_urls_in_httpx_logs_are_redacted(
    supabase_store: SupabaseStore, caplog: pytest.LogCaptureFixture
) -> None:
    # The compare-and-swap filter puts the expected token in the query string.
    saved = token("EAAG-expected-token-in-url")
    await supabase_store.save_token(saved)
    update = TokenUpdate(expires_at=None, status="ok", last_refreshed_at=None)

    with caplog.at_level(logging.INFO, logger="httpx"):
        await supabase_store.update_token(saved.token_id, "EAAG-expected-token-in-url", update)

    assert "PATCH" in caplog.text
    assert "EAAG-expected-token-in-url" not in caplog.text


# --- compare-and-swap ---


async def test_update_token_swaps_token_expiry_and_status_when_the_token_matches(
    supabase_store: SupabaseStore,
) -> None:
    saved = token("EAAG-old-token-3")
    await supabase_store.save_token(saved)
    expiry = datetime(2027, 2, 1, tzinfo=UTC)
    update = TokenUpdate(
        access_token="EAAG-new-token-3", expires_at=expiry, status="ok", last_refreshed_at=DAY0
    )

    assert await supabase_store.update_token(saved.token_id, "EAAG-old-token-3", update)

    [stored] = await supabase_store.list_tokens()
    assert stored.access_token.get_secret_value() == "EAAG-new-token-3"
    assert (stored.expires_at, stored.last_refreshed_at) == (expiry, DAY0)


async def test_update_token_loses_to_a_process_that_changed_the_token_first(
    supabase_store: SupabaseStore,
) -> None:
    saved = token("EAAG-old-token-4")
    await supabase_store.save_token(saved)
    mine = TokenUpdate(
        access_token="EAAG-mine-token", expires_at=None, status="ok", last_refreshed_at=None
    )
    theirs = TokenUpdate(
        access_token="EAAG-their-token", expires_at=None, status="ok", last_refreshed_at=None
    )

    assert await supabase_store.update_token(saved.token_id, "EAAG-old-token-4", theirs)
    assert not await supabase_store.update_token(saved.token_id, "EAAG-old-token-4", mine)

    [stored] = await supabase_store.list_tokens()
    assert stored.access_token.get_secret_value() == "EAAG-their-token"


async def test_update_token_of_a_missing_row_is_false(supabase_store: SupabaseStore) -> None:
    update = TokenUpdate(expires_at=None, status="expired", last_refreshed_at=None)

    assert not await supabase_store.update_token(uuid4(), "EAAG-whatever-token", update)


async def test_marking_needs_reauth_keeps_the_stored_token(supabase_store: SupabaseStore) -> None:
    saved = token("EAAG-keep-me-token")
    await supabase_store.save_token(saved)
    update = TokenUpdate(expires_at=None, status="needs_reauth", last_refreshed_at=None)

    assert await supabase_store.update_token(saved.token_id, "EAAG-keep-me-token", update)

    [stored] = await supabase_store.list_tokens()
    assert (stored.access_token.get_secret_value(), stored.status) == (
        "EAAG-keep-me-token",
        "needs_reauth",
    )


# --- schema, opening ---


async def test_init_schema_finds_the_tables_and_creates_nothing(
    supabase_store: SupabaseStore, fake_postgrest: FakePostgrest
) -> None:
    await supabase_store.init_schema()

    version, *probes = fake_postgrest.requests
    assert version.url.path == "/rest/v1/igsync_schema_migrations"
    assert {r.url.path for r in probes} == {
        "/rest/v1/users",
        "/rest/v1/user_tokens",
        "/rest/v1/instagram_insights",
        "/rest/v1/instagram_sync_logs",
        "/rest/v1/instagram_audience",
        "/rest/v1/instagram_media",
        "/rest/v1/instagram_media_insights",
        "/rest/v1/igsync_claims",
    }
    assert all(r.method == "GET" and r.url.params["limit"] == "0" for r in probes)


async def test_opening_reads_the_schema_version_with_one_get(fake_postgrest: FakePostgrest) -> None:
    async with fake_postgrest.open():
        pass

    [get] = fake_postgrest.requests
    assert (get.method, get.url.path) == ("GET", "/rest/v1/igsync_schema_migrations")
    assert get.url.params["select"] == "version"
    assert get.url.params["order"] == "version.desc"
    assert get.url.params["limit"] == "1"


async def test_opening_without_tables_says_how_to_apply_the_sql() -> None:
    fake = FakePostgrest(with_schema=False)
    try:
        with pytest.raises(SchemaMissingError) as caught:
            async with fake.open():
                pass
    finally:
        fake.close()

    text = str(caught.value)
    assert "cannot create tables" in text
    assert "`igsync db schema --dialect postgres`" in text
    assert "SQL editor" in text
    assert "supabase/migrations/" in text
    assert "\n" not in text


async def test_opening_with_a_wrong_key_blames_the_key(fake_postgrest: FakePostgrest) -> None:
    with pytest.raises(StoreError, match="bad or expired") as caught:
        async with fake_postgrest.open(key="eyJ-wrong-key-for-schema"):
            pass

    assert "migrations" not in str(caught.value)
    assert not isinstance(caught.value, SchemaMissingError)  # `db init` must not call it missing


V1_SQLITE = (Path(__file__).parent / "fixtures" / "schema_v1_sqlite.sql").read_text()


@pytest.mark.parametrize("recorded", [False, True], ids=["no-version-record", "recorded-at-1"])
async def test_a_schema_behind_this_igsync_fails_on_open_naming_the_migration_to_apply(
    recorded: bool,
) -> None:
    # A project set up with the first migration file only (with or without a version record).
    fake = FakePostgrest(with_schema=False)
    fake.db.executescript(V1_SQLITE)
    if recorded:
        fake.db.executescript(
            "create table igsync_schema_migrations (version integer primary key, name text,"
            " applied_at text);"
            " insert into igsync_schema_migrations values (1, 'initial schema', '2026-11-25');"
        )
    try:
        with pytest.raises(SchemaMissingError) as caught:
            async with fake.open():
                pass
    finally:
        fake.close()

    text = str(caught.value)
    assert text.startswith(
        f"Supabase has the igsync schema at version 1 and this igsync needs {LATEST};"
    )
    assert "20261130000000_igsync_local_date.sql" in text
    assert "`igsync db schema --migration 2`" in text
    assert "`igsync db schema --dialect postgres`" in text
    assert "\n" not in text
    assert SERVICE_KEY not in text
    # Nothing was written on the way (PostgREST would have refused local_date).
    assert not [r for r in fake.requests if r.method != "GET"]


async def test_a_write_to_a_schema_without_a_column_says_the_schema_is_behind(
    supabase_store: SupabaseStore, fake_postgrest: FakePostgrest
) -> None:
    # Belt and braces: a schema changed behind the store's back after it opened.
    fake_postgrest.fail(
        400, "PGRST204", "Could not find the 'local_date' column of 'instagram_insights'"
    )

    with pytest.raises(StoreError) as caught:
        await supabase_store.upsert_insights([row()])

    assert "older than this igsync" in str(caught.value)
    assert "`igsync db schema --dialect postgres`" in str(caught.value)


async def test_a_store_used_without_opening_it_says_so(fake_postgrest: FakePostgrest) -> None:
    with pytest.raises(StoreError, match="not open"):
        await fake_postgrest.open().list_tokens()


def test_open_supabase_store_builds_the_store_and_open_store_points_to_it() -> None:
    store = open_supabase_store("https://abc.supabase.co/", "sb_secret_0123456789abcdef")

    assert isinstance(store, SupabaseStore)
    assert repr(store) == "SupabaseStore('https://abc.supabase.co')"
    with pytest.raises(ConfigError, match="SUPABASE_URL and SUPABASE_KEY"):
        open_store("supabase")


async def test_values_round_trip_through_postgrest_json(supabase_store: SupabaseStore) -> None:
    breakdown = {"city": {"Lisbon": 12}, "ok": True}
    await supabase_store.upsert_insights([row(0, None), row(1, 15, value_json=breakdown)])
    await supabase_store.upsert_insights([row(1, 16, value_json=breakdown)])

    no_data, with_breakdown = await supabase_store.read_insights()
    assert (no_data.value, no_data.value_json) == (None, None)
    assert (with_breakdown.value, with_breakdown.value_json) == (16, breakdown)
    assert with_breakdown.end_time == DAY0 + timedelta(days=1)


# --- live: a real Supabase project (opt-in) ---

LIVE_URL = os.environ.get("IGSYNC_TEST_SUPABASE_URL")
LIVE_KEY = os.environ.get("IGSYNC_TEST_SUPABASE_KEY")
live = pytest.mark.skipif(
    not (LIVE_URL and LIVE_KEY),
    reason="set IGSYNC_TEST_SUPABASE_URL and IGSYNC_TEST_SUPABASE_KEY (the service-role key of"
    " a project with the igsync schema applied) to run against a real Supabase project",
)


@pytest.fixture
async def live_store() -> AsyncIterator[SupabaseStore]:
    assert LIVE_URL
    assert LIVE_KEY
    async with SupabaseStore(LIVE_URL, LIVE_KEY) as store:
        yield store


@live
async def test_live_supabase_round_trip(live_store: SupabaseStore) -> None:
    user = uuid4()  # rows of this run only, removed at the end
    account = f"live-{user.hex[:8]}"
    await live_store.init_schema()
    try:
        rows = [row(day, day, u_id=user, account_id=account) for day in range(3)]
        assert await live_store.upsert_insights(rows) == 3
        assert await live_store.upsert_insights(rows) == 3  # re-upsert: same keys, no new rows
        assert len(await live_store.read_insights(u_id=user)) == 3

        saved = token(f"EAAG-live-{uuid4().hex}", u_id=user, account_id=account)
        await live_store.save_token(saved)
        update = TokenUpdate(
            access_token=f"EAAG-live-{uuid4().hex}",
            expires_at=None,
            status="ok",
            last_refreshed_at=None,
        )
        old = saved.access_token.get_secret_value()
        assert await live_store.update_token(saved.token_id, old, update)
        assert not await live_store.update_token(saved.token_id, old, update)
        [stored] = await live_store.list_tokens(u_id=user)
        assert stored.access_token == update.access_token
    finally:
        assert await live_store.delete_tokens(user) in (0, 1)
        client = live_store._client
        assert client is not None
        await client.table("instagram_insights").delete().eq("u_id", str(user)).execute()
        await client.table("users").delete().eq("u_id", str(user)).execute()
