"""Near-duplicate detection: MinHash over bigrams of content words, LSH banding, then an exact check.

The same announcement posted on X and in Telegram differs in links, emoji, hashtags and a few words.
Texts are normalised (NFKC, lower case, links and retweet markers removed), function words ("the", "with",
"and") are left out, and the rest is cut into word bigrams: "big news: v2 is live with faster digests"
and "v2 is live: faster digests!" share almost all of theirs. Signatures are datasketch's MinHash (its
``affine32`` scheme and permutations, computed here for a whole batch at once with numpy, which is what
lets ingest keep up; the tests check the signatures equal datasketch's own). LSH bands (datasketch's
banding) give candidates; a candidate is a duplicate when the exact bigram Jaccard or containment is high
and the two texts do not differ in a salient token (a number, a version, a capitalised name): "v2.0 is
live" and "v2.1 is live" are two stories. Texts under ``MIN_TOKENS`` words ("gm", "thanks!") are never
grouped.
"""

from __future__ import annotations

import difflib
import itertools
import re
import unicodedata
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from datasketch import MinHash

MIN_TOKENS = 6
_STOPWORDS = """a about after all also am an and any are as at be been before but by can could did do does for
from had has have he her here his how i if in into is it its just me more my no not of on or our out over
she so than that the their them then there these they this to too up us very was we were what when where
which who will with would you your"""
STOPWORDS = frozenset(_STOPWORDS.split())
"""Left out of the shingles: bigrams of function words ("of the") are shared by unrelated texts, and a
paraphrase adds or drops them ("is live with faster" / "is live: faster")."""
JACCARD = 0.5
CONTAINMENT = 0.7
MIN_SHINGLES_FOR_CONTAINMENT = 5
_PAIR_MUL = 0x01000193  # FNV prime: combines two word hashes into a bigram hash

_URL = re.compile(r"https?://\S+|www\.\S+")
_WORD = re.compile(r"[^\W_]+")
_ASCII_WORD = re.compile(r"[a-z0-9]+")
_SENTENCE_BREAK = set(".!?:;—–-\n•|")


def _normalise(text: str) -> str:
    """Links removed and Unicode folded (NFKC), case kept."""
    if "//" in text or "www." in text:
        text = _URL.sub(" ", text)
    return text if text.isascii() else unicodedata.normalize("NFKC", text)


def _drop_retweet(toks: list[str]) -> list[str]:
    return toks[2:] if len(toks) > 2 and toks[0] in ("rt", "RT") else toks


def content(toks: list[str]) -> list[str]:
    """The tokens the MinHash signature is made of."""
    return [t for t in toks if t not in STOPWORDS]


def tokens(text: str) -> list[str]:
    """Lower-case word tokens (letters and digits; punctuation, emoji and links dropped)."""
    text = _normalise(text).lower()
    return _drop_retweet((_ASCII_WORD if text.isascii() else _WORD).findall(text))


@dataclass(frozen=True, slots=True)
class Shingled:
    """A text ready for comparison: its content words, their bigrams, which of them are salient, and how
    many words the whole text has."""

    tokens: tuple[str, ...]
    shingles: frozenset[str]
    salient: frozenset[int]
    size: int

    @property
    def eligible(self) -> bool:
        return self.size >= MIN_TOKENS


def shingle(text: str) -> Shingled:
    """Content words and their bigrams, exactly as the MinHash sees them, plus which words carry facts:
    numbers, and words capitalised in the middle of a sentence (names, places, products)."""
    every = tokens(text)
    toks = content(every)
    norm = _normalise(text)
    salient_words: set[str] = set()
    for m in _WORD.finditer(norm):
        word = m.group()
        before = norm[: m.start()].rstrip()
        starts_sentence = not before or before[-1] in _SENTENCE_BREAK
        if any(c.isdigit() for c in word) or (word[0].isupper() and not starts_sentence):
            salient_words.add(word.lower())
    bigrams = frozenset(f"{a} {b}" for a, b in itertools.pairwise(toks))
    salient = frozenset(i for i, t in enumerate(toks) if t in salient_words)
    return Shingled(tuple(toks), bigrams, salient, len(every))


def conflicting(a: Shingled, b: Shingled) -> bool:
    """Same template, different facts: numbers that differ (beyond one text leaving some out), or a salient token
    swapped for another where the texts otherwise align (a city, a version, a partner's name)."""
    nums_a = [t for t in a.tokens if any(c.isdigit() for c in t)]
    nums_b = [t for t in b.tokens if any(c.isdigit() for c in t)]
    if nums_a and nums_b and not (_subsequence(nums_a, nums_b) or _subsequence(nums_b, nums_a)):
        return True
    matcher = difflib.SequenceMatcher(None, a.tokens, b.tokens, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op != "replace" or max(i2 - i1, j2 - j1) > 4 or abs((i2 - i1) - (j2 - j1)) > 1:
            continue  # only a substitution of about the same length swaps one fact for another
        if any(i in a.salient for i in range(i1, i2)) and any(j in b.salient for j in range(j1, j2)):
            return True
    return False


def _subsequence(short: list[str], long: list[str]) -> bool:
    rest = iter(long)
    return all(token in rest for token in short)


def similarity(a: Shingled, b: Shingled) -> tuple[float, float]:
    """(Jaccard, containment) of the bigram sets."""
    if not a.shingles or not b.shingles:
        return 0.0, 0.0
    common = len(a.shingles & b.shingles)
    jaccard = common / len(a.shingles | b.shingles)
    smaller = min(len(a.shingles), len(b.shingles))
    containment = common / smaller if smaller >= MIN_SHINGLES_FOR_CONTAINMENT else 0.0
    return jaccard, containment


def near_duplicates(a: Shingled, b: Shingled) -> bool:
    """The exact check behind every LSH candidate."""
    if not (a.eligible and b.eligible):
        return False
    jaccard, containment = similarity(a, b)
    if jaccard < JACCARD and containment < CONTAINMENT:
        return False
    return not conflicting(a, b)


# -- MinHash + LSH, batched ---------------------------------------------------------------------------

_M1 = np.uint32(0x85EBCA6B)
_M2 = np.uint32(0xC2B2AE35)


def _fmix32(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's finaliser, exactly as datasketch applies it before its affine permutations."""
    h = h ^ (h >> np.uint32(16))
    h = h * _M1
    h = h ^ (h >> np.uint32(13))
    h = h * _M2
    return h ^ (h >> np.uint32(16))


def word_hash(word: str) -> int:
    return zlib.crc32(word.encode())


def bigram_hash(pair: bytes) -> int:
    """The 32-bit hash of a ``"w1 w2"`` shingle (what datasketch's ``hashfunc`` gets in the tests)."""
    first, _, second = pair.decode().partition(" ")
    return ((word_hash(first) * _PAIR_MUL) ^ word_hash(second)) & 0xFFFFFFFF


class MinHasher:
    """MinHash signatures and LSH band keys for many texts at once.

    ``bands`` x ``rows`` = ``num_perm``. With 8 bands of 2 rows a pair with bigram Jaccard 0.5 becomes a
    candidate with probability 1-(1-0.5^2)^8 = 0.90, at 0.6 0.97; the exact check then removes the
    false candidates, so precision does not depend on the banding.
    """

    def __init__(self, bands: int = 8, rows: int = 2, seed: int = 1) -> None:
        self.bands = bands
        self.rows = rows
        self.num_perm = bands * rows
        reference = MinHash(num_perm=self.num_perm, seed=seed)  # scheme affine32
        a, b = reference.permutations
        self._a = np.asarray(a, dtype=np.uint32)
        self._b = np.asarray(b, dtype=np.uint32)
        rng = np.random.default_rng(seed)
        self._band_mul = rng.integers(1, 2**63, size=(rows,), dtype=np.uint64) | np.uint64(1)
        self._band_salt = rng.integers(1, 2**63, size=(bands,), dtype=np.uint64)
        self._words: dict[str, int] = {}

    def _word_hashes(self, toks: Sequence[str]) -> list[int]:
        cache = self._words
        if len(cache) > 500_000:
            cache.clear()
        out = []
        for t in toks:
            h = cache.get(t)
            if h is None:
                h = cache[t] = word_hash(t)
            out.append(h)
        return out

    def signatures(self, token_lists: Sequence[Sequence[str]]) -> np.ndarray:
        """MinHash signatures (n x num_perm, uint32) of texts with at least two tokens each."""
        if not token_lists:
            return np.zeros((0, self.num_perm), dtype=np.uint32)
        lengths = np.fromiter((len(t) for t in token_lists), dtype=np.int64, count=len(token_lists))
        if (lengths < 2).any():
            raise ValueError("every text needs two tokens to have a bigram")
        words = np.fromiter(
            (h for toks in token_lists for h in self._word_hashes(toks)),
            dtype=np.uint32,
            count=int(lengths.sum()),
        )
        pairs = (words[:-1] * np.uint32(_PAIR_MUL)) ^ words[1:]
        ends = np.cumsum(lengths)
        keep = np.ones(len(pairs), dtype=bool)
        keep[ends[:-1] - 1] = False  # a pair across two texts is not a shingle
        pairs = pairs[keep]
        permuted = _fmix32(pairs)[:, None] * self._a[None, :] + self._b[None, :]
        starts = np.concatenate(([0], np.cumsum(lengths - 1)[:-1]))
        return np.minimum.reduceat(permuted, starts, axis=0)

    def band_keys(self, signatures: np.ndarray) -> list[bytes]:
        """Per text, ``bands`` keys of 6 bytes concatenated (the LSH buckets it falls in)."""
        n = signatures.shape[0]
        if n == 0:
            return []
        grouped = signatures.reshape(n, self.bands, self.rows).astype(np.uint64)
        mixed = (grouped * self._band_mul[None, None, :]).sum(axis=2, dtype=np.uint64) + self._band_salt
        mixed ^= mixed >> np.uint64(29)
        mixed *= np.uint64(0xBF58476D1CE4E5B9)
        mixed ^= mixed >> np.uint64(32)
        raw = mixed.astype("<u8").view(np.uint8).reshape(n, self.bands, 8)[:, :, :6]
        return [row.tobytes() for row in raw]
