"""A small HTTP endpoint for feed readers: RSS, Atom and JSON Feed of any timeline (``chorus run`` serves it).

``GET /feed.rss|.atom|.json?scope=all|platform:<name>|community:<platform>:<id>&order=hot|new|top``
``&limit=..&cursor=..&topics=a,b&period=hour|day|week`` and ``GET /stories/<id>`` (JSON). It binds
``CHORUS_HTTP_HOST`` (default 127.0.0.1) and ``CHORUS_HTTP_PORT``; port 0 disables it. The web app
(``core.web``) adds its pages to the same application.

A reader gets only what they may see: the communities whose moderators made their feed public, plus the
community of their web session or of the personal feed token in ``?token=`` (``/feed url``). ``scope=all``
and platform scopes merge only those communities; a private community's feed or story is "not found".

A personal token's feed is its holder's: their mutes (``/feed mute``) and learned weights apply to every page
(a page may hold fewer than ``limit`` stories when some are muted; the cursor still follows the shared
ranking, so nothing is skipped), and without ``order=`` it is in their default order (``/feed order``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from aiohttp import web

from core.errors import UserError
from core.feed.exports import FeedMeta, render_atom, render_json_feed, render_rss
from core.feed.items import Story
from core.feed.preferences import EMPTY, Preferences, personalise
from core.feed.reasons import Reason, explain
from core.feed.timelines import ORDERS, Scope
from core.health import add_routes as add_ops_routes
from core.web import app as web_app
from core.web.reading import VisibleTimelines
from core.web.signing import feed_token_holder
from core.web.visibility import visible_to

if TYPE_CHECKING:
    from core.feed.service import FeedService
    from core.services import Services

log = logging.getLogger(__name__)

PERIODS = {"hour": 3600.0, "day": 86400.0, "week": 604800.0, "month": 30 * 86400.0}
TYPES = {
    "rss": "application/rss+xml",
    "atom": "application/atom+xml",
    "json": "application/feed+json",
}
MAX_LIMIT = 100


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


class FeedHttp:
    """The aiohttp application and its lifecycle."""

    def __init__(
        self,
        feed: FeedService,
        host: str,
        port: int,
        base_url: str = "",
    ) -> None:
        self.feed = feed
        self.platforms = feed.services.platforms
        self.host = host
        self.port = port
        self.base_url = base_url.rstrip("/")
        self._runner: web.AppRunner | None = None
        self.web: web_app.WebApp | None = None

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/healthz", self._health)
        add_ops_routes(app, self.feed.services)  # /readyz, /metrics (core/health.py)
        app.router.add_get(r"/feed.{fmt:(rss|atom|json)}", self._timeline)
        app.router.add_get(r"/stories/{sid:[A-Za-z0-9_-]{1,32}}", self._story)
        self.web = web_app.install(app, self.feed.services, self.feed)
        return app

    async def _reader(self, request: web.Request) -> tuple[VisibleTimelines, Preferences]:
        """The feed as this request may read it (public communities, its session's, its token's), and the
        preferences of the personal token's holder (none without a token)."""
        own: list[str] = []
        prefs = EMPTY
        token = request.query.get("token", "")
        if token:
            holder = await feed_token_holder(self.feed.services.redis, token)
            if holder is None:
                raise web.HTTPForbidden(
                    text='{"error": "this feed URL was revoked or is not valid"}',
                    content_type="application/json",
                )
            own.append(holder[0])
            prefs = await self.feed.preferences.get(*holder)
        if self.web is not None:
            session = await self.web.session(request)
            if session is not None:
                own.append(session.community_key)
        readable = VisibleTimelines(self.feed.timelines, await visible_to(self.feed.services.redis, own))
        return readable, prefs

    async def start(self) -> int:
        """Bind and serve; returns the bound port (useful with port 0 in tests)."""
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        bound = self._runner.addresses[0][1] if self._runner.addresses else self.port
        if not self.base_url:
            self.base_url = f"http://{self.host}:{bound}"
        log.info("feed HTTP endpoint on http://%s:%s", self.host, bound)
        return int(bound)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _health(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def _timeline(self, request: web.Request) -> web.Response:
        fmt = request.match_info["fmt"]
        q = request.query
        try:
            scope = Scope.parse(q.get("scope", "all"))
            topics = [t for t in q.get("topics", "").split(",") if t.strip()]
            scope = scope.with_topics(topics)
            reader, prefs = await self._reader(request)
            order = q.get("order") or prefs.order or "hot"
            if order not in ORDERS:
                return _error(400, "order must be hot, new or top")
            period = PERIODS.get(q.get("period", "day"))
            if period is None:
                return _error(400, "period must be hour, day, week or month")
            limit_raw = q.get("limit", "50")
            if not limit_raw.isdigit():
                return _error(400, "limit must be a number")
            limit = max(1, min(int(limit_raw), MAX_LIMIT))
            if scope.kind == "community" and scope.value not in reader.communities:
                return _error(
                    404, "no such feed (a community's feed is private unless its moderators made it public)"
                )
            page = await reader.visible_page(scope, order, limit, q.get("cursor") or None, period_s=period)
        except UserError as exc:
            return _error(400, exc.user_message)
        chosen = personalise(prefs, page.stories, order)  # the token holder's mutes and weights
        stories = [c.story for c in chosen]
        moved = {c.story.id: (c.more, c.less) for c in chosen if c.more or c.less}
        tau, now = self.feed.settings.tau_s, time.time()

        def reason(story: Story) -> Reason:
            more, less = moved.get(story.id, ((), ()))
            return explain(story, order, tau_s=tau, now=now, more=more, less=less)

        params = {k: v for k, v in q.items() if k != "cursor"}
        self_url = f"{self.base_url}/feed.{fmt}" + (f"?{urlencode(params)}" if params else "")
        next_url = None
        if page.cursor:
            next_url = f"{self.base_url}/feed.{fmt}?{urlencode({**params, 'cursor': page.cursor})}"
        meta = FeedMeta(
            title=f"Chorus — {order} in {scope.label(self.platforms)}",
            description=f"The {order} stories of {scope.label(self.platforms)}, across Discord, Telegram and X.",
            platforms=self.platforms,
            home_url=self.base_url + "/",
            self_url=self_url,
            next_url=next_url,
            reasons=reason,
        )
        if fmt == "json":
            body = json.dumps(render_json_feed(stories, meta), ensure_ascii=False).encode()
        elif fmt == "atom":
            body = render_atom(stories, meta)
        else:
            body = render_rss(stories, meta)
        return web.Response(body=body, content_type=TYPES[fmt], charset="utf-8")

    async def _story(self, request: web.Request) -> web.Response:
        reader, _ = await self._reader(request)
        story = await reader.visible_story(request.match_info["sid"])
        if story is None:
            return _error(404, "no such story")
        return web.json_response(story.as_dict(self.platforms))


def feed_http_runner(
    services: Services, feed: FeedService
) -> Callable[[asyncio.Event], Coroutine[Any, Any, None]]:
    """The ``feed-http`` background part of ``chorus run``: serves until ``stop`` is set."""

    async def runner(stop: asyncio.Event) -> None:
        port = services.settings.http_port
        if port <= 0:
            log.info("feed HTTP endpoint disabled (CHORUS_HTTP_PORT=%s)", port)
            await stop.wait()
            return
        server = FeedHttp(feed, feed.settings.http_host, port, feed.settings.base_url)
        try:
            await server.start()
        except OSError as exc:  # a busy port must not take the bots down with it
            log.error(
                "feed HTTP endpoint could not bind %s:%s (%s); feeds are not served", server.host, port, exc
            )
            await stop.wait()
            return
        try:
            await stop.wait()
        finally:
            await server.stop()

    return runner
