import logging

import pytest

from igsync.cli._render import _RedactingFilter
from igsync.redact import MASK, redact, register_secret

TOKEN = "EAAJ-registered-secret-token-987654321"


def test_registered_secrets_are_masked_anywhere() -> None:
    register_secret(TOKEN)
    assert redact(f"oops {TOKEN}!") == f"oops {MASK}!"


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
    _RedactingFilter().filter(record)
    assert TOKEN not in record.getMessage()
