"""The Graph API client: insights, token calls, error taxonomy, usage headers, retry policy.

Knows nothing of storage. Facts it relies on are in GRAPH_API.md; section numbers in comments
refer to it.
"""

from igsync.graph._client import (
    GraphClient,
    RetryPolicy,
    TokenDebug,
    TokenGrant,
    appsecret_proof,
)
from igsync.graph._errors import classify, error_from_response, regain_seconds, usage_percent
from igsync.graph._parse import MetricValues, Point, parse_insights

__all__ = [
    "GraphClient",
    "MetricValues",
    "Point",
    "RetryPolicy",
    "TokenDebug",
    "TokenGrant",
    "appsecret_proof",
    "classify",
    "error_from_response",
    "parse_insights",
    "regain_seconds",
    "usage_percent",
]
