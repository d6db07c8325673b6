"""Drafts shown while written, on Discord: the real adapter (discord.py) against FakeDiscord, the assistant
streaming from FakeOpenAI word by word, through the real bus, worker, Sender and live stream.

A mention gets a placeholder message that is edited (at most about once a second, inside the channel's
edit bucket), then becomes the finished draft, followed by its image and buttons. A 429 from Discord
delays the next update and never loses the finished draft.
"""

from __future__ import annotations

from tests.bots.discord.harness import BOT_ID, CHANNEL_ID, People, custom_ids, running, shown
from tests.fakes.discord_api import FakeDiscord
from tests.fakes.openai_api import FakeOpenAI, streamed

POST = (
    "Our community garden opens this Saturday at 10am. Bring gloves, seeds and a friend, and help us "
    "plant the first beds together. Everyone is welcome. #garden"
)


def _created(dc: FakeDiscord) -> list[int]:
    return list(dict.fromkeys(m.id for m in dc.messages if m.channel_id == CHANNEL_ID))


async def test_mention_shows_a_placeholder_updated_then_the_final_draft_with_buttons(
    dc: FakeDiscord, openai_services: tuple[FakeOpenAI, object], people: People
) -> None:
    api, services = openai_services
    api.script("chat", streamed(POST, chunk_delay=0.2))  # ~5 s of writing
    async with running(dc, services, DISCORD_LIVE_DRAFTS=True) as run:  # type: ignore[arg-type]
        mention = await dc.message_create(
            CHANNEL_ID, people.alice, f"<@{BOT_ID}> write a post about the garden"
        )
        await run.wait_for(lambda: len(_created(dc)) >= 3, "the draft, its image and buttons", timeout=30)
        await run.settled()
    draft_id, image_id, choices_id = _created(dc)
    versions = [m for m in dc.messages if m.id == draft_id]
    assert versions[0].action == "create" and versions[-1].action == "edit"
    partial = [shown(v) for v in versions[:-1]]
    assert len(partial) >= 2 and all(p.endswith("…") and len(p) < len(POST) for p in partial)
    assert POST in shown(versions[-1]) and versions[-1].embeds  # the finished draft, as a draft embed
    assert versions[0].message_reference and int(versions[0].message_reference["message_id"]) == int(
        mention["id"]
    )
    edits = [v for v in versions if v.action == "edit"]
    assert dc.edit_rate_limited == 0  # the interval kept the edits inside the channel's bucket
    assert len(edits) <= 8  # about one edit a second over ~5 s of writing, not one per word (~25)
    (image,) = [m for m in dc.messages if m.id == image_id]
    (choices,) = [m for m in dc.messages if m.id == choices_id]
    assert image.attachments and len(custom_ids(choices)) >= 3


async def test_a_429_while_streaming_delays_updates_and_never_loses_the_final_draft(
    dc: FakeDiscord, openai_services: tuple[FakeOpenAI, object], people: People
) -> None:
    api, services = openai_services
    api.script("chat", streamed(POST, chunk_delay=0.15))
    dc.rate_limit_next(f"PATCH /channels/{CHANNEL_ID}/messages", retry_after=1.5, times=2)
    async with running(dc, services, DISCORD_LIVE_DRAFTS=True) as run:  # type: ignore[arg-type]
        await dc.message_create(CHANNEL_ID, people.alice, f"<@{BOT_ID}> write a post about the garden")
        await run.wait_for(lambda: len(_created(dc)) >= 3, "the whole draft", timeout=40)
        await run.settled(timeout=30)
    draft_id = _created(dc)[0]
    versions = [m for m in dc.messages if m.id == draft_id]
    limited = [r for r in dc.requests if r.method == "PATCH" and r.status == 429]
    assert len(limited) == 2  # Discord said "slow down" twice while the draft was shown ...
    assert POST in shown(versions[-1])  # ... and the finished draft is there all the same, once
    assert len(_created(dc)) == 3
    assert not any(m for m in dc.messages if m.id not in _created(dc))
