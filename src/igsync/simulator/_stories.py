"""`GET /{ig-user-id}/stories`: the stories of the last 24 hours, and when story insights end.

Meta's IG User Stories reference (developers.facebook.com/docs/instagram-platform/
instagram-graph-api/reference/ig-user/stories): "Stories are only available for 24 hours";
live video stories and reshared stories are left out (the simulator posts neither). Each story
is an IG Media object with media_product_type STORY, listed with the fields and cursor paging
of the media edge (Airbyte's stories fixture: a last page with `paging.cursors.before` only).
Meta's media insights reference: "Story media metrics are only available for 24 hours" — after
that the simulator answers story insights with an empty data set, Meta's documented answer for
data that "does not exist or is currently unavailable".
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ._model import SimAccount, SimMedia
from ._posts import stories_of_day

STORY_LIFETIME = timedelta(hours=24)


def is_live(story: SimMedia, now: datetime) -> bool:
    """Whether a story is up at `now`: posted, and less than 24 hours ago."""
    return now - STORY_LIFETIME < story.timestamp <= now


def live_stories(account: SimAccount, number: int, now: datetime) -> list[SimMedia]:
    """The account's stories up at `now`, newest first (stories are posted per UTC day)."""
    today = now.astimezone(UTC).date()
    stories = [
        story
        for day in (today - timedelta(days=1), today)
        for story in stories_of_day(account, number, day)
        if is_live(story, now)
    ]
    return sorted(stories, key=lambda story: story.timestamp, reverse=True)
