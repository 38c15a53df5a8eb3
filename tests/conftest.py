"""Shared fixtures. Async tests run on anyio's pytest plugin (asyncio backend)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import stamina

pytest_plugins = ["postgres_server", "fake_postgrest", "store_kits"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _instant_retries() -> Iterator[None]:
    """stamina's test mode: our own attempt limits, no backoff waits (STYLE.md)."""
    with stamina.set_testing(True, attempts=100, cap=True):
        yield
