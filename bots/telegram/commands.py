"""The core's CommandRegistry as Telegram bot commands (the list people see after typing "/").

Read at start-up, after features replaced their placeholders. Everyone sees the commands they may use;
chat administrators and private chats (where the user moderates their own chat) also see moderator
commands. Telegram allows ``[a-z0-9_]{1,32}`` names, so ``-`` becomes ``_`` and the map goes back.
"""

from __future__ import annotations

import re

from telegram import Bot, BotCommand, BotCommandScopeAllChatAdministrators, BotCommandScopeAllPrivateChats

from core.commands import CommandRegistry

_VALID = re.compile(r"[a-z0-9_]{1,32}")
MAX_COMMANDS = 100
MAX_DESCRIPTION = 256


def telegram_name(name: str) -> str | None:
    candidate = name.lower().replace("-", "_")
    return candidate if _VALID.fullmatch(candidate) else None


def command_map(registry: CommandRegistry) -> dict[str, str]:
    """Telegram command name -> core command name."""
    return {tg: cmd.name for cmd in registry if (tg := telegram_name(cmd.name))}


def command_lists(registry: CommandRegistry) -> tuple[list[BotCommand], list[BotCommand]]:
    """(what members see, what moderators see); help first, then the registry's order."""
    everyone: list[BotCommand] = []
    moderators: list[BotCommand] = []
    ordered = sorted(registry, key=lambda c: c.name != "help")
    for cmd in ordered:
        name = telegram_name(cmd.name)
        if name is None:
            continue
        summary = (cmd.summary or cmd.usage or cmd.name).strip()
        description = summary if len(summary) <= MAX_DESCRIPTION else summary[: MAX_DESCRIPTION - 1] + "…"
        entry = BotCommand(name, description)
        moderators.append(entry)
        if not cmd.moderator_only:
            everyone.append(entry)
    return everyone[:MAX_COMMANDS], moderators[:MAX_COMMANDS]


async def publish_commands(bot: Bot, registry: CommandRegistry) -> None:
    everyone, moderators = command_lists(registry)
    await bot.set_my_commands(everyone)
    await bot.set_my_commands(moderators, scope=BotCommandScopeAllChatAdministrators())
    await bot.set_my_commands(moderators, scope=BotCommandScopeAllPrivateChats())
