"""The one contract between adapters and the core: inbound Events, outbound Actions.

Adapters normalise SDK objects into an ``Event`` and turn ``Action`` objects back into SDK calls; the core
never sees an SDK object. Both are pydantic models so they cross the Redis streams as validated JSON.
Text in Events and Actions is always plain text: adapters escape it for their markup.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter


def new_id() -> str:
    """Short random ids for Events, Actions and drafts (hex, 16 chars)."""
    return uuid.uuid4().hex[:16]


def conversation_key(platform: str, community: str, channel: str, thread: str | None) -> str:
    """The key of a conversation (Events' and Actions' addressing fields name one alike)."""
    return f"{platform}:{community}:{channel}:{thread or '-'}"


class EventKind(StrEnum):
    MENTION = "mention"  # the bot was mentioned (or replied to, or DM'd)
    COMMAND = "command"  # /command or slash command; ``command`` and ``args`` are set
    MESSAGE = "message"  # a message seen in a channel (feed ingest, if the channel is opted in)
    CHOICE = "choice"  # a button / inline keyboard / numbered choice was pressed; ``choice`` is set
    REACTION = "reaction"  # a reaction was added (``reaction`` set) or removed (``reaction_delta`` = -1)
    EDITED = "edited"  # a message was edited at the source
    DELETED = "deleted"  # a message was deleted at the source

    @property
    def observed(self) -> bool:
        """Seen in a channel rather than asked of the bot: the feed applies these in stream order."""
        return self in (EventKind.MESSAGE, EventKind.EDITED, EventKind.DELETED, EventKind.REACTION)


class Author(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    name: str = ""
    is_bot: bool = False
    is_moderator: bool = False  # filled by the adapter from the platform's own roles


class Attachment(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: Literal["image", "file", "video", "audio"] = "file"
    url: str = ""  # platform URL or file id the adapter can resolve
    mime: str = ""
    name: str = ""
    size: int = 0


class ReplyContext(BaseModel):
    """The message this Event answers to; ``chain`` holds older ancestors' text, oldest first."""

    model_config = ConfigDict(frozen=True)

    message_id: str
    author_id: str = ""
    text: str = ""
    from_bot: bool = False
    chain: tuple[str, ...] = ()


class Event(BaseModel):
    """A normalised inbound event. ``community`` is the platform's id of the server/group/account."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(default_factory=new_id)
    kind: EventKind
    platform: str
    community: str
    channel: str
    thread: str | None = None  # topic / thread id, answers go to the same thread
    message_id: str | None = None  # platform message id: a repeated id is handled once
    author: Author
    text: str = ""
    command: str | None = None
    args: str = ""
    choice: str | None = None  # payload of the pressed button
    reaction: str | None = None
    reaction_delta: int = 1
    reply_to: ReplyContext | None = None
    attachments: tuple[Attachment, ...] = ()
    private: bool = False  # a DM / private chat
    created_at: float = Field(default_factory=time.time)

    @property
    def community_key(self) -> str:
        """Communities are scoped per platform: ``telegram:-100123``."""
        return f"{self.platform}:{self.community}"

    @property
    def conversation_key(self) -> str:
        """Where a conversation lives: community, channel and thread."""
        return conversation_key(self.platform, self.community, self.channel, self.thread)


class Choice(BaseModel):
    model_config = ConfigDict(frozen=True)

    label: str
    payload: str  # opaque to adapters; validated by the core when pressed


class _ActionBase(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str = Field(default_factory=new_id)
    platform: str
    community: str
    channel: str
    thread: str | None = None
    event_id: str | None = None  # the Event this answers, if any
    ref: str | None = None  # core's handle on what is delivered (e.g. a draft id), kept with the receipt
    # Blob id of fields shared by many Actions (a digest going to 100,000 subscribers is stored once, not
    # copied into each one's outbox entry); the sender fills them in before anything else sees the Action.
    shared: str | None = None

    @property
    def community_key(self) -> str:
        """The community the Action goes to, keyed like ``Event.community_key`` (it picks the bus partition)."""
        return f"{self.platform}:{self.community}"


class Reply(_ActionBase):
    type: Literal["reply"] = "reply"
    text: str
    reply_to: str | None = None  # platform message id to answer


class Post(_ActionBase):
    """Publish to a channel (not as an answer): shares, digests, approved posts."""

    type: Literal["post"] = "post"
    text: str
    parts: tuple[str, ...] = ()  # a thread: posted as a chain where the platform has threads


class SendImage(_ActionBase):
    type: Literal["image"] = "image"
    blob: str  # key of the image bytes in the blob store
    alt_text: str = ""
    caption: str = ""
    reply_to: str | None = None


class Edit(_ActionBase):
    """Change a message we delivered earlier (identified by the Action id that delivered it)."""

    type: Literal["edit"] = "edit"
    target_action: str
    text: str


class DirectMessage(_ActionBase):
    type: Literal["dm"] = "dm"
    user: str
    text: str


class OfferChoices(_ActionBase):
    type: Literal["choices"] = "choices"
    text: str
    choices: tuple[Choice, ...]
    reply_to: str | None = None
    allowed_user: str | None = None  # who may press; None = anyone in the chat


Action = Annotated[
    Reply | Post | SendImage | Edit | DirectMessage | OfferChoices, Field(discriminator="type")
]
ACTION_ADAPTER: TypeAdapter[Action] = TypeAdapter(Action)


def dump_action(action: Action) -> str:
    return action.model_dump_json()


def load_action(data: str | bytes) -> Action:
    return ACTION_ADAPTER.validate_json(data)


def in_place(event: Event) -> dict[str, Any]:
    """Where an answer to ``event`` goes: its channel and thread, replying to its message (the fields of
    any Action that answers in place: a Reply, an image, choices)."""
    return {
        "platform": event.platform,
        "community": event.community,
        "channel": event.channel,
        "thread": event.thread,
        "event_id": event.id,
        "reply_to": event.message_id,
    }


def reply_to_event(event: Event, text: str, **extra: object) -> Reply:
    """The common case: answer an Event in place (same channel and thread, replying to its message)."""
    return Reply(**in_place(event), text=text, **extra)


@dataclass(frozen=True, slots=True)
class DraftRef:
    """The ``ref`` of Actions that deliver a draft: ``draft:<id>`` (its text) or ``draft:<id>:image``.
    Senders keep it with the receipt, so replies to a delivered message find their draft again."""

    draft_id: str
    image: bool = False

    def __str__(self) -> str:
        return f"draft:{self.draft_id}" + (":image" if self.image else "")

    @classmethod
    def parse(cls, ref: str | None) -> DraftRef | None:
        """Anything that is not a draft's ref (a digest's, None) -> None."""
        if not ref or not ref.startswith("draft:"):
            return None
        _, draft_id, *rest = ref.split(":")
        return cls(draft_id, rest == ["image"])


class Capabilities(BaseModel):
    """What a platform can do; the core degrades Actions to plain text where a capability is missing."""

    model_config = ConfigDict(frozen=True)

    max_text: int = 2000
    max_caption: int = 1024
    buttons: bool = False
    edits: bool = False
    threads: bool = False  # native reply chains for multi-part posts
    images: bool = True
    direct_messages: bool = True
    weighted_length: bool = False  # X counts URLs as 23 and wide characters as 2
    utf16_length: bool = False  # Telegram counts UTF-16 code units (an emoji is 2)
    # drafts shown while written (core/live.py): whether, and how often a shown draft may change
    live_drafts: bool = False
    live_interval_s: float = 1.0  # groups and channels (edits of a placeholder count against flood limits)
    live_private_interval_s: float = 1.0  # private chats


class Receipt(BaseModel):
    """What the platform returned for a delivered Action: the message ids it created, first one first."""

    message_ids: tuple[str, ...] = ()


class LiveUpdate(BaseModel):
    """The draft for one Event as written so far (``withdrawn``: take back what was shown)."""

    event_id: str
    platform: str
    community: str
    channel: str
    thread: str | None = None
    reply_to: str | None = None
    private: bool = False
    text: str = ""
    withdrawn: bool = False
    seq: int = 0

    @property
    def placeholder_id(self) -> str:
        """The Action id the placeholder message is recorded under (``Bus.receipt`` finds it)."""
        return placeholder_id(self.event_id)


def placeholder_id(event_id: str) -> str:
    return f"{event_id}.live"
