"""The small-model profile: what the bundled model is sent and how its answer is read."""

from __future__ import annotations

import json
import re

from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from core.assistant import profile
from core.assistant.compose import Composer, Request, Target
from tests.core.assistant.fakes_chat import ScriptedModel, source

REQUEST = "write a post announcing our community garden opening this Saturday at 10am"


def test_the_grammar_allows_only_plain_text_and_the_requests_own_numbers() -> None:
    plan = profile.small_plan("post", REQUEST, 280, sources=REQUEST)
    schema = plan.bind["extra_body"]["response_format"]["schema"]
    pattern = schema["properties"]["text"]["pattern"]
    assert "|10)" in pattern and ":" not in pattern and "/" not in pattern and "<" not in pattern
    assert ",}" in pattern and ",20}" not in pattern  # no upper bound: llama.cpp nests it into slow rules
    unit, first = "([A-Za-z,.!?'&-]|10)", "([A-Za-z&-]|10)"
    assert pattern == f"^({first}{unit}* ){{10,}}{first}{unit}*[.!?]$"  # 10+ words, the last ends a sentence
    assert schema["properties"]["hashtags"]["items"]["enum"][:2] == ["garden", "opening"]
    assert schema["required"] == ["text", "hashtags", "alt_text"]
    assert plan.bind["max_tokens"] < 150 and plan.bind["temperature"] < 0.7
    thread = profile.small_plan("thread", "a thread with tips for hikers", 280, sources="tips for hikers")
    parts = thread.bind["extra_body"]["response_format"]["schema"]["properties"]["parts"]
    assert (parts["minItems"], parts["maxItems"]) == (2, 4)


def test_examples_are_data_and_match_their_requests() -> None:
    for user, answer in profile.example_turns("post", revising=False):
        assert user.startswith("Request: ") and json.loads(answer)["text"]
    assert profile.example_turns("post", revising=True)[0][0].startswith("Draft: ")


def test_partial_json_is_shown_as_its_text() -> None:
    assert profile.partial_text('{"text": "Our garden opens Sat') == "Our garden opens Sat"
    assert profile.partial_text('{"text": "Done.", "hashtags": ["gar') == "Done."
    assert profile.partial_text('{"parts": ["One.", "Tw') == "One.\n\nTw"
    assert profile.partial_text('{"te') == ""
    assert profile.partial_text("plain text answer") == "plain text answer"


async def test_small_model_gets_the_short_prompt_examples_and_the_communitys_own_rules() -> None:
    answer = json.dumps(
        {
            "text": "Our garden opens Saturday at 10am. Come and plant with us!",
            "hashtags": ["garden"],
            "alt_text": "A garden",
        }
    )
    model = ScriptedModel(script=[answer])

    class Store:
        async def effective_all(self, community_key: str, platform: str) -> dict[str, str]:
            return {"rules": "- Always mention the compost heap."}

    composer = Composer(source(model), small_model=True, prompts=lambda: Store())  # type: ignore[arg-type]
    req = Request("post", REQUEST, "telegram:1", "Garden Club", Target("telegram", 4000))
    composed = await composer.compose(req)
    assert composed.parts == ["Our garden opens Saturday at 10am. Come and plant with us!\n\n#garden"]
    assert composed.hashtags == ["#garden"] and composed.alt_text == "A garden"
    sent = model.calls[0]
    system = str(sent[0].content)
    assert isinstance(sent[0], SystemMessage) and len(system) < 1000
    assert "Always mention the compost heap." in system  # the moderators' rules still apply
    assert "writing assistant of the" not in system  # the default persona is replaced by the short text
    assert isinstance(sent[1], HumanMessage) and isinstance(sent[2], AIMessage)  # an example turn
    assert str(sent[-1].content) == f"Request: {REQUEST}"
    assert model.kwargs[0]["extra_body"]["response_format"]["type"] == "json_object"


def test_the_grammar_writes_words_with_single_spaces_and_ends_a_sentence() -> None:
    plan = profile.small_plan("post", "a post about the book sale", 280, sources="a post about the book sale")
    pattern = plan.bind["extra_body"]["response_format"]["schema"]["properties"]["text"]["pattern"]
    body = pattern[1:-1]
    full = re.compile(f"^{body}$")
    assert full.match("Our book sale is on. Come and find a good read today!")
    assert not full.match("The book sale is currently at  and will go on until the end of it.")  # a gap
    assert not full.match("We invite you to join our upcoming book sale at the upcoming .")  # a gap
    assert not full.match(
        "Join our book sale at the library where you can find the game called"
    )  # unfinished
    assert not full.match("Short one.")  # fewer words than a post needs


def test_an_answer_cut_off_by_max_tokens_keeps_its_finished_sentences() -> None:
    raw = '{"text": "Our chess club meets at the cafe. Everyone is welcome! The game is called'
    assert profile.cut_answer(raw) == "Our chess club meets at the cafe. Everyone is welcome!"
    assert profile.cut_answer('{"parts": ["Tip one.", "Tip two is') == "Tip one."
    assert profile.cut_answer('{"text": "no sentence end yet') == "no sentence end yet"


def test_a_seed_makes_sampling_repeatable_only_when_asked() -> None:
    assert "seed" not in profile.small_plan("post", REQUEST, 280, sources=REQUEST).bind
    assert profile.small_plan("post", REQUEST, 280, sources=REQUEST, seed=7).bind["seed"] == 7
