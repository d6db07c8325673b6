"""/dashboard, /reject and the feed's /feed visibility and /feed url, through the real router."""

from __future__ import annotations

import time

from core.assistant.drafts import Draft, ShareTarget
from core.contract import Action, Author, DirectMessage, EventKind, OfferChoices, Reply
from core.router import Router
from core.services import Services
from core.web.signing import feed_token_community
from core.web.visibility import is_public
from tests.core.feed.helpers import CountingSummarizer, item
from tests.support import assistant_of, event, feed_of


async def run(
    services: Services,
    command: str,
    args: str = "",
    *,
    moderator: bool = False,
    user: str = "u1",
    community: str = "c1",
    private: bool = False,
) -> list[Action]:
    ev = event(
        EventKind.COMMAND,
        command=command,
        args=args,
        text=f"/{command} {args}",
        private=private,
        community=community,
        author=Author(id=user, name=user.title(), is_moderator=moderator),
    )
    return await Router(services).route(ev)


def text(actions: list[Action]) -> str:
    """What the person reads: replies and the text of offered choices (a digest ends with its buttons)."""
    return "\n".join(a.text for a in actions if isinstance(a, Reply | OfferChoices))


async def test_dashboard_links_go_privately_and_are_rate_limited(services: Services) -> None:
    services.settings = services.settings.model_copy(update={"http_port": 8123})
    actions = await run(services, "dashboard")
    [dm] = [a for a in actions if isinstance(a, DirectMessage)]
    assert dm.user == "u1" and "http://127.0.0.1:8123/signin?t=" in dm.text and "(member of" in dm.text
    assert "signin" not in text(actions) and "private message" in text(actions)
    in_dm = await run(services, "dashboard", private=True, moderator=True)
    assert len(in_dm) == 1 and isinstance(in_dm[0], DirectMessage) and "(moderator of" in in_dm[0].text
    for _ in range(3):
        await run(services, "dashboard")
    assert "several sign-in links" in text(await run(services, "dashboard"))
    services.settings = services.settings.model_copy(update={"http_port": 0})
    assert "turned off" in text(await run(services, "dashboard", user="u2"))
    assert "Use /dashboard" in text(await run(services, "dashboard", "please"))


async def test_feed_visibility_is_for_moderators_and_audited(services: Services) -> None:
    assert "private" in text(await run(services, "feed", "visibility"))
    refused = text(await run(services, "feed", "visibility public"))
    assert refused == "Only moderators of this community can use /feed visibility."
    assert not await is_public(services.redis, "test:c1")
    assert "now public" in text(await run(services, "feed", "visibility public", moderator=True))
    assert "already public" in text(await run(services, "feed", "visibility public", moderator=True))
    assert await is_public(services.redis, "test:c1") and not await is_public(services.redis, "test:c2")
    assert "Use /feed visibility public" in text(
        await run(services, "feed", "visibility open", moderator=True)
    )
    audit = text(await run(services, "prompt", "audit", moderator=True))
    assert "U1 (test) · setting setting:feed_visibility = public" in audit
    assert "now private" in text(await run(services, "feed", "visibility private", moderator=True))
    assert not await is_public(services.redis, "test:c1")


async def test_feed_url_is_personal_private_and_revocable(services: Services) -> None:
    actions = await run(services, "feed", "url", user="u9")
    [dm] = [a for a in actions if isinstance(a, DirectMessage)]
    token = dm.text.split("token=")[1].split()[0]
    assert dm.user == "u9" and "scope=community%3Atest%3Ac1" in dm.text
    assert await feed_token_community(services.redis, token) == "test:c1"
    assert "no longer work" in text(await run(services, "feed", "url revoke", user="u9"))
    assert await feed_token_community(services.redis, token) is None


async def test_chat_feed_pages_show_only_what_the_community_may_see(services: Services) -> None:
    now = time.time()
    await feed_of(services).store.ingest(
        [
            item(
                "Our own community's note about the garden.", platform="test", community="c1", created_at=now
            ),
            item(
                "Another community's PRIVATE plans for the roof.",
                platform="test",
                community="c2",
                created_at=now - 1,
            ),
            item(
                "A public community's bake sale on Sunday.",
                platform="test",
                community="c3",
                created_at=now - 2,
            ),
        ]
    )
    await run(services, "feed", "visibility public", moderator=True, community="c3")
    for args in ("new all", "hot all", "top all"):
        shown = text(await run(services, "feed", args))
        assert "garden" in shown and "bake sale" in shown and "PRIVATE" not in shown, args
    summarizer = CountingSummarizer()
    services.summarizer.provide(summarizer)  # the tests' stand-in for the model
    digest = text(await run(services, "digest", "all"))
    assert "garden" in digest and "bake sale" in digest and "PRIVATE" not in digest
    assert not any("PRIVATE" in t for t in summarizer.texts)  # nor was it sent to the model


async def test_reject_turns_down_a_waiting_share(services: Services) -> None:
    assistant = assistant_of(services)
    assert assistant is not None
    draft = await assistant.store.save(
        Draft(community_key="test:c1", platform="test", channel="general", author_id="u2", parts=["A post."])
    )
    await assistant.store.add_pending(draft, ShareTarget(platform="x", community="acct", channel="main"))
    assert "Only moderators" in text(await run(services, "reject", draft.id))
    assert "nothing waiting" in text(await run(services, "reject", draft.id, moderator=True, community="c2"))
    said = text(await run(services, "reject", draft.id, moderator=True))
    assert said == f"Draft {draft.id} will not be published to x:acct/main."
    assert await assistant.store.pending("test:c1", draft.id) == []
    assert "nothing waiting" in text(await run(services, "approve", draft.id, moderator=True))


async def test_edit_replaces_a_drafts_text_as_its_next_version_and_moves_its_waiting_shares(
    services: Services,
) -> None:
    assistant = assistant_of(services)
    assert assistant is not None
    draft = await assistant.store.save(
        Draft(community_key="test:c1", platform="test", channel="general", author_id="u2", parts=["A post."])
    )
    x = ShareTarget(platform="x", community="acct", channel="main")
    await assistant.store.add_pending(draft, x)
    assert "Only the person who asked" in text(await run(services, "edit", f"{draft.id} Mine now."))
    assert "There is no draft" in text(await run(services, "edit", f"{draft.id} Hi.", community="c2"))
    assert text(await run(services, "edit", draft.id, moderator=True)).startswith("Use /edit <draft id>")
    assert "already says that" in text(await run(services, "edit", f"{draft.id} A post.", moderator=True))
    too_long = text(await run(services, "edit", f"{draft.id} {'x' * 1001}", moderator=True))
    assert too_long == "That is 1001 characters; a post on Test holds at most 1000. Shorten it."
    assert await assistant.store.pending("test:c1", draft.id) == [x]  # refusals change nothing

    actions = await run(services, "edit", f"{draft.id} Better words,\nreally.", user="u2")  # its author
    shown = text(actions)
    assert f"replacing draft {draft.id}; waiting for approval to x:acct/main" in shown
    new_id = next(a.ref for a in actions if isinstance(a, Reply) and a.ref).split(":")[1]
    edited = await assistant.store.get("test:c1", new_id)
    assert edited is not None and edited.parts == ["Better words,\nreally."]
    assert (edited.parent, edited.version, edited.author_id) == (draft.id, 2, "u2")
    assert await assistant.store.pending("test:c1", draft.id) == []
    assert await assistant.store.pending("test:c1", new_id) == [x]
    audit = await services.prompts.store.audit("test:c1")
    assert (audit[0].spec, audit[0].op, audit[0].editor.id) == (f"draft:{draft.id}", "edit", "u2")

    thread = await assistant.store.save(
        Draft(
            community_key="test:c1", platform="test", channel="g", author_id="u2", kind="thread", parts=["1"]
        )
    )
    actions = await run(services, "edit", f"{thread.id} First part.\n\n  \nSecond part.", moderator=True)
    new_thread = next(a.ref for a in actions if isinstance(a, Reply) and a.ref).split(":")[1]
    stored = await assistant.store.get("test:c1", new_thread)
    assert stored is not None and stored.parts == ["First part.", "Second part."]
    picture = await assistant.store.save(
        Draft(community_key="test:c1", platform="test", channel="g", author_id="u2", kind="image")
    )
    assert "is an image" in text(await run(services, "edit", f"{picture.id} words", moderator=True))
