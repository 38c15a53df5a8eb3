"""The Graph API client: insights, token calls, error taxonomy, usage headers, retry policy.

Knows nothing of storage. Facts it relies on are in GRAPH_API.md; section numbers in comments
refer to it.
"""

from igsync.graph._client import GraphClient, RetryPolicy, TokenDebug, TokenGrant
from igsync.graph._errors import (
    TokenProblem,
    classify,
    error_from_response,
    regain_seconds,
    token_problem,
    usage_percent,
)
from igsync.graph._login import KIND_HOSTS, LoginApi, appsecret_proof, infer_token_kind
from igsync.graph._parse import MetricValues, Point, parse_insights

__all__ = [
    "KIND_HOSTS",
    "GraphClient",
    "LoginApi",
    "MetricValues",
    "Point",
    "RetryPolicy",
    "TokenDebug",
    "TokenGrant",
    "TokenProblem",
    "appsecret_proof",
    "classify",
    "error_from_response",
    "infer_token_kind",
    "parse_insights",
    "regain_seconds",
    "token_problem",
    "usage_percent",
]
