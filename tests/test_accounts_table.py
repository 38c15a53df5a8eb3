"""`igsync accounts list`'s table: the ids stay whole however narrow the output."""

from __future__ import annotations

from datetime import UTC, datetime
from io import StringIO

import pytest
from rich.console import Console

from igsync.cli._render import accounts_table
from igsync.models import AccountInfo

USER = "0093acd4-e398-48c5-9a83-09c9c3a1b2c4"
ACCOUNT = "17841400000000039"


@pytest.mark.parametrize("width", [80, 120, 160])
def test_user_and_account_ids_are_never_cut(width: int) -> None:
    """They are what `accounts remove --user` and `fetch --user` take: an id cut to
    `0093acd4-e398-48c5-9a83-09c9c3…` cannot be copied into them."""
    info = AccountInfo(
        user_id=USER,
        account_id=ACCOUNT,
        source="db",
        token_kind="facebook_login",
        expires_at=datetime(2027, 1, 30, 12, 0, tzinfo=UTC),
        days_left=60,
        status="ok",
        token_hint="…wxyz",
        last_refreshed_at=None,
        last_sync_at=datetime(2026, 11, 30, 6, 0, tzinfo=UTC),
        last_sync_status="failed",
        last_sync_rows=0,
    )
    out = StringIO()
    Console(file=out, width=width, color_system=None).print(accounts_table([info]))
    assert USER in out.getvalue()
    assert ACCOUNT in out.getvalue()
