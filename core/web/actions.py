"""The one write path of the web app: a page's form becomes the chat command it stands for.

The Event carries the signed-in person (moderator flag from the session's re-checked role) and the
session's platform and community, and runs through the same ``Router`` as a typed command, so the same
authorisation, validation, messages and audit apply. Answers in place are shown on the page; anything else
the command produced (an approved post, a private message) goes to the platform outboxes like any other
Action; what was addressed to the page itself and cannot be shown there (a draft's image) is not sent on.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.contract import Action, Author, DirectMessage, DraftRef, Event, EventKind, OfferChoices, Reply
from core.router import Router
from core.services import Services
from core.web.auth import Session

WEB_CHANNEL = "chorus-web"


@dataclass(frozen=True, slots=True)
class Outcome:
    text: str  # what the command answered, as in chat
    enqueued: int  # Actions sent on to the platforms
    drafts: tuple[str, ...] = ()  # the drafts the answer shows (a new version after an edit)


def command_event(session: Session, command: str, args: str) -> Event:
    return Event(
        kind=EventKind.COMMAND,
        platform=session.platform,
        community=session.community,
        channel=WEB_CHANNEL,
        author=Author(id=session.user, name=session.name, is_moderator=session.moderator),
        text=f"/{command} {args}".strip(),
        command=command,
        args=args,
    )


async def run_command(svc: Services, session: Session, command: str, args: str = "") -> Outcome:
    event = command_event(session, command, args)
    actions = await Router(svc).route(event)
    here = [a for a in actions if _to_page(a, event)]
    shown = [a for a in here if isinstance(a, Reply | OfferChoices)]
    onward = [a for a in actions if a not in here]
    if onward:
        await svc.bus.enqueue(onward)
    drafts = tuple(ref.draft_id for a in shown if (ref := DraftRef.parse(a.ref)) and not ref.image)
    return Outcome("\n\n".join(a.text for a in shown), len(onward), drafts)


def _to_page(action: Action, event: Event) -> bool:
    """Answers in place: the page shows their text; no platform has the page's channel to deliver them in."""
    return (
        action.channel == WEB_CHANNEL
        and action.event_id == event.id
        and not isinstance(action, DirectMessage)
    )
