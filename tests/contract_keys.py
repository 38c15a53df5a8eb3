"""The JSON keys DESIGN.md section 5 fixes (more keys may be added, none removed)."""

FETCH_RESULT_KEYS = frozenset(
    {
        "success",
        "total_inserted",
        "total_errors",
        "metrics_inserted",
        "errors",
        "account_id",
        "user_id",
        "token_refreshed",
        "window",
        "duration_s",
    }
)
SYNC_REPORT_KEYS = frozenset(
    {
        "success",
        "accounts_total",
        "accounts_ok",
        "accounts_failed",
        "total_inserted",
        "total_errors",
        "duration_s",
    }
)
