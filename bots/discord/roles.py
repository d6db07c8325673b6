"""Is someone still a moderator of a Discord server? The member, fetched over REST (the web app re-checks
sessions).

Chorus runs without the privileged members intent, so the gateway does not tell it about role changes of
members: the member is fetched (``GET /guilds/{id}/members/{user}``), the server and its role table come
from the gateway cache (or ``GET /guilds/{id}``), and the same rule as for chat decides (Manage Server,
which owners and administrators have, or a configured moderator role). A member who left, a server the bot
left, or a DM community is a "no"; Discord not answering is "cannot tell" (None).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

import aiohttp

from bots.discord.normalize import is_moderator
from bots.discord.sdk import discord

log = logging.getLogger(__name__)


class DiscordRoles:
    """The ``RoleCheck`` the Discord adapter provides in ``Services.roles``."""

    def __init__(self, client: Callable[[], discord.Client | None], moderator_roles: Iterable[str]) -> None:
        self.client = client  # the adapter's current client (it reconnects with another one at times)
        self.moderator_roles = tuple(moderator_roles)

    async def __call__(self, community: str, user: str) -> bool | None:
        if not (community.isdigit() and user.isdigit()):  # a DM (dm-<user>): nobody moderates it
            return False
        client = self.client()
        if client is None or client.is_closed():
            return None
        try:
            guild = client.get_guild(int(community)) or await client.fetch_guild(int(community))
            member = await guild.fetch_member(int(user))
        except (discord.NotFound, discord.Forbidden) as exc:  # left the server, or the bot did
            log.info("discord: server %s does not confirm a moderator: %s", community, exc.text)
            return False
        except (discord.DiscordException, aiohttp.ClientError, OSError) as exc:
            log.warning("discord: could not re-check a moderator of server %s: %r", community, exc)
            return None
        return is_moderator(member, self.moderator_roles)
