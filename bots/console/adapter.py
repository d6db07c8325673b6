"""A terminal chat with the assistant, in a local community, through the same bus as the platforms.

Type a message; ``@chorus ...`` mentions the bot, ``/command`` runs a command, ``#N text`` replies to the
bot's message N and ``^ text`` to its last one. Images are saved as files and their path printed. With
stdin piped, each line waits for its answer before the next is read, so sessions can be scripted.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from bots.console.config import FACTS, ConsoleSettings
from core.contract import (
    Action,
    Author,
    DirectMessage,
    Edit,
    Event,
    EventKind,
    LiveUpdate,
    OfferChoices,
    Post,
    Receipt,
    ReplyContext,
    SendImage,
)
from core.platform import BlobReader, EventSink, Platform
from core.services import Services
from core.text import clean

BOT_NAME = "chorus"
_MENTION = re.compile(rf"@{BOT_NAME}\b", re.IGNORECASE)
_REPLY = re.compile(r"^\s*(?:#(\d+)|\^)\s+(.*)$", re.DOTALL)
_COMMAND = re.compile(r"^\s*/([A-Za-z][\w-]*)\s*(.*)$", re.DOTALL)


class ConsolePlatform(Platform):
    name = "console"
    capabilities = FACTS.capabilities

    def __init__(
        self,
        settings: ConsoleSettings,
        services: Services,
        *,
        moderator: bool = False,
        shutdown: Callable[[], None] | None = None,
        stdin: TextIO | None = None,
        stdout: TextIO | None = None,
    ) -> None:
        self.settings = settings
        self.services = services
        self.moderator = moderator
        self.shutdown = shutdown or (lambda: None)
        self.stdin = stdin or sys.stdin
        self.stdout = stdout or sys.stdout
        self.interactive = self.stdin.isatty()
        # a person at the terminal watches drafts being written; a piped script gets a clean transcript
        self.capabilities = self.capabilities.model_copy(update={"live_drafts": self.interactive})
        self.images = services.settings.data_dir / "console" / "images"
        self.session = f"{int(time.time() * 1000):x}"
        self._count = 0
        self._shown: dict[int, tuple[str, str]] = {}  # number -> (message id, text)
        self._reader: asyncio.Task[None] | None = None
        self._live: dict[str, str] = {}  # event id -> text printed so far while it is written

    async def start(self, publish: EventSink) -> None:
        self._reader = asyncio.create_task(self._read(publish), name="console-reader")

    def connected(self) -> bool:
        return self._reader is not None and not self._reader.done()

    async def stop(self) -> None:
        if self._reader is not None and not self._reader.done():
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader

    async def _read(self, publish: EventSink) -> None:
        loop = asyncio.get_running_loop()
        if self.interactive:
            self._print(
                f"Chorus console — community '{self.settings.community}'. Try: @{BOT_NAME} write a "
                "post about our launch · /help · Ctrl-D to quit"
            )
        try:
            while True:
                line = await loop.run_in_executor(None, self.stdin.readline)
                if not line:
                    break
                event = self.to_event(line.rstrip("\n"))
                if event is None:
                    continue
                stream_id = await publish(event)
                if stream_id is not None and not self.interactive:
                    await self._settle(event.id)
        finally:
            self.shutdown()

    async def _settle(self, event_id: str) -> None:
        deadline = time.monotonic() + self.settings.settle_timeout_s
        while time.monotonic() < deadline:
            if await self.services.bus.settled(event_id):
                return
            await asyncio.sleep(0.01)
        self._print("(no answer in time; it will be delivered when ready)")

    def to_event(self, line: str) -> Event | None:
        """Normalise one typed line (the console's 'SDK object')."""
        if not line.strip():
            return None
        self._count += 1
        common: dict[str, Any] = {
            "platform": self.name,
            "community": self.settings.community,
            "channel": "console",
            "message_id": f"{self.session}-{self._count}",
            "author": Author(id=self.settings.user, name=self.settings.user, is_moderator=self.moderator),
        }
        reply = _REPLY.match(line)
        if reply:
            number = int(reply.group(1)) if reply.group(1) else max(self._shown, default=0)
            shown = self._shown.get(number)
            if shown is None:
                self._print(f"(there is no message #{number} to reply to)")
                return None
            context = ReplyContext(message_id=shown[0], author_id=BOT_NAME, text=shown[1], from_bot=True)
            return Event(kind=EventKind.MENTION, text=reply.group(2).strip(), reply_to=context, **common)
        command = _COMMAND.match(line)
        if command:
            return Event(
                kind=EventKind.COMMAND,
                command=command.group(1).lower(),
                args=command.group(2),
                text=line,
                **common,
            )
        if _MENTION.search(line):
            return Event(kind=EventKind.MENTION, text=_MENTION.sub("", line).strip(), **common)
        return Event(kind=EventKind.MESSAGE, text=line, **common)

    async def show_live(self, update: LiveUpdate) -> bool:
        """Print the draft as it comes: the new words on the same line, a fresh line if it changed."""
        before = self._live.get(update.event_id, "")
        text = update.text.removesuffix(" …")
        if update.withdrawn:
            out = "\n(withdrawn)" if before else ""
        elif before and text.startswith(before):
            out = text[len(before) :]
        else:
            out = ("\n" if before else "") + f"{BOT_NAME} (writing)> {text}"
        self._live[update.event_id] = "" if update.withdrawn else text
        if out:
            self._write(out)
        return True

    async def deliver(self, action: Action, blobs: BlobReader) -> Receipt:
        if action.event_id and self._live.pop(action.event_id, ""):
            self._write("\n")  # end the line the draft was printed on
        number = len(self._shown) + 1
        message_id = f"bot-{self.session}-{number}"
        match action:
            case SendImage():
                self.images.mkdir(parents=True, exist_ok=True)
                path = self.images / f"{action.id}.png"
                path.write_bytes(await blobs(action.blob))
                text = f"[image saved: {path}]\n  alt: {action.alt_text}"
                if action.caption:
                    text += f"\n  {action.caption}"
            case Edit():
                text = f"(edited) {action.text}"
            case DirectMessage():
                text = f"(direct message) {action.text}"
            case Post():
                text = f"(posted to #{action.channel}) {action.text}"
            case OfferChoices():  # not reached: the console has no buttons, degrade() made it text
                text = action.text
            case _:
                text = action.text
        text = clean(text)  # model and member text must not carry escape sequences to the terminal
        self._shown[number] = (message_id, text)
        self._print(f"[#{number}] {BOT_NAME}> {text}")
        return Receipt(message_ids=(message_id,))

    def _print(self, text: str) -> None:
        self._write(text + "\n")

    def _write(self, text: str) -> None:
        try:
            self.stdout.write(text)
            self.stdout.flush()
        except (BrokenPipeError, ValueError):  # the reader went away: stop instead of retrying forever
            self.shutdown()


def create(settings: ConsoleSettings, services: Services, options: dict[str, Any]) -> ConsolePlatform:
    return ConsolePlatform(
        settings,
        services,
        moderator=bool(options.get("moderator")),
        shutdown=options.get("shutdown"),
    )


__all__ = ["ConsolePlatform", "create"]
