"""IG Media objects as Graph writes them: the `fields` a request picks, and cursor paging.

Fields: Meta's IG Media fields, as plinxore/tap-instagram-user validated them live (v22.0,
2026-06-24), plus `children` and `ig_id`, which Airbyte's media stream requests. Graph returns
the fields asked for, in that order, then `id` when it was not among them; a field the object
has no value for is left out (as Airbyte's media fixture leaves `thumbnail_url` out of images);
no `fields` at all answers the id alone (Meta's stories sample). An unknown field is refused
with Graph's "(#100) Tried accessing nonexisting field (x) on node type (ShadowIGMedia)",
quoted from live answers by peers. `children{media_type,media_url}` picks the children's
fields. `timestamp` is written like end_time (`2026-11-20T08:00:00+0000`, Airbyte's fixture).

Paging (Meta's "Paginated results" guide; paging_cursors_before_after_airbyte_fb_marketing.json
and the airbyte last pages that carry `cursors.before` only): `data`, then `paging` with
`cursors.before` (the first item) and `cursors.after` (the last) only when more follow,
`previous` when this is not the first page, `next` only when more follow. Like the insights
paging URLs, the links carry the caller's access token. No items: `{"data": []}`.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping
from datetime import datetime
from urllib.parse import urlencode

from ._errors import JSON, invalid_parameter
from ._media_insights import lifetime_value
from ._model import SimMedia
from ._posts import carousel_child, username

Fields = tuple[tuple[str, "Fields | None"], ...]
MEDIA_FIELDS = frozenset(
    {
        "id", "ig_id", "timestamp", "media_type", "media_product_type", "caption", "permalink",
        "like_count", "comments_count", "media_url", "thumbnail_url", "owner", "shortcode",
        "username", "is_comment_enabled", "is_shared_to_feed", "media_audio_type", "alt_text",
        "boost_ads_list", "boost_eligibility_info", "legacy_instagram_media_id",
        "total_comments_count", "total_like_count", "total_views_count", "saved_count",
        "shares_count", "reposts_count", "view_count", "children",
    }
)  # fmt: skip
DEFAULT_LIMIT = 25  # Graph's default page size
MAX_LIMIT = 100  # invented: larger limits are served as 100 (no sample of Meta's cap)
_NONEXISTING = "(#100) Tried accessing nonexisting field ({field}) on node type (ShadowIGMedia)"
_CDN = "https://scontent.cdninstagram.com/v/t51.29350-15"
_CURSOR_PREFIX = "sim:"


def parse_fields(raw: str | None) -> Fields:
    """`a,b,children{c,d}` as ((a, None), (b, None), (children, ((c, None), (d, None)))),
    each name a media field (else Graph's "nonexisting field" error)."""
    if not raw or not raw.strip():
        return (("id", None),)
    fields = parse_fields_of(raw)
    _check_media_fields(fields)
    return fields


def parse_fields_of(raw: str) -> Fields:
    """Graph's `fields` syntax, `a,b,c{d,e}`, parsed without judging the names."""
    fields: list[tuple[str, Fields | None]] = []
    depth, start = 0, 0
    for position, char in enumerate(f"{raw},"):
        depth += {"{": 1, "}": -1}.get(char, 0)
        if char == "," and depth == 0:
            name, brace, rest = raw[start:position].strip().partition("{")
            if name.strip():
                inner = rest.rstrip("}")
                # `children{}` asks for the default of a node: its id
                sub = (parse_fields_of(inner) or (("id", None),)) if brace else None
                fields.append((name.strip(), sub))
            start = position + 1
    return tuple(fields)


def _check_media_fields(fields: Fields) -> None:
    for name, sub in fields:
        if name not in MEDIA_FIELDS:
            raise invalid_parameter(_NONEXISTING.format(field=name))
        if sub is not None:
            _check_media_fields(sub)


def _timestamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S+0000")


def _permalink(media: SimMedia) -> str:
    if media.media_product_type == "STORY":
        number = 3_000_000_000_000_000_000 + int(media.media_id) % 10**18
        return f"https://www.instagram.com/stories/{username(media.account_id)}/{number}/"
    kind = "reel" if media.media_product_type == "REELS" else "p"
    return f"https://www.instagram.com/{kind}/{media.shortcode}/"


def field_value(
    media: SimMedia, name: str, sub: Fields | None, followers: int, now: datetime
) -> object:
    """One field of a media object at `now` (None: it has none, and Graph leaves it out)."""
    story, album_child = media.media_product_type == "STORY", media.parent_id is not None
    counts = not album_child and not story
    video = media.media_type == "VIDEO"
    first = media.children[0] if media.children else media.media_id
    values: dict[str, Callable[[], object]] = {
        "id": lambda: media.media_id,
        "timestamp": lambda: _timestamp(media.timestamp),
        "media_type": lambda: media.media_type,
        "media_product_type": lambda: media.media_product_type,
        "caption": lambda: media.caption,
        "permalink": lambda: _permalink(media),
        "shortcode": lambda: media.shortcode,
        "username": lambda: username(media.account_id),
        "owner": lambda: {"id": media.account_id},
        "media_url": lambda: f"{_CDN}/{first}_n.{'mp4' if video else 'jpg'}",
        "thumbnail_url": lambda: f"{_CDN}/{media.media_id}_t.jpg" if video else None,
        # Airbyte's stories fixture: like_count 0 on a story
        "like_count": lambda: lifetime_value(media, followers, "likes", now) if counts else 0,
        "comments_count": lambda: (
            lifetime_value(media, followers, "comments", now) if counts else None
        ),
        "is_comment_enabled": lambda: True if counts else None,
        "children": lambda: (
            {
                "data": [
                    media_node(carousel_child(media, c), sub, followers, now)
                    for c in media.children
                ]
            }
            if media.children
            else None
        ),
    }
    if album_child and name in ("caption", "like_count", "comments_count", "children"):
        return None  # children have no caption or counts of their own
    produce = values.get(name)
    return produce() if produce is not None else None


def media_node(media: SimMedia, fields: Fields | None, followers: int, now: datetime) -> JSON:
    """The media object with the fields asked for, then its id."""
    node: JSON = {}
    for name, sub in fields or (("id", None),):
        value = field_value(media, name, sub, followers, now)
        if value is not None:
            node[name] = value
    node.setdefault("id", media.media_id)
    return node


def _cursor(media: SimMedia) -> str:
    key = f"{_CURSOR_PREFIX}{int(media.timestamp.timestamp())}:{media.media_id}"
    return base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


def _cursor_key(raw: str, name: str) -> tuple[int, str]:
    """(unix time, id) of the item a cursor points at; it need not be listed any more."""
    try:
        text = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
        seconds, _, media_id = text.removeprefix(_CURSOR_PREFIX).partition(":")
        if not text.startswith(_CURSOR_PREFIX) or not media_id:
            raise ValueError(text)
        return int(seconds), media_id
    except (ValueError, binascii.Error, UnicodeDecodeError):
        # invented: no sample of Graph's answer to a forged cursor
        raise invalid_parameter(f"(#100) The {name} cursor is not valid") from None


def _limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_LIMIT
    if not raw.strip().isdigit() or int(raw) == 0:
        # invented: Graph's enum-style wording, no sample
        raise invalid_parameter(f'(#100) Param limit must be a positive integer - got "{raw}"')
    return min(int(raw), MAX_LIMIT)


def page(
    items: list[SimMedia],
    params: Mapping[str, str],
    render: Callable[[SimMedia], JSON],
    link: Callable[[list[tuple[str, str]]], str],
) -> JSON:
    """One page of `items` (newest first) after `after`, or before `before`, `limit` long."""
    limit = _limit(params.get("limit"))
    keys = [(int(m.timestamp.timestamp()), m.media_id) for m in items]
    start = 0
    if params.get("after"):
        after = _cursor_key(params["after"], "after")
        start = next((i for i, key in enumerate(keys) if key < after), len(items))
    elif params.get("before"):
        before = _cursor_key(params["before"], "before")
        end = next((i for i, key in enumerate(keys) if key <= before), len(items))
        start = max(0, end - limit)
        limit = end - start
    chunk = items[start : start + limit]
    if not chunk:
        return {"data": []}
    more = start + len(chunk) < len(items)
    cursors = {"before": _cursor(chunk[0])}
    if more:
        cursors["after"] = _cursor(chunk[-1])
    paging: JSON = {"cursors": cursors}
    if start > 0:
        paging["previous"] = link([("limit", str(limit)), ("before", cursors["before"])])
    if more:
        paging["next"] = link([("limit", str(limit)), ("after", cursors["after"])])
    return {"data": [render(m) for m in chunk], "paging": paging}


def paging_link(
    base: str, params: Mapping[str, str], token: str
) -> Callable[[list[tuple[str, str]]], str]:
    """Builds the previous/next URLs: the same request from another cursor."""

    def link(cursor: list[tuple[str, str]]) -> str:
        pairs = [("access_token", token)]
        pairs += [(k, params[k]) for k in ("fields", "since", "until") if k in params]
        pairs += cursor
        if "appsecret_proof" in params:
            pairs.append(("appsecret_proof", params["appsecret_proof"]))
        return f"{base}?{urlencode(pairs)}"

    return link
