"""The Discord adapter end to end: real discord.py over real sockets to the loopback FakeDiscord, with the
core's Worker, Router and Sender running in-process on real Redis (as ``chorus run --platform discord``).
The assistant's model and images are the loopback fake OpenAI, called through the real openai client.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable

import pytest
import redis.asyncio as aioredis

from bots.discord.adapter import NOT_YOURS, DiscordPlatform, intents_for
from bots.discord.buttons import decode
from core.contract import EventKind, Reply
from core.feed.items import FeedItem, item_id
from core.services import Services
from core.settings import Settings
from tests.bots.contract import HOSTILE, Harness, PlatformContract
from tests.bots.discord.harness import (
    BOT_ID,
    CHANNEL_ID,
    GUILD_ID,
    OTHER_CHANNEL_ID,
    People,
    Running,
    custom_ids,
    discord_settings,
    openai_world,
    running,
    shown,
)
from tests.fakes.discord_api import (
    FLAG_EPHEMERAL,
    INTENT_MESSAGE_CONTENT,
    FakeDiscord,
    SentMessage,
)
from tests.fakes.openai_api import FakeOpenAI, chat
from tests.support import feed_of

POST = "Our launch is today! Come and see what we built for communities."
SHORTER = "Launch day: come and see."


class TestDiscordContract(PlatformContract):
    @pytest.fixture
    async def harness(self, dc: FakeDiscord, services: Services) -> AsyncIterator[Harness]:
        async with running(dc, services, pipeline=False) as run:

            async def seen() -> list[str]:
                return [shown(m) for m in dc.messages]

            target = {"platform": "discord", "community": str(GUILD_ID), "channel": str(CHANNEL_ID)}
            yield Harness(run.platform, seen, target)
        assert_cannot_mass_ping(dc.messages)


def assert_cannot_mass_ping(messages: list[SentMessage], asker: int | None = None) -> None:
    """Every message: allowed_mentions set, parsing nothing; nobody but the person answered notified."""
    assert messages
    for message in messages:
        assert message.allowed_mentions is not None, message
        assert message.allowed_mentions.get("parse") == [], message.allowed_mentions
        assert not message.allowed_mentions.get("users") and not message.allowed_mentions.get("roles")
        assert message.pinged_role_ids == [] and not message.mention_everyone
        assert set(message.pinged_user_ids) <= ({asker} if asker else set())


def buttons_of(run: Running) -> list[SentMessage]:
    return [m for m in run.dc.messages if m.components]


async def draft_for(run: Running, author: int, request: str) -> tuple[SentMessage, SentMessage, SentMessage]:
    """Mention the bot; returns the draft, its image and the buttons message."""
    before = len(run.dc.messages)
    await run.dc.message_create(CHANNEL_ID, author, f"<@{BOT_ID}> {request}")
    await run.wait_for(lambda: len(buttons_of(run)) and run.dc.messages[-1].components, "the draft's buttons")
    draft, image, choices = run.dc.messages[before:]
    return draft, image, choices


async def test_mention_gets_a_draft_with_image_and_buttons(
    dc: FakeDiscord, openai_services: tuple[FakeOpenAI, Services], people: People
) -> None:
    api, services = openai_services
    api.script("chat", chat(POST))
    async with running(dc, services) as run:
        mention = await dc.message_create(
            CHANNEL_ID, people.alice, f"<@{BOT_ID}> write a post about our launch"
        )
        await run.wait_for(lambda: buttons_of(run), "the draft's buttons")
        draft, image, choices = dc.messages
    [event] = run.published
    assert event.kind is EventKind.MENTION and event.text == "write a post about our launch"
    assert event.community == str(GUILD_ID) and not event.author.is_moderator
    # The draft: an embed answering the mention (text escaped, shown verbatim).
    assert draft.embeds and POST in shown(draft) and draft.message_reference is not None
    assert int(draft.message_reference["message_id"]) == int(mention["id"])
    # Its image: a PNG attachment with alt text.
    [picture] = image.attachments
    assert picture.data.startswith(b"\x89PNG") and picture.filename == "image.png"
    assert picture.description and len(picture.description) <= 1024
    # Buttons whose custom ids carry the payload and who may press them.
    presses = [decode(c) for c in custom_ids(choices)]
    assert [p.payload.split(":")[0] for p in presses if p] == ["post", "revise", "image"]
    assert {p.allowed_user for p in presses if p} == {str(people.alice)}
    assert_cannot_mass_ping(dc.messages, asker=people.alice)


async def test_buttons_check_who_presses_and_survive_a_restart(
    dc: FakeDiscord, openai_services: tuple[FakeOpenAI, Services], people: People
) -> None:
    api, services = openai_services
    api.script("chat", chat(POST))
    async with running(dc, services) as run:
        _, _, choices = await draft_for(run, people.alice, "write a post about our launch")
        new_image, post_here = (
            next(c for c in custom_ids(choices) if f"|{verb}:" in c) for verb in ("image", "post")
        )
        # A stranger's press is refused privately, at once, and reaches nobody else.
        published = len(run.published)
        await dc.press_button(choices.id, new_image, people.bob)
        await run.wait_for(lambda: dc.interaction_responses, "the refusal")
        refusal = dc.interaction_responses[-1]
        assert refusal.type == 4 and refusal.data["flags"] & FLAG_EPHEMERAL
        assert refusal.data["content"] == NOT_YOURS
        assert len(run.published) == published
        # The author's press: acknowledged silently, the new image arrives as a follow-up.
        count = len(dc.messages)
        await dc.press_button(choices.id, new_image, people.alice)
        await run.wait_for(lambda: len(buttons_of(run)) == 2, "the new image's buttons")
        assert dc.interaction_responses[-1].type == 6
        fresh_image, fresh_choices = dc.messages[count:]
        assert fresh_image.via == "followup" and fresh_image.attachments and fresh_choices.components
        assert run.published[-1].kind is EventKind.CHOICE and run.published[-1].choice
    # Restart: a new process (new client) still understands the buttons on the old message.
    async with running(dc, services) as run:
        count = len(dc.messages)
        await dc.press_button(choices.id, post_here, people.mod)  # a moderator may press anyone's buttons
        await run.wait_for(lambda: len(dc.messages) >= count + 2, "the published post and image")
        post, published_image = dc.messages[count : count + 2]
        assert post.via == "channel" and post.content and not post.embeds  # a published post is plain
        assert POST in shown(post) and published_image.attachments
    assert_cannot_mass_ping(dc.messages, asker=people.alice)


async def test_reply_to_a_draft_revises_it(
    dc: FakeDiscord, openai_services: tuple[FakeOpenAI, Services], people: People
) -> None:
    api, services = openai_services
    api.script("chat", chat(POST), chat(SHORTER))
    async with running(dc, services) as run:
        draft, _, _ = await draft_for(run, people.alice, "write a post about our launch")
        count = len(dc.messages)
        await dc.message_create(CHANNEL_ID, people.alice, "shorter please", message_reference=draft.id)
        await run.wait_for(lambda: len(buttons_of(run)) == 2, "the revision's buttons")
    revision = run.published[-1]
    assert revision.kind is EventKind.MENTION and revision.reply_to is not None
    assert revision.reply_to.from_bot and revision.reply_to.message_id == str(draft.id)
    assert SHORTER in shown(dc.messages[count])
    assert "shorter please" in api.calls("chat")[-1].json["messages"][-1]["content"]  # type: ignore[index]


async def test_share_waits_for_a_moderators_approval(
    dc: FakeDiscord, settings: Settings, redis: aioredis.Redis, people: People
) -> None:
    targets = {f"discord:{GUILD_ID}": [f"discord:{GUILD_ID}/{OTHER_CHANNEL_ID}"]}
    async with openai_world(settings, redis, share_targets=targets) as (api, services):
        api.script("chat", chat(POST))
        async with running(dc, services) as run:
            await dc.slash_command(GUILD_ID, CHANNEL_ID, people.mod, "prompt approval", {"slot": "on"})
            await run.wait_for(lambda: dc.messages, "approval turned on")
            _, _, choices = await draft_for(run, people.alice, "write a post about our launch")
            share = next(c for c in custom_ids(choices) if "|share:" in c)
            await dc.press_button(choices.id, share, people.alice)
            await run.wait_for(
                lambda: any("|approve:" in c for m in dc.messages for c in custom_ids(m)), "Approve"
            )
            waiting = dc.messages[-1]
            assert "needs a moderator's approval" in shown(waiting) and waiting.via == "followup"
            approve = next(c for c in custom_ids(waiting) if "|approve:" in c)
            assert decode(approve) is not None and decode(approve).allowed_user is None  # type: ignore[union-attr]
            count = len(dc.messages)
            await dc.press_button(waiting.id, approve, people.bob)  # anyone may press; the core checks
            await run.wait_for(lambda: len(dc.messages) > count, "the refusal")
            assert "Only moderators" in shown(dc.messages[-1])
            await dc.press_button(waiting.id, approve, people.mod)
            await run.wait_for(
                lambda: [m for m in dc.messages if m.channel_id == OTHER_CHANNEL_ID and m.attachments],
                "the post and its image in the other channel",
            )
            await run.settled()
        published = [m for m in dc.messages if m.channel_id == OTHER_CHANNEL_ID]
        assert POST in shown(published[0]) and not published[0].embeds


async def test_reply_to_a_drafts_image_edits_the_image(
    dc: FakeDiscord, openai_services: tuple[FakeOpenAI, Services], people: People
) -> None:
    api, services = openai_services
    api.script("chat", chat(POST))
    async with running(dc, services) as run:
        _, image, _ = await draft_for(run, people.alice, "write a post about our launch")
        count = len(dc.messages)
        await dc.message_create(CHANNEL_ID, people.alice, "make it blue", message_reference=image.id)
        await run.wait_for(lambda: len(buttons_of(run)) == 2, "the edited image's buttons")
    [edit] = api.calls("images.edit")
    assert "make it blue" in edit.form.get("prompt", "")
    assert dc.messages[count].attachments and dc.messages[count].message_reference is not None


async def test_image_slash_command_defers_then_follows_up(
    dc: FakeDiscord, openai_services: tuple[FakeOpenAI, Services], people: People
) -> None:
    _, services = openai_services
    async with running(dc, services) as run:
        await dc.slash_command(
            GUILD_ID, CHANNEL_ID, people.alice, "image", {"description": "a cat astronaut"}
        )
        await run.wait_for(lambda: buttons_of(run), "the image's buttons")
    [command] = run.published
    assert (command.kind, command.command, command.args) == (EventKind.COMMAND, "image", "a cat astronaut")
    assert [r.type for r in dc.interaction_responses] == [5]  # "thinking…" at once: the image takes time
    image, choices = dc.messages
    assert (image.via, image.action) == ("followup", "edit")  # the image replaced the placeholder
    assert image.attachments and image.attachments[0].description
    assert choices.via == "followup" and not choices.ephemeral
    assert any("|image:" in c for c in custom_ids(choices))


async def test_prompt_set_by_a_moderator_and_refused_for_a_member(
    dc: FakeDiscord, services: Services, people: People
) -> None:
    async with running(dc, services, DISCORD_MODERATOR_ROLES="Helpers") as run:
        persona = {"slot": "persona", "text": "You are a cheerful pirate."}
        await dc.slash_command(GUILD_ID, CHANNEL_ID, people.alice, "prompt set", persona)
        await run.wait_for(lambda: len(dc.messages) == 1, "the refusal")
        refused = dc.messages[-1]
        assert "Only moderators" in shown(refused) and refused.ephemeral
        await dc.slash_command(GUILD_ID, CHANNEL_ID, people.mod, "prompt set", persona)
        await run.wait_for(lambda: len(dc.messages) == 2, "the change")
        await dc.slash_command(GUILD_ID, CHANNEL_ID, people.helper, "prompt show", {"slot": "persona"})
        await run.wait_for(lambda: len(dc.messages) == 3, "the prompt shown to a configured-role moderator")
    member, mod, helper = (e for e in run.published if e.kind is EventKind.COMMAND)
    assert (member.command, member.args) == ("prompt", "set persona You are a cheerful pirate.")
    assert not member.author.is_moderator and mod.author.is_moderator and helper.author.is_moderator
    assert "cheerful pirate" in shown(dc.messages[2]) and dc.messages[2].ephemeral
    prompts = services.prompts
    assert "cheerful pirate" in (await prompts.effective_all(f"discord:{GUILD_ID}", "discord"))["persona"]
    assert "cheerful pirate" not in str(await prompts.effective_all("discord:999", "discord"))


async def test_subscribe_and_digest(
    dc: FakeDiscord, openai_services: tuple[FakeOpenAI, Services], people: People
) -> None:
    _, services = openai_services
    async with running(dc, services) as run:
        await dc.slash_command(GUILD_ID, CHANNEL_ID, people.mod, "feed add")
        await run.wait_for(lambda: len(dc.messages) == 1, "the channel joins the feed")
        assert "is in the feed now" in shown(dc.messages[0])
        for author, text in (
            (people.alice, "We shipped the new search today"),
            (people.bob, "Meetup on Friday"),
        ):
            await dc.message_create(CHANNEL_ID, author, text)
        await run.wait_for(
            lambda: len([e for e in run.published if e.kind is EventKind.MESSAGE]) == 2, "feed messages"
        )
        feed = feed_of(services)
        await run.wait_for(lambda: True, "settle")
        await dc.slash_command(
            GUILD_ID, CHANNEL_ID, people.alice, "subscribe", {"schedule": "daily 08:00 UTC"}
        )
        await run.wait_for(lambda: len(dc.messages) == 2, "the subscription")
        assert "Subscribed" in shown(dc.messages[1]) and dc.messages[1].via == "followup"
        await dc.slash_command(GUILD_ID, CHANNEL_ID, people.alice, "digest")
        await run.wait_for(lambda: len(dc.messages) >= 3, "the digest")
        digest = dc.messages[2]
        assert digest.embeds and "digest" in shown(digest).lower()
        assert "search" in shown(digest) or "Meetup" in shown(digest)
        # The scheduled digest: Posts to the channel, shown as an embed too.
        [sub] = await feed.subscriptions.for_user("discord", str(GUILD_ID), str(people.alice))
        now = time.time()
        count = len(dc.messages)
        assert await feed.digests.deliver([sub.id], now - 86400, now) == 1
        await run.wait_for(lambda: len(dc.messages) > count, "the scheduled digest")
        scheduled = dc.messages[count]
        assert scheduled.via == "channel" and scheduled.embeds and "digest" in shown(scheduled).lower()
    assert_cannot_mass_ping(dc.messages, asker=people.alice)


async def test_feed_follows_messages_edits_deletions_and_reactions(
    dc: FakeDiscord, services: Services, people: People
) -> None:
    store = feed_of(services).store
    async with running(dc, services) as run:
        await dc.message_create(
            CHANNEL_ID, people.alice, "before the channel joined"
        )  # not opted in: dropped
        await dc.slash_command(GUILD_ID, CHANNEL_ID, people.mod, "feed add")
        await run.wait_for(lambda: dc.messages, "the channel joins the feed")
        sent = await dc.message_create(CHANNEL_ID, people.alice, "Release notes are out")
        mid = int(sent["id"])
        item = item_id("discord", str(GUILD_ID), str(CHANNEL_ID), str(mid))

        async def stored(check: Callable[[FeedItem | None], bool], what: str) -> None:
            deadline = time.monotonic() + 20
            while not check(await store.get(item)):
                assert time.monotonic() < deadline, f"the feed never showed {what}"
                await asyncio.sleep(0.02)

        # One step at a time: the core's workers handle Events concurrently, the adapter keeps their order.
        await stored(lambda i: i is not None and i.author_name == "Alice", "the message")
        await dc.message_update(CHANNEL_ID, mid, "Release notes 2.0 are out")
        await stored(lambda i: i is not None and i.text == "Release notes 2.0 are out", "the edit")
        await dc.reaction_add(CHANNEL_ID, mid, people.bob)
        await stored(lambda i: i is not None and i.reactions == 1, "the reaction")
        await dc.message_delete(CHANNEL_ID, mid)
        await stored(lambda i: i is None, "the deletion")
    feed_events = [e for e in run.published if e.kind is not EventKind.COMMAND]
    kinds = [e.kind for e in feed_events]
    assert kinds == [EventKind.MESSAGE, EventKind.EDITED, EventKind.REACTION, EventKind.DELETED]
    assert {e.message_id for e in feed_events} == {str(mid)}
    assert feed_events[2].reaction == "\N{THUMBS UP SIGN}" and feed_events[2].author.id == str(people.bob)
    assert all(e.community == str(GUILD_ID) and e.channel == str(CHANNEL_ID) for e in feed_events)


async def test_gateway_reconnect_resumes_without_losing_or_duplicating_replies(
    dc: FakeDiscord, services: Services, people: People
) -> None:
    async with running(dc, services) as run:
        first = await dc.message_create(CHANNEL_ID, people.alice, f"<@{BOT_ID}> help")
        await dc.request_reconnect()  # op 7: the client must RESUME on resume_gateway_url
        during = await dc.message_create(CHANNEL_ID, people.bob, f"<@{BOT_ID}> help")  # queued for replay
        await run.wait_for(lambda: dc.resume_count == 1, "RESUME")
        await dc.dispatch("MESSAGE_CREATE", dict(first))  # Discord delivering an event twice
        after = await dc.message_create(CHANNEL_ID, people.alice, f"<@{BOT_ID}> help")
        asked = [int(m["id"]) for m in (first, during, after)]

        def answered() -> list[int]:
            return [int(m.message_reference["message_id"]) for m in dc.messages if m.message_reference]

        await run.wait_for(lambda: set(answered()) == set(asked), "one answer each")
        await run.settled()
    assert sorted(answered()) == sorted(asked)  # each exactly once
    assert len(run.accepted) == 3 and len(run.published) == 4  # the repeated event was dropped by the bus
    assert dc.identify_count == 1 and dc.gateway_connections[-1].startswith("/gateway-resume")


async def test_invalid_session_reidentifies_and_keeps_answering(
    dc: FakeDiscord, services: Services, people: People
) -> None:
    async with running(dc, services) as run:
        await dc.invalidate_session()
        await run.wait_for(lambda: dc.identify_count == 2, "re-IDENTIFY")
        await dc.message_create(CHANNEL_ID, people.alice, f"<@{BOT_ID}> help")
        await run.wait_for(lambda: dc.messages, "an answer after the new session")


async def test_rest_429_is_honoured_and_the_message_sent_once(
    dc: FakeDiscord, services: Services, people: People, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="core.sender")
    route = f"/channels/{CHANNEL_ID}/messages"
    async with running(dc, services) as run:
        assert run.platform.client is not None
        # discord.py hands back waits longer than this (it allows no less than 30 s; tests need less)
        run.platform.client.http.max_ratelimit_timeout = 0.3
        dc.rate_limit_next(f"POST {route}", retry_after=0.1)  # short: discord.py waits and retries
        await dc.message_create(CHANNEL_ID, people.alice, f"<@{BOT_ID}> help")
        await run.wait_for(lambda: len(dc.messages) == 1, "the answer after a short 429")
        dc.rate_limit_next(f"POST {route}", retry_after=0.6)  # long: handed to the Sender, which waits
        started = time.monotonic()
        await dc.message_create(CHANNEL_ID, people.bob, f"<@{BOT_ID}> help")
        await run.wait_for(lambda: len(dc.messages) == 2, "the answer after a long 429")
        assert time.monotonic() - started >= 0.6
        await run.settled()
    statuses = [r.status for r in dc.requests if r.method == "POST" and r.path == route]
    assert statuses == [429, 200, 429, 200]
    assert len(dc.messages) == 2
    # Only the long one was handed to the Sender (as PlatformRateLimited), for one and the same Action.
    waits = [r.getMessage() for r in caplog.records if "discord asks to wait" in r.getMessage()]
    assert waits and len({w.rsplit(" ", 1)[-1] for w in waits}) == 1


async def test_hostile_text_cannot_ping_or_inject_markup(
    dc: FakeDiscord, openai_services: tuple[FakeOpenAI, Services], people: People
) -> None:
    api, services = openai_services
    hostile = f"@everyone @here <@&{people.helper_role}> <@{people.bob}> {HOSTILE} [x](https://evil.example)"
    api.script("chat", chat(hostile))
    async with running(dc, services, DISCORD_MODERATOR_ROLES="Helpers") as run:
        await draft_for(run, people.alice, f"say {hostile}")
        await dc.slash_command(
            GUILD_ID, CHANNEL_ID, people.mod, "prompt set", {"slot": "persona", "text": hostile}
        )
        await run.wait_for(lambda: len(dc.messages) == 4, "the prompt changed")
        await dc.slash_command(GUILD_ID, CHANNEL_ID, people.mod, "prompt show", {"slot": "persona"})
        await run.wait_for(lambda: len(dc.messages) == 5, "the prompt shown back")
    assert_cannot_mass_ping(dc.messages, asker=people.alice)
    for message in dc.messages:  # markdown is escaped: no masked link or formatting survives rendering
        raw = message.content + "".join(e.get("description") or "" for e in message.embeds)
        assert "[x](" not in raw and "**" not in raw and "<@" not in raw.replace("\\<@", "")
    assert "<script>alert(1)</script>" in shown(dc.messages[-1])


async def test_direct_messages_and_dm_slash_commands(dc: FakeDiscord, services: Services) -> None:
    carol = dc.add_user(username="carol")
    dm = dc.dm_channel(carol)
    async with running(dc, services) as run:
        await dc.message_create(dm, carol, "help")
        await run.wait_for(lambda: dc.messages, "the DM answer")
        await dc.slash_command(None, dm, carol, "quota")
        await run.wait_for(lambda: len(dc.messages) == 2, "the DM command answer")
    mention, command = run.published
    assert mention.kind is EventKind.MENTION and mention.private and mention.community == f"dm-{carol}"
    assert command.kind is EventKind.COMMAND and command.private and command.channel == str(dm)
    assert all(m.channel_id == dm for m in dc.messages)
    assert "Mention me" in shown(dc.messages[0])


async def test_without_the_message_content_intent_mentions_and_commands_still_work(
    services: Services,
) -> None:
    async with FakeDiscord(token="discord-test-token", bot_id=BOT_ID, allowed_privileged_intents=0) as dc:
        dc.add_guild(GUILD_ID, "HQ")
        dc.add_channel(GUILD_ID, "general", channel_id=CHANNEL_ID)
        alice = dc.add_member(GUILD_ID, username="alice")
        async with running(dc, services) as run:
            assert not run.platform.message_content
            assert [p["intents"] & INTENT_MESSAGE_CONTENT for p in dc.identify_payloads] == [0]
            await dc.message_create(CHANNEL_ID, alice, "an ordinary message")  # arrives without content
            await dc.message_create(CHANNEL_ID, alice, f"<@{BOT_ID}> help")
            await dc.slash_command(GUILD_ID, CHANNEL_ID, alice, "help")
            await run.wait_for(lambda: len(dc.messages) == 2, "both answers")
        assert [e.kind for e in run.published] == [EventKind.MENTION, EventKind.COMMAND]


async def test_slash_commands_sync_to_configured_guilds_with_valid_shapes(
    dc: FakeDiscord, services: Services
) -> None:
    async with running(dc, services, pipeline=False, DISCORD_GUILD_IDS=str(GUILD_ID)):
        pass
    assert dc.command_syncs == [GUILD_ID] and None not in dc.commands
    by_name = {c["name"]: c for c in dc.commands[GUILD_ID]}
    assert "choose" not in by_name  # Discord has buttons: no numbered choices
    prompt = {o["name"]: o for o in by_name["prompt"]["options"]}
    assert {"show", "set", "history", "rollback"} <= set(prompt) and prompt["set"]["type"] == 1
    feed = {o["name"] for o in by_name["feed"]["options"]}
    assert {"add", "remove", "list", "hot"} <= feed
    image = by_name["image"]["options"]
    assert image == [{"type": 3, "name": "description", "description": "what to show", "required": True}]
    assert all(1 <= len(c["description"]) <= 100 for c in dc.commands[GUILD_ID])


def test_intents_are_only_what_chorus_needs() -> None:
    intents = intents_for(message_content=True)
    assert intents.guilds and intents.guild_messages and intents.dm_messages and intents.guild_reactions
    assert intents.message_content
    assert not (intents.members or intents.presences or intents.voice_states or intents.typing)
    assert not intents_for(message_content=False).message_content


def test_a_bad_token_is_a_configuration_error(services: Services) -> None:
    from bots.discord.config import DiscordSettings
    from core.errors import ConfigError

    with pytest.raises(ConfigError, match="DISCORD_BOT_TOKEN"):
        DiscordPlatform(DiscordSettings(DISCORD_BOT_TOKEN=None), services)


async def test_a_rejected_token_stops_start_with_a_clear_error(dc: FakeDiscord, services: Services) -> None:
    from pydantic import SecretStr

    from core.errors import ConfigError

    settings = discord_settings(dc).model_copy(update={"token": SecretStr("wrong")})
    platform = DiscordPlatform(settings, services, fast_identify=True)
    with pytest.raises(ConfigError, match="rejected"):
        await platform.start(services.bus.publish)
    await platform.stop()


async def test_chorus_run_with_platform_discord_starts_the_adapter_worker_and_scheduler(
    dc: FakeDiscord, services: Services, people: People, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core.app import Run, choose_platforms

    monkeypatch.setenv("DISCORD_BOT_TOKEN", "discord-test-token")
    monkeypatch.setenv("DISCORD_API_BASE_URL", dc.api_base)
    monkeypatch.setenv("DISCORD_GATEWAY_URL", dc.gateway_url)
    job = Run(services.settings, platforms=choose_platforms(["discord"]), background=False)
    serving = asyncio.create_task(job.serve(services))
    try:
        await dc.wait_for(lambda: dc.identify_count == 1 and dc.command_syncs, timeout=20, what="connected")
        await dc.message_create(CHANNEL_ID, people.alice, f"<@{BOT_ID}> help")
        await dc.wait_for(lambda: dc.messages, timeout=20, what="an answer through worker and sender")
        assert "Mention me" in shown(dc.messages[0])
        assert sorted(
            t.get_name() for t in asyncio.all_tasks() if t.get_name() in ("worker", "scheduler")
        ) == [
            "scheduler",
            "worker",
        ]
    finally:
        job.stop.set()
        await asyncio.wait_for(serving, 20)
    assert services.platforms.capabilities("discord").buttons


async def test_after_stop_actions_stay_in_the_outbox(dc: FakeDiscord, services: Services) -> None:
    from core.errors import PlatformError, PlatformUnavailable

    async with running(dc, services, pipeline=False) as run:
        pass
    with pytest.raises(PlatformError) as stopped:
        await run.platform.deliver(
            Reply(platform="discord", community="1", channel="2", text="x"), services.bus.get_blob
        )
    # Not PlatformUnavailable: the Sender would retry it in place and hold the shutdown.
    assert not isinstance(stopped.value, PlatformUnavailable)
