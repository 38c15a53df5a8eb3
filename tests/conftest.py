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


@pytest.fixture(autouse=True)
def _own_secrets() -> Iterator[None]:
    """Each test leaves the redaction registry as it found it: a secret one test registers
    must not mask another's text. A CI run saw the word "instagram" registered by an earlier
    test (not found; the same order passed locally) and masked in test_tokens' message."""
    from igsync import redact

    with redact._lock:
        before = dict(redact._known)
    yield
    with redact._lock:
        if redact._known != before:
            redact._known.clear()
            redact._known.update(before)
            redact._dirty = True


@pytest.fixture(autouse=True)
def _no_user_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """igsync reads a user config file and IGSYNC_ENV_FILE (README, Configuration) and the
    demo writes to the user data dir: a test never touches the developer's own."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("xdg-config")))
    # `igsync demo` keeps its rows in the user data dir (config.demo_database_path)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("xdg-data")))
    monkeypatch.delenv("IGSYNC_ENV_FILE", raising=False)
