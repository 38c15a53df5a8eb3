"""igsync: sync Instagram account insights from Meta's Graph API into a database.

The Python API (DESIGN §10), for scripts, notebooks and Streamlit::

    import igsync

    result = igsync.fetch_and_store_instagram_insights("6f1c…-uuid", days=7)
    if result.success:
        print(f"fetched {result.total_inserted} metric records")
    else:
        print("\\n".join(result.errors))

Functions (each `…_async` is the implementation; the plain name blocks until it is done):
    fetch_and_store_instagram_insights   fetch one user's insights and store them -> FetchResult
    get_user_instagram_account           the user's user_tokens row, or None
    refresh_instagram_token              a fresh token for an old one -> TokenGrant
    list_instagram_accounts              the accounts `igsync accounts list` shows
    read_insights                        stored rows, e.g. for a chart
    normalize_timestamp                  an instant as UTC ISO-8601 text
    open_store                           a Store to `async with`
Models: FetchResult, SyncReport, InsightRow, AudienceRow, MediaRow, MediaInsightRow, UserToken,
AccountInfo, RefreshReport, TokenGrant, Window, Settings, Store. Errors: IgsyncError and its
tree (igsync.errors).

Names load on first use (PEP 562), so `import igsync` and `igsync --help` stay fast.
"""

from __future__ import annotations

# not `from typing import TYPE_CHECKING`: importing typing would cost `import igsync` more
# than everything else here (mypy knows this spelling too)
TYPE_CHECKING = False

# The one place the version is written: hatch reads it for the package metadata, and a
# literal keeps `igsync --version` from importing importlib.metadata.
__version__ = "0.1.0"

if TYPE_CHECKING:
    from typing import Any

    from igsync._api import (
        fetch_and_store_instagram_insights,
        fetch_and_store_instagram_insights_async,
        get_user_instagram_account,
        get_user_instagram_account_async,
        list_instagram_accounts,
        list_instagram_accounts_async,
        normalize_timestamp,
        open_store,
        read_insights,
        read_insights_async,
        refresh_instagram_token,
        refresh_instagram_token_async,
    )
    from igsync.config import Settings
    from igsync.errors import (
        ConfigError,
        ErrorKind,
        GraphError,
        IgsyncError,
        InputError,
        SchemaMissingError,
        StoreConfigError,
        StoreError,
    )
    from igsync.graph import TokenGrant
    from igsync.models import (
        AccountInfo,
        AudienceRow,
        FetchResult,
        InsightRow,
        MediaInsightRow,
        MediaRow,
        RefreshReport,
        SyncReport,
        UserToken,
        Window,
    )
    from igsync.store import Store

__all__ = [
    "AccountInfo",
    "AudienceRow",
    "ConfigError",
    "ErrorKind",
    "FetchResult",
    "GraphError",
    "IgsyncError",
    "InputError",
    "InsightRow",
    "MediaInsightRow",
    "MediaRow",
    "RefreshReport",
    "SchemaMissingError",
    "Settings",
    "Store",
    "StoreConfigError",
    "StoreError",
    "SyncReport",
    "TokenGrant",
    "UserToken",
    "Window",
    "__version__",
    "fetch_and_store_instagram_insights",
    "fetch_and_store_instagram_insights_async",
    "get_user_instagram_account",
    "get_user_instagram_account_async",
    "list_instagram_accounts",
    "list_instagram_accounts_async",
    "normalize_timestamp",
    "open_store",
    "read_insights",
    "read_insights_async",
    "refresh_instagram_token",
    "refresh_instagram_token_async",
]

# where each lazy name lives
_HOMES = {
    **dict.fromkeys(
        (
            "fetch_and_store_instagram_insights",
            "fetch_and_store_instagram_insights_async",
            "get_user_instagram_account",
            "get_user_instagram_account_async",
            "list_instagram_accounts",
            "list_instagram_accounts_async",
            "normalize_timestamp",
            "open_store",
            "read_insights",
            "read_insights_async",
            "refresh_instagram_token",
            "refresh_instagram_token_async",
        ),
        "igsync._api",
    ),
    "Settings": "igsync.config",
    **dict.fromkeys(
        (
            "ConfigError",
            "ErrorKind",
            "GraphError",
            "IgsyncError",
            "InputError",
            "SchemaMissingError",
            "StoreConfigError",
            "StoreError",
        ),
        "igsync.errors",
    ),
    "TokenGrant": "igsync.graph",
    **dict.fromkeys(
        (
            "AccountInfo",
            "AudienceRow",
            "FetchResult",
            "InsightRow",
            "MediaInsightRow",
            "MediaRow",
            "RefreshReport",
            "SyncReport",
            "UserToken",
            "Window",
        ),
        "igsync.models",
    ),
    "Store": "igsync.store",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'igsync' has no attribute {name!r}")
    value = getattr(__import__(home, fromlist=[name]), name)
    globals()[name] = value  # once loaded, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
