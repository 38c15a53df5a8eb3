import logging

import pytest

from igsync.redact import MASK, RedactingFilter, redact, register_secret, release_secret

pytestmark = pytest.mark.anyio

TOKEN = "EAAJ-registered-secret-token-987654321"


def test_registered_secrets_are_masked_anywhere() -> None:
    register_secret(TOKEN)
    assert redact(f"oops {TOKEN}!") == f"oops {MASK}!"


def test_a_secret_is_forgotten_only_when_every_holder_released_it() -> None:
    """sync-all releases each account's token once its result is out, so the index of known
    secrets does not grow with the accounts; a secret held elsewhere (env) stays masked."""
    shared, alone = "EAAJ-held-by-env-and-a-row-0123456789", "EAAJ-held-by-one-row-0123456789"
    register_secret(shared)  # env
    register_secret(shared)  # a user_tokens row with the same token
    register_secret(alone)
    release_secret(shared)
    release_secret(alone)
    register_secret("EAAJ-another-secret-rebuilds-the-index-42")  # forgotten ones drop out here
    assert redact(f"{shared} {alone}") == f"{MASK} {alone}"


@pytest.mark.parametrize(
    "text",
    [
        "https://graph.facebook.com/v18.0/1/insights?access_token=UNSEEN123&metric=reach",
        "GET /oauth/access_token?client_secret=UNSEEN123&fb_exchange_token=UNSEEN456",
        "debug_token?input_token=UNSEEN123&access_token=1|UNSEEN456",
        "Authorization: Bearer UNSEEN123",
        "postgresql://postgres:UNSEEN123@db.example.co:6543/postgres",
        "appsecret_proof=UNSEEN123",
    ],
)
def test_secret_shaped_parameters_are_masked_even_when_unknown(text: str) -> None:
    cleaned = redact(text)
    assert "UNSEEN" not in cleaned
    assert MASK in cleaned


def test_short_values_are_not_registered_so_words_survive() -> None:
    register_secret("ok")
    assert redact("status ok") == "status ok"


def test_log_records_are_redacted_with_their_arguments() -> None:
    register_secret(TOKEN)
    record = logging.LogRecord("igsync", logging.INFO, __file__, 1, "url %s", (TOKEN,), None)
    RedactingFilter().filter(record)
    assert TOKEN not in record.getMessage()


async def test_httpx_request_logs_are_redacted_for_library_users(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import httpx

    from igsync.graph import GraphClient

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"access_token": "EAAG-fresh-token-1234567890"})

    caplog.set_level(logging.DEBUG)
    async with GraphClient(
        base_url="https://graph.test", version="v27.0", transport=httpx.MockTransport(answer)
    ) as graph:
        await graph.exchange_token(TOKEN, app_id="1", app_secret="app-secret-abcdef-123")
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "oauth/access_token" in text  # httpx did log the request...
    assert TOKEN not in text  # ...without the token
    assert "app-secret-abcdef-123" not in text
    assert "EAAG-fresh-token-1234567890" not in text


@pytest.mark.parametrize(
    "text",
    [
        "GET https://graph.test/v27.0/me?Access_Token=EAAB123&fields=id",
        "Authorization: BEARER abc.def-ghi",
        "POSTGRESQL://igsync:s3cret@db.example:5432/igsync",
        "row igsync:fernet:gAAAAABk-_x= in user_tokens",
        '{"errors": [], "notes": ["the Graph API had no data for this window"]}',
        "password=hunter2 and bearer xyz and https://u:p@h",
    ],
)
def test_patterns_tried_only_on_text_holding_their_literal_mask_as_all_of_them_would(
    text: str,
) -> None:
    from igsync.redact import _PATTERNS

    expected = _PATTERNS[0].sub(lambda m: f"{m.group(1)}={MASK}", text)
    expected = _PATTERNS[1].sub(lambda m: f"{m.group(1)} {MASK}", expected)
    expected = _PATTERNS[2].sub(lambda m: f"{m.group(1)}:{MASK}@", expected)
    expected = _PATTERNS[3].sub(MASK, expected)
    assert redact(text) == expected
