"""Platform facts have one source: a platform declared here (as an adapter declares its own in its config
module) is followed by the assistant's limits, digests, feed labels and links, prompt overrides and approval
defaults, with nothing about it written in core/."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from bots import registry
from core.assistant.commands import setup
from core.assistant.images import ImageService
from core.assistant.moderation import Moderator
from core.catalog import UNKNOWN, PlatformCatalog, PlatformFacts
from core.contract import Author, Capabilities, DirectMessage, EventKind, OfferChoices, Post, Reply
from core.feed.exports import FeedMeta, render_json_feed
from core.feed.timelines import Scope
from core.router import Router
from core.services import Services
from core.web.visibility import set_visibility
from tests.core.assistant.fakes_chat import ScriptedModel
from tests.core.assistant.test_commands import FakeRuntime
from tests.core.feed.helpers import item
from tests.support import event, feed_of

LONG = " ".join(f"Sentence number {i} tells our community about the garden opening." for i in range(80))
FEDI = PlatformFacts(
    name="fedi",
    label="Fediverse",
    capabilities=Capabilities(max_text=500, max_caption=400, buttons=True, edits=True),
    approval_by_default=True,
    permalink=lambda community, channel, message_id: f"https://{community}/@{channel}/{message_id}",
)
MODERATOR = Author(id="mod", name="Mod", is_moderator=True)


@pytest.fixture
async def fedi(services: Services) -> AsyncIterator[Services]:
    """The fifth platform, declared the way every adapter declares its own (bots/<name>/config.py)."""
    services.platforms.register(FEDI)
    services.settings = services.settings.model_copy(
        update={"share_targets": {"*": ["fedi:social.example/news"]}}
    )
    images, moderator = ImageService(services.settings), Moderator(services.settings)
    setup(services, runtime=FakeRuntime(ScriptedModel(script=[LONG])), images=images, moderator=moderator)
    yield services
    await images.aclose()
    await moderator.aclose()


def on_fedi(text: str, **kw: object) -> object:
    return event(text=text, platform="fedi", community="social.example", channel="news", **kw)


async def test_drafts_for_it_fit_its_declared_limit(fedi: Services) -> None:
    actions = await Router(fedi).route(on_fedi("write a post about the garden opening"))  # type: ignore[arg-type]
    draft = next(a for a in actions if isinstance(a, Reply) and a.ref and a.ref.startswith("draft:"))
    assert 200 < len(draft.text) <= 500


async def test_sharing_to_it_waits_for_approval_by_its_default(fedi: Services) -> None:
    actions = await Router(fedi).route(event(text="write a post about the garden opening"))
    draft_id = next(a for a in actions if isinstance(a, Reply) and a.ref).ref.split(":")[1]  # type: ignore[union-attr]
    held = await Router(fedi).route(event(EventKind.COMMAND, command="share", args=f"{draft_id} fedi news"))
    assert any(isinstance(a, OfferChoices) and "needs a moderator's approval" in a.text for a in held)
    fedi.platforms.register(PlatformFacts("fedi", "Fediverse", FEDI.capabilities, approval_by_default=False))
    actions = await Router(fedi).route(event(text="write a post about the garden opening"))
    other = next(a for a in actions if isinstance(a, Reply) and a.ref).ref.split(":")[1]  # type: ignore[union-attr]
    sent = await Router(fedi).route(event(EventKind.COMMAND, command="share", args=f"{other} fedi news"))
    posts = [a for a in sent if isinstance(a, Post)]
    assert posts and posts[0].platform == "fedi" and all(len(p.text) <= 500 for p in posts)


async def test_prompt_overrides_exist_for_it(fedi: Services) -> None:
    router = Router(fedi)
    command = "prompt"
    ok = await router.route(
        event(EventKind.COMMAND, command=command, args="set style@fedi Short.", author=MODERATOR)
    )
    assert "style@fedi" in ok[0].text and "v1" in ok[0].text  # type: ignore[union-attr]
    refused = await router.route(
        event(EventKind.COMMAND, command=command, args="set style@nope x", author=MODERATOR)
    )
    assert "is not a platform" in refused[0].text and "fedi" in refused[0].text  # type: ignore[union-attr]


async def test_feed_labels_links_and_digests_follow_its_facts(fedi: Services) -> None:
    feed = feed_of(fedi)
    now = time.time()
    post = item(
        LONG[:900],
        platform="fedi",
        community="social.example",
        channel="news",
        message_id="77",
        created_at=now - 60,
    )
    await feed.store.ingest([post])
    await set_visibility(fedi.redis, "fedi:social.example", "public")  # readers elsewhere see public feeds
    [story] = (await feed.timelines.page(Scope(), "new")).stories
    assert story.lead.link(fedi.platforms) == "https://social.example/@news/77"
    shown = await Router(fedi).route(event(EventKind.COMMAND, command="feed", args="new fedi"))
    assert "Fediverse" in shown[0].text and "https://social.example/@news/77" in shown[0].text  # type: ignore[union-attr]
    meta = FeedMeta("t", "d", "http://h/", "http://h/feed.json", fedi.platforms)
    rendered = render_json_feed([story], meta)
    assert rendered["items"][0]["url"] == "https://social.example/@news/77"
    assert "Fediverse" in str(rendered["items"][0])
    digest = await feed.digests.build(Scope("platform", "fedi"), now - 3600, now)
    assert "Fediverse" in digest.text and "https://social.example/@news/77" in digest.text
    assert feed.digests.capabilities("fedi") == FEDI.capabilities
    assert all(len(chunk) <= 500 for chunk in digest.chunks(FEDI.capabilities))


async def test_digests_by_direct_message_only_where_it_has_them(fedi: Services) -> None:
    fedi.platforms.register(PlatformFacts("nodm", "NoDM", Capabilities(direct_messages=False)))
    refused = await Router(fedi).route(
        event(EventKind.COMMAND, command="subscribe", args="daily dm", platform="nodm", community="c")
    )
    assert "can't send direct messages on NoDM" in refused[0].text  # type: ignore[union-attr]
    assert not isinstance(refused[0], DirectMessage)


def test_every_known_platform_is_in_the_catalog_with_its_adapters_facts() -> None:
    catalog = registry.catalog()
    assert set(catalog.names) == set(registry.ALL)
    assert catalog["telegram"].capabilities.max_text == 4000  # 4096 UTF-16 units less the mention headroom
    assert catalog["x"].approval_by_default and not catalog["discord"].approval_by_default
    assert catalog.label("x") == "X"


def test_an_unknown_platform_gets_conservative_facts() -> None:
    facts = PlatformCatalog()["newer"]
    assert facts.capabilities == UNKNOWN and facts.label == "Newer" and facts.permalink("a", "b", "c") == ""
