"""What each account has posted: its media (posts, reels, ads, carousel children) and stories.

Everything is deterministic per account. Media are spread back from the simulator's first UTC
day (`anchor`), one every 1-3 days, newest first, in a fixed mix of product types: IMAGE and
CAROUSEL_ALBUM posts (FEED), reels (VIDEO, REELS), the odd legacy FEED video and AD (the
mix of Airbyte's media fixture and Meta's media_product_type values: AD, FEED, STORY,
REELS). Stories are posted `stories_per_day` times each UTC day, at any day, so the 24-hour
window of the stories edge moves with the clock (`_stories`).

Media ids are 18 digits, like Meta's (17-18): "18", the account's position among the
simulator's accounts (5 digits), a kind digit (0 media, 1 story, 2 carousel child) and a
10-digit sequence, so any id leads back to its account and object without a lookup table.
"""

from __future__ import annotations

import base64
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache

from ._metrics import stable_hash
from ._model import SimAccount, SimMedia

MEDIA, STORY, CHILD = 0, 1, 2
_PREFIX = "18"
_ID_LENGTH = 18
# (media_type, media_product_type) by position, rotated per account: every kind shows up in
# any ten media. Videos are reels since 2022 (Meta's media_product_type), but accounts still
# hold FEED videos from before, whose insights Meta serves in part (`_media_insights`).
_MIX = (
    ("IMAGE", "FEED"),
    ("VIDEO", "REELS"),
    ("CAROUSEL_ALBUM", "FEED"),
    ("VIDEO", "REELS"),
    ("IMAGE", "FEED"),
    ("VIDEO", "REELS"),
    ("IMAGE", "AD"),
    ("CAROUSEL_ALBUM", "FEED"),
    ("VIDEO", "FEED"),
    ("IMAGE", "FEED"),
)
_DAY = timedelta(days=1)


def media_id(account_number: int, kind: int, sequence: int) -> str:
    """The id of an account's media object (see the module docstring)."""
    return f"{_PREFIX}{account_number:05d}{kind}{sequence:010d}"


def parse_media_id(node: str) -> tuple[int, int, int] | None:
    """(account number, kind, sequence) of one of the simulator's media ids; None otherwise."""
    if len(node) != _ID_LENGTH or not node.isdigit() or not node.startswith(_PREFIX):
        return None
    kind = int(node[7])
    if kind not in (MEDIA, STORY, CHILD):
        return None
    return int(node[2:7]), kind, int(node[8:])


def shortcode(seed: str) -> str:
    """An 11-character code like Instagram's (base64url), stable per media."""
    raw = stable_hash("shortcode", seed).to_bytes(8, "big") + b"\x00"
    return base64.urlsafe_b64encode(raw).decode()[:11]


def username(account_id: str) -> str:
    """The account's handle; invented, stable."""
    return f"sim_account_{account_id[-5:]}"


def media_timeline(account: SimAccount, number: int, anchor: datetime) -> tuple[SimMedia, ...]:
    """The account's media, newest first (`anchor` is a UTC midnight)."""
    return _timeline(
        account.account_id, number, account.media_count, account.media_before_conversion, anchor
    )


@lru_cache(maxsize=4096)
def _timeline(
    account_id: str, number: int, count: int, before_conversion: int, anchor: datetime
) -> tuple[SimMedia, ...]:
    offset = stable_hash("mix", account_id) % len(_MIX)
    media: list[SimMedia] = []
    days_back = 0
    for index in range(count):
        days_back += 1 + stable_hash(account_id, "gap", index) % 3
        seconds = stable_hash(account_id, "second", index) % 86_400
        media_type, product = _MIX[(offset + index) % len(_MIX)]
        identifier = media_id(number, MEDIA, index)
        children: tuple[str, ...] = ()
        if media_type == "CAROUSEL_ALBUM":
            size = 2 + stable_hash(account_id, "children", index) % 4
            children = tuple(media_id(number, CHILD, index * 10 + c) for c in range(size))
        caption = None if index % 7 == 3 else f"Post {count - index} of {username(account_id)}"
        media.append(
            SimMedia(
                media_id=identifier,
                account_id=account_id,
                media_type=media_type,
                media_product_type=product,
                timestamp=anchor - days_back * _DAY + timedelta(seconds=seconds),
                shortcode=shortcode(identifier),
                caption=caption,
                before_conversion=index >= count - before_conversion,
                children=children,
            )
        )
    return tuple(media)


def carousel_child(album: SimMedia, child: str) -> SimMedia:
    """A child of a carousel album: an IMAGE (sometimes a VIDEO) posted with it. Children have
    no product type, caption or counts of their own (Meta's children fields)."""
    position = album.children.index(child)
    video = stable_hash(child, "video") % 4 == 0
    return SimMedia(
        media_id=child,
        account_id=album.account_id,
        media_type="VIDEO" if video else "IMAGE",
        media_product_type=None,
        timestamp=album.timestamp,
        shortcode=album.shortcode if position == 0 else shortcode(child),
        parent_id=album.media_id,
    )


def stories_of_day(account: SimAccount, number: int, day: date) -> tuple[SimMedia, ...]:
    """The stories the account posted on that UTC day, in posting order."""
    return _stories(account.account_id, number, account.stories_per_day, day)


@lru_cache(maxsize=4096)
def _stories(account_id: str, number: int, per_day: int, day: date) -> tuple[SimMedia, ...]:
    start = datetime.combine(day, time(0), tzinfo=UTC)
    slot = 86_400 // max(per_day, 1)
    stories = []
    for index in range(per_day):
        seconds = index * slot + stable_hash(account_id, "story", day, index) % slot
        identifier = media_id(number, STORY, day.toordinal() * 10 + index)
        stories.append(
            SimMedia(
                media_id=identifier,
                account_id=account_id,
                media_type="VIDEO" if stable_hash(identifier, "video") % 3 == 0 else "IMAGE",
                media_product_type="STORY",
                timestamp=start + timedelta(seconds=seconds),
                shortcode=shortcode(identifier),
            )
        )
    return tuple(stories)


def find_media(
    account: SimAccount, number: int, kind: int, sequence: int, anchor: datetime
) -> SimMedia | None:
    """The media object an id names, whether or not it is posted yet (None: no such id)."""
    if kind == STORY:
        if not 1 <= sequence // 10 <= date.max.toordinal():
            return None
        stories = stories_of_day(account, number, date.fromordinal(sequence // 10))
        return stories[sequence % 10] if sequence % 10 < len(stories) else None
    timeline = media_timeline(account, number, anchor)
    index = sequence // 10 if kind == CHILD else sequence
    if index >= len(timeline):
        return None
    if kind == MEDIA:
        return timeline[index]
    album = timeline[index]
    child = media_id(number, CHILD, sequence)
    return carousel_child(album, child) if child in album.children else None
