"""What a model is sent and how its answer is decoded, per kind of model: the small-model profile.

The bundled SmolLM2-135M follows two plain sentences and a couple of examples far better than a page of
rules, and writes until it is stopped. So for small local models (``small=True``):

- the system message is the profile's short text (``profiles/small/system.txt``), followed by the
  community's own persona, style and rules *only where moderators changed them* (so their word still
  applies), then the operator's guard;
- a few examples per kind (``profiles/small/examples.json``) go first as earlier chat turns;
- the answer is constrained by llama.cpp's JSON-schema grammar (``response_format`` of llama-cpp-python's
  server): ``{text, hashtags, alt_text}`` (a thread: ``{parts, ...}``), the text limited to a length
  target per kind and to letters and plain punctuation (no ``:``, ``/``, ``<``, ``@``, ``$`` or newlines, so
  no links, tags, prices or transcripts), digits only as the numbers the request gave, hashtags chosen from
  the request's topic words;
- sampling is tuned for the tiny model (low temperature, a repeat penalty) and ``max_tokens`` fits the target.

Larger providers keep the moderators' full templates; OpenAI itself is asked for the same fields through
structured output (``json_schema``). Every answer, structured or not, still goes through ``repair``.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from core.assistant.drafts import DraftKind
from core.assistant.grounding import topic_words

# Characters the small model may write in a draft: letters, spaces and plain punctuation.
_CHARS = r"[A-Za-z,.!?'&-]"  # spaces: one between words (``schema``)
_FIRST = r"[A-Za-z&-]"  # how a word may start
_ALT_CHARS = r"[A-Za-z ,.-]"
_NUMBER = re.compile(r"\d+")


@dataclass(frozen=True)
class Length:
    """Length targets (characters) of what the model writes; ``parts`` > 1 for a thread."""

    min_chars: int
    max_chars: int
    parts: tuple[int, int] = (1, 1)


@dataclass
class Plan:
    """What to send: example turns, the decoding kwargs for ``model.bind`` and whether JSON comes back."""

    examples: list[tuple[str, str]] = field(default_factory=list)  # (user, assistant) turns
    bind: dict[str, Any] = field(default_factory=dict)
    structured: bool = False


@functools.cache
def _examples() -> dict[str, list[dict[str, Any]]]:
    raw = (resources.files("core.assistant.profiles") / "small" / "examples.json").read_text("utf-8")
    data: dict[str, list[dict[str, Any]]] = {k: v for k, v in json.loads(raw).items() if k != "_about"}
    return data


@functools.cache
def small_system_template() -> str:
    """The profile's system text (below the dashed line of ``system.txt``)."""
    raw = (resources.files("core.assistant.profiles") / "small" / "system.txt").read_text("utf-8")
    return raw.split("# ----", 1)[1].strip()


def kind_noun(kind: DraftKind, revising: bool) -> str:
    return "revision" if revising else {"thread": "thread", "reply": "reply"}.get(kind, "post")


def length_target(
    kind: DraftKind, limit: int, *, parent_chars: int | None = None, shorter: bool = False
) -> Length:
    """The length a small model aims for: a post is short, a reply shorter, a thread is 2-4 short parts."""
    if parent_chars is not None:
        top = max(40, int(parent_chars * 0.7)) if shorter else min(280, max(parent_chars + 60, 120))
        return Length(min(30, top), min(top, limit))
    if kind == "thread":
        return Length(30, min(200, limit - 8), (2, 4))
    if kind == "reply":
        return Length(20, min(220, limit))
    return Length(60, min(240, limit - 30))


def task_text(
    kind: DraftKind,
    request: str,
    *,
    message: str | None = None,
    draft: str | None = None,
) -> str:
    """The user turn for the small model: the same plain shape as the examples."""
    if draft is not None:
        return f"Draft: {draft}\nChange: {request}"
    if kind == "reply":
        return f"Message: {message or ''}\nAsked: {request or 'a helpful reply'}"
    return f"Request: {request}"


def example_turns(kind: DraftKind, revising: bool) -> list[tuple[str, str]]:
    key = "revise" if revising else kind if kind in ("thread", "reply") else "post"
    turns = []
    for ex in _examples().get(key, []):
        user = task_text(kind, ex["request"], message=ex.get("message"), draft=ex.get("draft"))
        turns.append((user, json.dumps(ex["answer"], ensure_ascii=False)))
    return turns


def schema(kind: DraftKind, t: Length, sources: str, topics: Sequence[str], revising: bool) -> dict[str, Any]:
    """The JSON schema llama.cpp turns into a grammar: fields, lengths and allowed characters.

    The text has a minimum length but no maximum in the grammar: llama.cpp expands ``{m,n}`` into n-m
    nested optional rules, which made sampling 10x slower here; ``max_tokens`` and ``fit`` bound it instead.
    "text" (or "parts") comes first, so a chat can show it while the rest is written.
    """
    numbers = sorted(set(_NUMBER.findall(sources)), key=len, reverse=True)[:12]
    unit = "(" + "|".join([_CHARS, *numbers]) + ")" if numbers else _CHARS
    # Words of those characters, one space between them, ending a sentence: no gap where a forbidden
    # digit was wanted ("is at  and"), no answer that stops mid-sentence. The minimum is in words.
    # Every word starts with a letter, a number or "&"/"-", so no punctuation stands alone (" .").
    first = "(" + "|".join([_FIRST, *numbers]) + ")" if numbers else _FIRST
    words = max(3, t.min_chars // 6)
    text = {"type": "string", "pattern": f"^({first}{unit}* ){{{words},}}{first}{unit}*[.!?]$"}
    props: dict[str, Any] = {}
    if t.parts[1] > 1:
        props["parts"] = {"type": "array", "items": text, "minItems": t.parts[0], "maxItems": t.parts[1]}
    else:
        props["text"] = text
    if kind in ("post", "thread") and not revising:
        if topics:
            props["hashtags"] = {"type": "array", "items": {"enum": list(topics)}, "maxItems": 2}
        props["alt_text"] = {"type": "string", "pattern": f"^{_ALT_CHARS}{{5,40}}$"}
    return {"type": "object", "properties": props, "required": list(props)}


def small_plan(
    kind: DraftKind,
    request: str,
    limit: int,
    *,
    sources: str,
    parent_chars: int | None = None,
    shorter: bool = False,
    seed: int | None = None,
) -> Plan:
    """Examples, grammar and sampling for a small local model served by llama-cpp-python.

    ``seed`` makes sampling repeatable (the benchmark); None samples afresh each time, so asking again
    gives another draft.
    """
    revising = parent_chars is not None
    t = length_target(kind, limit, parent_chars=parent_chars, shorter=shorter)
    topics = topic_words(request) if kind in ("post", "thread") and not revising else []
    fmt = {"type": "json_object", "schema": schema(kind, t, sources, topics, revising)}
    chars = t.max_chars * t.parts[1] + (70 if kind in ("post", "thread") and not revising else 0)
    bind: dict[str, Any] = {
        "max_tokens": chars // 4 + 25,  # ~4 characters per token, plus the JSON around it
        "temperature": 0.4,
        "top_p": 0.9,
        "extra_body": {"response_format": fmt, "repeat_penalty": 1.15, "top_k": 40},
    }
    if seed is not None:
        bind["seed"] = seed
    return Plan(examples=example_turns(kind, revising), bind=bind, structured=True)


_OPENING_WORD = re.compile(r"[A-Za-z][A-Za-z'-]*")


def summaries_plan(texts: Sequence[str], max_tokens: int, *, lead: bool = True) -> dict[str, Any]:
    """Decoding kwargs for a small local model summarising several texts in one answer: a grammar for
    ``{"summaries": [...]}`` with one sentence of plain words per text (no links, tags or colons; digits
    only as that text's numbers), each starting with its own text's first words when ``lead`` (stories).
    A 135M model reads the stories as one text and summarises it in order; made to start where its story
    starts, each summary follows its own story instead of running on into the next one's."""
    sentences = [_summary_sentence(text, lead) for text in texts]
    listed = {"type": "array", "prefixItems": sentences, "minItems": len(texts), "maxItems": len(texts)}
    fmt = {
        "type": "json_object",
        "schema": {"type": "object", "properties": {"summaries": listed}, "required": ["summaries"]},
    }
    return {
        "max_tokens": max_tokens,
        "temperature": 0.2,
        "top_p": 0.9,
        "extra_body": {"response_format": fmt, "repeat_penalty": 1.1, "top_k": 40},
    }


def _summary_sentence(story: str, lead: bool) -> dict[str, Any]:
    numbers = sorted(set(_NUMBER.findall(story)), key=len, reverse=True)[:12]
    unit = "(" + "|".join([_CHARS, *numbers]) + ")" if numbers else _CHARS
    first = "(" + "|".join([_FIRST, *numbers]) + ")" if numbers else _FIRST
    opening = []
    for word in story.split()[: 3 if lead else 0]:
        if not _OPENING_WORD.fullmatch(word):
            break
        opening.append(word)
    start = "".join(f"{w} " for w in opening)
    return {"type": "string", "pattern": f"^{start}({first}{unit}* ){{3,}}{first}{unit}*[.!?]$"}


OPENAI_DRAFT_SCHEMA: dict[str, Any] = {
    "type": "json_schema",
    "json_schema": {
        "name": "draft",
        "strict": True,
        "schema": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "text": {"type": "string", "description": "the post text only (a thread: parts "
                         "separated by a blank line)"},
                "hashtags": {"type": "array", "items": {"type": "string"},
                             "description": "0-2 hashtags naming the subject, without #"},
                "alt_text": {"type": "string", "description": "a short description for an image"},
            },
            "required": ["text", "hashtags", "alt_text"],
        },
    },
}  # fmt: skip


def full_plan(max_tokens: int, *, structured: bool) -> Plan:
    """Larger providers: the community's full templates; structured output where the provider has it."""
    bind: dict[str, Any] = {"max_tokens": max_tokens}
    if structured:
        bind["extra_body"] = {"response_format": OPENAI_DRAFT_SCHEMA}
    return Plan(bind=bind, structured=structured)


@dataclass
class Structured:
    """A decoded answer: the text (thread parts joined by blank lines), chosen hashtags, alt text."""

    text: str
    hashtags: list[str] = field(default_factory=list)
    alt_text: str = ""


def decode(raw: str) -> Structured | None:
    """The fields of a JSON answer, or None when the answer is not that JSON (then it is plain text)."""
    stripped = raw.strip().removeprefix("```json").removeprefix("```").removesuffix("```").strip()
    if not stripped.startswith("{"):
        return None
    try:
        data = json.loads(stripped)
    except json.JSONDecodeError:
        return None
    if not isinstance(data, Mapping):
        return None
    parts = data.get("parts")
    if isinstance(parts, list):
        text = "\n\n".join(str(p).strip() for p in parts if str(p).strip())
    else:
        text = str(data.get("text") or "")
    tags = data.get("hashtags")
    hashtags = [str(t).strip().lstrip("#") for t in tags if str(t).strip()] if isinstance(tags, list) else []
    return Structured(text, hashtags, str(data.get("alt_text") or "").strip())


_SENTENCE_END = re.compile(r"[.!?](?=\s|$)")


def cut_answer(raw: str) -> str:
    """The finished sentences of a JSON answer cut off by ``max_tokens`` (what was still being written
    when the model was stopped is not a sentence anyone would post)."""
    text = partial_text(raw).strip()
    ends = [m.end() for m in _SENTENCE_END.finditer(text)]
    return text[: ends[-1]] if ends else text


_PARTIAL_FIELD = re.compile(r'"(text|parts)"\s*:\s*(\[\s*)?"')


def partial_text(raw: str) -> str:
    """The readable text of an answer still being written (JSON or not), for showing it while it grows."""
    stripped = raw.lstrip()
    if not stripped.startswith("{"):
        return raw
    match = _PARTIAL_FIELD.search(stripped)
    if match is None:
        return ""
    out: list[str] = []
    i, n = match.end(), len(stripped)
    in_string = True
    while i < n:
        ch = stripped[i]
        if in_string:
            if ch == "\\" and i + 1 < n:
                nxt = stripped[i + 1]
                out.append({"n": "\n", "t": " ", '"': '"', "\\": "\\", "/": "/"}.get(nxt, ""))
                i += 2
                continue
            if ch == '"':
                in_string = False
                if match.group(1) != "parts":
                    break
            else:
                out.append(ch)
        elif ch == '"':
            in_string = True
            out.append("\n\n")
        elif ch == "]":
            break
        i += 1
    return "".join(out)
