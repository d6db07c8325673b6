"""Done-when: the web app in a real browser (Debian's Chromium driven by Playwright) against a running Chorus.

The chat is the console bot on the real bus; the model is the loopback fake OpenAI (it echoes its system
prompt, so a draft shows which persona it was written with).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from core import keys
from core.contract import Author, EventKind
from core.prompts.slots import SlotSpec
from core.router import Router
from core.settings import Settings
from core.web.signing import digest
from tests.core.web.stack import COMMUNITY, Stack, browser, running
from tests.fakes.openai_api import moderation
from tests.support import event, feed_of

pytestmark = pytest.mark.timeout(240)
DASH = f"/m/console/{COMMUNITY}"


@pytest.fixture
async def stack(settings: Settings, redis: aioredis.Redis) -> AsyncIterator[Stack]:
    async with running(settings, redis) as s:
        yield s


@pytest.fixture
async def chromium() -> AsyncIterator[Any]:
    async with browser() as b:
        yield b


async def sign_in(chromium: Any, link: str) -> Any:
    """A fresh browser context (its own cookies) signed in through ``link``; returns its page."""
    context = await chromium.new_context()
    page = await context.new_page()
    await page.goto(link)
    await page.click("#signin")
    await page.wait_for_load_state()
    return page


def systems(stack: Stack, about: str) -> list[str]:
    """The system prompts of the chat calls whose request mentioned ``about``."""
    out = []
    for call in stack.api.calls("chat"):
        messages = {m["role"]: m["content"] for m in (call.json or {}).get("messages", [])}
        if about in messages.get("user", ""):
            out.append(messages.get("system", ""))
    return out


async def test_moderator_edits_the_persona_the_next_draft_uses_it_and_rolls_it_back(
    stack: Stack, chromium: Any
) -> None:
    page = await sign_in(chromium, await stack.link())
    assert page.url.endswith(DASH) and "Dashboard" in await page.title()
    await page.goto(stack.base + DASH + "/prompts/persona")
    await page.fill("#text", "You are Zorblax. Always sign as Zorblax.")
    await page.click("#save")
    assert (await page.text_content("#result") or "").strip() == "The persona prompt is now v1."

    printed = await stack.type("@chorus write a post about our launch")
    assert "Zorblax" in printed
    assert systems(stack, "our launch")[0].startswith("You are Zorblax. Always sign as Zorblax.")

    # a text the chat command refuses is refused here with the chat's own message, and nothing is saved
    chat = await Router(stack.services).route(
        event(
            EventKind.COMMAND,
            command="prompt",
            args="set persona You are {nope}.",
            platform="console",
            community=COMMUNITY,
            author=Author(id="ada", is_moderator=True),
        )
    )
    await page.fill("#text", "You are {nope}.")
    await page.click("#save")
    assert (await page.text_content("#result") or "").strip() == chat[0].text.strip()  # type: ignore[union-attr]
    assert await page.input_value("#text") == "You are {nope}."  # the refused text stays in the editor

    await page.fill("#text", "You are Captain Blue.")
    await page.click("#save")
    assert "now v2" in (await page.text_content("#result") or "")
    await page.click("button.rollback[data-version='1']")
    assert "back to the text of v1 (recorded as v3)" in (await page.text_content("#result") or "")
    assert "v3 (in force)" in (await page.text_content("table.history") or "")
    await page.goto(stack.base + DASH + "/prompts/persona?a=2&b=3")
    assert "[-Captain Blue.-]" in (await page.text_content("#diff") or "")

    await stack.type("@chorus write a post about our picnic")
    assert systems(stack, "our picnic")[0].startswith("You are Zorblax.")
    audit = await stack.type("/prompt audit")
    assert "rollback persona v3" in audit or "rollback persona" in audit


async def test_prompt_edits_are_checked_live_with_the_chat_messages_and_work_without_script(
    stack: Stack, chromium: Any
) -> None:
    page = await sign_in(chromium, await stack.link())
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.on("console", lambda msg: problems.append(msg.text) if msg.type in ("error", "warning") else None)
    requested: list[str] = []
    page.on("request", lambda req: requested.append(req.url))
    await page.goto(stack.base + DASH + "/prompts/persona")

    async def chat_says(text: str) -> str:
        answer = await Router(stack.services).route(
            event(
                EventKind.COMMAND,
                command="prompt",
                args=f"set persona {text}",
                platform="console",
                community=COMMUNITY,
                author=Author(id="ada", is_moderator=True),
            )
        )
        return answer[0].text  # type: ignore[union-attr]

    bad = "You are {nope} and {bot_name"
    await page.fill("#text", bad)  # typing: the check runs after a pause, nothing is submitted
    await page.wait_for_selector("#live-check[data-state=refused]")
    assert await page.text_content("#live-check") == await chat_says(bad)  # word for word
    good = "You are {bot_name}, the helper of {community}."
    await page.fill("#text", good)
    await page.wait_for_selector("#live-check[data-state=ok]")
    assert await page.text_content("#live-check") == "The persona prompt can be saved as it is."
    await page.fill("#text", "")
    await page.wait_for_selector("#live-check[data-state=refused]")
    assert await page.text_content("#live-check") == await chat_says("")
    versions, _ = await stack.services.prompts.store.versions(
        f"console:{COMMUNITY}", SlotSpec.parse("persona", None)
    )
    assert versions == []  # checking saved nothing (the chat's refusals above neither)
    assert problems == [] and all(url.startswith(stack.base) for url in requested)  # CSP kept, all local
    assert any(url.endswith("/static/prompt.js") for url in requested)

    # the endpoint is a moderator's POST with the session's CSRF token, like every write
    check = stack.base + DASH + "/prompts/persona/check"
    token = await page.input_value("#prompt-form input[name=csrf]")
    assert (await page.request.post(check, form={"text": good})).status == 403
    assert (await page.request.post(check, form={"text": good, "csrf": token})).ok
    member = await sign_in(chromium, await stack.link(user="bob", moderator=False))
    member_token = await member.input_value("form[action='/signout'] input[name=csrf]")
    refused = await member.request.post(check, form={"text": good, "csrf": member_token})
    assert refused.status == 403 and "Only moderators" in await refused.text()

    # without JavaScript the same page saves and refuses through the form
    context = await chromium.new_context(java_script_enabled=False)
    plain = await context.new_page()
    await plain.goto(await stack.link())
    await plain.click("#signin")
    await plain.goto(stack.base + DASH + "/prompts/persona")
    await plain.fill("#text", bad)
    await plain.click("#save")
    assert (await plain.text_content("#result") or "").strip() == (await chat_says(bad)).strip()
    assert await plain.text_content("#live-check") == ""
    await plain.fill("#text", good)
    await plain.click("#save")
    assert (await plain.text_content("#result") or "").strip() == "The persona prompt is now v1."


async def _pending_draft(stack: Stack, about: str) -> str:
    """A draft bob wrote and asked to share, waiting for a moderator's approval: its id."""
    await stack.type("/prompt approval on")
    printed = await stack.say_as(f"@chorus write a post about {about}", user="bob")
    draft_id = re.search(r"Draft ([0-9a-f]{16})", printed).group(1)  # type: ignore[union-attr]
    printed = await stack.say_as(f"/share {draft_id} console announcements", user="bob")
    assert "needs a moderator's approval" in printed
    return draft_id


async def test_approving_a_pending_draft_posts_it_once(stack: Stack, chromium: Any) -> None:
    draft_id = await _pending_draft(stack, "the harbour festival")
    page = await sign_in(chromium, await stack.link())
    await page.goto(stack.base + DASH + "/queue")
    card = page.locator(f"#draft-{draft_id}")
    assert "#harbour" in (await card.text_content() or "") and "bob" in (await card.text_content() or "")
    await card.locator("button.approve").click()
    assert "is on its way to console:local/announcements" in (await page.text_content("#result") or "")
    assert await page.locator(f"#draft-{draft_id}").count() == 0

    await stack._wait_for(lambda: "(posted to #announcements)" in stack.output(), 20, "the approved post")
    # approving again (a second moderator, a resubmitted form) publishes nothing more
    await page.goto(stack.base + DASH + "/queue")
    token = await page.input_value("form[action='/signout'] input[name=csrf]")
    again = await page.request.post(
        stack.base + DASH + "/queue", form={"csrf": token, "op": "approve", "draft": draft_id}
    )
    assert again.status == 200 and "has nothing waiting for approval" in await again.text()
    await stack.type("/help")
    assert stack.output().count("(posted to #announcements)") == 1


async def test_a_pending_draft_is_edited_in_the_browser_then_approved_as_edited(
    stack: Stack, chromium: Any
) -> None:
    draft_id = await _pending_draft(stack, "the lighthouse tour")
    page = await sign_in(chromium, await stack.link())
    await page.goto(stack.base + DASH + "/queue")
    card = page.locator(f"#draft-{draft_id}")
    original = await page.input_value(f"#text-{draft_id}")
    assert "#lighthouse" in original
    too_long = "x" * 4001  # the console holds 4000 characters: refused with the chat's message, text kept
    await card.locator("textarea").fill(too_long)
    await card.locator("button.approve").click()
    result = await page.text_content("#result") or ""
    assert "That is 4001 characters; a post on Console holds at most 4000. Shorten it." in result
    assert await page.input_value(f"#text-{draft_id}") == too_long  # nothing lost
    assert await page.locator(f"#draft-{draft_id}").count() == 1  # still waiting, unchanged

    edited = "Lighthouse tour on Saturday at 10.\nBring <b>good</b> shoes & water."
    await page.locator(f"#text-{draft_id}").fill(edited)
    await page.locator(f"#draft-{draft_id} button.approve").click()
    result = await page.text_content("#result") or ""
    new_id = re.search(r"Draft ([0-9a-f]{16}) \(post", result).group(1)  # type: ignore[union-attr]
    assert new_id != draft_id and f"replacing draft {draft_id}" in result
    assert f"Draft {new_id} is on its way to console:local/announcements" in result
    assert await page.locator(".pending").count() == 0  # neither the old nor the new version waits

    await stack._wait_for(lambda: "(posted to #announcements)" in stack.output(), 20, "the approved post")
    posted = [line for line in stack.output().splitlines() if "(posted to #announcements)" in line]
    assert len(posted) == 1 and posted[0].endswith("Lighthouse tour on Saturday at 10.")  # as edited
    assert stack.output().split("(posted to #announcements) ")[1].split("\n[#")[0] == edited  # exactly
    audit = await stack.type("/prompt audit")
    assert f"ada (console) · edit draft:{draft_id} = now draft {new_id} (v2)" in audit


async def test_the_dashboard_charts_refusals_and_cancels_anyones_subscription(
    stack: Stack, chromium: Any
) -> None:
    stack.api.script("moderations", moderation("violence"))  # the next request is refused by moderation
    assert "I can't write that" in await stack.say_as("@chorus write a post about a brawl", user="bob")
    for _ in range(6):  # five sign-in links per ten minutes: the sixth is over the quota
        said = await stack.say_as("/dashboard", user="carol")
    assert "several sign-in links" in said
    assert "Subscribed" in await stack.say_as("/subscribe daily 08:00", user="bob")
    assert "Subscribed" in await stack.say_as("/subscribe weekly monday 09:00", user="dan")
    assert "Subscribed" in await stack.say_as("/subscribe daily 07:00", user="eve", community="elsewhere")

    page = await sign_in(chromium, await stack.link())
    row = (await page.locator("#usage tr").nth(1).inner_text()).split("\t")
    assert row[-3:] == ["1", "0", "1"]  # today: one over a quota, none over the money cap, one by moderation
    titles = await page.eval_on_selector_all(
        "svg.chart rect.refused title", "els => els.map(e => e.textContent)"
    )
    assert titles[-1].endswith("2 refused (1 over a quota, 0 over the money cap, 1 by moderation)")

    listed = await page.inner_text("#subscriptions")
    assert "Bob" in listed and "Dan" in listed and "Eve" not in listed  # this community's, everyone's
    bob = next(
        s
        for s in await feed_of(stack.services).subscriptions.for_community("console", COMMUNITY)
        if s.user == "bob"
    )
    await page.locator(f"#sub-{bob.id} button.cancel").click()
    assert (await page.text_content("#result") or "").startswith(
        "Cancelled Bob's subscription: daily at 08:00"
    )
    listed = await page.inner_text("#subscriptions")
    assert "Bob" not in listed and "Dan" in listed
    assert "You have no digest subscriptions here" in await stack.say_as("/subscriptions", user="bob")
    audit = await stack.type("/prompt audit")
    assert f"ada (console) · cancel subscription:{bob.id} = Bob" in audit


async def test_a_member_cannot_open_or_submit_moderator_pages(stack: Stack, chromium: Any) -> None:
    page = await sign_in(chromium, await stack.link(user="bob", moderator=False))
    assert "/?scope=community:console:local" in page.url
    token = await page.input_value("form[action='/signout'] input[name=csrf]")
    for path in (DASH, DASH + "/prompts/persona", DASH + "/queue"):
        response = await page.goto(stack.base + path)
        assert response.status == 403 and "Only moderators" in await page.content()
    for path, form in (
        (DASH + "/feed", {"action": "visibility", "value": "public"}),
        (DASH + "/prompts/persona", {"op": "set", "text": "You are Mallory.", "reason": ""}),
    ):
        answer = await page.request.post(stack.base + path, form={"csrf": token, **form})
        assert answer.status == 403
    assert not await stack.redis.sismember("chorus:{feed}:public", "console:local")
    assert "Mallory" not in await stack.type("/prompt show persona")


async def test_one_communitys_session_cannot_read_or_change_another(stack: Stack, chromium: Any) -> None:
    await stack.say_as(
        "@chorus write a post about the secret merger", user="eve", community="other", moderator=True
    )
    page = await sign_in(chromium, await stack.link(user="eve", moderator=True, community="other"))
    assert page.url.endswith("/m/console/other")
    token = await page.input_value("form[action='/signout'] input[name=csrf]")
    for path in (DASH, DASH + "/prompts/persona", DASH + "/queue"):
        response = await page.goto(stack.base + path)
        assert response.status == 403 and "another community" in await page.content()
    answer = await page.request.post(
        stack.base + DASH + "/feed", form={"csrf": token, "action": "visibility", "value": "public"}
    )
    assert answer.status == 403
    assert not await stack.redis.sismember("chorus:{feed}:public", "console:local")
    # and their own dashboard works
    await page.goto(stack.base + "/m/console/other")
    await page.click("#toggle-visibility")
    assert "The feed is now public" in (await page.text_content("#result") or "")


async def test_used_expired_and_forged_links_are_refused_and_forms_need_their_csrf_token(
    stack: Stack, chromium: Any
) -> None:
    link = await stack.link()
    page = await sign_in(chromium, link)
    assert page.url.endswith(DASH)
    used = await sign_in(chromium, link)
    assert "Link not valid" in await used.content() and not used.url.endswith(DASH)

    expiring = await stack.link()
    token = expiring.split("t=")[1]
    await stack.redis.pexpire(keys.signin_link("console:local", digest(token.split(".")[1])), 1)
    expired = await sign_in(chromium, expiring)
    assert "Link not valid" in await expired.content()

    fresh = await stack.link()
    head, secret = fresh.split("t=")[1].split(".")
    other = keys.signin_link("console:other", "x")  # a link for one community replayed for another
    assert other
    for forged in (f"{head}.{secret[:-3]}abc", f"{head}x.{secret}", "nonsense", f"{head}.{'A' * 32}"):
        refused = await sign_in(chromium, f"{stack.base}/signin?t={forged}")
        assert "Link not valid" in await refused.content()
    ok = await sign_in(chromium, fresh)  # the forgeries did not burn the real link
    assert ok.url.endswith(DASH)

    # a form without its CSRF token (or with another session's) is refused, and nothing changes
    for form in (
        {"action": "visibility", "value": "public"},
        {"action": "visibility", "value": "public", "csrf": "forged"},
    ):
        answer = await page.request.post(stack.base + DASH + "/feed", form=form)
        assert answer.status == 403 and "security token" in await answer.text()
    bare = await page.context.request.post(stack.base + "/signin", form={"t": fresh.split("t=")[1]})
    assert bare.status == 403
    assert not await stack.redis.sismember("chorus:{feed}:public", "console:local")


HOSTILE = [
    "<script>window.__pwned = 1</script>",
    '<img src=x onerror="window.__pwned = 1">',
    '"><svg onload="window.__pwned = 1"></svg><a href="javascript:window.__pwned=1">click</a>',
    "{{ 7 * 7 }} {% for x in range(3) %}loop{% endfor %} ${7*7} <style>body{display:none}</style>",
    "\u202eevil right-to-left override \u2066isolate\u2069 \u200f\u061c",
    "W" * 50_000,  # one 50 KB line without a space
    "@everyone <b>bold</b> &amp; &lt;not a tag&gt; ' \" `",
]


async def _pwned(page: Any) -> Any:
    return await page.evaluate("window.__pwned")


async def _fits(page: Any) -> bool:
    return bool(await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"))


async def test_the_hostile_corpus_runs_nothing_and_breaks_no_layout(stack: Stack, chromium: Any) -> None:
    from core.assistant.drafts import Draft, ShareTarget
    from core.feed.items import FeedItem
    from core.feed.timelines import Scope
    from core.web.visibility import set_visibility
    from tests.support import assistant_of, feed_of

    feed = feed_of(stack.services)
    items = [
        FeedItem(
            platform="console",
            community=COMMUNITY,
            channel="general",
            message_id=f"h{n}",
            author_id=f"u{n}",
            author_name=text[:300],
            text=text,
            url="javascript:window.__pwned=1",
            media=(("image", "javascript:window.__pwned=1"), ("image", 'https://e.x/a.png"onerror="x')),
        )
        for n, text in enumerate(HOSTILE)
    ]
    await feed.store.ingest(items)
    await set_visibility(stack.redis, f"console:{COMMUNITY}", "public")
    for text in HOSTILE[:3] + HOSTILE[4:6]:
        await stack.type(f'/prompt set persona -m "{text[:150].replace(chr(34), "")}" {text[:3000]}')
    assistant = assistant_of(stack.services)
    assert assistant is not None
    draft = Draft(
        community_key=f"console:{COMMUNITY}",
        platform="console",
        channel="console",
        author_id=HOSTILE[0],
        parts=HOSTILE[:5],
    )
    await assistant.store.save(draft)
    await assistant.store.add_pending(
        draft, ShareTarget(platform="console", community=COMMUNITY, channel="x")
    )

    dialogs: list[str] = []
    anonymous = await (await chromium.new_context()).new_page()
    anonymous.on("dialog", lambda d: dialogs.append(d.message))
    page = await sign_in(chromium, await stack.link())
    page.on("dialog", lambda d: dialogs.append(d.message))
    stories = (await feed.timelines.page(Scope(), "new", 10)).stories
    checked = [
        (anonymous, "/?order=new"),
        (anonymous, "/?order=hot"),
        (anonymous, f"/story/{stories[0].id}"),
        (page, "/?order=new"),
        (page, DASH),
        (page, DASH + "/prompts/persona"),
        (page, DASH + "/prompts/persona?a=1&b=current"),
        (page, DASH + "/queue"),
    ]
    for browser_page, path in checked:
        response = await browser_page.goto(stack.base + path)
        assert response.status == 200, path
        assert await _pwned(browser_page) is None, path
        assert await _fits(browser_page), f"{path} overflows horizontally"
        assert await browser_page.locator("main script, main [onerror], main [onload]").count() == 0, path
    feed_text = await anonymous.evaluate("document.body.innerText")
    assert "<script>window.__pwned = 1</script>" in (
        await page.goto(stack.base + "/?order=new") and await page.inner_text("main")
    )
    assert "{{ 7 * 7 }}" in await page.inner_text("main")  # shown as written, never evaluated
    assert feed_text and not dialogs
    assert await page.locator("a[href^='javascript']").count() == 0
    sources = await page.eval_on_selector_all("img", "els => els.map(e => e.getAttribute('src'))")
    assert sources and all(s == 'https://e.x/a.png"onerror="x' for s in sources)  # javascript: never an image
    await page.goto(stack.base + DASH + "/queue")
    assert (
        "<img src=x onerror" in await page.locator(".pending textarea").input_value()
    )  # text, in its editor


async def test_anonymous_visitors_see_only_public_communities(stack: Stack, chromium: Any) -> None:
    from core.web.visibility import set_visibility
    from tests.core.feed.helpers import item
    from tests.support import feed_of

    await feed_of(stack.services).store.ingest(
        [
            item("Open news: the tram line reopens on Monday.", platform="console", community="open"),
            item(
                "SECRET: the tenants' association meets on Thursday.", platform="console", community=COMMUNITY
            ),
        ]
    )
    await set_visibility(stack.redis, "console:open", "public")
    page = await (await chromium.new_context()).new_page()
    for order in ("hot", "new", "top"):
        for scope in ("all", "platform:console", "community:console:open"):
            await page.goto(f"{stack.base}/?order={order}&scope={scope}")
            text = await page.inner_text("main")
            assert "tram line" in text and "SECRET" not in text, (order, scope)
    options = await page.locator("select[name=scope] option").all_inner_texts()
    assert "console:local" not in options and "console:open" in options
    response = await page.goto(f"{stack.base}/?scope=community:console:{COMMUNITY}")
    assert response.status == 404 and "SECRET" not in await page.content()
    # signed in from the private community, its own feed joins the public ones
    member = await sign_in(chromium, await stack.link(user="bob", moderator=False))
    await member.goto(f"{stack.base}/?order=new&scope=all")
    text = await member.inner_text("main")
    assert "tram line" in text and "SECRET" in text
