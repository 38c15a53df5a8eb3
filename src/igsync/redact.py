"""The one redaction function: every error message, log line and JSON document goes through it.

Two nets, because either alone leaks. Known secrets (tokens read from env or the database, the
app secret, the Supabase key) are registered as soon as they are read and replaced wherever they
appear. Patterns catch secrets we were never told about: the Graph API puts `access_token=` into
`paging` URLs and httpx puts query strings into its exception messages (GRAPH_API.md §4).
"""

from __future__ import annotations

import logging
import re
import threading

from ahocorasick_rs import AhoCorasick, MatchKind

MASK = "***"

#: every known secret, with how many holders registered it and have not released it yet
_known: dict[str, int] = {}
_lock = threading.Lock()
#: one automaton over the known secrets, rebuilt only when one was added since it was built: a
#: scan costs one pass over the text, whatever the number of secrets (10,000 tokens in a
#: sync-all made the old secret-by-secret scan O(N) per line, O(N²) per run). A released
#: secret stays in it until the next rebuild: masking it a while longer is harmless.
_automaton: AhoCorasick | None = None
_dirty = False

# A secret shorter than this would mask ordinary words; real tokens are 100+ characters.
_MIN_SECRET_LEN = 8

_PATTERNS = [
    # query parameters and form fields that carry secrets
    re.compile(
        r"(?i)\b(access_token|input_token|fb_exchange_token|client_secret|appsecret_proof"
        r"|apikey|api_key|password)=([^&\s\"'<>]+)"
    ),
    # Authorization headers
    re.compile(r"(?i)\b(bearer)\s+([A-Za-z0-9._~+/=\-|]+)"),
    # user:password@ in database URLs
    re.compile(r"(?i)(\w+://[^:/@\s]+):([^@\s]+)@"),
    # tokens encrypted at rest (token_crypto.PREFIX + a Fernet token): one per row, so they
    # are masked by shape rather than registered one by one
    re.compile(r"igsync:fernet:[A-Za-z0-9_=-]+"),
]
#: text each pattern cannot match without (lowercase, looked for in the lowercased text): a
#: pattern is tried only on text that holds its literal. The patterns cost 20-50 µs each on
#: a sync-all result's 600 characters, tried at every position; the look-ups, about 1 µs.
_LITERALS = ["=", "bearer", "://", "igsync:fernet:"]


def register_secret(value: str | None) -> None:
    """Remember a secret so that `redact` masks it wherever it appears.

    Registered secrets stay known for the life of the process, unless the holder that
    registered it says it is done with it (`release_secret`), as sync-all does for each account's
    token once the account's result is out: memory then does not grow with the accounts.
    """
    global _dirty
    if value and len(value) >= _MIN_SECRET_LEN:
        with _lock:
            if value not in _known:
                _dirty = True
            _known[value] = _known.get(value, 0) + 1


def release_secret(value: str | None) -> None:
    """Undo one `register_secret` of `value`; forgotten when no registration is left.

    Only for a secret that can no longer reach any output: another holder's registration
    (the same token in env, say) keeps it known.
    """
    if value and len(value) >= _MIN_SECRET_LEN:
        with _lock:
            count = _known.get(value, 0)
            if count <= 1:
                _known.pop(value, None)
            else:
                _known[value] = count - 1


def _secrets() -> AhoCorasick | None:
    global _automaton, _dirty
    with _lock:
        if _dirty:
            # leftmost-longest: of two secrets where one contains the other, the longer wins
            _automaton = AhoCorasick(list(_known), matchkind=MatchKind.LeftmostLongest)
            _dirty = False
        return _automaton


def redact(text: str) -> str:
    """Return `text` with every known secret and every secret-shaped parameter masked."""
    automaton = _secrets()
    if automaton is not None:
        matches = automaton.find_matches_as_indexes(text, overlapping=False)
        if matches:
            parts, last = [], 0
            for _, start, end in matches:
                parts += [text[last:start], MASK]
                last = end
            parts.append(text[last:])
            text = "".join(parts)
    lowered = text.lower()
    if _LITERALS[0] in lowered:
        text = _PATTERNS[0].sub(lambda m: f"{m.group(1)}={MASK}", text)
    if _LITERALS[1] in lowered:
        text = _PATTERNS[1].sub(lambda m: f"{m.group(1)} {MASK}", text)
    if _LITERALS[2] in lowered:
        text = _PATTERNS[2].sub(lambda m: f"{m.group(1)}:{MASK}@", text)
    if _LITERALS[3] in lowered:
        text = _PATTERNS[3].sub(MASK, text)
    return text


class RedactingFilter(logging.Filter):
    """Redacts a record before any handler sees it: its args can hold URLs with tokens."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = ()
        return True


def guard_logger(name: str) -> None:
    """Redact everything `name` logs, whoever configures the handlers (idempotent).

    httpx logs each request URL at INFO, and token endpoints carry secrets in their query
    strings as Meta documents them; a program embedding igsync may well log at INFO.
    """
    logger = logging.getLogger(name)
    if not any(isinstance(f, RedactingFilter) for f in logger.filters):
        logger.addFilter(RedactingFilter())


# httpx is the one HTTP library igsync uses (Graph API, Supabase); every module that sends a
# request imports this one first, so its request lines are guarded in every process.
guard_logger("httpx")
