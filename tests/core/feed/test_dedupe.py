from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import redis.asyncio as aioredis
from datasketch import MinHash, MinHashLSH

from core.feed.dedupe import (
    MinHasher,
    bigram_hash,
    conflicting,
    content,
    near_duplicates,
    shingle,
    similarity,
    tokens,
)
from core.feed.ingest import FeedStore
from tests.core.feed.helpers import item

pytestmark = pytest.mark.topologies  # core flows: on one server and on a cluster

PAIRS = [
    json.loads(line)
    for line in (Path(__file__).parent / "data" / "dedupe_pairs.jsonl").read_text().splitlines()
]


def test_labelled_set_is_big_and_mixed() -> None:
    assert len(PAIRS) >= 60
    positives = [p for p in PAIRS if p["dup"]]
    assert len(positives) >= 30 and len(PAIRS) - len(positives) >= 30
    assert all(p["pa"] != p["pb"] for p in positives)  # every duplicate crosses platforms
    assert sum(p["why"].startswith("hard") for p in PAIRS) >= 25


def test_tokens_drop_links_emoji_and_retweet_markers() -> None:
    assert tokens("RT @chorusdev: Big news 🚀 https://x.co/a #launch") == ["big", "news", "launch"]
    assert tokens("Café ÉTÉ ＡＢＣ") == ["café", "été", "abc"]


def test_signatures_equal_datasketch() -> None:
    hasher = MinHasher(bands=8, rows=2, seed=7)
    texts = [tokens(p["a"]) for p in PAIRS[:10]]
    signatures = hasher.signatures(texts)
    for toks, sig in zip(texts, signatures, strict=True):
        reference = MinHash(num_perm=16, seed=7, hashfunc=bigram_hash)
        reference.update_batch([f"{a} {b}".encode() for a, b in itertools.pairwise(toks)])
        assert np.array_equal(reference.hashvalues, sig)


def test_banding_agrees_with_datasketch_lsh() -> None:
    """Our band keys put two texts in a common bucket exactly when datasketch's MinHashLSH does."""
    hasher = MinHasher(bands=8, rows=2)
    lsh = MinHashLSH(num_perm=16, params=(8, 2))
    assert (lsh.b, lsh.r) == (hasher.bands, hasher.rows)
    for n, pair in enumerate(PAIRS):
        a, b = tokens(pair["a"]), tokens(pair["b"])
        if len(a) < 2 or len(b) < 2:
            continue
        sig_a, sig_b = hasher.signatures([a, b])
        keys_a, keys_b = hasher.band_keys(np.stack([sig_a, sig_b]))
        ours = any(keys_a[i : i + 6] == keys_b[i : i + 6] for i in range(0, 48, 6))
        index = MinHashLSH(num_perm=16, params=(8, 2))
        index.insert(f"a{n}", MinHash(num_perm=16, hashvalues=sig_a, scheme="affine32"))
        theirs = f"a{n}" in index.query(MinHash(num_perm=16, hashvalues=sig_b, scheme="affine32"))
        assert ours == theirs, pair["why"]


def test_salient_substitutions_are_different_stories() -> None:
    a = shingle("The Berlin meetup is sold out! Thanks to everyone who registered.")
    b = shingle("The Paris meetup is sold out! Thanks to everyone who registered.")
    assert similarity(a, b)[0] > 0.6 and conflicting(a, b)
    assert not near_duplicates(a, b)
    assert not near_duplicates(shingle("gm everyone"), shingle("gm everyone"))  # too short to be a story


def _scores(predicted: list[bool]) -> tuple[float, float]:
    truth = [p["dup"] for p in PAIRS]
    tp = sum(p and t for p, t in zip(predicted, truth, strict=True))
    fp = sum(p and not t for p, t in zip(predicted, truth, strict=True))
    fn = sum(t and not p for p, t in zip(predicted, truth, strict=True))
    return tp / (tp + fp), tp / (tp + fn)


def test_exact_check_precision_and_recall() -> None:
    precision, recall = _scores([near_duplicates(shingle(p["a"]), shingle(p["b"])) for p in PAIRS])
    print(f"\nexact check on {len(PAIRS)} labelled pairs: precision {precision:.3f}, recall {recall:.3f}")
    assert precision >= 0.95 and recall >= 0.95


async def test_grouping_through_the_store_on_the_labelled_set(redis: aioredis.Redis) -> None:
    """The full path: MinHash + LSH buckets in Redis + exact check, one fresh feed per pair."""
    store = FeedStore(redis)
    predicted = []
    for n, pair in enumerate(PAIRS):
        first = item(pair["a"], platform=pair["pa"], community=f"c{n}a", author_id=f"a{n}")
        second = item(pair["b"], platform=pair["pb"], community=f"c{n}b", author_id=f"b{n}")
        await store.ingest([first])
        result = await store.ingest([second])
        predicted.append(result.stories[second.id] == first.id)
        await redis.flushdb()
    precision, recall = _scores(predicted)
    print(
        f"\nstore (MinHash/LSH + check) on {len(PAIRS)} pairs: precision {precision:.3f}, recall {recall:.3f}"
    )
    assert precision >= 0.95 and recall >= 0.9


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_lsh_recall_over_seeds(seed: int) -> None:
    """Candidate recall of the banding on the labelled duplicates does not hinge on a lucky seed."""
    hasher = MinHasher(bands=8, rows=2, seed=seed)
    found = 0
    positives = [p for p in PAIRS if p["dup"]]
    for pair in positives:
        words = [content(tokens(pair["a"])), content(tokens(pair["b"]))]
        keys_a, keys_b = hasher.band_keys(hasher.signatures(words))
        found += any(keys_a[i : i + 6] == keys_b[i : i + 6] for i in range(0, 48, 6))
    assert found / len(positives) >= 0.9
