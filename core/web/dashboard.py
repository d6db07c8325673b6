"""The moderator dashboard of one community: prompts, approval queue, feed channels and visibility, usage
(with refusals), everyone's digest subscriptions.

Every page checks that the session belongs to the community in the URL and that its (re-checked) role is
moderator; every form runs the chat command it stands for (``core.web.actions``), so a refusal, a
validation message or an audit entry is exactly what the chat would give.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from core import keys
from core.assistant.drafts import DraftStore
from core.assistant.quotas import Quotas
from core.catalog import PlatformCatalog
from core.decode import as_str
from core.errors import InvalidInput
from core.feed.subscriptions import SUBSCRIPTION_ID
from core.prompts.slots import Slot, SlotSpec
from core.web.actions import Outcome, run_command
from core.web.auth import Session
from core.web.render import html
from core.web.state import WebApp, web_of
from core.web.usage import Day, usage_days
from core.web.visibility import is_public

BASE = r"/m/{platform:[a-z0-9_-]{1,32}}/{community:[^/]{1,128}}"
MAX_PENDING_SHOWN = 50
NO_STORE = {"Cache-Control": "no-store"}


class Refused(Exception):
    """The request may not see this page; carries the page that says why."""

    def __init__(self, response: web.Response) -> None:
        self.response = response


async def _moderator(request: web.Request) -> tuple[WebApp, Session]:
    app = web_of(request)
    session = await app.session(request)
    wanted = f"{request.match_info['platform']}:{request.match_info['community']}"
    if session is None:
        message = "Sign in first: send /dashboard in your community's chat for a link."
    elif session.community_key != wanted:
        message = "Your session belongs to another community. Sign in from this community's chat."
    elif session.unconfirmed:
        label = app.services.platforms.label(session.platform)
        message = (
            f"{label} did not confirm just now that you are still a moderator here. Try again in a minute."
        )
    elif not session.moderator:
        message = "Only moderators of this community can open its dashboard."
    else:
        return app, session
    ctx = await app.context(request, title="Not allowed", message=message)
    raise Refused(html("message.html", status=403, **ctx))


PageHandler = Callable[[web.Request, WebApp, Session], Awaitable[web.StreamResponse]]


def _guarded(handler: PageHandler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def run(request: web.Request) -> web.StreamResponse:
        try:
            app, session = await _moderator(request)
        except Refused as refused:
            return refused.response
        response: web.StreamResponse = await handler(request, app, session)
        return response

    return run


# -- overview: feed, visibility, usage --------------------------------------------------------------------
async def overview(
    request: web.Request, app: WebApp, session: Session, result: Outcome | None = None
) -> web.Response:
    svc = app.services
    ck = session.community_key
    days: list[Day] = await usage_days(Quotas(svc.redis, svc.settings), ck)
    quota = (await run_command(svc, session, "quota", "community")).text
    audit = (await run_command(svc, session, "prompt", "audit")).text
    return html(
        "dashboard.html",
        **await app.context(
            request,
            title="Dashboard",
            tab="overview",
            result=result,
            public=await is_public(svc.redis, ck),
            channels=await app.feed.channels(ck),
            subscriptions=await app.feed.subscriptions.for_community(session.platform, session.community),
            platforms=svc.platforms,
            days=days,
            quota=quota,
            audit=audit,
            slots=[s.value for s in Slot],
        ),
    )


async def feed_settings(request: web.Request, app: WebApp, session: Session) -> web.Response:
    form = await request.post()
    action = str(form.get("action", ""))
    value = " ".join(str(form.get("value", "")).split())[:80]
    if action == "visibility" and value in ("public", "private"):
        result = await run_command(app.services, session, "feed", f"visibility {value}")
    elif action in ("add", "remove") and value:
        result = await run_command(app.services, session, "feed", f"{action} {value}")
    else:
        result = Outcome("Choose what to change.", 0)
    return await overview(request, app, session, result)


async def subscription_cancel(request: web.Request, app: WebApp, session: Session) -> web.Response:
    """Cancel one of the community's digest subscriptions: ``/unsubscribe <id>``, as a moderator in chat."""
    sub_id = str((await request.post()).get("subscription", "")).strip()
    if SUBSCRIPTION_ID.match(sub_id):
        result = await run_command(app.services, session, "unsubscribe", sub_id)
    else:
        result = Outcome("Choose a subscription to cancel.", 0)
    return await overview(request, app, session, result)


# -- prompts -------------------------------------------------------------------------------------------------
def _spec(request: web.Request, platforms: PlatformCatalog) -> SlotSpec:
    try:
        return SlotSpec.parse(request.match_info["slot"], platforms.names)
    except InvalidInput as exc:
        raise web.HTTPNotFound() from exc


async def prompt_page(
    request: web.Request,
    app: WebApp,
    session: Session,
    result: Outcome | None = None,
    draft: str | None = None,
) -> web.Response:
    spec = _spec(request, app.services.platforms)
    prompts = app.services.prompts
    ck = session.community_key
    effective = await prompts.effective(ck, spec.slot, spec.platform)
    versions, current = await prompts.store.versions(ck, spec)
    diff = None
    a, b = request.query.get("a", ""), request.query.get("b", "")
    if a and b:
        diff = await run_command(app.services, session, "prompt", f"diff {spec} {a[:12]} {b[:12]}")
    return html(
        "prompt.html",
        **await app.context(
            request,
            title=f"Prompt {spec}",
            tab="prompts",
            spec=str(spec),
            text=effective.text if draft is None else draft,
            versions=list(reversed(versions)),
            current=current,
            diff=diff,
            result=result,
            slots=[s.value for s in Slot],
        ),
    )


async def prompt_change(request: web.Request, app: WebApp, session: Session) -> web.Response:
    spec = _spec(request, app.services.platforms)
    form = await request.post()
    op = str(form.get("op", ""))
    text = str(form.get("text", "")).replace("\r\n", "\n")
    reason = " ".join(str(form.get("reason", "")).replace('"', "'").split())[:200]
    version = str(form.get("version", "")).strip()[:12]
    draft = None
    if op == "set":
        result = await run_command(app.services, session, "prompt", f'set {spec} -m "{reason}" {text}')
        draft = text if "is now v" not in result.text else None  # keep a refused text in the editor
    elif op == "preview":
        result = await run_command(app.services, session, "prompt", f"preview {spec} {text}")
        draft = text
    elif op == "rollback" and version.isdigit():
        result = await run_command(app.services, session, "prompt", f"rollback {spec} {version} {reason}")
    elif op == "reset":
        result = await run_command(app.services, session, "prompt", f"reset {spec} {reason}")
    else:
        result = Outcome("Choose what to do with the prompt.", 0)
    return await prompt_page(request, app, session, result, draft)


async def prompt_check(request: web.Request, app: WebApp, session: Session) -> web.Response:
    """The live check of a prompt being edited (``static/prompt.js``): the validator ``/prompt set`` runs,
    its message word for word, nothing stored. Moderators only, CSRF-checked like every POST."""
    spec = _spec(request, app.services.platforms)
    text = str((await request.post()).get("text", ""))
    try:
        await app.services.prompts.check(session.community_key, spec, text)
    except InvalidInput as exc:
        return web.json_response({"ok": False, "message": exc.user_message}, headers=NO_STORE)
    return web.json_response(
        {"ok": True, "message": f"The {spec} prompt can be saved as it is."}, headers=NO_STORE
    )


# -- approval queue ------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True, slots=True)
class Pending:
    id: str
    kind: str
    text: str
    targets: list[str]
    author: str
    created_at: float


async def pending_drafts(app: WebApp, community_key: str) -> list[Pending]:
    """Drafts waiting for a moderator, newest first (their keys share the community's hash tag)."""
    store = DraftStore(app.services.redis, ttl_s=app.services.settings.draft_ttl_s)
    prefix = keys.community(community_key, "pending", "")
    out: list[Pending] = []
    async for raw in app.services.redis.scan_iter(match=prefix.replace("[", "\\[") + "*", count=500):
        draft_id = as_str(raw)[len(prefix) :]
        draft = await store.get(community_key, draft_id)
        targets = await store.pending(community_key, draft_id)
        if draft is not None and targets:
            out.append(
                Pending(
                    draft.id,
                    draft.kind,
                    draft.text,
                    [t.label for t in targets],
                    draft.author_id,
                    draft.created_at,
                )
            )
        if len(out) >= MAX_PENDING_SHOWN:
            break
    return sorted(out, key=lambda p: -p.created_at)


async def queue_page(
    request: web.Request,
    app: WebApp,
    session: Session,
    result: Outcome | None = None,
    kept: dict[str, str] | None = None,
) -> web.Response:
    return html(
        "queue.html",
        **await app.context(
            request,
            title="Approval queue",
            tab="queue",
            result=result,
            pending=await pending_drafts(app, session.community_key),
            kept=kept or {},  # draft id -> an edit the command refused, kept in its editor
            now=time.time(),
        ),
    )


async def queue_change(request: web.Request, app: WebApp, session: Session) -> web.Response:
    """Approve or reject a draft; with an edited text, ``/edit`` makes the new version first (same checks,
    same messages, same audit as in chat) and approving then publishes that version."""
    form = await request.post()
    op, draft_id = str(form.get("op", "")), str(form.get("draft", "")).strip()[:32]
    if op not in ("approve", "reject", "edit") or not draft_id.isalnum():
        return await queue_page(request, app, session, Outcome("Choose a draft to approve or reject.", 0))
    if op == "reject":
        return await queue_page(request, app, session, await run_command(app.services, session, op, draft_id))
    text = str(form.get("text", "")).replace("\r\n", "\n")
    svc = app.services
    edited: Outcome | None = None
    if "text" in form and text.strip() != await _draft_text(app, session, draft_id):
        edited = await run_command(svc, session, "edit", f"{draft_id} {text}")
        if not edited.drafts:  # refused: say why and keep the text in its editor
            return await queue_page(request, app, session, edited, {draft_id: text})
        draft_id = edited.drafts[0]
    if op == "edit":
        return await queue_page(request, app, session, edited or Outcome("Nothing changed.", 0))
    approved = await run_command(svc, session, "approve", draft_id)
    if edited is not None:
        approved = Outcome(f"{edited.text}\n\n{approved.text}", edited.enqueued + approved.enqueued)
    return await queue_page(request, app, session, approved)


async def _draft_text(app: WebApp, session: Session, draft_id: str) -> str | None:
    store = DraftStore(app.services.redis, ttl_s=app.services.settings.draft_ttl_s)
    draft = await store.get(session.community_key, draft_id)
    return draft.text if draft is not None else None


def add_routes(app: web.Application) -> None:
    app.router.add_get(BASE, _guarded(overview))
    app.router.add_post(BASE + "/feed", _guarded(feed_settings))
    app.router.add_post(BASE + "/subscriptions", _guarded(subscription_cancel))
    app.router.add_get(BASE + "/prompts/{slot}", _guarded(prompt_page))
    app.router.add_post(BASE + "/prompts/{slot}", _guarded(prompt_change))
    app.router.add_post(BASE + "/prompts/{slot}/check", _guarded(prompt_check))
    app.router.add_get(BASE + "/queue", _guarded(queue_page))
    app.router.add_post(BASE + "/queue", _guarded(queue_change))
