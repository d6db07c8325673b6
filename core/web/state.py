"""What every page needs, shared by the feed pages (core/web/app.py) and the dashboard: the services, the
feed, sign-in, the server key, and the request's session looked up once."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from aiohttp import web

from core.feed.service import FeedService
from core.feed.timelines import Order, Page, Scope
from core.services import Services
from core.web import csrf
from core.web.auth import COOKIE, Auth, Session
from core.web.reading import VisibleTimelines
from core.web.signing import server_key

STATE: web.AppKey[WebApp] = web.AppKey("chorus_web")
SESSION: web.RequestKey[Session | None] = web.RequestKey("chorus_session")
PRE: web.RequestKey[str] = web.RequestKey("chorus_pre", str)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class WebApp:
    """What every page needs: the services, the feed, sign-in and the server key."""

    def __init__(self, services: Services, feed: FeedService) -> None:
        self.services = services
        self.feed = feed
        self.auth = Auth(services.redis, services.roles)
        self._key: bytes | None = None

    async def key(self) -> bytes:
        if self._key is None:
            self._key = await server_key(self.services.redis)
        return self._key

    async def session(self, request: web.Request) -> Session | None:
        """The request's live session (looked up once per request)."""
        if SESSION not in request:
            cookie = request.cookies.get(COOKIE, "")
            request[SESSION] = await self.auth.session(cookie) if cookie else None
        return request[SESSION]

    async def reader(self, request: web.Request) -> VisibleTimelines:
        session = await self.session(request)
        own = [session.community_key] if session else []
        return await VisibleTimelines.for_reader(self.feed.timelines, self.services.redis, own)

    async def read(
        self, request: web.Request, scope: Scope, order: Order, limit: int, cursor: str | None
    ) -> tuple[VisibleTimelines, Page]:
        """The page of ``scope`` this request may see, and its reader (what it may see)."""
        session = await self.session(request)
        own = [session.community_key] if session else []
        return await VisibleTimelines.read(
            self.feed.timelines, self.services.redis, own, scope, order, limit, cursor
        )

    async def csrf_token(self, request: web.Request) -> str:
        session = await self.session(request)
        binding = session.digest if session else request.get(PRE) or request.cookies.get(csrf.PRE_COOKIE, "")
        return csrf.token_for(await self.key(), binding) if binding else ""

    async def context(self, request: web.Request, **extra: Any) -> dict[str, Any]:
        session = await self.session(request)
        base = f"/m/{quote(session.platform, safe='')}/{quote(session.community, safe='')}" if session else ""
        return {"session": session, "csrf": await self.csrf_token(request), "base": base, **extra}


def web_of(request: web.Request) -> WebApp:
    return request.app[STATE]
