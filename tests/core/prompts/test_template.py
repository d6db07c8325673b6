from __future__ import annotations

import pytest

from core.errors import InvalidInput
from core.prompts.slots import Slot, default, validate
from core.prompts.template import MAX_FIELDS, TemplateError, normalize, parse

POST_VARS = sorted(default("post").variables)

# (name, template for the post slot, a fragment the message must contain)
HOSTILE: list[tuple[str, str, str]] = [
    ("attribute access", "{request.__class__}", "attribute access"),
    ("dunder chain", "{request.__class__.__mro__[1].__subclasses__}", "attribute access"),
    ("globals via attribute", "{request.__init__.__globals__}", "attribute access"),
    ("index", "{request[0]}", "indexing"),
    ("string index", "{request['a']}", "indexing"),
    ("closing bracket only", "{request]}", "indexing"),
    ("call", "{__import__('os')}", "call"),
    ("conversion r", "{request!r}", "conversion"),
    ("conversion s with spec", "{request!s:>10}", "conversion"),
    ("format spec", "{request:>1000000}", "format spec"),
    ("percent spec", "{max_chars:%}", "format spec"),
    ("nested spec", "{request:{max_chars}}", "nested braces"),
    ("nested braces", "{a{request}}", "nested braces"),
    ("deep nesting", "{{{request}}}", "Jinja"),
    ("jinja expression", "Hello {{ request }}", "Jinja"),
    ("jinja attribute", "{{ config.__class__.__init__.__globals__ }}", "Jinja"),
    ("jinja statement", "{% for x in request %}{{ x }}{% endfor %}", "Jinja"),
    ("jinja comment", "{# hidden #} text", "Jinja"),
    ("jinja close only", "text }} more", "Jinja"),
    ("empty braces", "say {}", "empty braces"),
    ("positional", "say {0}", "numbered field"),
    ("unknown variable", "{password}", "unknown variable"),
    ("unknown dunder", "{__class__}", "not a valid variable name"),
    ("variable of another slot", "{draft}", "unknown variable"),
    ("uppercase", "{REQUEST}", "did you mean {request}"),
    ("spaces inside", "{ request }", "spaces inside"),
    ("debug expression", "{request=}", "expression"),
    ("unclosed", "Write {request", "never closed"),
    ("stray close", "Write } now", "closes nothing"),
    ("dollar expression", "${request.upper()}", "attribute access"),
    ("cyrillic lookalike", "{requеst}", "not a valid variable name"),
    ("huge text", "x" * 3001, "limit for this prompt is 3,000"),
    ("megabyte", "{request} " * 200_000, "limit for this prompt"),
    ("empty", "   \n  ", "empty"),
    ("NUL", "Write\x00 a post", "U+0000"),
    ("escape sequence", "Write \x1b[31mred\x1b[0m", "U+001B"),
    ("bell", "ding\x07", "U+0007"),
    ("bidi override", "Write a post \u202eeurt si siht", "RIGHT-TO-LEFT OVERRIDE"),
    ("bidi isolate", "Write \u2066hidden\u2069", "U+2066"),
    ("zero width space", "{req\u200buest}", "ZERO WIDTH SPACE"),
    ("BOM", "\ufeffWrite a post", "U+FEFF"),
    ("tag characters", "Post\U000e0049\U000e0047\U000e004e", "U+E0049"),
    ("line separator", "one\u2028two", "LINE SEPARATOR"),
    ("too many fields", "{request}" * (MAX_FIELDS + 1), "placeholders"),
]


@pytest.mark.parametrize(("name", "text", "fragment"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_templates_are_rejected_with_a_clear_message(name: str, text: str, fragment: str) -> None:
    with pytest.raises(TemplateError) as caught:
        validate(Slot.POST, text)
    message = caught.value.user_message
    assert fragment in message, message
    assert "Allowed variables for post: " + " ".join(f"{{{v}}}" for v in POST_VARS) in message
    assert len(message) < 1200  # a chat message, even for a megabyte of input
    assert isinstance(caught.value, InvalidInput)  # the router turns it into a reply


def test_there_are_at_least_thirty_hostile_cases() -> None:
    assert len(HOSTILE) >= 30


VALID: list[tuple[str, str]] = [
    ("plain", "Write a friendly post."),
    ("variables", "Write one {platform} post of at most {max_chars} characters about {request}."),
    ("repeated variable", "{request}\n\nAgain: {request}"),
    ("adjacent variables", "{platform}{max_chars}"),
    ("newlines and tabs", "Line one\n\tindented\n\nLine three {context}"),
    ("emoji and ZWJ", "Use 👩‍💻 and 🎉 sparingly. {request}"),
    ("CJK and RTL letters", "写一篇帖子 · اكتب منشورا · {request}"),
    ("markup and symbols", "<request>{request}</request> 100% $5 #tag @name (a) [b] * _ ~ |"),
    ("fullwidth braces are letters", "｛request｝ is just text"),
    ("exactly the limit", "a" * 3000),
]


@pytest.mark.parametrize(("name", "text"), VALID, ids=[v[0] for v in VALID])
def test_valid_templates_are_accepted(name: str, text: str) -> None:
    template = validate(Slot.POST, text)
    assert template.variables <= set(POST_VARS)


def test_render_inserts_values_verbatim_and_never_reparses_them() -> None:
    template = validate(Slot.POST, "Request: {request} on {platform}")
    hostile = "{platform.__class__} {{ x }} {max_chars}"
    assert template.render({"request": hostile, "platform": "x"}) == f"Request: {hostile} on x"


def test_render_leaves_missing_whitelisted_variables_empty() -> None:
    assert validate(Slot.POST, "[{context}]").render({}) == "[]"


def test_every_problem_is_reported_with_its_position() -> None:
    with pytest.raises(TemplateError) as caught:
        validate(Slot.POST, "ok {request}\nthen {x.y} and {z[0]}")
    assert caught.value.problems == [
        "line 2, column 6: “{x.y}” uses attribute access, which is not allowed",
        "line 2, column 16: “{z[0]}” uses indexing, which is not allowed",
    ]


def test_slot_without_variables_names_none() -> None:
    with pytest.raises(TemplateError) as caught:
        parse("{x}", slot="guard", allowed=(), max_chars=100)
    assert "Allowed variables for guard: none." in caught.value.user_message


def test_normalize_unifies_newlines_and_trims() -> None:
    assert normalize("  a\r\nb\rc \n") == "a\nb\nc"
