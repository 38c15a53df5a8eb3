"""What encrypting tokens at rest (IGSYNC_TOKEN_KEYS) costs: the time to read every token of
`user_tokens` page by page, as sync-all does, plain and encrypted, and `accounts rekey` over
them, on SQLite.

    uv run python benchmarks/token_crypto.py [--tokens 10000]

Encrypted rows are read twice: with their key first (one Fernet decryption per row) and with
it second in IGSYNC_TOKEN_KEYS (mid-rotation: a failed try with the first key, then the
second). Prints one JSON document of seconds and microseconds per token.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path
from uuid import uuid4

from cryptography.fernet import Fernet
from pydantic import SecretStr

from igsync.models import UserToken
from igsync.rekey import rekey_tokens
from igsync.store import iter_tokens
from igsync.store.sqlite import SQLiteStore
from igsync.token_crypto import TokenKeys, use_keys


async def seed(path: Path, count: int) -> None:
    async with SQLiteStore(path) as store:
        for i in range(count):
            await store.save_token(
                UserToken(
                    u_id=uuid4(),
                    account_id=str(17841400000000000 + i),
                    access_token=SecretStr(f"EAAG{uuid4().hex}{uuid4().hex}{uuid4().hex}"),
                )
            )


async def read_all(path: Path) -> float:
    async with SQLiteStore(path) as store:
        started = time.perf_counter()
        count = sum([1 async for _ in iter_tokens(store)])
        return time.perf_counter() - started if count else 0.0


async def rekey(path: Path) -> float:
    async with SQLiteStore(path) as store:
        started = time.perf_counter()
        report = await rekey_tokens(store)
        assert not report.failed
        return time.perf_counter() - started


async def main(count: int) -> dict[str, object]:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    with tempfile.TemporaryDirectory() as tmp:
        plain, sealed = Path(tmp) / "plain.db", Path(tmp) / "sealed.db"
        use_keys(None)
        await seed(plain, count)
        use_keys(TokenKeys(old))
        await seed(sealed, count)

        use_keys(None)
        read_plain = await read_all(plain)
        use_keys(TokenKeys(old))
        read_sealed = await read_all(sealed)
        use_keys(TokenKeys(f"{new},{old}"))
        read_rotating = await read_all(sealed)
        rekeyed = await rekey(sealed)
        read_after = await read_all(sealed)

    def per_token(seconds: float) -> float:
        return round(seconds / count * 1e6, 1)

    return {
        "tokens": count,
        "read_plain_s": round(read_plain, 3),
        "read_encrypted_s": round(read_sealed, 3),
        "read_mid_rotation_s": round(read_rotating, 3),
        "rekey_s": round(rekeyed, 3),
        "read_after_rekey_s": round(read_after, 3),
        "decrypt_overhead_us_per_token": per_token(read_sealed - read_plain),
        "mid_rotation_overhead_us_per_token": per_token(read_rotating - read_plain),
        "rekey_us_per_token": per_token(rekeyed),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=10_000)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.tokens)), indent=2))
