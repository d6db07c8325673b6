"""Cards are rendered to HTML in Python: everything people wrote is escaped, only safe links are links."""

from __future__ import annotations

from bots import registry
from core.feed.items import Story
from core.web.cards import card, cards
from tests.core.feed.helpers import item


def test_what_people_wrote_is_escaped_and_only_safe_urls_are_links() -> None:
    hostile = '<script>x()</script>" onmouseover="y()'
    media = (("image", "javascript:alert(1)"), ("image", 'https://e.x/a.png"q'))
    lead = item(hostile, author_name='Eve"><img src=x onerror=z()>', media=media)
    other = item("a second source <b>", platform="discord", community="g1")
    html = str(card(Story("s1", 1.0, [lead, other]), registry.catalog()))
    assert "<script>" not in html and "&lt;script&gt;x()&lt;/script&gt;&quot; onmouseover=&quot;y()" in html
    assert "Eve&quot;&gt;&lt;img src=x onerror=z()&gt;" in html and "<img src=x" not in html
    assert 'src="https://e.x/a.png&quot;q"' in html and "javascript:" not in html
    assert html.count("<li>") == 2 and "a second source &lt;b&gt;" in html  # the grouped sources
    assert '<a href="/story/s1">Story</a>' in html
    full = str(card(Story("s1", 1.0, [lead]), registry.catalog(), full=True))
    assert "/story/s1" not in full and full.count("<li>") == 1  # the story page lists its one source
    assert str(cards([], registry.catalog())) == ""
