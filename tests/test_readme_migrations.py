"""README's migration table (section "Schema") lists every migration igsync ships."""

from __future__ import annotations

import re
from pathlib import Path

from igsync.store.schema import MIGRATIONS

README = Path(__file__).parents[1] / "README.md"


def migration_rows() -> list[tuple[int, str]]:
    """(version, name) of each row of README's `| version | name | what it does |` table."""
    text = README.read_text()
    table = text.split("| version | name | what it does |", 1)[1].split("\n\n", 1)[0]
    rows = re.findall(r"^\| (\d+) \| ([^|]+?) \|", table, flags=re.MULTILINE)
    return [(int(version), name) for version, name in rows]


def test_the_readme_migration_table_lists_every_migration_by_number_and_name() -> None:
    assert migration_rows() == [(m.version, m.name) for m in MIGRATIONS]
