"""The Graph API client: insights, token calls, error taxonomy, usage headers, retry policy.

Knows nothing of storage. Facts it relies on are in GRAPH_API.md; section numbers in comments
refer to it.
"""

from igsync.graph._batch import (
    MAX_BATCH,
    GraphRequest,
    PoolSizes,
    per_account_calls,
    pool_sizes,
)
from igsync.graph._client import GraphClient
from igsync.graph._errors import (
    TokenProblem,
    accepted_metrics,
    classify,
    error_from_response,
    regain_seconds,
    token_problem,
    usage_percent,
)
from igsync.graph._login import KIND_HOSTS, LoginApi, appsecret_proof, infer_token_kind
from igsync.graph._parse import MetricValues, Point, graph_time, parse_insights
from igsync.graph._retry import RetryPolicy
from igsync.graph._token_answers import TokenDebug, TokenGrant

__all__ = [
    "KIND_HOSTS",
    "MAX_BATCH",
    "GraphClient",
    "GraphRequest",
    "LoginApi",
    "MetricValues",
    "Point",
    "PoolSizes",
    "RetryPolicy",
    "TokenDebug",
    "TokenGrant",
    "TokenProblem",
    "accepted_metrics",
    "appsecret_proof",
    "classify",
    "error_from_response",
    "graph_time",
    "infer_token_kind",
    "parse_insights",
    "per_account_calls",
    "pool_sizes",
    "regain_seconds",
    "token_problem",
    "usage_percent",
]
