"""user_tokens rows the user's app can write and igsync cannot use (issue 11), one per kind.

Each `BadRow` holds the columns that differ from a good row, the message its failure must
carry, and which stores can hold it at all: PostgreSQL's uuid and timestamptz types refuse
text, so a non-UUID id or 'next tuesday' exists only in SQLite (not in Supabase either, which
is PostgreSQL behind PostgREST); 'infinity' and a status of 'banana' fit everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from uuid import uuid4

from cryptography.fernet import Fernet

from igsync.token_crypto import TokenKeys


@dataclass(frozen=True)
class BadRow:
    name: str
    columns: dict[str, str]
    message: str
    #: only SQLite's text columns can hold it (Supabase is PostgreSQL behind PostgREST)
    sqlite_only: bool = False
    token: str = field(default_factory=lambda: f"EAAG{uuid4().hex}{uuid4().hex}")

    @property
    def secret(self) -> str:
        return self.columns.get("access_token", self.token)


BAD_ROWS = [
    BadRow(
        "expires_at_words",
        {"expires_at": "next tuesday"},
        "expires_at 'next tuesday' is not a timestamp; fix the row",
        sqlite_only=True,
    ),
    BadRow(
        "expires_at_out_of_range",
        {"expires_at": "0001-01-01T00:00:00+14:00"},
        "expires_at '0001-01-01T00:00:00+14:00' is not a timestamp; fix the row",
        sqlite_only=True,
    ),
    BadRow(
        "expires_at_infinity",
        {"expires_at": "infinity"},
        "expires_at 'infinity' is not a timestamp; fix the row",
    ),
    BadRow("status_banana", {"status": "banana"}, "status 'banana' is not one of ok, expiring"),
    BadRow(
        "token_id_text",
        {"token_id": "row-7"},
        "user_tokens row row-7: token_id 'row-7' is not a UUID; fix the row",
        sqlite_only=True,
    ),
    BadRow(
        "u_id_text",
        {"u_id": "alice"},
        "u_id 'alice' is not a UUID; fix the row",
        sqlite_only=True,
    ),
    BadRow(
        "account_id_path",
        {"account_id": "../../me"},
        "account_id '../../me': expected the numeric Instagram account id (ASCII digits, not"
        " starting with 0, at most 30); fix the row",
    ),
    BadRow(
        "account_id_leading_zero",  # another account than 1784…: one Meta does not know
        {"account_id": "017841400000000001"},
        "account_id '017841400000000001': expected the numeric Instagram account id",
    ),
    BadRow("token_empty", {"access_token": ""}, "the stored token is malformed (empty)"),
    BadRow(
        "token_newline",
        {"access_token": "EAAGsecretsecret\nsecret"},
        "the stored token is malformed (whitespace or control characters)",
    ),
    BadRow(
        "token_space",
        {"access_token": "EAAGsecretsecret secret"},
        "the stored token is malformed (whitespace or control characters)",
    ),
    BadRow(
        "token_non_ascii",
        {"access_token": "EAAGsecretsécretsecret"},
        "the stored token is malformed (non-ASCII characters)",
    ),
    # encrypted (token_crypto.py) with a key this process does not have: IGSYNC_TOKEN_KEYS unset
    BadRow(
        "token_encrypted_without_key",
        {"access_token": TokenKeys(Fernet.generate_key().decode()).encrypt("EAAG" + "x" * 40)},
        "the stored token is encrypted and IGSYNC_TOKEN_KEYS is not set",
    ),
]


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def insert_sql(row: BadRow, *, u_id: str, account_id: str) -> list[str]:
    """The statements that put `row` into user_tokens (its user first), in SQLite or PostgreSQL."""
    columns = {
        "token_id": str(uuid4()),
        "u_id": u_id,
        "platform": "instagram",
        "access_token": row.token,
        "account_id": account_id,
    } | row.columns
    names = ", ".join(columns)
    values = ", ".join(_literal(v) for v in columns.values())
    return [
        f"insert into users (u_id) values ({_literal(columns['u_id'])}) on conflict do nothing",
        f"insert into user_tokens ({names}) values ({values})",
    ]
