"""Feed cursors and scopes come from URLs anyone can edit: any value is a page or a clear 400, never a
server error; a cursor the feed handed out reads back as the same position."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from core.errors import InvalidInput
from core.feed.ingest import FeedStore
from core.feed.timelines import ORDERS, Scope, Timelines
from core.redis_server import EmbeddedRedis, connect
from tests.core.feed.helpers import item

_PIECES = st.sampled_from(
    ["~", "o", "inf", "-inf", "+inf", "1e5", "1e+-", "..", "-", "0", "123.5", "e", "abc", "_", "A-z", "nan",
     "1" * 8, "x" * 33]
)  # fmt: skip
cursors = st.one_of(
    st.lists(_PIECES | st.text(max_size=3), max_size=8).map("".join),
    st.text(max_size=40),
    # the shape of a real cursor (<score>~<story id>) with a score made of the characters it may contain
    st.builds(
        "{}~{}".format, st.text("0123456789.e+-inf", max_size=6), st.from_regex(r"\A[A-Za-z0-9_-]{1,5}\Z")
    ),
)
scopes = st.one_of(
    st.sampled_from(["all", "platform:x", "community:telegram:-100", "all:", "platform:", "community:x"]),
    st.lists(st.sampled_from(["all", "platform", "community", ":", "x", "-100", "A", " "]) | st.text(max_size=5),
             max_size=5).map("".join),
)  # fmt: skip


@given(cursor=cursors, order=st.sampled_from(sorted(ORDERS)))
async def test_any_cursor_is_a_page_or_a_clear_message(
    redis_server: EmbeddedRedis, cursor: str, order: str
) -> None:
    redis = connect(redis_server.url)
    try:
        await FeedStore(redis).ingest([item("A story so there is a timeline to page through.")])
        timelines = Timelines(redis, 3600.0)
        try:
            page = await timelines.page(Scope(), order, 5, cursor)  # type: ignore[arg-type]
        except InvalidInput as exc:
            assert "cursor" in exc.user_message
        else:
            assert page.stories == [] or len(page.stories) <= 5
    finally:
        await redis.aclose()


@given(score=st.floats(allow_nan=False, allow_infinity=False) | st.just(float("inf")),
       last=st.from_regex(r"\A[A-Za-z0-9_-]{1,32}\Z"))  # fmt: skip
def test_cursors_the_feed_hands_out_read_back(score: float, last: str) -> None:
    cursor = f"{score!r}~{last}" if score != float("inf") else f"inf~{last}"
    assert Timelines._parse_cursor(cursor) == (cursor.split("~")[0], last)


@given(text=scopes)
def test_any_scope_parses_or_says_what_is_allowed(text: str) -> None:
    try:
        scope = Scope.parse(text)
    except InvalidInput as exc:
        assert "Scope must be" in exc.user_message
        return
    assert scope.kind in ("all", "platform", "community")
    again = Scope.parse("all" if scope.kind == "all" else f"{scope.kind}:{scope.value}")
    assert again == scope and scope.key and scope.label
