"""Find movies by title: a normalised title index ranked in tiers, fuzzy matching by rapidfuzz.

Why an in-process index with rapidfuzz (not SQLite FTS5 or PostgreSQL ``pg_trgm``): the
catalogue is read-only and small (9.7k titles in ml-latest-small, 60k in the full set), so
the whole index fits in memory (under 40 MB at 60k titles) and a query is a dictionary
look-up plus, at worst, one fuzzy pass over the titles: numpy drops those whose character
counts rule a match out (:func:`could_reach`), rapidfuzz scores the few left. No database
round trip, no extension to install, and the same results on SQLite and PostgreSQL.
rapidfuzz is a maintained C++ implementation of Levenshtein-style scores (``fuzz.ratio``,
``fuzz.WRatio``) with early cut-offs.

Titles are folded once, by the same rules as queries (:mod:`movierec.data.titles`):
Unicode NFKD with the combining marks dropped (``Amélie`` -> ``amelie``), case-folded,
punctuation to spaces, and also with punctuation inside a word dropped (``WALL·E`` ->
``walle``, as people type it). MovieLens titles keep a
leading article at the end (``Matrix, The (1999)``); the index holds each title with the
article in front (``the matrix``) and without it (``matrix``), plus any alternative title in
parentheses, so ``the matrix``, ``matrix, the`` and ``matrix`` all match exactly.

Ranking (best first): exact title; title starting with the query; every query word a word
of the title (the last one may be a prefix: suggestions as you type); then fuzzy matches
(typos), by similarity. Within a tier ties go to the more-rated movie. A 4-digit year in
the query (``matrix 1999``) keeps only movies of that year; if none match that way, the
year is searched as part of the title (``2001 a space odyssey``).
"""

from __future__ import annotations

import bisect
import itertools
import math
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from rapidfuzz import fuzz, process

from movierec.data.arrays import IndexArray, Int32Array, UInt8Array
from movierec.data.titles import (
    ARTICLES,
    article_first,
    fold,
    fold_joined,
    split_title,
    without_article,
)

MAX_QUERY = 200  # characters
_QUERY_YEAR = re.compile(r"(?<!\d)(18[89]\d|19\d\d|20\d\d)(?!\d)")

TIER_EXACT, TIER_PREFIX, TIER_WORDS, TIER_FUZZY = 3, 2, 1, 0
TIER_NAMES = {TIER_EXACT: "exact", TIER_PREFIX: "prefix", TIER_WORDS: "words", TIER_FUZZY: "fuzzy"}
#: rapidfuzz ``fuzz.ratio`` (0-100) a whole title key / one word must reach to count as a typo
KEY_CUTOFF = 80.0
WORD_CUTOFF = 75.0
FUZZY_POOL = 200  # most fuzzy candidates scored per query
_AFTER = "\U0010ffff"  # sorts after any text that starts with a given prefix
#: the characters :func:`fold` leaves, so all that title keys and queries hold
SYMBOLS = "0123456789abcdefghijklmnopqrstuvwxyz "
#: byte -> row of :func:`char_counts` (any byte not in ``SYMBOLS``: the last, shared row)
_SYMBOL_ROW = np.full(256, len(SYMBOLS), dtype=np.intp)
_SYMBOL_ROW[np.frombuffer(SYMBOLS.encode("ascii"), dtype=np.uint8)] = np.arange(len(SYMBOLS))
_MAX_COUNT = 255  # a uint8 character count; keys longer than this are never pre-filtered
_CHECK_COST = 20  # postings read by numpy in the time Python checks one movie's words


def char_counts(texts: Sequence[str]) -> UInt8Array:
    """How often each character occurs in each text: ``(len(SYMBOLS) + 1, len(texts)) uint8``.

    Row ``i`` counts ``SYMBOLS[i]``; the last row counts every other character together
    (folded text has none; sharing a row only lowers the L1 distance between two texts'
    counts, so it stays a lower bound, see :func:`could_reach`). A count saturates at 255:
    exact for any text of up to 255 characters.
    """
    lengths = np.fromiter(map(len, texts), dtype=np.intp, count=len(texts))
    # "replace": one "?" (the shared row) per non-ASCII character, so one byte per character
    chars = np.frombuffer("".join(texts).encode("ascii", "replace"), dtype=np.uint8)
    text_of = np.repeat(np.arange(len(texts), dtype=np.intp), lengths)
    flat = np.bincount(
        _SYMBOL_ROW[chars] * len(texts) + text_of, minlength=(len(SYMBOLS) + 1) * len(texts)
    )
    return np.minimum(flat, _MAX_COUNT).astype(np.uint8).reshape(len(SYMBOLS) + 1, len(texts))


def could_reach(text: str, counts: UInt8Array, lengths: Int32Array, cutoff: float) -> IndexArray:
    """Indices of the texts whose ``fuzz.ratio`` with ``text`` may reach ``cutoff``, ascending.

    ``counts`` ``(len(SYMBOLS) + 1, n) uint8`` and ``lengths`` ``(n,)`` (characters) describe
    the ``n`` texts (:func:`char_counts`). Every text whose ratio does reach ``cutoff`` is
    kept: ``fuzz.ratio`` is 100 * (1 - Indel distance / both lengths), and the Indel distance
    (insertions and deletions) is at least the L1 distance between the two texts' character
    counts, which is both lengths less twice the characters they share. So ``ratio`` <= 200 *
    shared / both lengths, with ``shared`` the sum over characters of the smaller count: a
    few numpy passes over uint8 rows (one per distinct character of ``text``) where rapidfuzz
    would align every text. rapidfuzz has no such filter (``process.extract`` and ``cdist``
    score every choice; ``score_cutoff`` only ends each alignment early), hence this one.
    Texts longer than 255 characters (counts not exact) are always kept; the 1e-6 leaves room
    for rounding in rapidfuzz's own comparison with the cut-off.
    """
    wanted = char_counts([text])[:, 0].tolist()
    shared = np.zeros(len(lengths), dtype=np.int32)
    for symbol in np.flatnonzero(wanted).tolist():
        shared += np.minimum(counts[symbol], wanted[symbol])
    could = 200.0 * shared >= (cutoff - 1e-6) * (lengths + len(text))
    return np.flatnonzero(could | (lengths > _MAX_COUNT))


def title_keys(title: str) -> tuple[list[str], int | None]:
    """Folded index keys of a title (with and without the article), and its year.

    Each name is folded both ways (:func:`fold` and :func:`fold_joined`), so ``wall e``,
    ``wall-e`` and ``walle`` all find ``WALL·E`` exactly.
    """
    names, year = split_title(title)
    keys: list[str] = []
    for name in names:
        for folded in dict.fromkeys((fold(name), fold_joined(name))):
            for key in (folded, without_article(folded)):
                if key and key not in keys:
                    keys.append(key)
    return keys, year


@dataclass(frozen=True)
class Query:
    """A parsed query: folded text with and without a leading article, and a year."""

    text: str
    bare: str
    year: int | None

    @classmethod
    def parse(cls, raw: str, use_year: bool = True) -> Query:
        year = None
        if use_year:
            match = _QUERY_YEAR.search(raw)
            rest = (raw[: match.start()] + " " + raw[match.end() :]) if match else raw
            if match and fold(rest.replace("(", " ").replace(")", " ")):
                year, raw = int(match.group(1)), rest
        text = fold(article_first(raw.replace("(", " ").replace(")", " ")))
        return cls(text=text, bare=without_article(text), year=year)


@dataclass(frozen=True)
class Hit:
    """One search result: a movieId, its tier (see ``TIER_NAMES``) and similarity 0-100."""

    movie_id: int
    tier: int
    similarity: float

    @property
    def kind(self) -> str:
        return TIER_NAMES[self.tier]


class TitleIndex:
    """A search index over ``(movieId, title, n_ratings)`` rows (titles as MovieLens writes them).

    Movies are numbered by popularity (position 0 = most rated), so "the ``limit`` most-rated
    of a set" is its ``limit`` smallest positions. Title keys and the vocabulary are kept
    sorted, so the titles (or words) starting with a text are one contiguous range, read as a
    numpy slice. Built once (about 2 s per 60k titles); ``search`` is then read-only and
    thread-safe.
    """

    def __init__(self, movies: Iterable[tuple[int, str, int]]) -> None:
        rows = sorted(((int(m), t, int(c)) for m, t, c in movies), key=lambda r: (-r[2], r[0]))
        self.movie_ids: list[int] = [m for m, _, _ in rows]
        self.n_ratings: list[int] = [c for _, _, c in rows]
        self.years: list[int | None] = []
        #: flat list of keys and, per key, the position of its movie
        self.keys: list[str] = []
        self.key_owner: list[int] = []
        self._exact: dict[str, list[int]] = defaultdict(list)
        postings: dict[str, list[int]] = defaultdict(list)
        self._keys_by_year: dict[int, list[int]] = defaultdict(list)
        self._movie_keys: list[list[str]] = []
        for pos, (_, title, _) in enumerate(rows):
            keys, year = title_keys(title)
            self.years.append(year)
            self._movie_keys.append(keys)
            for key in keys:
                if year is not None:
                    self._keys_by_year[year].append(len(self.keys))
                self.keys.append(key)
                self.key_owner.append(pos)
                self._exact[key].append(pos)
                for word in key.split():
                    postings[word].append(pos)
        self._year_array = np.array([y or 0 for y in self.years], dtype=np.int32)
        # the vocabulary sorted, its postings laid end to end: a word range is one slice
        self._words = sorted(postings)
        lists = [np.unique(np.asarray(postings[w], dtype=np.int32)) for w in self._words]
        self._word_start = np.zeros(len(lists) + 1, dtype=np.int64)
        np.cumsum([len(x) for x in lists], out=self._word_start[1:])
        self._word_owner = np.concatenate(lists) if lists else np.zeros(0, dtype=np.int32)
        self._word_lengths = np.fromiter(map(len, self._words), dtype=np.int32)
        self._word_counts = char_counts(self._words)
        # title keys sorted: the titles starting with a text are one slice
        order = sorted(range(len(self.keys)), key=self.keys.__getitem__)
        self._sorted_text = [self.keys[i] for i in order]
        self._sorted_owner = np.asarray([self.key_owner[i] for i in order], dtype=np.int32)
        # title keys by length: a fuzzy match's length is within a factor of the query's;
        # with their character counts, (n_symbols, n_keys) uint8: see ``could_reach``
        self._by_length = sorted(range(len(self.keys)), key=lambda i: len(self.keys[i]))
        self._length_keys = [self.keys[i] for i in self._by_length]
        self._key_lengths = np.fromiter(map(len, self._length_keys), dtype=np.int32)
        self._key_counts = char_counts(self._length_keys)

    def __len__(self) -> int:
        return len(self.movie_ids)

    def search(self, raw: str, limit: int = 10) -> list[Hit]:
        """The ``limit`` best hits for ``raw`` (already checked: 1-200 characters)."""
        query = Query.parse(raw)
        hits = self._search(query, limit)
        if not hits and query.year is not None:  # "2001 a space odyssey": the year is text
            hits = self._search(Query.parse(raw, use_year=False), limit)
        return hits

    # -- tiers -------------------------------------------------------------------------
    def _search(self, query: Query, limit: int) -> list[Hit]:
        if not query.text:
            return []
        found: dict[int, Hit] = {}
        # positions ascending: only the first ``limit`` can be ranked (bench/search.py's 60k
        # catalogue has 1,413 titles folding to "the"); lower tiers only fill what is left
        exact = (p for p in self._exact.get(query.text, ()) if self._year_ok(p, query.year))
        for pos in itertools.islice(exact, limit):
            found[pos] = Hit(self.movie_ids[pos], TIER_EXACT, 100.0)
        if len(found) < limit:
            self._add(found, self._starting_with(query.text), query, limit, TIER_PREFIX)
        words = query.text.split()
        if len(found) < limit:  # else no word match could make the top ``limit``
            self._add(found, self._all_words(words), query, limit, TIER_WORDS)
        if len(found) < limit:
            for pos, similarity in self._fuzzy(query, words):
                if pos not in found:
                    found[pos] = Hit(self.movie_ids[pos], TIER_FUZZY, similarity)
        order = sorted(found.items(), key=lambda kv: (-kv[1].tier, -kv[1].similarity, kv[0]))
        return [hit for _, hit in order[:limit]]

    def _add(
        self, found: dict[int, Hit], positions: IndexArray, query: Query, limit: int, tier: int
    ) -> None:
        """The ``limit`` most-rated of ``positions`` (sorted, unique) not found yet, as ``tier``."""
        if query.year is not None:
            positions = positions[self._year_array[positions] == query.year]
        added = 0
        for pos in positions[: limit + len(found)].tolist():
            if pos not in found:
                found[pos] = Hit(self.movie_ids[pos], tier, 100.0)
                added += 1
                if added == limit:
                    break

    def _all_words(self, words: list[str]) -> Int32Array:
        """Sorted positions of movies with every word of ``words``, the last as a prefix.

        A short last word ("t", "the") is the prefix of thousands of words; when the other
        words already narrow the movies down to far fewer than its postings, those few are
        checked directly instead (checking one movie's words in Python costs about as much
        as reading ``_CHECK_COST`` postings in numpy: 6.5 us against 0.2-0.4 us a posting,
        measured on the 2-core machine). Either way, the same movies.
        """
        if len(words) > 1:
            others = self._candidates([self._word_postings(w, False) for w in words[:-1]])
            prefix = words[-1]
            if others.size <= FUZZY_POOL * 10 and (
                self._postings_size(prefix) > _CHECK_COST * others.size
            ):
                keep = [
                    pos
                    for pos in others.tolist()
                    if any(w.startswith(prefix) for k in self._movie_keys[pos] for w in k.split())
                ]
                return np.asarray(keep, dtype=np.int32)
            return self._candidates([others, self._word_postings(prefix, True)])
        postings = [self._word_postings(w, i == len(words) - 1) for i, w in enumerate(words)]
        return self._candidates(postings)

    def _postings_size(self, prefix: str) -> int:
        """How many postings the words starting with ``prefix`` hold (movies, with repeats)."""
        start, end = self._prefix_words(prefix)
        return int(self._word_start[end] - self._word_start[start])

    def _prefix_words(self, prefix: str) -> tuple[int, int]:
        """``(start, end)``: the vocabulary's words starting with ``prefix`` (one slice)."""
        start = bisect.bisect_left(self._words, prefix)
        return start, bisect.bisect_left(self._words, prefix + _AFTER, lo=start)

    def _has_word(self, word: str, prefix: bool) -> bool:
        """Whether the vocabulary holds ``word`` (or, if ``prefix``, a word starting with it)."""
        i = bisect.bisect_left(self._words, word)
        if i >= len(self._words):
            return False
        return self._words[i].startswith(word) if prefix else self._words[i] == word

    def _word_postings(self, word: str, last: bool) -> Int32Array:
        """Sorted positions of movies with ``word`` as a word (the last: as a word's prefix)."""
        if last:
            start, end = self._prefix_words(word)
        else:
            start = bisect.bisect_left(self._words, word)
            end = start + 1
            if start >= len(self._words) or self._words[start] != word:
                return np.zeros(0, dtype=np.int32)
        block = self._word_owner[self._word_start[start] : self._word_start[end]]
        return np.unique(block) if end - start > 1 else block

    @staticmethod
    def _candidates(postings: list[Int32Array]) -> Int32Array:
        """Sorted positions in every one of ``postings`` (smallest first: cheap intersections)."""
        if not postings:
            return np.zeros(0, dtype=np.int32)
        postings = sorted(postings, key=len)
        result = postings[0]
        for other in postings[1:]:
            if not result.size:
                break
            result = np.intersect1d(result, other, assume_unique=True)
        return result

    def _starting_with(self, text: str) -> Int32Array:
        """Sorted positions of movies with a title key starting with ``text`` (one slice)."""
        start = bisect.bisect_left(self._sorted_text, text)
        end = bisect.bisect_left(self._sorted_text, text + _AFTER, lo=start)
        return np.unique(self._sorted_owner[start:end])

    def _fuzzy(self, query: Query, words: list[str]) -> list[tuple[int, float]]:
        """Typo-tolerant matches with their similarity (0-100), best first.

        Two rapidfuzz passes, both ``fuzz.ratio`` (normalised Indel distance, C++): the whole
        query against every title key (``spiderman`` ~ ``spider man``), and each query word
        not in the vocabulary against the vocabulary (``matirx`` ~ ``matrix``), whose movies
        must hold a close word for every query word (for the last word: a close word or one
        it starts, ``star wors`` ~ ``star wars``).
        """
        best: dict[int, float] = {}
        if len(query.text) >= 3:
            self._fuzzy_keys(query, best)
        last = len(words) - 1
        # the last word may be a typo that is also the start of another word ("wors": worse)
        unknown = [i for i, w in enumerate(words) if len(w) >= 3 and not self._has_word(w, False)]
        fixes: dict[int, Int32Array] = {}
        for i in unknown:
            near = [self._word_postings(w, False) for w in self._close_words(words[i])]
            if i == last and self._has_word(words[i], True):
                near.append(self._word_postings(words[i], True))  # or still being typed
            if near:
                fixes[i] = np.unique(np.concatenate(near))
        if fixes:
            if last in fixes or len(words) == 1:
                postings = [
                    fixes.get(i, self._word_postings(w, i == last)) for i, w in enumerate(words)
                ]
                candidates = self._candidates(postings)
            else:  # the last word is typed as a prefix: check it on the narrowed movies
                others = [
                    fixes.get(i, self._word_postings(w, False)) for i, w in enumerate(words[:-1])
                ]
                narrowed = self._candidates(others)[: FUZZY_POOL * 10]
                candidates = np.asarray(
                    [
                        p
                        for p in narrowed.tolist()
                        if any(
                            w.startswith(words[-1]) for k in self._movie_keys[p] for w in k.split()
                        )
                    ],
                    dtype=np.int32,
                )
            if query.year is not None:
                candidates = candidates[self._year_array[candidates] == query.year]
            for pos in candidates[:FUZZY_POOL].tolist():  # the most rated first
                score = max(fuzz.WRatio(query.text, k) for k in self._movie_keys[pos])
                best[pos] = max(best.get(pos, 0.0), float(score))
        return sorted(best.items(), key=lambda kv: -kv[1])

    def _close_words(self, word: str) -> list[str]:
        """The (up to) 10 vocabulary words closest to ``word`` by ``fuzz.ratio``, best first.

        Only the words :func:`could_reach` keeps are scored, in vocabulary order: the same
        words, ties included, as scoring the whole vocabulary.
        """
        near = could_reach(word, self._word_counts, self._word_lengths, WORD_CUTOFF).tolist()
        choices = [self._words[i] for i in near]
        close = process.extract(
            word, choices, scorer=fuzz.ratio, limit=10, score_cutoff=WORD_CUTOFF
        )
        return [w for w, _score, _i in close]

    def _fuzzy_keys(self, query: Query, best: dict[int, float]) -> None:
        """Raise ``best[pos]`` to the closest title key's ``fuzz.ratio`` with the query.

        Every key is considered, with and without its article, whatever its first letter: a
        typo in the first letter (``batrix``, ``gen in black``) or in the article (``tbe
        matrix``) is as likely as any other. rapidfuzz scores only the keys that can reach
        ``KEY_CUTOFF`` by their length and character counts (:meth:`_reachable_keys`), in the
        same order as before they were filtered: the same hits, ties and scores.
        """
        for text in dict.fromkeys((query.text, query.bare)):
            flat, keys = self._reachable_keys(text, query.year)
            for _key, score, index in process.extract(
                text, keys, scorer=fuzz.ratio, limit=FUZZY_POOL, score_cutoff=KEY_CUTOFF
            ):
                pos = self.key_owner[flat[index]]
                best[pos] = max(best.get(pos, 0.0), float(score))

    def _reachable_keys(self, text: str, year: int | None) -> tuple[Sequence[int], list[str]]:
        """Flat indices and texts of the keys (of ``year``, if given) ``text`` could match.

        A key's ``ratio`` with ``text`` is at most 200 * shorter / (both lengths), so only
        keys of a length within a factor of ``text``'s are read; of those (tens of thousands
        at 60k titles), only the ones :func:`could_reach` keeps (a few hundred). A year has a
        few hundred keys: they are left to rapidfuzz.
        """
        shortest = math.ceil(len(text) * KEY_CUTOFF / (200 - KEY_CUTOFF))
        longest = math.floor(len(text) * (200 - KEY_CUTOFF) / KEY_CUTOFF)
        if year is not None:
            year_keys = self._keys_by_year.get(year, [])
            flat = [k for k in year_keys if shortest <= len(self.keys[k]) <= longest]
            return flat, [self.keys[k] for k in flat]
        start, end = np.searchsorted(self._key_lengths, [shortest, longest + 1]).tolist()
        counts, lengths = self._key_counts[:, start:end], self._key_lengths[start:end]
        near = (could_reach(text, counts, lengths, KEY_CUTOFF) + start).tolist()
        return [self._by_length[i] for i in near], [self._length_keys[i] for i in near]

    def _year_ok(self, pos: int, year: int | None) -> bool:
        return year is None or self.years[pos] == year


__all__ = [
    "ARTICLES",
    "MAX_QUERY",
    "Hit",
    "Query",
    "TitleIndex",
    "article_first",
    "char_counts",
    "could_reach",
    "fold",
    "fold_joined",
    "split_title",
    "title_keys",
    "without_article",
]
