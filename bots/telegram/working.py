"""Chat actions ("typing…", "sending photo…") while the worker answers a request.

Telegram shows a chat action for about five seconds, so it is repeated every ``interval_s`` until the
Event is settled (processed and everything it produced delivered) or ``max_s`` passed. Quick answers
(help, quota) settle within ``delay_s`` and never show one. /image requests show "sending photo";
once part of an answer was delivered and more is still coming (the image), the action switches to it.
Right after part of an answer was delivered none is sent (the rest follows at once, and an action
sent now would outlive it). Chat actions are a courtesy: their failures (flood control too) are ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from telegram import Bot
from telegram.constants import ChatAction
from telegram.error import TelegramError

from bots.telegram.markup import chat_id
from core.contract import Action, Event, EventKind, SendImage

log = logging.getLogger(__name__)

Settled = Callable[[str], Awaitable[bool]]
MAX_TRACKED = 500


class Working:
    def __init__(
        self, bot: Bot, settled: Settled, *, interval_s: float, max_s: float, delay_s: float = 1.0
    ) -> None:
        self.bot = bot
        self.settled = settled
        self.interval_s = interval_s
        self.max_s = max_s
        self.delay_s = delay_s
        self._actions: dict[str, str] = {}  # event id -> current chat action
        self._delivered: dict[str, float] = {}  # event id -> when part of its answer was last delivered
        self._tasks: set[asyncio.Task[None]] = set()

    def begin(self, event: Event) -> None:
        if self.max_s <= 0 or len(self._tasks) >= MAX_TRACKED:
            return
        if event.kind not in (EventKind.MENTION, EventKind.COMMAND, EventKind.CHOICE):
            return
        image = event.command == "image" or (event.choice or "").startswith("image:")
        self._actions[event.id] = ChatAction.UPLOAD_PHOTO if image else ChatAction.TYPING
        task = asyncio.create_task(self._run(event), name=f"telegram-working-{event.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def delivered(self, action: Action) -> None:
        """Part of the answer arrived (Telegram clears the action): what may be left is the image."""
        if action.event_id not in self._actions:
            return
        self._delivered[action.event_id] = asyncio.get_running_loop().time()
        if not isinstance(action, SendImage):
            self._actions[action.event_id] = ChatAction.UPLOAD_PHOTO

    async def _run(self, event: Event) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_s
        wait = self.delay_s
        try:
            while True:
                await asyncio.sleep(wait)
                if loop.time() > deadline or await self.settled(event.id):
                    return
                if loop.time() - self._delivered.get(event.id, -1e9) < self.interval_s:
                    continue  # the rest of the answer is on its way; an action now would outlive it
                with contextlib.suppress(TelegramError):
                    await self.bot.send_chat_action(
                        chat_id(event.channel),
                        self._actions[event.id],
                        message_thread_id=int(event.thread) if event.thread else None,
                    )
                wait = self.interval_s
        except Exception:  # a courtesy: never let it take anything down
            log.debug("chat action loop for %s ended", event.id, exc_info=True)
        finally:
            self._actions.pop(event.id, None)
            self._delivered.pop(event.id, None)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
