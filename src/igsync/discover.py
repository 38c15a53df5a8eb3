"""`accounts discover`: the Instagram professional accounts behind a Facebook user token.

Meta's getting-started guide for the Instagram API with Facebook Login
(https://developers.facebook.com/docs/instagram-api/getting-started/): the user token lists
the user's Facebook Pages with `GET /me/accounts`; a Page's `instagram_business_account` is
the Instagram professional account linked to it; that account's data is then read with the
same *user* token. So each discovered account is stored with the user token as a
`facebook_login` token, not with the Page tokens `/me/accounts` can also return. Pages are
cursor-paged (graph_samples/me_accounts_*.json): `paging.next` and `cursors.after` while more
follow. A Page without a linked Instagram account is skipped (counted in the report).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Literal
from uuid import UUID

from pydantic import BaseModel, SecretStr

from igsync.errors import ErrorKind, GraphError, InputError
from igsync.inputs import is_account_id
from igsync.models import UserToken
from igsync.store import Store
from igsync.tokens import checked_token_times

if TYPE_CHECKING:
    from igsync.graph import GraphClient
    from igsync.tokens import AppCredentials

#: Pages asked per request (Graph's default is 25; fewer round trips for agencies with many)
PAGE_SIZE = 100
#: the fields asked of each Page: the linked account's id and handle, and the Page's name
PAGE_FIELDS = "instagram_business_account{id,username},name"


class DiscoveredAccount(BaseModel):
    """One Instagram professional account found behind the token, and the Page it is linked to."""

    account_id: str
    username: str | None
    page_id: str
    page_name: str | None


class DiscoverReport(BaseModel):
    """What `accounts discover` found and did (its `--json` document). Never the token.

    `accounts`: in Meta's order; `pages_without_instagram`: Pages skipped for having no linked
    account; `saved`: accounts stored (0 with `dry_run`); `expires_at`: the token's expiry
    from debug_token (None: no app credentials, or Meta gives none).
    """

    user_id: str
    dry_run: bool
    token_kind: Literal["facebook_login"] = "facebook_login"
    expires_at: datetime | None
    accounts: list[DiscoveredAccount]
    pages_without_instagram: int
    saved: int


async def list_instagram_accounts(
    graph: GraphClient, token: str, *, page_size: int = PAGE_SIZE
) -> tuple[list[DiscoveredAccount], int]:
    """Every Instagram account linked to a Page of the user `token` (once each, in Meta's
    order), following the cursors, and how many Pages had none. Raises GraphError as
    `GraphClient.call` does, and for an answer without a `data` list."""
    from igsync.graph import GraphRequest

    found: list[DiscoveredAccount] = []
    without = 0
    params = {"fields": PAGE_FIELDS, "limit": str(page_size)}
    seen_cursors: set[str] = set()
    while True:
        body = await graph.call(GraphRequest("facebook_login", "me/accounts", params, token))
        pages = body.get("data") if isinstance(body, dict) else None
        if not isinstance(pages, list):
            raise GraphError("/me/accounts answered without a data list", kind=ErrorKind.INVALID)
        for page in pages:
            if not isinstance(page, dict):
                continue
            linked = page.get("instagram_business_account")
            account_id = str(linked.get("id", "")) if isinstance(linked, dict) else ""
            if not is_account_id(account_id):
                without += 1
                continue
            if any(a.account_id == account_id for a in found):
                continue  # linked to two Pages of this user: one account, saved once
            assert isinstance(linked, dict)
            username = linked.get("username")
            name = page.get("name")
            found.append(
                DiscoveredAccount(
                    account_id=account_id,
                    username=username if isinstance(username, str) else None,
                    page_id=str(page.get("id", "")),
                    page_name=name if isinstance(name, str) else None,
                )
            )
        paging = body.get("paging") or {}
        after = (paging.get("cursors") or {}).get("after")
        # the last page has no `next` (Meta may still send an `after`); a repeated cursor
        # would loop for ever
        if not paging.get("next") or not after or after in seen_cursors:
            return found, without
        seen_cursors.add(str(after))
        params = {**params, "after": str(after)}


async def discover_accounts(
    graph: GraphClient,
    store: Store | None,
    *,
    user_id: UUID,
    token: str,
    app: AppCredentials | None,
) -> DiscoverReport:
    """List the accounts behind the Facebook user `token`; save each (`store`; None: a dry
    run) with the token as `facebook_login` for `user_id`, in one transaction.

    With app credentials the token is first checked with debug_token: its expiry and issue
    time are saved with it, and an invalid token raises InputError before anything is listed.
    Raises InputError when Meta refuses the token (expired, logged out, not a Facebook Login
    token), GraphError for other Graph failures, StoreError when the save fails.
    """
    expires_at = issued_at = None
    if app is not None:
        expires_at, issued_at = await checked_token_times(graph, token, app)
    try:
        accounts, without = await list_instagram_accounts(graph, token)
    except GraphError as error:
        if error.kind == ErrorKind.AUTH:
            raise InputError(
                f"Meta refused the token ({error}); give a Facebook Login user token of the "
                "person who manages the Pages (log in again for a fresh one)"
            ) from None
        raise
    saved = 0
    if store is not None and accounts:
        saved = await store.save_tokens(
            [
                UserToken(
                    u_id=user_id,
                    access_token=SecretStr(token),
                    account_id=a.account_id,
                    expires_at=expires_at,
                    token_kind="facebook_login",
                    last_refreshed_at=issued_at,
                )
                for a in accounts
            ]
        )
    return DiscoverReport(
        user_id=str(user_id),
        dry_run=store is None,
        expires_at=expires_at,
        accounts=accounts,
        pages_without_instagram=without,
        saved=saved,
    )
