"""``/dashboard``: a one-time sign-in link, sent privately; ``/dashboard signout`` ends the person's sessions.
``/reject <draft>`` (moderators) turns down a share waiting for approval, the counterpart of ``/approve``.

The link is bound to the platform, community, user and moderator role the adapter saw on this Event; it is
delivered as a DirectMessage (the console prints it), never in the channel.
"""

from __future__ import annotations

from core.assistant.drafts import shown_id
from core.commands import Command, Option
from core.contract import Action, DirectMessage, Event, reply_to_event
from core.errors import InvalidInput, PermissionDenied, QuotaExceeded
from core.services import Services
from core.web.auth import LINK_TTL_S, Auth, Identity, allow
from core.web.features import assistant_of, base_url

LINKS_PER_WINDOW = 5
LINK_WINDOW_S = 600


async def _dashboard(event: Event, svc: Services) -> list[Action]:
    auth = Auth(svc.redis)
    arg = event.args.strip().lower()
    if arg in ("signout", "sign-out", "logout"):
        ended = await auth.end_all(event.community_key, event.author.id)
        return [reply_to_event(event, f"Signed out: {ended} web session{'s' if ended != 1 else ''} ended.")]
    if arg:
        raise InvalidInput("Use /dashboard for a sign-in link, or /dashboard signout.")
    url = base_url(svc)
    if not await allow(svc.redis, "link", event.author.id, LINKS_PER_WINDOW, LINK_WINDOW_S):
        raise QuotaExceeded(
            "You asked for several sign-in links just now; use the last one or wait a few minutes."
        )
    who = Identity(
        platform=event.platform,
        community=event.community,
        user=event.author.id,
        name=event.author.name,
        moderator=event.author.is_moderator,
    )
    token = await auth.issue_link(who)
    role = "moderator" if who.moderator else "member"
    text = (
        f"Your sign-in link for the Chorus web app ({role} of this community). It works once, for "
        f"{LINK_TTL_S // 60} minutes; don't share it: {url}/signin?t={token}"
    )
    return privately(event, text, "I sent you a sign-in link in a private message.")


def privately(event: Event, text: str, notice: str) -> list[Action]:
    """Send ``text`` to the author alone (links that are keys); in a channel, say so there."""
    dm = DirectMessage(
        platform=event.platform,
        community=event.community,
        channel=event.channel,
        event_id=event.id,
        user=event.author.id,
        text=text,
    )
    return [dm] if event.private else [dm, reply_to_event(event, notice)]


async def _reject(event: Event, svc: Services) -> list[Action]:
    """Drop the shares of a draft that wait for approval (the draft itself stays for its author)."""
    if not event.author.is_moderator:
        raise PermissionDenied("Only moderators of this community can reject drafts.")
    draft_id = event.args.strip().split(" ")[0]
    assistant = assistant_of(svc)
    if not draft_id or assistant is None:
        raise InvalidInput("Use /reject <draft id>.")
    draft = await assistant.store.get(event.community_key, draft_id)
    targets = await assistant.store.take_pending(event.community_key, draft.id) if draft else []
    if draft is None or not targets:
        return [reply_to_event(event, f"Draft {shown_id(draft_id)} has nothing waiting for approval here.")]
    where = ", ".join(t.label for t in targets)
    return [reply_to_event(event, f"Draft {draft.id} will not be published to {where}.")]


COMMANDS = (
    Command(
        "dashboard",
        "a sign-in link for the web app (sent privately)",
        "dashboard [signout]",
        _dashboard,
        options=(Option("action", "signout ends your web sessions", choices=("signout",)),),
        group="web",
    ),
    Command(
        "reject",
        "turn down a draft waiting for approval",
        "reject <draft>",
        _reject,
        moderator_only=True,
        options=(Option("draft", "the draft id", True),),
        group="assistant",
    ),
)


def install(svc: Services) -> None:
    for command in COMMANDS:
        svc.commands.register(command)
