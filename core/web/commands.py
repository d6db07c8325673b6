"""``/dashboard``: a one-time sign-in link, sent privately; ``/dashboard signout`` ends the person's sessions.

The link is bound to the platform, community, user and moderator role the adapter saw on this Event; it is
delivered as a DirectMessage (the console prints it), never in the channel.
"""

from __future__ import annotations

from core.commands import Command, Option
from core.contract import Action, DirectMessage, Event, reply_to_event
from core.errors import InvalidInput, QuotaExceeded
from core.features import Feature
from core.services import Services
from core.web.auth import LINK_TTL_S, Auth, Identity, allow

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
    url = svc.public_url.get()()
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


COMMANDS = (
    Command(
        "dashboard",
        "a sign-in link for the web app (sent privately)",
        "dashboard [signout]",
        _dashboard,
        options=(Option("action", "signout ends your web sessions", choices=("signout",)),),
        group="web",
    ),
)


async def install(svc: Services) -> None:
    for command in COMMANDS:
        svc.commands.register(command)


FEATURE = Feature("web", install)
