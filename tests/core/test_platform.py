from __future__ import annotations

from core.contract import Capabilities, Choice, Edit, OfferChoices, Post, Reply, SendImage
from core.platform import degrade

BASE = {"platform": "p", "community": "c", "channel": "ch", "id": "a1"}


def test_choices_degrade_to_numbered_text_without_buttons() -> None:
    action = OfferChoices(
        **BASE,
        text="Draft ready",
        choices=(Choice(label="Post", payload="post:1"), Choice(label="Revise", payload="rev:1")),
    )
    [out] = degrade(action, Capabilities(buttons=False))
    assert isinstance(out, Reply)
    assert "1. Post" in out.text and "2. Revise" in out.text and "/choose" in out.text
    assert degrade(action, Capabilities(buttons=True)) == [action]


def test_long_reply_is_split_with_distinct_ids() -> None:
    action = Reply(**BASE, text="Sentence number one. " * 30)
    parts = degrade(action, Capabilities(max_text=100))
    assert len(parts) > 1
    assert all(isinstance(p, Reply) and len(p.text) <= 100 for p in parts)
    assert len({p.id for p in parts}) == len(parts) and action.id not in {p.id for p in parts}


def test_edit_without_edits_becomes_reply() -> None:
    [out] = degrade(Edit(**BASE, target_action="x", text="new"), Capabilities(edits=False))
    assert isinstance(out, Reply) and out.text == "new"


def test_long_caption_moves_to_a_message() -> None:
    action = SendImage(**BASE, blob="b", caption="Caption sentence. " * 20, alt_text="alt")
    out = degrade(action, Capabilities(max_caption=50, max_text=1000))
    assert isinstance(out[0], SendImage) and len(out[0].caption) <= 50
    assert isinstance(out[1], Reply) and out[1].text
    assert (out[0].caption + " " + out[1].text).split() == action.caption.split()


def test_thread_without_native_threads_becomes_posts() -> None:
    out = degrade(Post(**BASE, text="", parts=("one", "two", "three")), Capabilities(threads=False))
    assert [p.text for p in out if isinstance(p, Post)] == ["one", "two", "three"]


def test_x_limits_use_weighted_length() -> None:
    action = Reply(**BASE, text="日本語の文章です。" * 40)
    parts = degrade(action, Capabilities(max_text=280, weighted_length=True))
    from core.text import x_weighted_length

    assert all(isinstance(p, Reply) and x_weighted_length(p.text) <= 280 for p in parts)
