"""What real discord.py objects (from the fake gateway) become as core Events."""

from __future__ import annotations

from core.contract import Event, EventKind, Reply
from core.services import Services
from tests.bots.discord.harness import (
    BOT_ID,
    CHANNEL_ID,
    GUILD_ID,
    OTHER_CHANNEL_ID,
    People,
    Running,
    running,
    shown,
)
from tests.fakes.discord_api import ADMINISTRATOR, MANAGE_GUILD, SEND_MESSAGES, FakeDiscord
from tests.support import feed_of

PNG = b"\x89PNG\r\n\x1a\nfake"


async def _opt_in(services: Services, channel: int = CHANNEL_ID) -> None:
    await feed_of(services).add_channel(f"discord:{GUILD_ID}", str(channel))


async def _published(run: Running, count: int) -> list[Event]:
    await run.wait_for(lambda: len(run.published) >= count, f"{count} events")
    return run.published


async def test_mentions_are_stripped_and_other_mentions_read_as_names(
    dc: FakeDiscord, services: Services, people: People
) -> None:
    async with running(dc, services, pipeline=False) as run:
        await dc.message_create(
            CHANNEL_ID, people.alice, f"<@{BOT_ID}>  write about <@{people.bob}> in <#{OTHER_CHANNEL_ID}>"
        )
        await dc.message_create(CHANNEL_ID, people.alice, f"hey <@!{BOT_ID}>, <@&{people.helper_role}> rocks")
        first, second = await _published(run, 2)
    assert first.kind is EventKind.MENTION and first.text == "write about @Bob in #news"
    assert second.kind is EventKind.MENTION and second.text == "hey , @Helpers rocks"
    assert first.message_id and first.author.id == str(people.alice) and first.author.name == "Alice"
    assert (first.platform, first.community, first.channel, first.thread) == (
        "discord",
        str(GUILD_ID),
        str(CHANNEL_ID),
        None,
    )


async def test_a_mention_of_the_bots_managed_role_counts(dc: FakeDiscord, services: Services) -> None:
    guild = dc.add_guild(name="Other", bot_permissions=SEND_MESSAGES)
    channel = dc.add_channel(guild, "lobby")
    dave = dc.add_member(guild, username="dave")
    bot_role = next(int(r["id"]) for r in dc.guilds[guild].roles.values() if r.get("managed"))
    async with running(dc, services, pipeline=False) as run:
        await dc.message_create(channel, dave, f"<@&{bot_role}> hello")
        [event] = await _published(run, 1)
    assert event.kind is EventKind.MENTION and event.text == "hello" and event.community == str(guild)


async def test_replies_to_the_bot_are_mentions_and_other_replies_feed_messages(
    dc: FakeDiscord, services: Services, people: People
) -> None:
    await _opt_in(services)
    async with running(dc, services, pipeline=False) as run:
        where = {"platform": "discord", "community": str(GUILD_ID), "channel": str(CHANNEL_ID)}
        await run.platform.deliver(Reply(**where, text="A *draft* for <you>"), services.bus.get_blob)
        bot_message = dc.messages[0]
        theirs = await dc.message_create(CHANNEL_ID, people.bob, "an ordinary message")
        await dc.message_create(
            CHANNEL_ID, people.alice, "can you shorten it", message_reference=bot_message.id
        )
        await dc.message_create(CHANNEL_ID, people.alice, "agreed", message_reference=int(theirs["id"]))
        events = await _published(run, 3)
    ordinary, to_bot, to_bob = events
    assert ordinary.kind is EventKind.MESSAGE and ordinary.text == "an ordinary message"
    assert to_bot.kind is EventKind.MENTION and to_bot.reply_to is not None and to_bot.reply_to.from_bot
    assert to_bot.reply_to.message_id == str(bot_message.id)
    assert to_bot.reply_to.text == "A *draft* for <you>" == shown(bot_message)  # escapes read back
    assert to_bob.kind is EventKind.MESSAGE and to_bob.reply_to is not None
    assert not to_bob.reply_to.from_bot and to_bob.reply_to.text == "an ordinary message"


async def test_moderators_by_permission_or_configured_role_never_by_channel_overwrite(
    dc: FakeDiscord, services: Services, people: People
) -> None:
    admin = dc.add_member(GUILD_ID, username="admin", permissions=ADMINISTRATOR)
    by_id_role = dc.add_role(GUILD_ID, "Stewards")
    steward = dc.add_member(GUILD_ID, username="steward", roles=[by_id_role])
    sneaky = dc.add_member(GUILD_ID, username="sneaky")
    overwrite = {"id": sneaky, "type": 1, "allow": MANAGE_GUILD}
    sneaky_channel = dc.add_channel(GUILD_ID, "sneaky", overwrites=[overwrite])
    who = {
        people.alice: False,
        people.mod: True,
        people.helper: True,  # role "Helpers", configured by name
        steward: True,  # configured by id
        admin: True,
        dc.owner_id: True,
    }
    roles = f"helpers,{by_id_role}"
    async with running(dc, services, pipeline=False, DISCORD_MODERATOR_ROLES=roles) as run:
        for user in who:
            await dc.message_create(CHANNEL_ID, user, f"<@{BOT_ID}> hi")
        await dc.slash_command(GUILD_ID, sneaky_channel, sneaky, "help")  # channel-level Manage Server
        await dc.slash_command(GUILD_ID, CHANNEL_ID, people.mod, "help")
        events = await _published(run, len(who) + 2)
    by_author = {int(e.author.id): e.author.is_moderator for e in events if e.kind is EventKind.MENTION}
    assert by_author == who
    commands = {int(e.author.id): e.author.is_moderator for e in events if e.kind is EventKind.COMMAND}
    assert commands == {sneaky: False, people.mod: True}


async def test_threads_belong_to_their_channel_and_answers_stay_in_the_thread(
    dc: FakeDiscord, services: Services, people: People
) -> None:
    thread = dc.add_thread(GUILD_ID, CHANNEL_ID, "launch-planning")
    async with running(dc, services) as run:
        await dc.message_create(thread, people.alice, f"<@{BOT_ID}> help")
        await run.wait_for(lambda: dc.messages, "the answer")
    [event] = run.published
    assert (event.channel, event.thread) == (str(CHANNEL_ID), str(thread))
    assert dc.messages[0].channel_id == thread


async def test_attachments_bots_and_empty_messages(
    dc: FakeDiscord, services: Services, people: People
) -> None:
    await _opt_in(services)
    other_bot = dc.add_user(username="otherbot", bot=True)
    dc.add_member(GUILD_ID, other_bot)
    async with running(dc, services, pipeline=False) as run:
        await dc.message_create(CHANNEL_ID, other_bot, f"<@{BOT_ID}> bots do not talk to bots")
        await dc.message_create(CHANNEL_ID, people.alice, "", attachments=[("chart.png", PNG, "a chart")])
        await dc.message_create(CHANNEL_ID, people.alice, f"<@{BOT_ID}> done")
        events = await _published(run, 2)
    pictured, done = events
    assert pictured.kind is EventKind.MESSAGE and pictured.text == ""
    [attachment] = pictured.attachments
    assert (attachment.kind, attachment.name, attachment.mime, attachment.size) == (
        "image",
        "chart.png",
        "image/png",
        len(PNG),
    )
    assert attachment.url.startswith(dc.base_url)
    assert done.text == "done" and len(run.published) == 2


async def test_messages_outside_opted_in_channels_are_not_published(
    dc: FakeDiscord, services: Services, people: People
) -> None:
    await _opt_in(services, OTHER_CHANNEL_ID)
    async with running(dc, services, pipeline=False) as run:
        await dc.message_create(CHANNEL_ID, people.alice, "not in the feed")
        sent = await dc.message_create(OTHER_CHANNEL_ID, people.alice, "in the feed")
        await dc.reaction_add(CHANNEL_ID, int(sent["id"]), people.bob)  # (a reaction in the other channel)
        await dc.reaction_add(OTHER_CHANNEL_ID, int(sent["id"]), people.bob)
        await dc.message_delete(CHANNEL_ID, 12345)  # deletions always follow: items outlive opt-in
        events = await _published(run, 3)
    assert [(e.kind, e.channel) for e in events] == [
        (EventKind.MESSAGE, str(OTHER_CHANNEL_ID)),
        (EventKind.REACTION, str(OTHER_CHANNEL_ID)),
        (EventKind.DELETED, str(CHANNEL_ID)),
    ]
