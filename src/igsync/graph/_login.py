"""The two Instagram APIs a token can belong to, and everything that differs between them.

A token from Facebook Login is served by graph.facebook.com, one from Business Login for
Instagram ("Instagram API with Instagram Login") by graph.instagram.com; each host refuses the
other's tokens with code 190 "Cannot parse access token" (GRAPH_API.md §7, docs/instagram-login.md).
Every call made with an account's token goes through `LoginApi`, so the host, the version, the
appsecret_proof key and the metrics a kind may ask for are decided here and nowhere else.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from igsync.token_shape import KIND_HOSTS, infer_token_kind

__all__ = ["KIND_HOSTS", "LoginApi", "appsecret_proof", "infer_token_kind"]

if TYPE_CHECKING:
    from igsync.catalogue import MetricSpec
    from igsync.models import TokenKind


def appsecret_proof(token: str, app_secret: str) -> str:
    """GRAPH_API.md §4: hex HMAC-SHA256 of the access token keyed by the app secret."""
    return hmac.new(app_secret.encode(), token.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class LoginApi:
    """Where and how calls carrying one kind of token go.

    `base_url` has no trailing slash; `version` is e.g. `v27.0` (graph.instagram.com serves the
    same versioned paths). `proof_secret` keys `appsecret_proof` on every call that carries
    such a token; None sends none. For Instagram Login it must be the *Instagram* app secret,
    which differs from the Meta app's secret: a proof keyed by the wrong one fails the call
    with code 100 "Invalid appsecret_proof".
    """

    kind: TokenKind
    base_url: str
    version: str
    proof_secret: str | None = field(default=None, repr=False)

    @property
    def host(self) -> str:
        """The host Meta serves this kind from, for messages (the configured URL may differ)."""
        return KIND_HOSTS[self.kind]

    def url(self, path: str, *, versioned: bool = True) -> str:
        """`{base_url}/{version}/{path}` (or without the version, for `refresh_access_token`)."""
        return f"{self.base_url}/{self.version}/{path}" if versioned else f"{self.base_url}/{path}"

    def proof(self, token: str) -> dict[str, str]:
        """The `appsecret_proof` parameter for a call carrying `token`; empty without a secret."""
        if self.proof_secret is None:
            return {}
        return {"appsecret_proof": appsecret_proof(token, self.proof_secret)}

    def serves(self, spec: MetricSpec) -> bool:
        """Whether tokens of this kind may ask for the metric (MetricSpec.logins)."""
        return self.kind in spec.logins
