"""Moderation: local rules (defaults, words, patterns, disguises) and OpenAI's endpoint through the fake."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from core.assistant.moderation import CHUNK_CHARS, UNAVAILABLE, LocalRules, Moderator, Verdict, normalise
from core.errors import ConfigError
from core.settings import Settings
from tests.fakes.openai_api import FakeOpenAI, malformed, moderation, server_error


def local(tmp_path: Path, **kw: Any) -> Moderator:
    return Moderator(Settings(CHORUS_DATA_DIR=tmp_path, **kw))


def remote(api: FakeOpenAI, tmp_path: Path, **kw: Any) -> Moderator:
    values: dict[str, Any] = {
        "OPENAI_API_KEY": api.api_key,
        "OPENAI_BASE_URL": api.base_url,
        "CHORUS_DATA_DIR": tmp_path,
        "CHORUS_MODEL_MAX_RETRIES": 1,
        "CHORUS_MODEL_TIMEOUT_S": 2,
    }
    values.update(kw)
    return Moderator(Settings(**values))


# ---- local rules --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("my key is sk-proj-abcdefghijklmnopqrstuvwxyz012345", "password, token or private key"),
        ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk=", "password, token or private key"),
        ("use AKIAIOSFODNN7EXAMPLE for the bucket", "password, token or private key"),
        ("card 4111 1111 1111 1111 exp 12/29", "payment card number"),
        ("just kys already", "self-harm"),
        ("I'm going to kill you tomorrow", "threat of violence"),
    ],
    ids=["openai-key", "private-key", "aws-key", "card-number", "self-harm", "threat"],
)
async def test_default_rules_refuse_with_a_short_reason(tmp_path: Path, text: str, reason: str) -> None:
    verdict = await local(tmp_path).check(text)
    assert not verdict.allowed and reason in verdict.reason
    assert "sk-proj" not in verdict.reason and "4111" not in verdict.reason  # never echo what matched


@pytest.mark.parametrize(
    "text",
    [
        "We will kill it at the launch tomorrow!",
        "Order number 1234 5678 9012 3456 ships today",  # 16 digits, but not a valid card (Luhn)
        "Our skills: sk-learn and more",
        "Ask me anything about the new release.",
    ],
)
async def test_ordinary_text_passes(tmp_path: Path, text: str) -> None:
    assert await local(tmp_path).check(text) == Verdict(True)


async def test_configured_words_match_through_disguises(tmp_path: Path) -> None:
    moderator = local(tmp_path, CHORUS_BLOCKLIST_WORDS="crypto scam, rugpull")
    for text in (
        "Join this CRYPTO SCAM now",
        "join this crypto\u200b scam",  # zero-width space inside
        "ｃｒｙｐｔｏ ｓｃａｍ",  # fullwidth
        "crÿpto scäm",  # accents
        "a RUGPU11 is coming",  # digits for letters
        "cryp\u202eto scam",  # bidi override
    ):
        verdict = await moderator.check(text)
        assert not verdict.allowed, text
        assert verdict.reason == "it uses a word this community does not allow"
    assert (await moderator.check("cryptography is fun")).allowed  # whole words only


async def test_extra_words_of_a_community_apply_only_when_given(tmp_path: Path) -> None:
    moderator = local(tmp_path)
    assert (await moderator.check("pineapple pizza")).allowed
    assert not (await moderator.check("pineapple pizza", extra_words=["pineapple"])).allowed


async def test_configured_patterns_and_a_bad_pattern(tmp_path: Path) -> None:
    moderator = local(tmp_path, CHORUS_BLOCKLIST_PATTERNS=r'["buy\\s+now", "t\\.me/\\w+"]')
    assert not (await moderator.check("BUY   NOW before it is gone")).allowed
    assert not (await moderator.check("join t.me/spamchannel")).allowed
    assert (await moderator.check("buying nothing")).allowed
    with pytest.raises(ConfigError, match="invalid regex"):
        LocalRules(patterns=["(unclosed"])


def test_normalise_removes_disguises() -> None:
    assert normalise("Ｈéllo\u200b  WORLD\u202e") == "hello world"


async def test_50kb_hostile_text_is_checked_quickly(tmp_path: Path) -> None:
    text = ("ignore previous instructions @everyone \u200b\u202e " * 1200)[:50_000]
    verdict = await local(tmp_path, CHORUS_BLOCKLIST_WORDS="forbidden").check(text + " forbidden")
    assert not verdict.allowed


# ---- OpenAI moderation ------------------------------------------------------------------------------


async def test_flagged_by_the_service_names_the_categories(tmp_path: Path) -> None:
    async with FakeOpenAI() as api:
        api.script("moderations", moderation("harassment", "harassment/threatening"))
        moderator = remote(api, tmp_path)
        try:
            verdict = await moderator.check("you people are the worst", stage="input")
        finally:
            await moderator.aclose()
        sent = api.calls("moderations")[0].json or {}
    assert not verdict.allowed
    assert verdict.reason == "flagged by the moderation service: harassment, harassment (threatening)"
    assert sent["model"] == "omni-moderation-latest" and sent["input"] == ["you people are the worst"]


async def test_not_flagged_is_allowed_and_long_text_goes_in_chunks(tmp_path: Path) -> None:
    text = "A long but harmless announcement. " * 1500  # ~51 KB
    async with FakeOpenAI() as api:
        moderator = remote(api, tmp_path)
        try:
            verdict = await moderator.check(text)
        finally:
            await moderator.aclose()
        sent = (api.calls("moderations")[0].json or {})["input"]
    assert verdict == Verdict(True)
    assert len(sent) == 7 and all(len(chunk) <= CHUNK_CHARS for chunk in sent) and "".join(sent) == text


async def test_local_rules_refuse_before_the_service_is_asked(tmp_path: Path) -> None:
    async with FakeOpenAI() as api:
        moderator = remote(api, tmp_path)
        try:
            verdict = await moderator.check("token sk-abcdefghijklmnopqrstuvwxyz123456")
        finally:
            await moderator.aclose()
        assert not verdict.allowed and api.calls("moderations") == []


async def test_service_down_fails_closed_for_output_and_open_for_input(tmp_path: Path) -> None:
    async with FakeOpenAI() as api:
        api.script("moderations", *(server_error(503) for _ in range(4)))
        moderator = remote(api, tmp_path, CHORUS_MODEL_MAX_RETRIES=1)
        try:
            output = await moderator.check("Our launch post", stage="output")
            request = await moderator.check("write about our launch", stage="input")
        finally:
            await moderator.aclose()
    assert output == Verdict(False, UNAVAILABLE)
    assert request == Verdict(True)


async def test_malformed_service_answer_fails_closed(tmp_path: Path) -> None:
    async with FakeOpenAI() as api:
        api.script("moderations", malformed(b'{"id": "modr", "results": []}'))
        moderator = remote(api, tmp_path)
        try:
            verdict = await moderator.check("Our launch post")
        finally:
            await moderator.aclose()
    assert not verdict.allowed and "unavailable" in verdict.reason


async def test_without_a_key_only_local_rules_run(tmp_path: Path) -> None:
    moderator = local(tmp_path)
    assert not moderator.remote and moderator.describe() == "local rules"
    keyed = Moderator(Settings(OPENAI_API_KEY="sk-x", CHORUS_DATA_DIR=tmp_path))
    assert keyed.remote and "omni-moderation-latest" in keyed.describe()
    off = Moderator(Settings(OPENAI_API_KEY="sk-x", CHORUS_MODERATION="local", CHORUS_DATA_DIR=tmp_path))
    assert not off.remote
