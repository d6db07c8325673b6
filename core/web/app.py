"""The web app's routes on the feed's aiohttp application: the feed pages, story pages and sign-in.

``install`` adds them (and the security middlewares) to the app ``core.feed.http`` builds, so ``chorus
run`` serves feeds and pages on one port. Readers see the public communities plus the one their session
belongs to; the moderator dashboard lives in ``core.web.dashboard``.
"""

from __future__ import annotations

import logging
import secrets

from aiohttp import web

from core.errors import UserError
from core.feed.service import FeedService
from core.feed.timelines import ORDERS, Scope
from core.services import Services
from core.web import csrf, dashboard
from core.web.auth import COOKIE, SESSION_TTL_S, allow
from core.web.cards import card, cards
from core.web.render import STATIC, html, security_headers
from core.web.state import PRE, STATE, Handler, WebApp, web_of

log = logging.getLogger(__name__)

PAGE_SIZE = 50
SIGNIN_ATTEMPTS = 20
SIGNIN_WINDOW_S = 300


def remote(request: web.Request) -> str:
    return request.remote or "unknown"


def secure(request: web.Request) -> bool:
    return request.secure or request.headers.get("X-Forwarded-Proto", "") == "https"


# -- middlewares ------------------------------------------------------------------------------------------
@web.middleware
async def csrf_check(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every POST carries the CSRF token of its session (or pre-sign-in cookie), or nothing runs."""
    if request.method == "POST":
        app = web_of(request)
        form = await request.post()
        submitted = str(form.get(csrf.FIELD, ""))
        session = await app.session(request)
        binding = session.digest if session else request.cookies.get(csrf.PRE_COOKIE, "")
        if not csrf.valid(await app.key(), binding, submitted):
            return html(
                "message.html",
                status=403,
                **await app.context(
                    request,
                    title="Form expired",
                    message=(
                        "This form is missing its security token or it has expired. Reload the page and try again."
                    ),
                ),
            )
    return await handler(request)


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Users never see a traceback; the log names the path only (query strings may hold tokens)."""
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except Exception:
        log.exception("web page %s %s failed", request.method, request.path)
        return html(
            "message.html",
            status=500,
            session=None,
            csrf="",
            title="Something went wrong",
            message="Something went wrong on our side. Please try again in a moment.",
        )


# -- the feed ---------------------------------------------------------------------------------------------
async def feed_page(request: web.Request) -> web.StreamResponse:
    app = web_of(request)
    q = request.query
    order = q.get("order", "hot")
    if order not in ORDERS:
        order = "hot"
    try:
        scope = Scope.parse(q.get("scope", "all"))
        reader, page = await app.read(request, scope, order, PAGE_SIZE, q.get("cursor") or None)  # type: ignore[arg-type]
    except UserError as exc:
        return html(
            "message.html",
            status=400,
            **await app.context(request, title="Not found", message=exc.user_message),
        )
    if scope.kind == "community" and scope.value not in reader.communities:
        return html(
            "message.html",
            status=404,
            **await app.context(
                request,
                title="Not found",
                message="There is no public feed here. Sign in from your community's chat.",
            ),
        )
    scopes = (
        [("all", "All communities")]
        + [(f"platform:{p}", p) for p in sorted({ck.partition(":")[0] for ck in reader.communities})]
        + [(f"community:{ck}", ck) for ck in sorted(reader.communities)]
    )
    return html(
        "feed.html",
        **await app.context(
            request,
            title="Chorus feed",
            cards=cards(page.stories, app.services.platforms),
            cursor=page.cursor,
            order=order,
            orders=ORDERS,
            scope=q.get("scope", "all"),
            scopes=scopes,
        ),
    )


async def story_page(request: web.Request) -> web.StreamResponse:
    app = web_of(request)
    reader = await app.reader(request)
    story = await reader.visible_story(request.match_info["sid"])
    if story is None:
        return html(
            "message.html",
            status=404,
            **await app.context(request, title="Not found", message="There is no such story here."),
        )
    return html(
        "story.html",
        **await app.context(
            request, title="Story", story_card=card(story, app.services.platforms, full=True)
        ),
    )


# -- sign-in ----------------------------------------------------------------------------------------------
async def signin_form(request: web.Request) -> web.StreamResponse:
    """Opening a link shows a button: link previews in chats fetch the page without using the link."""
    app = web_of(request)
    if not await allow(app.services.redis, "signin", remote(request), SIGNIN_ATTEMPTS, SIGNIN_WINDOW_S):
        return _too_many(request)
    pre = request.cookies.get(csrf.PRE_COOKIE) or secrets.token_urlsafe(18)
    request[PRE] = pre
    token = request.query.get("t", "")
    response = html("signin.html", **await app.context(request, title="Sign in", token=token))
    response.set_cookie(
        csrf.PRE_COOKIE,
        pre,
        httponly=True,
        samesite="Strict",
        secure=secure(request),
        path="/signin",
        max_age=1800,
    )
    return response


async def signin(request: web.Request) -> web.StreamResponse:
    app = web_of(request)
    if not await allow(app.services.redis, "signin", remote(request), SIGNIN_ATTEMPTS, SIGNIN_WINDOW_S):
        return _too_many(request)
    form = await request.post()
    redeemed = await app.auth.redeem(str(form.get("t", "")))
    if redeemed is None:
        return html(
            "message.html",
            status=403,
            **await app.context(
                request,
                title="Link not valid",
                message="This sign-in link was already used, has expired or is not valid. "
                "Send /dashboard in your community's chat for a new one.",
            ),
        )
    cookie, session = redeemed
    target = (
        f"/m/{session.platform}/{session.community}"
        if session.moderator
        else (f"/?scope=community:{session.community_key}")
    )
    response = web.HTTPSeeOther(target)
    response.set_cookie(
        COOKIE, cookie, httponly=True, samesite="Lax", secure=secure(request), path="/", max_age=SESSION_TTL_S
    )
    response.del_cookie(csrf.PRE_COOKIE, path="/signin")
    raise response


async def signout(request: web.Request) -> web.StreamResponse:
    app = web_of(request)
    session = await app.session(request)
    if session is not None:
        await app.auth.end(session)
    response = web.HTTPSeeOther("/")
    response.del_cookie(COOKIE, path="/")
    raise response


def _too_many(request: web.Request) -> web.Response:
    return html(
        "message.html",
        status=429,
        session=None,
        csrf="",
        title="Too many attempts",
        message="Too many sign-in attempts from here. Wait a few minutes and try again.",
    )


def install(app: web.Application, services: Services, feed: FeedService) -> WebApp:
    """Add the pages to the feed's application (one port, one server)."""
    state = WebApp(services, feed)
    app[STATE] = state
    app.middlewares.extend([security_headers, errors, csrf_check])
    app.router.add_get("/", feed_page)
    app.router.add_get(r"/story/{sid:[A-Za-z0-9_-]{1,32}}", story_page)
    app.router.add_get("/signin", signin_form)
    app.router.add_post("/signin", signin)
    app.router.add_post("/signout", signout)
    app.router.add_static("/static", STATIC, append_version=False)
    dashboard.add_routes(app)
    return state
