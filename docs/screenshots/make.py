"""Make the README's screenshots from the real pages: a throwaway Chorus (embedded Redis in a temp dir) with a
small demo feed, a moderator signed in through a link from ``/dashboard``, and Debian's Chromium.

Run: ``.venv/bin/python docs/screenshots/make.py`` (writes feed.png, dashboard.png and prompt.png here).
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from playwright.async_api import async_playwright  # noqa: E402

from core import refusals  # noqa: E402
from core.assistant.drafts import Draft, ShareTarget  # noqa: E402
from core.contract import Author, DirectMessage, Event, EventKind  # noqa: E402
from core.errors import ContentRefused, QuotaExceeded  # noqa: E402
from core.feed.http import FeedHttp  # noqa: E402
from core.feed.items import FeedItem  # noqa: E402
from core.redis_server import EmbeddedRedis, connect  # noqa: E402
from core.router import Router  # noqa: E402
from core.services import Services  # noqa: E402
from core.settings import Settings  # noqa: E402
from core.web.visibility import set_visibility  # noqa: E402
from tests.core.web.stack import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from tests.support import assistant_of, build_services, feed_of  # noqa: E402

HERE = Path(__file__).parent
COMMUNITY = "makers"
POSTS = [
    (
        "telegram",
        "Lena",
        "Workshop night is back! Thursday 19:00 we solder our own synth kits — bring a friend, "
        "we have 12 spare irons.",
        34,
        9,
    ),
    (
        "discord",
        "kofi",
        "Workshop night is back: Thursday 19:00, solder your own synth kit. 12 spare irons!",
        21,
        4,
    ),
    (
        "x",
        "makerspace",
        "Our laser cutter got a new tube! Cuts 6 mm plywood in one pass now. Book a slot in #tools.",
        88,
        12,
    ),
    (
        "telegram",
        "Priya",
        "Reminder: the 3D printer queue resets on Monday. Long prints (> 8 h) need a note in the sheet.",
        12,
        3,
    ),
    ("discord", "sam", "Does anyone have a spare ESP32-S3? Mine died mid-project (RIP, magic smoke).", 5, 7),
    (
        "x",
        "makerspace",
        "Open house on Saturday: kids' robot race at 11, repair café from 14:00. Free entry.",
        140,
        22,
    ),
]


async def command(services: Services, text: str, moderator: bool = True, user: str = "Ada") -> list[object]:
    name, _, args = text.lstrip("/").partition(" ")
    event = Event(
        kind=EventKind.COMMAND,
        platform="console",
        community=COMMUNITY,
        channel="general",
        author=Author(id=user.lower(), name=user, is_moderator=moderator),
        command=name,
        args=args,
        text=text,
    )
    return list(await Router(services).route(event))


async def seed(services: Services) -> None:
    now = time.time()
    items = [
        FeedItem(
            platform=platform,
            community=COMMUNITY,
            channel="general",
            message_id=f"m{n}",
            author_id=author,
            author_name=author,
            text=text,
            created_at=now - 3600 * (n + 1) - n * 600,
            reactions=reactions,
            replies=replies,
        )
        for n, (platform, author, text, reactions, replies) in enumerate(POSTS)
    ]
    await feed_of(services).store.ingest(items)
    await command(services, "/feed visibility public")
    for platform in ("telegram", "discord", "x"):  # the guild's groups on the other platforms are public too
        await set_visibility(services.redis, f"{platform}:{COMMUNITY}", "public")
    await command(services, "/feed add #general")
    await command(services, "/feed add #tools")
    await command(
        services,
        '/prompt set persona -m "friendlier" You are the Makers Guild\'s helpful, upbeat '
        "host. Keep it practical and warm.",
    )
    await command(services, '/prompt set persona -m "shorter" You are the Makers Guild\'s upbeat host.')
    assistant = assistant_of(services)
    if assistant is None:
        raise SystemExit("the assistant feature is not installed")
    for day in range(14):
        for _ in range((day * 7) % 11 + 2):
            await assistant.quotas.record(
                f"console:{COMMUNITY}",
                "ada",
                model="gpt-4.1-mini",
                tokens_in=900,
                tokens_out=180,
                now=now - day * 86400,
            )
        for n in range((day * 5) % 4):  # a few requests refused each day, as the chart shows them
            refused = QuotaExceeded("over") if n % 2 == 0 else ContentRefused("flagged")
            await refusals.count(services.redis, f"console:{COMMUNITY}", refused, now=now - day * 86400)
    await command(services, "/subscribe daily 08:00", moderator=False, user="Lena")
    await command(services, "/subscribe weekly fri 17:00 all", moderator=False, user="Kofi")
    draft = Draft(
        community_key=f"console:{COMMUNITY}",
        platform="console",
        channel="general",
        author_id="kofi",
        parts=["Open house this Saturday! Robot race at 11, repair café from 14:00. Free entry."],
    )
    await assistant.store.save(draft)
    await assistant.store.add_pending(
        draft, ShareTarget(platform="x", community="makerspace", channel="main")
    )


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedRedis(Path(tmp))
        server.ensure_running()
        try:
            settings = Settings(
                CHORUS_DATA_DIR=Path(tmp) / "data", CHORUS_REDIS_URL=server.url, CHORUS_HTTP_PORT=1
            )
            services = await build_services(settings, connect(server.url))
            http = FeedHttp(feed_of(services), "127.0.0.1", 0)
            port = await http.start()
            base = f"http://127.0.0.1:{port}"
            try:
                await seed(services)
                dm = next(a for a in await command(services, "/dashboard") if isinstance(a, DirectMessage))
                link = base + "/signin?" + dm.text.split("/signin?")[1]
                async with async_playwright() as p:
                    browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                    page = await browser.new_page(viewport={"width": 1000, "height": 760})
                    await page.goto(base + "/?order=hot")
                    await page.screenshot(path=str(HERE / "feed.png"))
                    await page.goto(link)
                    await page.click("#signin")
                    await page.wait_for_load_state()
                    await page.screenshot(path=str(HERE / "dashboard.png"))
                    await page.goto(base + f"/m/console/{COMMUNITY}/prompts/persona")
                    await page.fill("#text", "You are the Makers Guild's upbeat host in {communty}.")
                    await page.wait_for_selector("#live-check[data-state=refused]")  # the live check
                    await page.screenshot(path=str(HERE / "prompt.png"))
                    await browser.close()
            finally:
                await http.stop()
                await services.aclose()
                await services.redis.aclose()
        finally:
            server.release()
    for name in ("feed", "dashboard", "prompt"):
        print(f"{HERE / name}.png: {(HERE / f'{name}.png').stat().st_size / 1024:.0f} KB")


if __name__ == "__main__":
    asyncio.run(main())
