from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import redis.asyncio as aioredis

from core.feed.ingest import FeedStore
from core.redis_server import EmbeddedRedis
from tests.core.feed.helpers import item


async def test_export_jsonl_from_the_command_line(
    redis: aioredis.Redis, redis_server: EmbeddedRedis, tmp_path: Path
) -> None:
    store = FeedStore(redis)
    await store.ingest(
        [item(f"Release notes for build {n}: faster digests and fewer bugs in the feed.") for n in range(40)]
    )
    await store.ingest(
        [item("I would rather not be in the feed, thanks for understanding everyone.", author_id="shy")]
    )
    await store.optout("telegram", "shy")
    out = tmp_path / "feed.jsonl"
    env = {**os.environ, "CHORUS_REDIS_URL": redis_server.url, "CHORUS_DATA_DIR": str(tmp_path / "data")}
    proc = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "chorus"),
        "feed",
        "export",
        "--jsonl",
        "-o",
        str(out),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, stderr.decode()
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 40 and all(r["author"]["id"] == "u1" for r in rows)
    assert {"id", "platform", "text", "url", "engagement", "story", "created_at"} <= set(rows[0])
    err = stderr.decode()
    assert "exported 40 items" in err and "40/40" in err  # the tqdm progress bar
    assert stdout == b""
