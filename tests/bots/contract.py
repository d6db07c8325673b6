"""The contract every adapter's tests subclass: the same Actions must reach people intact on each platform.

A subclass provides ``harness`` (an async fixture yielding a ``Harness``): the real adapter wired to its
loopback fake, and a way to read back what a person would see.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from core.contract import Action, Choice, OfferChoices, Receipt, Reply, SendImage
from core.platform import Platform, degrade

HOSTILE = 'Tom & Jerry <b>bold?</b> *not md* _x_ `code` [link](http://e.x) <script>alert(1)</script> \\ ">'
PNG_1PX = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


@dataclass
class Harness:
    platform: Platform
    seen: Callable[[], Awaitable[list[str]]]  # texts (and captions) people saw, in order
    target: dict[str, str]  # platform/community/channel of a chat the bot can write to


class PlatformContract:
    async def _send(self, harness: Harness, action: Action) -> list[Receipt]:
        async def blob(_: str) -> bytes:
            return PNG_1PX

        return [
            await harness.platform.deliver(part, blob)
            for part in degrade(action, harness.platform.capabilities)
        ]

    async def test_reply_arrives_verbatim_with_a_message_id(self, harness: Harness) -> None:
        [receipt] = await self._send(harness, Reply(**harness.target, text=HOSTILE))
        assert receipt.message_ids and all(receipt.message_ids)
        assert HOSTILE in (await harness.seen())[-1]

    async def test_long_text_is_split_within_the_limit_and_complete(self, harness: Harness) -> None:
        text = " ".join(f"Sentence {i} of a long answer." for i in range(600))
        receipts = await self._send(harness, Reply(**harness.target, text=text))
        assert len(receipts) > 1
        seen = await harness.seen()
        limit = harness.platform.capabilities.max_text
        tail = seen[-len(receipts) :]
        assert all(len(t) <= limit + 40 for t in tail)  # platform framing (e.g. console prefixes) aside
        assert "Sentence 0 of" in tail[0] and "Sentence 599 of a long answer." in tail[-1]

    async def test_choices_reach_people_as_buttons_or_numbered_text(self, harness: Harness) -> None:
        choices = (Choice(label="Post here", payload="post:d1"), Choice(label="Revise", payload="revise:d1"))
        await self._send(harness, OfferChoices(**harness.target, text="Your draft", choices=choices))
        assert "Your draft" in (await harness.seen())[-1]

    async def test_image_with_alt_text(self, harness: Harness) -> None:
        [receipt] = await self._send(
            harness, SendImage(**harness.target, blob="b", alt_text="A card", caption="Launch day")
        )
        assert receipt.message_ids
