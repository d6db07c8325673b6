"""XApi against the loopback fake: real tweepy and requests over real sockets."""

from __future__ import annotations

import socket
import time
from collections.abc import AsyncIterator

import pytest

from bots.x.api import RouteLimits, XApi, error_for
from core.errors import DeliveryRejected, PlatformRateLimited, PlatformUnavailable
from tests.bots.x.xkit import PNG, x_settings
from tests.fakes.x_api import FakeX

GIF = b"GIF89a" + bytes(range(200))


@pytest.fixture
async def x() -> AsyncIterator[FakeX]:
    async with FakeX(me_id="100", me_username="chorus_bot") as fake:
        fake.add_user("200", "alice")
        yield fake


@pytest.fixture
async def api(x: FakeX) -> AsyncIterator[XApi]:
    client = XApi(x_settings(x))
    yield client
    client.close()


def test_route_limits_follow_the_headers() -> None:
    now = [1000.0]
    limits = RouteLimits(clock=lambda: now[0])
    assert limits.wait_s("GET /2/tweets") == 0
    limits.update("GET /2/tweets", {"x-rate-limit-remaining": "3", "x-rate-limit-reset": "1900"})
    assert limits.wait_s("GET /2/tweets") == 0
    limits.update("GET /2/tweets", {"x-rate-limit-remaining": "0", "x-rate-limit-reset": "1900"})
    assert limits.wait_s("GET /2/tweets") == 900
    now[0] = 1901
    assert limits.wait_s("GET /2/tweets") == 0  # the window reset
    limits.update("GET /2/tweets", {"x-rate-limit-remaining": "zero?"})  # garbage is ignored
    assert limits.wait_s("GET /2/tweets") == 0


def test_errors_map_to_the_core_tree() -> None:
    limited = error_for(429, {"x-rate-limit-reset": "1030"}, "Too Many Requests", clock=lambda: 1000.0)
    assert isinstance(limited, PlatformRateLimited) and limited.retry_after == 31
    assert isinstance(error_for(429, {}, "no headers"), PlatformRateLimited)
    assert isinstance(error_for(503, {}, "down"), PlatformUnavailable)
    for status in (400, 401, 403, 404):
        assert isinstance(error_for(status, {}, "no"), DeliveryRejected)


async def test_reads_use_the_bearer_token_and_writes_oauth1(x: FakeX, api: XApi) -> None:
    me = await api.me()
    assert (me.id, me.username) == ("100", "chorus_bot")
    x.mention("200", "hello")
    payload = await api.mentions("100", since_id=None, start_time=None, token=None)
    assert payload["data"][0]["text"] == "@chorus_bot hello"
    tweet_id = await api.create_tweet("hi there", reply_to=payload["data"][0]["id"])
    assert x.tweet(tweet_id).in_reply_to_user_id == "200"
    auths = {r.route: r.auth for r in x.requests}
    assert auths["GET /2/users/:id/mentions"] == "bearer"
    assert auths["GET /2/users/me"] == auths["POST /2/tweets"] == "oauth1"


async def test_without_a_bearer_token_reads_use_the_user_context(x: FakeX) -> None:
    api = XApi(x_settings(x, X_BEARER_TOKEN=""))
    try:
        await api.mentions("100", since_id=None, start_time=None, token=None)
    finally:
        api.close()
    assert [r.auth for r in x.requests_to("GET /2/users/:id/mentions")] == ["oauth1"]


async def test_a_spent_window_is_not_called_again_before_its_reset(x: FakeX, api: XApi) -> None:
    x.set_limit("GET /2/users/:id/mentions", limit=1, window_s=60)
    await api.mentions("100", since_id=None, start_time=None, token=None)  # remaining: 0
    with pytest.raises(PlatformRateLimited) as exc:
        await api.mentions("100", since_id=None, start_time=None, token=None)
    assert 50 < exc.value.retry_after <= 61
    assert len(x.requests_to("GET /2/users/:id/mentions")) == 1  # the second call never left


async def test_429_and_5xx_and_refusals(x: FakeX, api: XApi) -> None:
    x.fail_next("POST /2/tweets", status=429, reset_in=20)
    with pytest.raises(PlatformRateLimited) as limited:
        await api.create_tweet("one")
    assert 18 <= limited.value.retry_after <= 23
    x.set_limit("POST /2/tweets", limit=100)  # a fresh window: the 429 spent the remembered one
    api.limits = RouteLimits()
    x.fail_next("POST /2/tweets", status=503)
    with pytest.raises(PlatformUnavailable):
        await api.create_tweet("two")
    with pytest.raises(DeliveryRejected, match="too long"):
        await api.create_tweet("x" * 281)
    assert x.created_tweets == []


async def test_unreachable_x_is_unavailable_and_secrets_stay_out_of_errors(x: FakeX) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    api = XApi(x_settings(x, X_API_BASE_URL=f"http://127.0.0.1:{port}", X_REQUEST_TIMEOUT_S=2))
    try:
        with pytest.raises(PlatformUnavailable) as exc:
            await api.me()
    finally:
        api.close()
    assert x.credentials["consumer_secret"] not in str(exc.value)
    wrong = XApi(x_settings(x, X_API_SECRET="wrong-secret-value"))
    try:
        with pytest.raises(DeliveryRejected) as refused:
            await wrong.me()
    finally:
        wrong.close()
    assert "401" in str(refused.value) and "wrong-secret-value" not in str(refused.value)


async def test_simple_upload_with_alt_text(x: FakeX, api: XApi) -> None:
    media_id = await api.upload_image(PNG, "image/png", "A tiny test image")
    tweet_id = await api.create_tweet("look", media_ids=[media_id])
    [created] = x.created_tweets
    assert created.id == tweet_id and created.alt_texts == ["A tiny test image"]
    assert x.requests_to("POST /2/media/upload") and not x.requests_to("POST /2/media/upload/initialize")


async def test_chunked_upload_above_the_simple_limit(x: FakeX) -> None:
    api = XApi(x_settings(x, X_MEDIA_SIMPLE_MAX_BYTES=32, X_MEDIA_CHUNK_BYTES=20))
    try:
        media_id = await api.upload_image(PNG, "image/png", "x" * 1500)  # alt text is cut to X's 1000
    finally:
        api.close()
    assert len(x.requests_to("POST /2/media/upload/:id/append")) == -(-len(PNG) // 20)
    assert x.media[media_id].data == PNG and x.media[media_id].alt_text == "x" * 1000
    assert not x.requests_to("POST /2/media/upload")


async def test_an_animated_gif_waits_for_processing() -> None:
    async with FakeX(processing_polls=2) as x:
        api = XApi(x_settings(x))
        try:
            started = time.monotonic()
            media_id = await api.upload_image(GIF, "image/gif")
            tweet_id = await api.create_tweet("", media_ids=[media_id])
        finally:
            api.close()
        assert x.media[media_id].type == "animated_gif" and x.tweet(tweet_id).media_keys
        assert len(x.requests_to("GET /2/media/upload")) == 2 and time.monotonic() - started >= 2
