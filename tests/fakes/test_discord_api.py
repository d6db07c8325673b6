"""Proves FakeDiscord is faithful enough for the real discord.py 2.7 to run against it over real sockets.

Each test drives a real `discord.Client` (gateway + REST + interactions); if discord.py rejects a payload or
mishandles a response, these fail, so the Discord bot's own tests can trust the fake.
"""

from __future__ import annotations

import asyncio
import io
import time
import warnings
from collections import Counter
from collections.abc import AsyncIterator

import aiohttp
import pytest

with warnings.catch_warnings():
    # discord.py imports the stdlib `audioop` (voice), deprecated since 3.11; -W error would fail the import.
    warnings.simplefilter("ignore", DeprecationWarning)
    import discord
    from discord import app_commands

from tests.fakes.discord_api import MANAGE_GUILD, FakeDiscord, fake_discord

TOKEN = "tok"
BOT_ID = 1100000000000000001
APP_ID = 1100000000000000002
GUILD_ID = 1100000000000000003
CHANNEL_ID = 1100000000000000004


class LikeView(discord.ui.View):
    """Persistent view: no timeout and a fixed custom_id, so presses route here even after a restart."""

    def __init__(self) -> None:
        super().__init__(timeout=None)
        self.pressed: list[int] = []

    @discord.ui.button(label="Like", custom_id="chorus:like", style=discord.ButtonStyle.primary)
    async def like(self, interaction: discord.Interaction, button: discord.ui.Button[LikeView]) -> None:
        self.pressed.append(interaction.user.id)
        await interaction.response.edit_message(content=f"liked by {interaction.user.id}")


class Bot(discord.Client):
    """A small bot with the intents, commands and view that the Chorus Discord adapter relies on."""

    def __init__(self) -> None:
        intents = discord.Intents.none()
        intents.guilds = intents.guild_messages = intents.message_content = True
        intents.reactions = intents.dm_messages = True
        super().__init__(intents=intents, guild_ready_timeout=0.05)
        self.tree = app_commands.CommandTree(self)
        self.seen: list[discord.Message] = []
        self.reactions_seen: list[tuple[str, int]] = []
        self.edits: list[tuple[str, str]] = []
        self.feed_perms: list[bool] = []
        self.ready_event = asyncio.Event()
        self.like_view = LikeView()

        @self.tree.command(name="ask", description="Ask Chorus something")
        async def ask(interaction: discord.Interaction, prompt: str) -> None:
            await interaction.response.send_message(f"echo: {prompt}")

        feed = app_commands.Group(
            name="feed",
            description="Manage feeds",
            default_permissions=discord.Permissions(manage_guild=True),
        )

        @feed.command(name="add", description="Add a feed")
        async def add(interaction: discord.Interaction, url: str) -> None:
            self.feed_perms.append(interaction.permissions.manage_guild)
            await interaction.response.defer(thinking=True)
            await interaction.followup.send(f"added {url}")

        self.tree.add_command(feed)

    async def setup_hook(self) -> None:
        self.add_view(self.like_view)
        await self.tree.sync()

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        """Skip discord.py's 5 s pause before a re-IDENTIFY (it protects real Discord's identify quota)."""

    async def on_ready(self) -> None:
        self.ready_event.set()

    async def on_message(self, message: discord.Message) -> None:
        self.seen.append(message)

    async def on_message_edit(self, before: discord.Message, after: discord.Message) -> None:
        self.edits.append((before.content, after.content))

    async def on_reaction_add(self, reaction: discord.Reaction, user: discord.abc.User) -> None:
        self.reactions_seen.append((str(reaction.emoji), user.id))


@pytest.fixture
async def dc() -> AsyncIterator[FakeDiscord]:
    async with fake_discord(token=TOKEN, bot_id=BOT_ID, app_id=APP_ID) as fake:
        fake.add_guild(GUILD_ID, "Chorus HQ")
        fake.add_channel(GUILD_ID, "general", channel_id=CHANNEL_ID)
        yield fake


@pytest.fixture
async def bot(dc: FakeDiscord) -> AsyncIterator[Bot]:
    client = Bot()
    runner = asyncio.create_task(client.start(TOKEN))
    ready = asyncio.create_task(client.ready_event.wait())
    await asyncio.wait({runner, ready}, timeout=10, return_when=asyncio.FIRST_COMPLETED)
    try:
        if not ready.done():
            ready.cancel()
            if runner.done():
                runner.result()  # surfaces why login/connect failed
            raise AssertionError("discord.py never became ready against the fake")
        yield client
    finally:
        await client.close()
        await asyncio.wait_for(runner, 10)
    assert dc.unhandled == []


def channel(bot: Bot) -> discord.TextChannel:
    found = bot.get_channel(CHANNEL_ID)
    assert isinstance(found, discord.TextChannel)
    return found


async def test_login_ready_and_guild_cache(dc: FakeDiscord, bot: Bot) -> None:
    assert bot.user is not None and bot.user.id == BOT_ID
    assert bot.application_id == APP_ID
    guild = bot.get_guild(GUILD_ID)
    assert guild is not None and guild.name == "Chorus HQ"
    assert channel(bot).name == "general"
    assert guild.me is not None and guild.me.guild_permissions.send_messages
    assert dc.identify_count == 1
    assert dc.identify_payloads[0]["intents"] == bot.intents.value
    assert sorted(c["name"] for c in dc.commands[None]) == ["ask", "feed"]
    assert dc.heartbeats >= 1


async def test_on_message_and_reply_with_no_mentions(dc: FakeDiscord, bot: Bot) -> None:
    alice = dc.add_member(GUILD_ID, username="alice")
    incoming = await dc.message_create(CHANNEL_ID, alice, f"<@{BOT_ID}> hello")
    got = await dc.wait_for(lambda: [m for m in bot.seen if m.author.id == alice], what="on_message")
    message = got[0]
    assert message.content == f"<@{BOT_ID}> hello"
    assert message.guild is not None and message.guild.id == GUILD_ID
    assert isinstance(message.author, discord.Member)
    assert [m.id for m in message.mentions] == [BOT_ID]

    reply = await message.reply(f"hi <@{alice}>", allowed_mentions=discord.AllowedMentions.none())
    sent = dc.messages[-1]
    assert (sent.id, sent.channel_id, sent.via, sent.content) == (
        reply.id,
        CHANNEL_ID,
        "channel",
        f"hi <@{alice}>",
    )
    assert sent.allowed_mentions == {"parse": []}
    assert sent.message_reference is not None
    assert int(sent.message_reference["message_id"]) == int(incoming["id"])
    assert sent.pinged_user_ids == []
    # Discord echoes the bot's own message over the gateway; bots must ignore it themselves.
    await dc.wait_for(lambda: [m for m in bot.seen if m.id == reply.id], what="echo of the bot's reply")

    await dc.reaction_add(CHANNEL_ID, reply.id, alice)
    await dc.wait_for(lambda: bot.reactions_seen == [("\N{THUMBS UP SIGN}", alice)], what="on_reaction_add")


async def test_direct_message_roundtrip(dc: FakeDiscord, bot: Bot) -> None:
    carol = dc.add_user(username="carol")
    await dc.message_create(dc.dm_channel(carol), carol, "private hello")
    got = await dc.wait_for(lambda: [m for m in bot.seen if m.author.id == carol], what="DM on_message")
    assert got[0].guild is None and isinstance(got[0].channel, discord.DMChannel)
    await got[0].author.send("private reply")
    assert (dc.messages[-1].channel_id, dc.messages[-1].content) == (dc.dm_channel(carol), "private reply")


async def test_over_long_message_and_embed_rejected(dc: FakeDiscord, bot: Bot) -> None:
    with pytest.raises(discord.HTTPException) as too_long:
        await channel(bot).send("x" * 2001)
    assert (too_long.value.status, too_long.value.code) == (400, 50035)
    assert "content" in too_long.value.text and "2000" in too_long.value.text
    with pytest.raises(discord.HTTPException) as bad_embed:
        await channel(bot).send(embed=discord.Embed(title="t" * 257))
    assert "embeds.0.title" in bad_embed.value.text
    assert dc.messages == []


async def test_rate_limit_is_honoured_and_message_arrives_once(dc: FakeDiscord, bot: Bot) -> None:
    route = f"/channels/{CHANNEL_ID}/messages"
    dc.rate_limit_next(f"POST {route}", retry_after=0.3)
    started = time.monotonic()
    await channel(bot).send("after the 429")
    assert time.monotonic() - started >= 0.3
    assert [r.status for r in dc.requests if r.method == "POST" and r.path == route] == [429, 200]
    assert [m.content for m in dc.messages] == ["after the 429"]


async def test_reconnect_resumes_and_replays_without_duplicates(dc: FakeDiscord, bot: Bot) -> None:
    dave = dc.add_member(GUILD_ID, username="dave")
    await dc.request_reconnect()
    await dc.message_create(CHANNEL_ID, dave, "sent while reconnecting")
    await dc.wait_for(lambda: dc.resume_count == 1, what="RESUME")
    await dc.message_create(CHANNEL_ID, dave, "after resume")
    await dc.wait_for(lambda: any(m.content == "after resume" for m in bot.seen), what="post-resume message")
    assert [m.content for m in bot.seen if m.author.id == dave] == ["sent while reconnecting", "after resume"]
    assert dc.identify_count == 1
    assert dc.gateway_connections[-1].startswith("/gateway-resume?")

    await dc.invalidate_session()
    await dc.wait_for(lambda: dc.identify_count == 2, what="re-IDENTIFY after INVALID_SESSION")


async def test_slash_commands_reach_the_command_tree(dc: FakeDiscord, bot: Bot) -> None:
    bob = dc.add_member(GUILD_ID, username="bob")
    await dc.slash_command(GUILD_ID, CHANNEL_ID, bob, "ask", {"prompt": "what's new?"})
    await dc.wait_for(lambda: dc.interaction_responses, what="/ask callback")
    first = dc.interaction_responses[0]
    assert (first.type, first.with_response, first.data["content"]) == (4, True, "echo: what's new?")
    assert (dc.messages[-1].via, dc.messages[-1].content) == ("interaction", "echo: what's new?")

    feed = next(c for c in dc.commands[None] if c["name"] == "feed")
    assert feed["default_member_permissions"] == str(MANAGE_GUILD)
    mod = dc.add_member(GUILD_ID, username="mod", permissions=MANAGE_GUILD)
    await dc.slash_command(GUILD_ID, CHANNEL_ID, mod, "feed add", {"url": "https://example.com/rss"})
    await dc.wait_for(lambda: dc.messages[-1].content == "added https://example.com/rss", what="followup")
    assert bot.feed_perms == [True]
    assert [r.type for r in dc.interaction_responses] == [4, 5]
    # The first followup after a "thinking" defer replaces the loading message, as on Discord.
    assert (dc.messages[-1].via, dc.messages[-1].action) == ("followup", "edit")


async def test_button_press_reaches_persistent_view(dc: FakeDiscord, bot: Bot) -> None:
    erin = dc.add_member(GUILD_ID, username="erin")
    one_off = LikeView()
    posted = await channel(bot).send("Rate this", view=one_off)
    one_off.stop()  # as after a restart: only the persistent view registered in setup_hook remains
    assert dc.messages[-1].components[0]["components"][0]["custom_id"] == "chorus:like"
    await dc.press_button(posted.id, "chorus:like", erin)
    await dc.wait_for(lambda: dc.interaction_responses, what="button callback")
    assert bot.like_view.pressed == [erin] and one_off.pressed == []
    assert dc.interaction_responses[0].type == 7
    assert (dc.messages[-1].action, dc.messages[-1].content) == ("edit", f"liked by {erin}")


async def test_file_upload_keeps_alt_text(dc: FakeDiscord, bot: Bot) -> None:
    data = b"\x89PNG\r\n\x1a\nfake-chart"
    picture = discord.File(io.BytesIO(data), "chart.png", description="Bar chart of feed volume")
    posted = await channel(bot).send("weekly chart", file=picture)
    sent = dc.messages[-1]
    assert [(a.filename, a.description, a.data) for a in sent.attachments] == [
        ("chart.png", "Bar chart of feed volume", data)
    ]
    assert posted.attachments[0].description == "Bar chart of feed volume"
    assert await posted.attachments[0].read() == data


async def test_edits_deletes_typing_and_user_edits(dc: FakeDiscord, bot: Bot) -> None:
    async with channel(bot).typing():
        posted = await channel(bot).send("draft")
    assert dc.typing == [CHANNEL_ID]
    edited = await posted.edit(content="final", embed=discord.Embed(title="Digest", description="3 items"))
    assert edited.embeds[0].title == "Digest"
    assert [(m.action, m.content) for m in dc.messages] == [("create", "draft"), ("edit", "final")]
    await posted.delete()
    assert dc.deleted_messages == [(CHANNEL_ID, posted.id)]
    with pytest.raises(discord.NotFound):
        await channel(bot).fetch_message(posted.id)

    frank = dc.add_member(GUILD_ID, username="frank")
    theirs = await dc.message_create(CHANNEL_ID, frank, "tpyo")
    await dc.wait_for(lambda: [m for m in bot.seen if m.content == "tpyo"], what="on_message")
    with pytest.raises(discord.Forbidden):  # bots cannot edit other people's messages
        await channel(bot).get_partial_message(int(theirs["id"])).edit(content="hijack")
    await dc.message_update(CHANNEL_ID, int(theirs["id"]), "typo")
    # The bot's own edit is echoed as MESSAGE_UPDATE too, as on Discord.
    await dc.wait_for(lambda: bot.edits == [("draft", "final"), ("tpyo", "typo")], what="on_message_edit")


async def test_component_limits_and_slow_interactions_rejected(dc: FakeDiscord, bot: Bot) -> None:
    route = discord.http.Route("POST", "/channels/{channel_id}/messages", channel_id=CHANNEL_ID)
    button = {"type": 2, "style": 1, "label": "go"}
    six_rows = [{"type": 1, "components": [{**button, "custom_id": f"r{i}"}]} for i in range(6)]
    long_id = [{"type": 1, "components": [{**button, "custom_id": "x" * 101}]}]
    for components, where in ((six_rows, "In components:"), (long_id, "components.0.components.0.custom_id")):
        with pytest.raises(discord.HTTPException) as rejected:
            await bot.http.request(route, json={"content": "pick", "components": components})
        assert rejected.value.status == 400 and where in rejected.value.text
    assert dc.messages == []

    dc.interaction_ack_timeout = 0.0  # every callback is now "later than 3 s"
    gus = dc.add_member(GUILD_ID, username="gus")
    errors: list[app_commands.AppCommandError] = []

    async def on_error(interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        errors.append(error)

    bot.tree.on_error = on_error  # type: ignore[method-assign]
    await dc.slash_command(GUILD_ID, CHANNEL_ID, gus, "ask", {"prompt": "late"})
    await dc.wait_for(lambda: errors, what="the late callback to fail")
    assert isinstance(errors[0], app_commands.CommandInvokeError)
    assert isinstance(errors[0].original, discord.NotFound) and errors[0].original.code == 10062
    assert dc.interaction_responses == []


async def test_raw_http_auth_unknown_routes_and_429_headers(dc: FakeDiscord) -> None:
    good = {"Authorization": f"Bot {TOKEN}"}
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{dc.api_base}/users/@me", headers={"Authorization": "Bot wrong"}) as resp:
            assert resp.status == 401
        async with http.get(f"{dc.api_base}/nope", headers=good) as resp:
            assert (resp.status, await resp.json()) == (404, {"message": "404: Not Found", "code": 0})
        dc.rate_limit_next("/users/@me", retry_after=0.25, global_=True)
        async with http.get(f"{dc.api_base}/users/@me", headers=good) as resp:
            assert resp.status == 429 and resp.headers["Content-Type"] == "application/json"
            assert await resp.json() == {
                "message": "You are being rate limited.",
                "retry_after": 0.25,
                "global": True,
                "code": 0,
            }
            assert resp.headers["Retry-After"] == "1" and resp.headers["X-RateLimit-Scope"] == "global"
            assert resp.headers["X-RateLimit-Remaining"] == "0" and "X-RateLimit-Bucket" in resp.headers
        async with http.get(f"{dc.api_base}/users/@me", headers=good) as resp:
            assert resp.status == 200 and resp.headers["X-RateLimit-Remaining"] == "4"
    assert dc.unhandled == ["GET /nope"]


async def test_enforced_nonce_returns_the_first_message(dc: FakeDiscord, bot: Bot) -> None:
    first = await channel(bot).send("once", nonce="action-1")  # discord.py sends enforce_nonce with a nonce
    again = await channel(bot).send("once", nonce="action-1")
    other = await channel(bot).send("twice", nonce="action-2")
    assert first.id == again.id != other.id
    assert [m.content for m in dc.messages] == ["once", "twice"] and dc.nonce_hits == 1


async def test_threads_arrive_with_the_guild_under_their_parent(dc: FakeDiscord) -> None:
    thread_id = dc.add_thread(GUILD_ID, CHANNEL_ID, "planning")
    client = Bot()
    runner = asyncio.create_task(client.start(TOKEN))
    try:
        await asyncio.wait_for(client.ready_event.wait(), 10)
        thread = client.get_channel(thread_id)
        assert isinstance(thread, discord.Thread) and thread.parent_id == CHANNEL_ID
        await thread.send("in the thread")
        assert dc.messages[-1].channel_id == thread_id
    finally:
        await client.close()
        await asyncio.wait_for(runner, 10)


async def test_a_held_guild_is_unavailable_until_released(dc: FakeDiscord) -> None:
    """READY lists it as unavailable, no event of it is delivered, and its GUILD_CREATE on release makes
    discord.py fill it in and dispatch on_guild_available (as after an outage or a slow start)."""
    dc.hold_guild(GUILD_ID)
    alice = dc.add_member(GUILD_ID, username="alice")
    client = Bot()
    available: list[int] = []

    async def on_guild_available(guild: discord.Guild) -> None:
        available.append(guild.id)

    client.event(on_guild_available)
    runner = asyncio.create_task(client.start(TOKEN))
    try:
        await asyncio.wait_for(client.ready_event.wait(), 10)
        guild = client.get_guild(GUILD_ID)
        assert guild is not None and guild.unavailable and client.get_channel(CHANNEL_ID) is None
        held = await dc.message_create(CHANNEL_ID, alice, "while unavailable")
        assert ("MESSAGE_CREATE", held) in dc.undelivered
        await dc.release_guild(GUILD_ID)
        await dc.wait_for(lambda: available == [GUILD_ID], what="on_guild_available")
        assert not guild.unavailable and channel(client).name == "general"
        await dc.message_create(CHANNEL_ID, alice, "once available")
        await dc.wait_for(lambda: [m.content for m in client.seen] == ["once available"], what="delivered")
    finally:
        await client.close()
        await asyncio.wait_for(runner, 10)


async def test_injected_faults_are_discords_429s_and_5xx_and_discord_py_rides_them_out(
    dc: FakeDiscord, bot: Bot
) -> None:
    """Random 429s (some global) and 5xx on message sends: each answered without acting, with Discord's
    headers and body; discord.py waits the 429s out and retries 502 itself; a 503 reaches the caller."""
    faults = dc.inject_faults(rate_429=0.3, rate_5xx=0.15, retry_after=0.05, global_share=0.3, seed=3)
    sent: list[str] = []
    unavailable = 0
    for i in range(30):
        try:
            await channel(bot).send(f"message {i}")
            sent.append(f"message {i}")
        except discord.DiscordServerError as exc:
            assert exc.status == 503
            unavailable += 1
    route = f"/channels/{CHANNEL_ID}/messages"
    statuses = Counter(r.status for r in dc.requests if r.method == "POST" and r.path == route)
    assert statuses[429] == faults.injected_429 > 0 and 0 < faults.injected_global < faults.injected_429
    assert statuses[502] + statuses[503] == faults.injected_5xx > 0 and unavailable == statuses[503]
    assert [m.content for m in dc.messages] == sent  # a fault never acted: each message once, in order
    assert len(sent) == 30 - unavailable
    async with aiohttp.ClientSession() as http:
        dc.inject_faults(rate_429=1.0, rate_5xx=0.0, retry_after=2.5, global_share=1.0)
        async with http.post(
            f"{dc.api_base}{route}", json={"content": "x"}, headers={"Authorization": f"Bot {TOKEN}"}
        ) as resp:
            assert resp.status == 429 and await resp.json() == {
                "message": "You are being rate limited.",
                "retry_after": 2.5,
                "global": True,
                "code": 0,
            }
            assert resp.headers["Retry-After"] == "3" and resp.headers["X-RateLimit-Global"] == "true"
            assert (
                resp.headers["X-RateLimit-Scope"] == "global" and resp.headers["X-RateLimit-Remaining"] == "0"
            )
            assert (
                float(resp.headers["X-RateLimit-Reset-After"]) == 2.5 and "X-RateLimit-Bucket" in resp.headers
            )
