"""The X fake against the real tweepy 4.17 over real HTTP, through ``bots.x.transport``.

Why: the X adapter's tests trust this fake, so it must accept exactly what tweepy really sends (OAuth 1.0a
signatures included) and answer in shapes tweepy really parses, including its error classes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from urllib.parse import unquote

import aiohttp
import pytest
import requests
import tweepy

from bots.x.transport import X_API_BASE, RewritingSession, make_client, oauth1_auth
from tests.fakes.x_api import FakeX, oauth_signature

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
MP4 = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8
MENTION_FIELDS = [
    "conversation_id",
    "in_reply_to_user_id",
    "referenced_tweets",
    "created_at",
    "public_metrics",
    "author_id",
    "attachments",
    "entities",
]
MENTION_EXPANSIONS = ["referenced_tweets.id", "author_id", "attachments.media_keys"]


@pytest.fixture
def x() -> Iterator[FakeX]:
    with FakeX.threaded(me_id="100", me_username="chorus_bot") as fake:
        fake.add_user("200", "alice", name="Alice")
        fake.add_user("300", "bob", name="Bob")
        yield fake


@pytest.fixture
def client(x: FakeX) -> Iterator[tweepy.Client]:
    c = make_client(x.base_url, **x.credentials)
    yield c
    c.session.close()


def upload_url(path: str = "") -> str:
    return f"{X_API_BASE}/2/media/upload{path}"


# ------------------------------------------------------------------------------------------- transport


def test_rewriting_session_maps_all_four_hosts_and_nothing_else() -> None:
    with RewritingSession("http://127.0.0.1:8080/") as s, RewritingSession("https://gw.example/x") as gw:
        for host in ("api.x.com", "api.twitter.com", "upload.twitter.com", "upload.x.com", "API.X.COM"):
            assert (
                s.rewrite_url(f"https://{host}/2/tweets?ids=1,2") == "http://127.0.0.1:8080/2/tweets?ids=1,2"
            )
            assert gw.rewrite_url(f"https://{host}/2/media/upload") == "https://gw.example/x/2/media/upload"
        for other in (
            "https://example.com/2/tweets",
            "https://api.x.com.evil.io/2/tweets",
            "ftp://api.x.com/a",
        ):
            assert s.rewrite_url(other) == other
    with RewritingSession(None) as passthrough:
        assert passthrough.rewrite_url("https://api.x.com/2/tweets") == "https://api.x.com/2/tweets"
    with pytest.raises(ValueError, match="absolute"):
        RewritingSession("127.0.0.1:8080")


def test_prepared_request_is_signed_for_the_canonical_url_then_rewritten() -> None:
    """A gateway that forwards to X needs signatures over X's URL, not the gateway's."""
    c = make_client("http://127.0.0.1:9", "ck", "cs", "at", "ats", "bt")
    try:
        assert isinstance(c.session, RewritingSession)
        prepared = c.session.prepare_request(
            requests.Request(
                "GET", "https://api.twitter.com/2/users/me", params={"a": "b c"}, auth=oauth1_auth(c)
            )
        )
        assert prepared.url == "http://127.0.0.1:9/2/users/me?a=b+c"
        header = prepared.headers["Authorization"]
        fields = dict(part.split("=", 1) for part in header[6:].replace('"', "").split(", "))
        params = [(k, unquote(v)) for k, v in fields.items() if k != "oauth_signature"] + [("a", "b c")]
        assert unquote(fields["oauth_signature"]) == oauth_signature(
            "GET", "https://api.twitter.com/2/users/me", params, "cs", "ats"
        )
    finally:
        c.session.close()


# ----------------------------------------------------------------------------------------------- reads


def test_get_me_over_oauth1(x: FakeX, client: tweepy.Client) -> None:
    me = client.get_me(user_fields=["created_at"])
    assert (me.data.id, me.data.username, me.data.name) == (100, "chorus_bot", "Chorus")
    assert me.data.created_at is not None
    (req,) = x.requests_to("GET /2/users/me")
    assert req.auth == "oauth1" and "Authorization" not in req.headers and req.status == 200


def test_mentions_since_id_pagination_and_includes(x: FakeX, client: tweepy.Client) -> None:
    old = x.mention("200", "before the cursor")
    bot_post = x.post_as("100", "a bot post")
    x.post_as("300", "not a mention at all")
    reply = x.mention("200", "replying to you", in_reply_to=bot_post.id)
    quoting = x.mention("300", "look at this", quote=old.id, media=[{"type": "photo", "alt_text": "a cat"}])
    rest = [x.mention("300" if i % 2 else "200", f"hello {i}") for i in range(5)]
    expected = sorted((int(t.id) for t in (reply, quoting, *rest)), reverse=True)

    kwargs = {
        "since_id": old.id,
        "max_results": 5,
        "expansions": MENTION_EXPANSIONS,
        "tweet_fields": MENTION_FIELDS,
        "media_fields": ["alt_text", "url"],
        "user_fields": ["username"],
    }
    first = client.get_users_mentions("100", **kwargs)
    second = client.get_users_mentions("100", pagination_token=first.meta["next_token"], **kwargs)

    assert [t.id for t in first.data] + [t.id for t in second.data] == expected
    assert first.meta["result_count"] == 5 and first.meta["newest_id"] == str(expected[0])
    assert "next_token" not in second.meta and second.meta["oldest_id"] == str(expected[-1])
    by_id = {str(t.id): t for t in first.data + second.data}
    assert (by_id[reply.id].conversation_id, by_id[reply.id].in_reply_to_user_id) == (int(bot_post.id), 100)
    assert by_id[reply.id].author_id == 200 and by_id[reply.id].text.startswith("@chorus_bot ")
    assert by_id[reply.id].entities["mentions"][0] == {
        "start": 0,
        "end": 11,
        "username": "chorus_bot",
        "id": "100",
    }
    assert by_id[quoting.id].referenced_tweets[0].type == "quoted"
    both = {
        key: first.includes.get(key, []) + second.includes.get(key, [])
        for key in ("users", "tweets", "media")
    }
    assert {u.username for u in both["users"]} == {"alice", "bob"}
    assert {str(t.id) for t in both["tweets"]} == {bot_post.id, old.id}  # the replied-to and quoted tweets
    (media,) = both["media"]
    assert media.alt_text == "a cat" and media.type == "photo" and media.url
    # app-only auth was used for the timeline (tweepy's default), and the since_id went over the wire
    calls = x.requests_to("GET /2/users/:id/mentions")
    assert [r.auth for r in calls] == ["bearer", "bearer"] and calls[0].query["since_id"] == old.id


def test_bad_parameters_are_rejected_like_x(client: tweepy.Client) -> None:
    with pytest.raises(tweepy.BadRequest, match="max_results"):
        client.get_users_mentions("100", max_results=3)
    with pytest.raises(tweepy.BadRequest, match=r"tweet\.fields"):
        client.get_users_mentions("100", tweet_fields=["conversationid"])
    missing = client.get_tweet("1")
    assert missing.data is None and missing.errors[0]["title"] == "Not Found Error"


def test_users_tweets_with_public_metrics_and_since_id(x: FakeX, client: tweepy.Client) -> None:
    first = x.post_as("200", "first post", like_count=3)
    second = x.post_as("200", "second post")
    x.set_metrics(second.id, like_count=7, retweet_count=2, reply_count=1, impression_count=99)
    x.post_as("300", "someone else")
    got = client.get_users_tweets("200", tweet_fields=["public_metrics", "created_at"], max_results=5)
    assert [str(t.id) for t in got.data] == [second.id, first.id]
    assert got.data[0].public_metrics == {
        "retweet_count": 2,
        "reply_count": 1,
        "like_count": 7,
        "quote_count": 0,
        "bookmark_count": 0,
        "impression_count": 99,
    }
    assert got.data[1].public_metrics["like_count"] == 3
    newer = client.get_users_tweets("200", since_id=first.id, max_results=5)
    assert [str(t.id) for t in newer.data] == [second.id] and newer.data[
        0
    ].public_metrics is None  # not requested


def test_lookup_search_and_list_timelines(x: FakeX, client: tweepy.Client) -> None:
    a = x.post_as("200", "Chorus is a lovely #bot")
    b = x.post_as("300", "chorus again")
    x.post_as("300", "unrelated")
    x.add_list("42", ["200"])
    assert [str(t.id) for t in client.get_tweets([a.id, b.id]).data] == [a.id, b.id]
    assert [str(t.id) for t in client.search_recent_tweets("chorus -from:bob").data] == [a.id]
    assert [str(t.id) for t in client.search_recent_tweets("from:bob").data][-1] == b.id
    assert [str(t.id) for t in client.get_list_tweets("42").data] == [a.id]


def test_reply_prefix_and_display_text_range(x: FakeX, client: tweepy.Client) -> None:
    bot_post = x.post_as("100", "a bot post")
    bob = x.mention("300", "nice one", in_reply_to=bot_post.id)  # typed @chorus_bot: inside the range
    alice = x.post_as("200", "I agree with Bob", in_reply_to=bob.id)  # @chorus_bot only in the prefix
    assert bob.text == "@chorus_bot nice one" and alice.text == "@bob @chorus_bot I agree with Bob"
    got = client.get_tweets([bob.id, alice.id], tweet_fields=["display_text_range"]).data
    assert [t.display_text_range for t in got] == [[0, 20], [17, 33]]
    assert alice.text[17:] == "I agree with Bob"


def test_users_lookup_by_usernames(client: tweepy.Client) -> None:
    found = client.get_users(usernames=["Alice", "nobody_here"], user_fields=["public_metrics"])
    assert [(u.id, u.username) for u in found.data] == [(200, "alice")]
    assert found.data[0].public_metrics["followers_count"] == 0
    assert found.errors[0]["title"] == "Not Found Error" and found.errors[0]["value"] == "nobody_here"
    with pytest.raises(tweepy.BadRequest, match="usernames"):
        client.get_users(usernames=["not a name"])


# ---------------------------------------------------------------------------------------------- writes


def test_create_reply_then_read_it_back(x: FakeX, client: tweepy.Client) -> None:
    mention = x.mention("200", "what's up?")
    created = client.create_tweet(
        text="@alice all good", in_reply_to_tweet_id=mention.id, reply_settings="following"
    )
    (record,) = x.created_tweets
    assert created.data["id"] == record.id and created.data["text"] == "@alice all good"
    assert (record.reply_to, record.reply_settings) == (mention.id, "following")
    back = client.get_tweet(
        record.id, tweet_fields=["conversation_id", "in_reply_to_user_id", "reply_settings"]
    )
    assert (back.data.conversation_id, back.data.in_reply_to_user_id) == (int(mention.conversation_id), 200)
    assert x.tweet(mention.id).public_metrics["reply_count"] == 1
    x.delete(mention.id)
    with pytest.raises(tweepy.Forbidden, match="deleted or not visible"):
        client.create_tweet(text="too late", in_reply_to_tweet_id=mention.id)


def test_overlong_and_duplicate_text_are_forbidden(x: FakeX, client: tweepy.Client) -> None:
    client.create_tweet(text="a" * 280)
    client.create_tweet(text="日" * 140)  # CJK weighs 2: exactly 280
    client.create_tweet(text="link " + "https://example.com/" + "p" * 300)  # URLs weigh 23
    with pytest.raises(tweepy.Forbidden, match=r"Your Tweet text is too long\.") as too_long:
        client.create_tweet(text="日" * 141)
    assert too_long.value.response.json()["status"] == 403
    with pytest.raises(tweepy.Forbidden, match="duplicate content"):
        client.create_tweet(text="a" * 280)
    assert len(x.created_tweets) == 3


def test_delete_own_tweet(x: FakeX, client: tweepy.Client) -> None:
    tweet_id = client.create_tweet(text="short-lived").data["id"]
    assert x.wait_for(lambda: x.created_tweets, timeout=1)[0].id == tweet_id  # blocking form
    assert client.delete_tweet(tweet_id).data == {"deleted": True}
    assert x.created_tweets[0].deleted and x.tweet(tweet_id).deleted
    assert client.get_tweet(tweet_id).data is None
    with pytest.raises(tweepy.NotFound):
        client.delete_tweet(tweet_id)
    with pytest.raises(tweepy.Forbidden, match="not allowed to delete"):
        client.delete_tweet(x.post_as("200", "not yours").id)
    client.create_tweet(text="short-lived")  # no longer a duplicate once deleted


# ------------------------------------------------------------------------------------ auth, rate limits


def test_auth_failures(x: FakeX, client: tweepy.Client) -> None:
    wrong_secret = make_client(
        x.base_url, **{**x.credentials, "consumer_secret": "nope", "bearer_token": "bad"}
    )
    try:
        with pytest.raises(tweepy.Unauthorized) as exc:
            wrong_secret.get_me()
        assert exc.value.response.json() == {
            "title": "Unauthorized",
            "type": "about:blank",
            "status": 401,
            "detail": "Unauthorized",
        }
        with pytest.raises(tweepy.Unauthorized):
            wrong_secret.get_users_mentions("100")
    finally:
        wrong_secret.session.close()
    assert [r.auth_error for r in x.requests] == ["bad signature", "unknown bearer token"]
    with pytest.raises(tweepy.Forbidden, match="Application-Only is forbidden"):
        client.get_me(user_auth=False)
    assert client.get_users_mentions("100", user_auth=True).meta == {"result_count": 0}


def test_rate_limit_window_and_injected_faults(x: FakeX, client: tweepy.Client) -> None:
    x.set_limit("GET /2/users/:id/mentions", limit=2, window_s=60)
    client.return_type = requests.Response  # raw responses, to read the headers of successful calls
    remaining = [client.get_users_mentions("100").headers["x-rate-limit-remaining"] for _ in range(2)]
    client.return_type = tweepy.Response
    assert remaining == ["1", "0"]
    with pytest.raises(tweepy.TooManyRequests) as exc:
        client.get_users_mentions("100")
    reset = int(exc.value.response.headers["x-rate-limit-reset"])
    assert time.time() + 55 < reset <= time.time() + 61
    assert exc.value.response.json()["title"] == "Too Many Requests"

    x.fail_next("POST /2/tweets", status=429, reset_in=30)
    x.fail_next("POST /2/tweets", status=503)
    with pytest.raises(tweepy.TooManyRequests) as injected:
        client.create_tweet(text="hello")
    assert injected.value.response.headers["x-rate-limit-remaining"] == "0"
    assert abs(int(injected.value.response.headers["x-rate-limit-reset"]) - (time.time() + 30)) <= 2
    with pytest.raises(tweepy.TwitterServerError, match="503"):
        client.create_tweet(text="hello")
    assert x.created_tweets == []  # injected failures do nothing
    assert client.create_tweet(text="hello").data["text"] == "hello"
    assert [r.status for r in x.requests_to("POST /2/tweets")] == [429, 503, 201]


# ----------------------------------------------------------------------------------------------- media


def test_media_simple_and_chunked_upload_then_tweet_with_alt_text(x: FakeX, client: tweepy.Client) -> None:
    auth, s = oauth1_auth(client), client.session
    simple = s.post(upload_url(), files={"media": PNG}, data={"media_category": "tweet_image"}, auth=auth)
    assert simple.status_code == 200, simple.text
    photo_id = simple.json()["data"]["id"]
    assert simple.json()["data"]["media_key"] == f"3_{photo_id}"

    # chunked, current style: /initialize, /{id}/append, /{id}/finalize
    init = s.post(
        upload_url("/initialize"),
        auth=auth,
        json={"media_type": "video/mp4", "total_bytes": len(MP4), "media_category": "tweet_video"},
    )
    video_id = init.json()["data"]["id"]
    for index, offset in enumerate(range(0, len(MP4), 1000)):
        part = s.post(
            upload_url(f"/{video_id}/append"),
            auth=auth,
            data={"segment_index": str(index)},
            files={"media": ("chunk", MP4[offset : offset + 1000], "application/octet-stream")},
        )
        assert part.status_code == 200 and "expires_at" in part.json()["data"]
    final = s.post(upload_url(f"/{video_id}/finalize"), auth=auth).json()["data"]
    assert final["processing_info"]["state"] == "succeeded" and final["size"] == len(MP4)

    # chunked, command style on /2/media/upload (form params are part of the OAuth signature)
    gif = b"GIF89a" + b"\x01" * 100
    cmd_init = s.post(
        upload_url(),
        auth=auth,
        data={"command": "INIT", "media_type": "image/png", "total_bytes": str(len(PNG))},
    )
    png_id = cmd_init.json()["data"]["id"]
    appended = s.post(
        upload_url(),
        auth=auth,
        data={"command": "APPEND", "media_id": png_id, "segment_index": "0"},
        files={"media": PNG},
    )
    assert appended.status_code == 204
    assert (
        s.post(upload_url(), auth=auth, data={"command": "FINALIZE", "media_id": png_id}).status_code == 200
    )

    meta = s.post(
        f"{X_API_BASE}/2/media/metadata",
        auth=auth,
        json={"id": photo_id, "metadata": {"alt_text": {"text": "a tiny png"}}},
    )
    assert meta.json()["data"]["associated_metadata"]["alt_text"]["text"] == "a tiny png"
    assert (
        s.post(
            f"{X_API_BASE}/2/media/metadata",
            auth=auth,
            json={"id": photo_id, "metadata": {"alt_text": {"text": "x" * 1001}}},
        ).status_code
        == 400
    )
    assert (
        s.post(upload_url(), files={"media": gif}, data={"media_category": "tweet_image"}).status_code == 401
    )

    tweet = client.create_tweet(text="two pictures", media_ids=[photo_id, png_id])
    (record,) = x.created_tweets
    assert record.id == tweet.data["id"] and record.media_ids == [photo_id, png_id]
    assert record.alt_texts == ["a tiny png", None]
    assert [m.data for m in x.uploaded_media] == [PNG, MP4, PNG]
    assert x.media[photo_id].tweet_ids == [record.id]
    with pytest.raises(tweepy.BadRequest, match="media IDs are invalid"):
        client.create_tweet(text="video plus photo", media_ids=[video_id, photo_id])
    with pytest.raises(tweepy.BadRequest, match="media IDs are invalid"):
        client.create_tweet(text="unknown media", media_ids=["123"])
    shown = client.get_tweet(record.id, expansions=["attachments.media_keys"], media_fields=["alt_text"])
    assert [m.alt_text for m in shown.includes["media"]] == ["a tiny png", None]


def test_video_processing_must_finish_before_tweeting() -> None:
    with FakeX.threaded(processing_polls=2) as x:
        client = make_client(x.base_url, **x.credentials)
        auth, s = oauth1_auth(client), client.session
        try:
            init = s.post(
                upload_url(),
                auth=auth,
                data={
                    "command": "INIT",
                    "media_type": "video/mp4",
                    "total_bytes": str(len(MP4)),
                    "media_category": "tweet_video",
                },
            )
            media_id = init.json()["data"]["id"]
            s.post(
                upload_url(),
                auth=auth,
                data={"command": "APPEND", "media_id": media_id, "segment_index": "0"},
                files={"media": MP4},
            )
            final = s.post(upload_url(), auth=auth, data={"command": "FINALIZE", "media_id": media_id}).json()
            assert final["data"]["processing_info"] == {
                "state": "pending",
                "progress_percent": 50,
                "check_after_secs": 1,
            }
            with pytest.raises(tweepy.BadRequest):
                client.create_tweet(media_ids=[media_id])
            states = [
                s.get(upload_url(), auth=auth, params={"command": "STATUS", "media_id": media_id}).json()[
                    "data"
                ]["processing_info"]["state"]
                for _ in range(2)
            ]
            assert states == ["in_progress", "succeeded"]
            assert client.create_tweet(media_ids=[media_id]).data["text"] == ""
        finally:
            client.session.close()


# ----------------------------------------------------------------------------------------------- async


async def test_handler_crash_fails_the_test_at_shutdown(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug in the fake must not pass as a retryable 500 the adapter silently handles."""
    fake = FakeX()

    async def broken(*_: object) -> None:
        raise KeyError("oops")

    monkeypatch.setattr(fake, "_get_me", broken)
    with pytest.raises(RuntimeError, match="handler crashed") as exc:
        async with fake as x:
            client = make_client(x.base_url, **x.credentials)
            try:
                with pytest.raises(tweepy.TwitterServerError, match="FakeX internal error"):
                    await asyncio.to_thread(client.get_me)
            finally:
                client.session.close()
    assert isinstance(exc.value.__cause__, KeyError)


async def test_async_mode_serves_tweepy_and_wait_for() -> None:
    async with FakeX(me_id="7", me_username="async_bot") as x:
        client = make_client(x.base_url, **x.credentials)
        try:
            loop_task = asyncio.create_task(
                asyncio.to_thread(client.create_tweet, text="from a worker thread")
            )
            created = await x.wait_for(lambda: x.created_tweets and x.created_tweets[0], timeout=5)
            assert created.text == "from a worker thread"
            assert (await loop_task).data["id"] == created.id
            async with aiohttp.ClientSession() as http, http.get(f"{x.base_url}/2/users/7/mentions") as resp:
                assert resp.status == 401 and resp.headers["x-rate-limit-limit"] == "180"
                assert (await resp.json())["detail"] == "Unauthorized"
        finally:
            client.session.close()
        with pytest.raises(TimeoutError):
            await x.wait_for(lambda: len(x.created_tweets) > 1, timeout=0.05)
