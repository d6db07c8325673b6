"""Drafts keep to what the request gave: transcripts cut, invented facts dropped, topical hashtags."""

from __future__ import annotations

from core.assistant.grounding import ground, hashtags_for, invented, topic_words

REQUEST = "write a post announcing our community garden opening this Saturday at 10am"


def test_transcripts_and_role_play_are_cut_off() -> None:
    raw = "Our garden opens on Saturday at 10am! Come along.\nChat History:\nUser: hi\n(to self) great"
    assert ground(raw, REQUEST) == "Our garden opens on Saturday at 10am! Come along."
    assert ground("Join us Saturday. My name is Sarah and I love plants.", REQUEST) == "Join us Saturday."


def test_invented_links_prices_numbers_dates_and_names_are_dropped() -> None:
    raw = (
        "The community garden opens this Saturday at 10am. Tickets are $5 at www.garden.org. "
        "Over 25 families have joined. See you on Sunday! Ask Sarah Lee for seeds. Everyone is welcome."
    )
    assert ground(raw, REQUEST) == "The community garden opens this Saturday at 10am. Everyone is welcome."
    assert {f.split()[0] for f in invented("Tickets are $5 at www.garden.org", REQUEST)} == {
        "link",
        "price",
        "number",
    }
    assert invented("Our garden opens Saturday at 10am.", REQUEST) == []


def test_larger_models_are_held_to_links_prices_and_role_play_only() -> None:
    raw = "Launch day is today! Tickets cost $5. Chorus helps 20 teams."
    assert (
        ground(raw, "write a post about our launch", strict=False)
        == "Launch day is today! Chorus helps 20 teams."
    )


def test_hashtags_name_the_subject_not_the_request_verbs_or_audience() -> None:
    assert topic_words(REQUEST)[:2] == ["garden", "opening"]
    words = topic_words("remind members that the library book sale starts on Friday")
    assert "remind" not in words and "members" not in words and "friday" not in words
    assert {"library", "book", "sale"} <= set(words)
    assert hashtags_for(["thanking", "beach"], "thank everyone who volunteered at the beach cleanup") == [
        "#beach"
    ]
    assert hashtags_for([], "thank everyone who volunteered at the beach cleanup") == ["#cleanup", "#beach"]
    assert topic_words("celebrate our running club reaching 100 members")[0] == "club"
