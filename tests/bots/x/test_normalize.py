from __future__ import annotations

from typing import Any

from bots.x.api import Me
from bots.x.normalize import (
    Accounts,
    Includes,
    addressed,
    feed_item,
    mention_event,
    request_text,
    tweet_text,
)
from core.contract import EventKind
from core.feed.items import item_id

ME = Me(id="100", username="chorus_bot")


def payload(tweet: dict[str, Any], **includes: list[dict[str, Any]]) -> tuple[dict[str, Any], Includes]:
    users = [{"id": "200", "username": "alice", "name": "Alice"}, {"id": "100", "username": "chorus_bot"}]
    return tweet, Includes.of({"includes": {"users": users, **includes}})


def test_request_text_drops_the_reply_prefix_and_the_bots_handle() -> None:
    assert request_text("@chorus_bot image a cat", "chorus_bot") == "image a cat"
    assert request_text("@alice @Chorus_Bot thread about cats", "chorus_bot") == "thread about cats"
    assert request_text("hey @chorus_bot write about @alice", "chorus_bot") == "hey write about @alice"
    assert request_text("@chorus_bot", "chorus_bot") == ""
    assert request_text("mail me@chorus_bot.example", "chorus_bot") == "mail me@chorus_bot.example"


def test_text_is_unescaped_and_cleaned_and_long_posts_read_in_full() -> None:
    assert tweet_text({"text": "Tom &amp; Jerry &lt;3\u200b"}) == "Tom & Jerry <3"
    assert (
        tweet_text({"text": "short…", "note_tweet": {"text": "the whole long post"}}) == "the whole long post"
    )


def test_a_mention_becomes_a_mention_event_in_its_conversation() -> None:
    tweet, inc = payload(
        {
            "id": "900",
            "text": "@chorus_bot post about our launch",
            "author_id": "200",
            "conversation_id": "800",
            "created_at": "2025-01-02T03:04:05.000Z",
            "attachments": {"media_keys": ["3_1"]},
        },
        media=[
            {"media_key": "3_1", "type": "photo", "url": "https://pbs.example/1.jpg", "alt_text": "a cat"}
        ],
    )
    event = mention_event(tweet, inc, me=ME, owners=Accounts(["@Alice"]))
    assert (event.kind, event.platform, event.community, event.channel) == (
        EventKind.MENTION,
        "x",
        "100",
        "800",
    )
    assert event.message_id == "900" and event.text == "post about our launch" and event.thread is None
    assert event.author.id == "200" and event.author.name == "alice" and event.author.is_moderator
    assert event.created_at == 1735787045.0 and event.reply_to is None
    [attachment] = event.attachments
    assert (attachment.kind, attachment.url, attachment.name) == (
        "image",
        "https://pbs.example/1.jpg",
        "a cat",
    )
    assert not mention_event(tweet, inc, me=ME, owners=Accounts(["12345"])).author.is_moderator


def test_a_reply_to_the_bot_carries_its_tweet_as_context() -> None:
    tweet, inc = payload(
        {
            "id": "901",
            "text": "@chorus_bot shorter please",
            "author_id": "200",
            "conversation_id": "800",
            "referenced_tweets": [{"type": "replied_to", "id": "850"}],
            "in_reply_to_user_id": "100",
        },
        tweets=[{"id": "850", "text": "Our launch &amp; more", "author_id": "100"}],
    )
    event = mention_event(tweet, inc, me=ME, owners=Accounts([]))
    assert event.reply_to is not None
    assert (event.reply_to.message_id, event.reply_to.from_bot, event.reply_to.text) == (
        "850",
        True,
        "Our launch & more",
    )


def test_a_deleted_parent_and_a_quoted_post_still_give_context() -> None:
    gone, inc = payload(
        {
            "id": "902",
            "text": "@chorus_bot hm",
            "author_id": "200",
            "referenced_tweets": [{"type": "replied_to", "id": "851"}],
            "in_reply_to_user_id": "100",
        }
    )
    event = mention_event(gone, inc, me=ME, owners=Accounts([]))
    assert event.reply_to is not None and event.reply_to.from_bot and event.reply_to.text == ""
    assert event.channel == "902"  # no conversation_id: the tweet starts its own
    quoting, inc = payload(
        {"id": "903", "text": "@chorus_bot reply to this", "author_id": "200",
         "referenced_tweets": [{"type": "quoted", "id": "700"}]},
        tweets=[{"id": "700", "text": "Hot take", "author_id": "300"}],
    )  # fmt: skip
    quoted = mention_event(quoting, inc, me=ME, owners=Accounts([]))
    assert quoted.reply_to is not None and quoted.reply_to.text == "Hot take" and not quoted.reply_to.from_bot


def test_accounts_match_ids_and_usernames() -> None:
    owners = Accounts(["@Owner", "12345", " "])
    assert ("1", "owner") in owners and ("12345", "someone") in owners and ("2", "other") not in owners
    assert owners and not Accounts([])


def test_feed_items_carry_public_metrics_and_a_stable_id() -> None:
    tweet, inc = payload(
        {
            "id": "990",
            "text": "Big news",
            "author_id": "200",
            "created_at": "2025-01-02T03:04:05.000Z",
            "public_metrics": {"like_count": 7, "reply_count": 2, "retweet_count": 3, "quote_count": 1,
                               "impression_count": 500},
        }
    )  # fmt: skip
    item = feed_item(tweet, inc, community="100", source="x:account:alice")
    assert (item.reactions, item.replies, item.reposts, item.views) == (7, 2, 4, 500)
    assert item.url == "https://x.com/alice/status/990" and item.channel == "@alice"
    assert item.id == item_id("x", "100", "@alice", "990") and item.source == "x:account:alice"
    again = feed_item(tweet, inc, community="100", source="x:search:news")
    assert again.id == item.id  # found by another source: the same item


def test_a_reply_addresses_the_bot_only_if_its_handle_was_typed() -> None:
    new_post = {"id": "1", "text": "@chorus_bot write a post"}
    to_bot = {
        "id": "2",
        "text": "@chorus_bot shorter",
        "in_reply_to_user_id": "100",
        "referenced_tweets": [{"type": "replied_to", "id": "9"}],
        "display_text_range": [12, 19],
    }
    prefix_only = {
        "id": "3",
        "text": "@bob @chorus_bot I agree",
        "in_reply_to_user_id": "300",
        "referenced_tweets": [{"type": "replied_to", "id": "8"}],
        "display_text_range": [17, 24],
    }
    typed = {**prefix_only, "text": "@bob @chorus_bot reply to this", "display_text_range": [5, 30]}
    unknown = {k: v for k, v in prefix_only.items() if k != "display_text_range"}
    assert addressed(new_post, ME) and addressed(to_bot, ME) and addressed(typed, ME)
    assert not addressed(prefix_only, ME)
    assert addressed(unknown, ME)  # no range given: the other rails decide
