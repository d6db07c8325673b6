"""Templates written by moderators (untrusted): any text parses into literal text and whitelisted fields
or is refused with a clear message; a parsed template renders values verbatim and nothing else."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from core.prompts.template import MAX_FIELDS, TemplateError, parse

ALLOWED = ("request", "post", "community", "platform")
_PIECES = st.sampled_from(
    ["{request}", "{post}", "{community}", "{platform}", "{", "}", "{{", "}}", "{%", "%}", "{#", "#}", "{}",
     "{ request }", "{Request}", "{x.__class__}", "{x[0]}", "{f()}", "{x!r}", "{x:>10}", "{0}", "{a=1}",
     "{{request}}", "{unknown}", "text ", "\n", "\t", "\u200b", "\x00", "😀", "{request", "request}"]
)  # fmt: skip
templates = st.one_of(
    st.lists(_PIECES | st.text(max_size=4), max_size=30).map("".join), st.text(max_size=200)
)
values = st.fixed_dictionaries({name: st.text(max_size=30) for name in ALLOWED})


@given(text=templates, given_values=values)
def test_any_template_parses_or_is_refused_clearly(text: str, given_values: dict[str, str]) -> None:
    try:
        template = parse(text, slot="post", allowed=ALLOWED, max_chars=500)
    except TemplateError as exc:
        assert exc.user_message.startswith("The post prompt was not accepted:")
        assert "Allowed variables for post" in exc.user_message and len(exc.user_message) < 1200
        return
    assert template.variables <= set(ALLOWED)
    assert sum(1 for p in template.parts if not isinstance(p, str)) <= MAX_FIELDS
    # rendering puts each value in verbatim, and a value that looks like a field stays text
    assert template.render({name: "{" + name + "}" for name in ALLOWED}) == text
    rendered = template.render(given_values)
    for name in template.variables:
        assert given_values[name] in rendered
