"""Telegram's send limits, kept per chat: ~30 messages/s overall and ~20/min in each group.

PTB's AIORateLimiter keeps the same limits, but when Telegram answers 429 (flood control) it pauses every
request of the bot while it waits, so one busy chat stalls all the others. Here a 429 goes straight back to
the caller: the core Sender waits it out on that chat's lane only, and the long poll waits on its own.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Coroutine
from typing import Any

from aiolimiter import AsyncLimiter
from telegram._utils.types import JSONDict
from telegram.ext import BaseRateLimiter

Result = bool | JSONDict | list[JSONDict]
_PRUNE_AT = 512


class ChatPacer(BaseRateLimiter[int]):
    def __init__(self, overall_per_s: float, group_per_min: float) -> None:
        self._overall = AsyncLimiter(overall_per_s, 1) if overall_per_s else None
        self._group_per_min = group_per_min
        self._groups: dict[int | str, AsyncLimiter] = {}

    async def initialize(self) -> None:
        """Nothing to set up: limiters are made on first use."""

    async def shutdown(self) -> None:
        self._groups.clear()

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, Result]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> Result:
        chat_id = data.get("chat_id")
        if chat_id is None:  # getUpdates, getMe, setMyCommands: not counted by Telegram's send limits
            return await callback(*args, **kwargs)
        async with contextlib.AsyncExitStack() as limits:
            # "typing…" is not a message: it must not eat a group's 20 messages a minute
            group = None if endpoint.lower() == "sendchataction" else self._group(chat_id)
            if group is not None:
                await limits.enter_async_context(group)
            if self._overall is not None:
                await limits.enter_async_context(self._overall)
            return await callback(*args, **kwargs)

    def _group(self, chat_id: object) -> AsyncLimiter | None:
        """Groups and channels (negative ids, or @usernames) have their own per-minute budget."""
        with contextlib.suppress(ValueError, TypeError):
            chat_id = int(chat_id)  # type: ignore[call-overload]
        is_group = (isinstance(chat_id, int) and chat_id < 0) or isinstance(chat_id, str)
        if not is_group or not self._group_per_min:
            return None
        key: int | str = chat_id  # type: ignore[assignment]
        if len(self._groups) > _PRUNE_AT:  # forget groups whose budget is whole again
            for other, limiter in list(self._groups.items()):
                if other != key and limiter.has_capacity(limiter.max_rate):
                    del self._groups[other]
        if key not in self._groups:
            self._groups[key] = AsyncLimiter(self._group_per_min, 60)
        return self._groups[key]
