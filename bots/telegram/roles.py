"""Is someone still a moderator of a Telegram chat? One getChatMember call (the web app re-checks sessions).

Administrators and the creator moderate a group; in a private chat the user moderates their own chat, and a
message sent "as the group" (an anonymous admin) came from the chat itself, so its id is the community's.
Telegram saying the user is unknown or the chat is gone is a "no"; a network failure or flood control is
"cannot tell" (None), which the web app treats as no moderator rights for now without caching it.
"""

from __future__ import annotations

import logging

from telegram import Bot, ChatMember
from telegram.error import BadRequest, Forbidden, TelegramError

from bots.telegram.moderators import Moderators

log = logging.getLogger(__name__)

MODERATING = frozenset({ChatMember.ADMINISTRATOR, ChatMember.OWNER})


class TelegramRoles:
    """The ``RoleCheck`` the Telegram adapter provides in ``Services.roles``."""

    def __init__(self, bot: Bot, moderators: Moderators) -> None:
        self.bot = bot
        self.moderators = moderators

    async def __call__(self, community: str, user: str) -> bool | None:
        if community == user:  # a private chat, or an admin who wrote as the group
            return True
        if not (community.lstrip("-").isdigit() and user.isdigit()):
            return False
        try:
            member = await self.bot.get_chat_member(int(community), int(user))
        except (BadRequest, Forbidden) as exc:  # user unknown, chat gone, bot removed: not a moderator
            log.info("telegram: chat %s does not confirm a moderator: %s", community, exc.message)
            return False
        except TelegramError as exc:
            log.warning("telegram: could not re-check a moderator of chat %s: %s", community, exc)
            return None
        if member.status in MODERATING:
            return True
        await self.moderators.forget(int(community))  # the chat commands see the demotion at once too
        return False
