"""Whatever people type reaches exactly one handler or a clear message: command words in any case and
spelling, unknown commands, over-long input; the router never raises and always answers in place."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from core import builtin
from core.bus import Bus
from core.contract import Action, Event, EventKind, Reply
from core.redis_server import EmbeddedRedis, connect
from core.router import MAX_INPUT_CHARS, Router
from core.services import Services
from core.settings import Settings
from tests.support import CATALOG, event

_PIECES = st.sampled_from(
    [" ", "\n", "/", "help", "HELP", "/help", "/Help ", "choose", "/choose 1", "/choose x", "nonsense",
     "/nonsense", "@", "-", "_", "😀", "/" + "a" * 40, "x" * 50]
)  # fmt: skip
typed = st.one_of(st.lists(_PIECES | st.text(max_size=4), max_size=20).map("".join), st.text(max_size=100))
command_words = st.one_of(st.sampled_from(["help", "HELP", "choose", "nonsense"]), st.text(max_size=40))


async def _answers(redis_server: EmbeddedRedis, incoming: Event) -> tuple[list[Action], list[Event]]:
    redis = connect(redis_server.url)
    try:
        services = Services(settings=Settings(_env_file=None), redis=redis, bus=Bus(redis), platforms=CATALOG)  # type: ignore[call-arg]
        await builtin.install(services)
        asked: list[Event] = []

        async def mention(e: Event, svc: Services) -> list[Action]:
            asked.append(e)
            return []

        services.mention = mention
        return await Router(services).route(incoming), asked
    finally:
        await redis.aclose()


def _in_place(actions: list[Action], incoming: Event) -> bool:
    return all(
        isinstance(a, Reply) and (a.platform, a.community, a.channel) == (incoming.platform, incoming.community,
                                                                           incoming.channel)
        for a in actions
    )  # fmt: skip


@given(text=typed)
async def test_a_mention_runs_a_command_or_asks_the_assistant(redis_server: EmbeddedRedis, text: str) -> None:
    incoming = event(EventKind.MENTION, text=text)
    actions, asked = await _answers(redis_server, incoming)
    assert _in_place(actions, incoming)
    if len(text) > MAX_INPUT_CHARS:
        assert not asked and "too long" in actions[0].text  # type: ignore[attr-defined]
    elif asked:
        assert asked == [incoming] and not actions  # handed to the assistant unchanged
    else:
        assert len(actions) == 1  # a command's answer, help for an empty mention, or a clear message


@given(word=command_words, args=typed)
async def test_commands_in_any_case_answer_once(redis_server: EmbeddedRedis, word: str, args: str) -> None:
    incoming = event(EventKind.COMMAND, text=f"/{word} {args}", command=word, args=args)
    actions, asked = await _answers(redis_server, incoming)
    assert not asked and len(actions) == 1 and _in_place(actions, incoming)
    text = actions[0].text  # type: ignore[attr-defined]
    if word.lower() not in ("help", "choose"):
        assert text.startswith("I don't know the command") and len(text) < 200
