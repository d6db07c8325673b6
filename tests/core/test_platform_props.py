"""``degrade`` with each adapter's real capabilities: every Action that comes out fits the platform (in its
own units), nothing written is lost, buttons become a numbered list where there are none."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bots import registry
from core.contract import Action, Capabilities, Choice, DirectMessage, OfferChoices, Post, Reply, SendImage
from core.platform import degrade, measure_for
from tests.core.test_text_props import texts

PLATFORMS: dict[str, Capabilities] = {f.name: f.capabilities for f in registry.catalog()}
"""Every adapter's declared limits (what its Platform and every worker use)."""
WHERE = {"community": "c", "channel": "ch"}
long_texts = st.one_of(texts, st.builds(lambda t, n: t * n, texts, st.integers(1, 40)))
choices = st.lists(
    st.builds(Choice, label=st.text(min_size=1, max_size=40), payload=st.text(min_size=1, max_size=64)),
    min_size=1, max_size=8,
).map(tuple)  # fmt: skip


def _text_of(action: Action) -> str:
    return action.caption if isinstance(action, SendImage) else getattr(action, "text", "")


def _visible(text: str) -> str:
    return "".join(text.split())


def _fits(action: Action, caps: Capabilities) -> bool:
    measure = measure_for(caps)
    if isinstance(action, SendImage):
        return measure(action.caption) <= caps.max_caption
    if isinstance(action, Post) and action.parts:
        return all(measure(p) <= caps.max_text for p in action.parts)
    return measure(_text_of(action)) <= caps.max_text


def _wide_enough(text: str, caps: Capabilities) -> bool:
    measure = measure_for(caps)
    return all(measure(ch) <= min(caps.max_text, caps.max_caption) for ch in text)


@given(
    platform=st.sampled_from(sorted(PLATFORMS)),
    text=long_texts,
    kind=st.sampled_from(["reply", "dm", "post"]),
)
def test_degraded_text_fits_and_loses_nothing(platform: str, text: str, kind: str) -> None:
    caps = PLATFORMS[platform]
    action: Action
    if kind == "reply":
        action = Reply(platform=platform, **WHERE, text=text)
    elif kind == "dm":
        action = DirectMessage(platform=platform, **WHERE, user="u1", text=text)
    else:
        action = Post(platform=platform, **WHERE, text=text)
    out = degrade(action, caps)
    assert all(_fits(a, caps) for a in out)
    assert _visible("".join(_text_of(a) for a in out)) == _visible(text)
    assert len({a.id for a in out}) == len(out)  # each piece is recorded as sent on its own


@given(platform=st.sampled_from(sorted(PLATFORMS)), parts=st.lists(long_texts, min_size=1, max_size=6))
def test_threads_fit_wherever_they_go(platform: str, parts: list[str]) -> None:
    caps = PLATFORMS[platform]
    post = Post(platform=platform, **WHERE, text="\n\n".join(parts), parts=tuple(parts))
    out = degrade(post, caps)
    if caps.threads:
        assert out == [post]  # the adapter chains them; the composer fitted them already
    else:
        assert all(_fits(a, caps) for a in out)
        assert _visible("".join(_text_of(a) for a in out)) == _visible("".join(parts))


@given(platform=st.sampled_from(sorted(PLATFORMS)), text=long_texts, options=choices)
def test_choices_are_buttons_or_a_numbered_list(
    platform: str, text: str, options: tuple[Choice, ...]
) -> None:
    caps = PLATFORMS[platform]
    out = degrade(OfferChoices(platform=platform, **WHERE, text=text, choices=options), caps)
    assert all(_fits(a, caps) for a in out)
    if caps.buttons:
        assert isinstance(out[-1], OfferChoices) and out[-1].choices == options
    else:
        assert not any(isinstance(a, OfferChoices) for a in out)
        shown = _visible("".join(_text_of(a) for a in out))
        for i, choice in enumerate(options, 1):
            assert _visible(f"{i}. {choice.label}") in shown
        assert "/choose" in shown


@given(platform=st.sampled_from(sorted(PLATFORMS)), caption=long_texts, alt=st.text(max_size=50))
def test_long_captions_move_into_a_message(platform: str, caption: str, alt: str) -> None:
    caps = PLATFORMS[platform]
    out = degrade(SendImage(platform=platform, **WHERE, blob="b", caption=caption, alt_text=alt), caps)
    assert all(_fits(a, caps) for a in out)
    if caps.images:
        assert isinstance(out[0], SendImage)
        assert _visible("".join(_text_of(a) for a in out)) == _visible(caption)
