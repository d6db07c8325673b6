"""Quality of drafts from the bundled model: would a person post them? Checked automatically, per draft.

Runs the requests of ``bench/data/quality_requests.json`` (posts, threads, replies, revisions written for
this benchmark; taken a kind at a time in turn, so a run cut short has every kind) through the Composer
with the bundled SmolLM2-135M (the small-model profile) and checks every draft:

- on topic: its text (hashtags aside) uses a word of the request's subject;
- no artefacts: no transcripts ("Chat History:", "In Conversation:"), role-play ("(to self)", "My name
  is"), leaked tags ("<post text>"), JSON, markdown, preambles ("Sure! Here's..."), labels ("Post:"), gaps
  where a word is missing ("is at  and"), a sentence left unfinished, or sentences copied from the
  profile's examples;
- nothing invented: no link, number or price that the request (or the message / draft) did not give;
  a revision keeps the draft's days and numbers;
- length fits the kind and the platform (a post is short, a reply shorter, a thread 2-8 parts each within
  the platform's limit, "shorter" is shorter);
- hashtags are topical: each names the subject, none is a request verb or the audience ("#reminding",
  "#members").

Beside it, the floor: the same requests sent to the same model as a bare one-line instruction (no system
prompt, no examples, no grammar, no repair), streamed, checked the same way. Also timed, with the bundled
model warm (one request per kind first, not counted): the first visible text (what a chat would show while
the draft is written) and the finished draft, p50/p95, beside the floor's first streamed token and whole
answer (the raw baseline). Sampling is seeded (``SEED``): a run on the same machine gives the same drafts.
The first ten drafts are written to docs/sample-drafts.md.

Run: ``.venv/bin/python bench/quality.py [--limit N] [--no-floor] [--minutes N]`` (about 5 minutes on a
quiet machine; an hour when five sessions share the 2 cores).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from langchain_core.messages import HumanMessage  # noqa: E402

from bots import registry  # noqa: E402
from core.assistant.compose import Composer, Request, Target  # noqa: E402
from core.assistant.models import ModelRuntime  # noqa: E402
from core.live import FIRST_AFTER_S  # noqa: E402
from core.settings import Settings  # noqa: E402

CATALOG = registry.catalog()

DATA = Path(__file__).parent / "data" / "quality_requests.json"
SAMPLES = ROOT / "docs" / "sample-drafts.md"

# -- the checks ------------------------------------------------------------------------------------------
ARTEFACTS = [
    (re.compile(p, re.IGNORECASE), label)
    for p, label in (
        (r"chat history|in conversation|conversation so far|transcript", "transcript"),
        (r"\((?:to self|to [a-z]+|aside)\)|\bmy name is\b|\bi am an? (?:ai|assistant|bot)\b", "role-play"),
        (r"^\s*(?:user|assistant|human|member|ai|request|post|tweet|reply|draft|answer)\s*:", "label"),
        (r"<\s*/?\s*[a-z][\w -]*>", "tag"),
        (r"[^\s.!?] {2,}\S| [,.!?]", "gap"),  # a word left out ("is at  and"), a space before punctuation
        (r"[{}]|\"text\"\s*:", "json"),
        (r"\*\*|^#{1,6}\s|```", "markdown"),
        (r"^\s*(?:sure|certainly|of course|here(?:'s| is| are))\b", "preamble"),
        (r"\bas an ai\b|\blanguage model\b|\blet me know if\b", "meta"),
    )
]
URL = re.compile(r"(?:https?://|www\.)\S+|\b[\w-]+\.(?:com|org|net|io|co|uk|info|app|dev|ly|me)\b", re.I)
NUMBER = re.compile(r"\d+")
MONEY = re.compile(r"[$€£¥]|\b(?:dollars?|euros?|usd|eur)\b", re.IGNORECASE)
HASHTAG = re.compile(r"(?<![\w#&])#(\w+)")
_NOT_TOPIC_WORDS = (  # a request's verbs and audience: never what a post is about
    "reminding remind reminder members member thanking thank thanks everyone people announcing announce "
    "announcement inviting invite write post posting share sharing celebrate celebrating encourage "
    "community group folks welcome welcoming let know ask asking tell"
)
NOT_TOPICS = frozenset(_NOT_TOPIC_WORDS.split())
MAX_POST_CHARS = 400  # a post people post is short, whatever the platform allows
MAX_REPLY_CHARS = 300
SEED = 7  # sampling is seeded: the same run gives the same drafts (up to floating-point noise)


@dataclass
class Case:
    kind: str
    platform: str
    request: str
    topic: list[str]
    message: str | None = None
    draft: str | None = None

    @property
    def sources(self) -> str:
        return "\n".join(x for x in (self.request, self.message, self.draft) if x)


@dataclass
class Result:
    case: Case
    parts: list[str]
    failures: list[str] = field(default_factory=list)
    first_s: float | None = None
    total_s: float = 0.0
    error: str = ""


def load_cases() -> list[Case]:
    return [Case(**item) for item in json.loads(DATA.read_text())["requests"]]


# Warm-up requests, one per kind (not counted, not in the set): the model server's prompt cache then
# holds each kind's system prompt and examples, as it does in a bot that has been answering for a while.
WARM_UP = [
    Case("post", "telegram", "write a post about our monthly board game night", ["board"]),
    Case("thread", "x", "a thread with tips for a first visit to our makerspace", ["makerspace"]),
    Case("reply", "discord", "say yes, everyone can come", ["come"], message="Can my friend come too?"),
    Case("revise", "telegram", "shorter", ["quiz"], draft="Our quiz night is back on Friday. Bring a team!"),
]


def by_kind_in_turn(cases: list[Case]) -> list[Case]:
    """A post, a thread, a reply, a revision, a post...: a run cut short still has every kind."""
    queues: dict[str, list[Case]] = {}
    for c in cases:
        queues.setdefault(c.kind, []).append(c)
    out: list[Case] = []
    while any(queues.values()):
        out += [q.pop(0) for q in queues.values() if q]
    return out


def check(case: Case, parts: list[str]) -> list[str]:
    """Why this draft would not be posted (empty: it passes every check)."""
    text = "\n\n".join(re.sub(r"^\d{1,2}/\d{1,2} ", "", p) for p in parts).strip()  # "1/3" is ours
    if not text:
        return ["empty"]
    failures: list[str] = []
    body = HASHTAG.sub("", text)
    words = re.findall(r"[a-z0-9]+", body.lower())  # a hashtag alone does not make a post about it
    if not any(w.startswith(t.lower()) for t in case.topic for w in words):
        failures.append("off topic")
    if any(not _finished(HASHTAG.sub("", p)) for p in parts):
        failures.append("unfinished sentence")
    spoken = HASHTAG.sub(r"\1", text)  # "#garden" read as its word: removing it would leave a gap
    for pattern, label in ARTEFACTS:
        if any(pattern.search(line) for line in spoken.splitlines()):
            failures.append(f"artefact: {label}")
    given = case.sources.lower()
    if any(u.lower() not in given for u in URL.findall(text)):
        failures.append("invented link")
    given_numbers = set(NUMBER.findall(given))
    if any(n not in given_numbers for n in NUMBER.findall(body)):
        failures.append("invented number")
    if any(m.lower() not in given for m in MONEY.findall(text)):
        failures.append("invented price")
    if _copied(text):
        failures.append("copied from the profile's examples")
    if case.kind == "revise" and case.draft is not None and not _key_facts(case.draft) <= _key_facts(body):
        failures.append("revision lost a day, time or number")
    failures += _length(case, parts)
    tags = [t.lower() for t in HASHTAG.findall(text)]
    if len(tags) > 3:
        failures.append("too many hashtags")
    for tag in tags:
        topical = any(t.lower() in tag or tag in t.lower() for t in case.topic if len(t) > 2)
        if tag in NOT_TOPICS or not topical:
            failures.append(f"hashtag not topical: #{tag}")
            break
    return failures


DAYS = re.compile(r"\b(?:mon|tues|wednes|thurs|fri|satur|sun)day\b", re.IGNORECASE)


def _key_facts(text: str) -> set[str]:
    """What a revision must keep of the draft: its days and numbers ("10am" and "10 am" both keep 10)."""
    return {m.lower() for m in DAYS.findall(text)} | set(NUMBER.findall(text))


def _example_runs() -> frozenset[tuple[str, ...]]:
    """Every run of six words in the small-model profile's examples (what a draft must not copy)."""
    raw = json.loads((ROOT / "core" / "assistant" / "profiles" / "small" / "examples.json").read_text())
    runs: set[tuple[str, ...]] = set()
    for examples in (v for k, v in raw.items() if k != "_about"):
        for ex in examples:
            answer = ex["answer"]
            for piece in [answer.get("text", ""), *answer.get("parts", [])]:
                words = re.findall(r"[a-z']+", piece.lower())
                runs |= {tuple(words[i : i + 6]) for i in range(len(words) - 5)}
    return frozenset(runs)


EXAMPLE_RUNS = _example_runs()


def _copied(text: str) -> bool:
    """The draft repeats six words in a row of an example: content from another request."""
    words = re.findall(r"[a-z']+", text.lower())
    return any(tuple(words[i : i + 6]) in EXAMPLE_RUNS for i in range(len(words) - 5))


def _finished(text: str) -> bool:
    """A draft (or thread part) ends a sentence, not in the middle of one ("The game is called")."""
    end = text.rstrip().rstrip("\"')»”’").rstrip()
    return not end or (not end[-1].isalnum() and end[-1] not in ",;:-")


def _length(case: Case, parts: list[str]) -> list[str]:
    target = Target.for_platform(CATALOG[case.platform])
    measure = target.measure
    if any(measure(p) > target.limit for p in parts):
        return [f"over the {case.platform} limit"]
    text = "\n\n".join(parts)
    if case.kind == "thread":
        return [] if 2 <= len(parts) <= 8 else [f"thread of {len(parts)} parts"]
    if len(parts) != 1:
        return [f"{len(parts)} parts for a {case.kind}"]
    if case.kind == "revise" and case.draft is not None:
        if text.strip() == case.draft.strip():
            return ["revision unchanged"]
        if case.request.startswith("short") and measure(text) >= measure(case.draft):
            return ["not shorter"]
        return [] if len(text) <= max(MAX_POST_CHARS, len(case.draft) * 3 // 2) else ["too long"]
    low, high = (10, MAX_REPLY_CHARS) if case.kind == "reply" else (30, MAX_POST_CHARS)
    if not low <= len(text) <= high:
        return [f"length {len(text)} outside {low}-{high}"]
    return []


# -- running ---------------------------------------------------------------------------------------------
def request_for(case: Case) -> Request:
    kind = "post" if case.kind == "revise" else case.kind
    return Request(
        kind=kind,  # type: ignore[arg-type]
        text=case.request,
        community_key=f"{case.platform}:bench",
        community_name="our community",
        target=Target.for_platform(CATALOG[case.platform]),
        parent_text=case.draft,
        message=case.message,
    )


async def with_profile(composer: Composer, case: Case) -> Result:
    started = time.perf_counter()
    first: list[float] = []

    async def shown(text: str) -> None:
        if text.strip() and not first:
            first.append(time.perf_counter() - started)

    try:
        composed = await composer.compose(request_for(case), shown)
    except Exception as exc:
        return Result(
            case, [], [f"error: {type(exc).__name__}"], None, time.perf_counter() - started, str(exc)
        )
    result = Result(case, composed.parts, first_s=first[0] if first else None)
    result.total_s = time.perf_counter() - started
    result.failures = check(case, composed.parts)
    return result


def bare_instruction(case: Case) -> str:
    """The floor: what someone would type to the model directly, in one line."""
    if case.kind == "reply":
        return f'Reply to this message: "{case.message}" ({case.request}).'
    if case.kind == "revise":
        return f'Rewrite this post ({case.request}): "{case.draft}"'
    return case.request[0].upper() + case.request[1:] + "."


async def with_bare_instruction(runtime: ModelRuntime, case: Case) -> Result:
    """The floor, streamed: its first token is the raw baseline of the first visible text."""
    model = await runtime.chat_model()
    started = time.perf_counter()
    first: float | None = None
    chunks: list[str] = []
    try:
        async for chunk in model.bind(max_tokens=200, seed=SEED).astream(
            [HumanMessage(bare_instruction(case))]
        ):
            if chunk.content and first is None:
                first = time.perf_counter() - started
            chunks.append(str(chunk.content))
    except Exception as exc:
        return Result(case, [], [f"error: {type(exc).__name__}"], None, time.perf_counter() - started)
    raw = "".join(chunks).strip()
    parts = [p.strip() for p in re.split(r"\n\s*\n", raw) if p.strip()] if case.kind == "thread" else [raw]
    return Result(case, parts, check(case, parts), first, time.perf_counter() - started)


def _progress(label: str, r: Result) -> Result:
    verdict = "ok" if not r.failures else "; ".join(r.failures)
    print(f"  [{label}] {r.total_s:5.1f}s {r.case.kind:<7} {verdict}", file=sys.stderr, flush=True)
    return r


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f} on {os.cpu_count()} cores"


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def summary(label: str, results: list[Result]) -> str:
    passed = sum(not r.failures for r in results)
    return f"  {label:<44} {passed:>3}/{len(results)} pass ({100 * passed / len(results):5.1f} %)"


def failure_counts(results: list[Result]) -> str:
    counts: dict[str, int] = {}
    for r in results:
        for f in r.failures:
            key = f.split(":")[0] if f.startswith(("hashtag", "error")) else f
            counts[key] = counts.get(key, 0) + 1
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1])) or "none"


def write_samples(results: list[Result], path: Path) -> None:
    lines = [
        "# Sample drafts (bundled SmolLM2-135M, small-model profile)",
        "",
        "The first ten drafts of `bench/quality.py`, as written (regenerate with "
        "`.venv/bin/python bench/quality.py`). Each shows the request, the draft and the checks' verdict.",
        "",
    ]
    for i, r in enumerate(results[:10], 1):
        c = r.case
        lines.append(f"## {i}. {c.kind} for {c.platform}")
        lines.append("")
        if c.message:
            lines.append(f"Message answered: “{c.message}”  ")
        if c.draft:
            lines.append(f"Draft revised: “{c.draft}”  ")
        lines.append(f"Request: “{c.request}”")
        lines.append("")
        lines.extend("> " + line if line else ">" for line in "\n\n".join(r.parts).splitlines())
        lines.append("")
        verdict = "passes every check" if not r.failures else "fails: " + "; ".join(r.failures)
        lines.append(f"Verdict: {verdict}.")
        lines.append("")
    path.write_text("\n".join(lines))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=int, default=0, help="only the first N requests")
    parser.add_argument("--start", type=int, default=0, help="skip the first N (split a run over processes)")
    parser.add_argument(
        "--no-warm-up", action="store_true", help="pass rate only: times include cold prompts"
    )
    parser.add_argument("--no-floor", action="store_true", help="skip the bare-instruction floor")
    parser.add_argument("--samples", type=Path, default=SAMPLES, help="where the first ten drafts go")
    parser.add_argument("--minutes", type=float, default=0, help="start no new request after this long")
    args = parser.parse_args()
    cases = by_kind_in_turn(load_cases())[args.start :][: args.limit or None]
    with tempfile.TemporaryDirectory() as tmp:
        # quality, not patience, is measured here: a busy machine must not turn slow drafts into failures
        settings = Settings(
            CHORUS_DATA_DIR=Path(tmp),
            OPENAI_API_KEY="",
            OPENAI_BASE_URL=None,
            CHORUS_LOCAL_COMPOSE_BUDGET_S=900,
            CHORUS_MODEL_TIMEOUT_S=900,
        )
        runtime = ModelRuntime(settings)
        if not runtime.local:
            print("the bundled model is not the first model of the chain here; nothing to measure")
            return
        composer = Composer(
            runtime.chat_model,
            chain=runtime.chain,
            small_model=True,
            budget_s=settings.local_compose_budget_s,
            seed=SEED,
        )
        try:
            t0 = time.perf_counter()
            await runtime.chat_model()
            print(f"bundled model server start: {time.perf_counter() - t0:.2f} s")
            print(f"load at start: {_load()}")
            for case in (
                [] if args.no_warm_up else WARM_UP
            ):  # not counted: each kind's prompt evaluated once, as in a running bot
                await with_profile(composer, case)
            profiled: list[Result] = []
            floor: list[Result] = []
            stop_at = time.monotonic() + args.minutes * 60 if args.minutes else None
            for case in cases:  # interleaved, so a run cut short still compares like with like
                if stop_at is not None and time.monotonic() > stop_at:
                    print(f"  time is up after {len(profiled)} requests", file=sys.stderr, flush=True)
                    break
                profiled.append(_progress("profile", await with_profile(composer, case)))
                if not args.no_floor:
                    floor.append(_progress("floor", await with_bare_instruction(runtime, case)))
        finally:
            await runtime.aclose()
    cases = [r.case for r in profiled]
    kinds = sorted({c.kind for c in cases})
    print(f"\nQuality: {len(cases)} requests ({', '.join(kinds)}), bundled SmolLM2-135M-Instruct")
    print(summary("Chorus small-model profile", profiled))
    if floor:
        print(summary("floor: bare one-line instruction, raw answer", floor))
    for kind in kinds:
        mine = [r for r in profiled if r.case.kind == kind]
        base = [r for r in floor if r.case.kind == kind]
        extra = f"   floor {sum(not r.failures for r in base)}/{len(base)}" if base else ""
        print(f"    {kind:<8} {sum(not r.failures for r in mine)}/{len(mine)}{extra}")
    print(f"  failures (profile): {failure_counts(profiled)}")
    if floor:
        print(f"  failures (floor):   {failure_counts(floor)}")
    # a chat shows the first text once the live publisher's hold (FIRST_AFTER_S) has passed
    firsts = [max(r.first_s, FIRST_AFTER_S) for r in profiled if r.first_s is not None]
    totals = [r.total_s for r in profiled if not r.error]
    print(f"\nTime with the bundled model (this machine; load at the end: {_load()}):")
    if firsts:
        print(
            f"  first visible text   p50 {pct(firsts, 50):5.2f} s   p95 {pct(firsts, 95):5.2f} s   (n={len(firsts)})"
        )
    if totals:
        print(
            f"  finished draft       p50 {pct(totals, 50):5.2f} s   p95 {pct(totals, 95):5.2f} s   (n={len(totals)})"
        )
    if floor:
        bare_first = [r.first_s for r in floor if r.first_s is not None]
        if bare_first:
            print(
                f"  baseline: bare instruction streamed, first token p50 {pct(bare_first, 50):5.2f} s   "
                f"p95 {pct(bare_first, 95):5.2f} s"
            )
        bare = [r.total_s for r in floor]
        print(
            f"  baseline: bare instruction, whole answer p50 {pct(bare, 50):5.2f} s   p95 {pct(bare, 95):5.2f} s"
        )
        print(
            f"  mean draft length: profile {statistics.mean(len(''.join(r.parts)) for r in profiled):.0f} chars, "
            f"floor {statistics.mean(len(''.join(r.parts)) for r in floor):.0f} chars"
        )
    write_samples(profiled, args.samples)
    print(
        f"\nfirst ten drafts written to {args.samples.relative_to(ROOT) if args.samples.is_relative_to(ROOT) else args.samples}"
    )
    for r in profiled:
        if r.failures:
            print(
                f"  FAIL {r.case.kind:<7} {r.case.request[:50]!r}: {'; '.join(r.failures)} :: {' | '.join(r.parts)[:160]!r}"
            )


if __name__ == "__main__":
    asyncio.run(main())
