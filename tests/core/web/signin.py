"""HTTP-level sign-in for tests that need a web session of a given identity (adapters' role re-checks):
the real HTTP port, a link issued as ``/dashboard`` would, opened and confirmed like a browser does."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from urllib.parse import quote

import aiohttp

from core.feed.http import FeedHttp
from core.services import Services
from core.web.auth import Identity
from tests.support import feed_of

CSRF_FIELD = 'name="csrf" value="'


def csrf_of(page: str) -> str:
    return page.split(CSRF_FIELD)[1].split('"')[0]


@dataclass
class SignedIn:
    http: aiohttp.ClientSession
    base: str
    csrf: str  # the session's form token (it does not change during a session)
    dashboard: str  # the path of the community's dashboard

    async def get(self, path: str) -> tuple[str, int]:
        async with self.http.get(self.base + path) as r:
            return await r.text(), r.status

    async def post(self, path: str, form: dict[str, str]) -> tuple[str, int]:
        async with self.http.post(self.base + path, data={**form, "csrf": self.csrf}) as r:
            return await r.text(), r.status


@asynccontextmanager
async def signed_in(services: Services, who: Identity) -> AsyncIterator[SignedIn]:
    server = FeedHttp(feed_of(services), "127.0.0.1", 0)
    port = await server.start()
    assert server.web is not None
    base = f"http://127.0.0.1:{port}"
    token = await server.web.auth.issue_link(who)
    try:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            async with http.get(f"{base}/signin?t={token}") as r:
                form_token = csrf_of(await r.text())
            async with http.post(
                f"{base}/signin", data={"t": token, "csrf": form_token}, allow_redirects=False
            ) as r:
                assert r.status == 303, await r.text()
            async with http.get(f"{base}/") as r:
                csrf = csrf_of(await r.text())
            dashboard = f"/m/{quote(who.platform, safe='')}/{quote(who.community, safe='')}"
            yield SignedIn(http, base, csrf, dashboard)
    finally:
        await server.stop()
