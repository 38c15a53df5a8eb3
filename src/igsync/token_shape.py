"""What a token's text alone tells: which login issued it, and whether it could be a token.

Kept apart from `igsync.graph` (which re-exports it) so that commands that only check and
save tokens (`accounts add`, `accounts import`) start without importing the HTTP client.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from igsync.models import TokenKind

#: Meta's token prefixes as integrations observe them (Meta calls tokens opaque and documents
#: no format): Facebook Login user tokens start "EAA", Instagram Login tokens "IGAA" (older
#: graph.instagram.com tokens "IGQV"/"IGQW"). docs/instagram-login.md lists the sources.
_PREFIXES: tuple[tuple[str, TokenKind], ...] = (
    ("EAA", "facebook_login"),
    ("IG", "instagram_login"),
)
KIND_HOSTS: dict[TokenKind, str] = {
    "facebook_login": "graph.facebook.com",
    "instagram_login": "graph.instagram.com",
}
#: shorter than any token Meta issues; a typo or a truncated paste, not a token
MIN_TOKEN_LENGTH = 32
_SPACE = re.compile(r"\s")


def infer_token_kind(token: str) -> TokenKind | None:
    """The login kind a token's shape shows (`EAA…` Facebook, `IG…` Instagram); None: unknown.

    Meta documents no token format; this is the convention integrations rely on
    (docs/instagram-login.md). Use it to fill in a kind nobody gave, or to refuse a kind that
    contradicts the token, never to override a kind that was stated and fits.
    """
    for prefix, kind in _PREFIXES:
        if token.startswith(prefix):
            return kind
    return None


def token_shape_problem(token: str) -> str | None:
    """What is wrong with a pasted token, or None when it could be one of Meta's.

    Meta documents no token format; these are the mistakes of a copy and paste: empty, white
    space inside (two values on one line), characters outside printable ASCII (which cannot
    travel in an HTTP header), or too short. The text never contains the token; it reads
    after "the token ", e.g. "the token has white space inside".
    """
    if not token:
        return "is empty"
    if _SPACE.search(token):
        return "has white space inside"
    if not (token.isascii() and token.isprintable()):
        return "has characters no Meta token has (non-ASCII or control characters)"
    if len(token) < MIN_TOKEN_LENGTH:
        # Meta documents no token length (GRAPH_API.md); the message states igsync's own rule
        return (
            f"is {len(token)} characters long, too short: igsync refuses a token shorter than "
            f"{MIN_TOKEN_LENGTH} characters as a typo or a truncated paste (copy the whole token)"
        )
    return None


#: a whole argument shaped as a Meta token: a login's prefix (`_PREFIXES`), then letters,
#: digits, `-`, `_` only (no `/`, `.`, `:` or `@`: never a path, URL, date or id)
_TOKEN_ARGUMENT = re.compile(
    "(?:{}){}".format(
        "|".join(re.escape(prefix) for prefix, _ in _PREFIXES),
        rf"[A-Za-z0-9_-]{{{MIN_TOKEN_LENGTH - 3},}}",
    )
)


def token_shaped(text: str) -> bool:
    """Whether `text` could be a token pasted where something else was asked (a command-line
    argument): the CLI masks such arguments in everything it says."""
    return _TOKEN_ARGUMENT.fullmatch(text) is not None
