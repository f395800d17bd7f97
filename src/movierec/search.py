"""Find movies by title: a normalised title index ranked in tiers, fuzzy matching by rapidfuzz.

Why an in-process index with rapidfuzz (not SQLite FTS5 or PostgreSQL ``pg_trgm``): the
catalogue is read-only and small (9.7k titles in ml-latest-small, 60k in the full set), so
the whole index fits in a few MB of memory and a query is a dictionary look-up plus, at
worst, one C-speed fuzzy pass over the titles: no database round trip, no extension to
install, and the same results on SQLite and PostgreSQL. rapidfuzz is a maintained C++
implementation of Levenshtein-style scores (``fuzz.WRatio``) with early cut-offs.

Titles are folded once (:func:`fold`): Unicode NFKD with the combining marks dropped
(``Amélie`` -> ``amelie``), case-folded, punctuation to spaces. MovieLens titles keep a
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
import math
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from rapidfuzz import fuzz, process

MAX_QUERY = 200  # characters
#: articles MovieLens moves to the end of a title (``"Matrix, The"``)
ARTICLES = frozenset(
    ("the", "a", "an", "les", "le", "la", "l", "il", "el", "los", "las")
    + ("der", "die", "das", "den", "det")
)
#: letters NFKD leaves whole that people type without the accent
_EXTRA_FOLDS = str.maketrans(
    {
        "ø": "o",
        "æ": "ae",
        "œ": "oe",
        "ł": "l",
        "đ": "d",
        "ð": "d",
        "þ": "th",
        "ı": "i",
        "'": "",
        "’": "",
        "`": "",
    }
)
_NON_WORD = re.compile(r"[^0-9a-z]+")
_YEAR_SUFFIX = re.compile(r"\s*\((\d{4})(?:[-–]\d{0,4})?\)\s*$")
_TRAILING_ARTICLE = re.compile(r"^(?P<rest>.+),\s*(?P<article>[^\s,()]+)$")
_PARENS = re.compile(r"\(([^()]*)\)")
_QUERY_YEAR = re.compile(r"(?<!\d)(18[89]\d|19\d\d|20\d\d)(?!\d)")

TIER_EXACT, TIER_PREFIX, TIER_WORDS, TIER_FUZZY = 3, 2, 1, 0
TIER_NAMES = {TIER_EXACT: "exact", TIER_PREFIX: "prefix", TIER_WORDS: "words", TIER_FUZZY: "fuzzy"}
#: rapidfuzz ``fuzz.ratio`` (0-100) a whole title key / one word must reach to count as a typo
KEY_CUTOFF = 80.0
WORD_CUTOFF = 75.0
FUZZY_POOL = 200  # most fuzzy candidates scored per query
_AFTER = "\U0010ffff"  # sorts after any text that starts with a given prefix


def fold(text: str) -> str:
    """``"Amélie: Le Fabuleux"`` -> ``"amelie le fabuleux"`` (accents, case, punctuation)."""
    text = unicodedata.normalize("NFKD", text.casefold().translate(_EXTRA_FOLDS))
    text = "".join(c for c in text if not unicodedata.combining(c))
    return _NON_WORD.sub(" ", text).strip()


def article_first(name: str) -> str:
    """``"Matrix, The"`` -> ``"The Matrix"``; other names unchanged."""
    match = _TRAILING_ARTICLE.match(name.strip())
    if match and fold(match["article"]).replace(" ", "") in ARTICLES:
        article = match["article"]
        sep = "" if article.endswith(("'", "’")) else " "
        return f"{article}{sep}{match['rest']}"
    return name.strip()


def without_article(folded: str) -> str:
    """``"the matrix"`` -> ``"matrix"`` (a folded name without its leading article)."""
    head, _, rest = folded.partition(" ")
    return rest if head in ARTICLES and rest else folded


def split_title(title: str) -> tuple[list[str], int | None]:
    """``"Postman, The (Postino, Il) (1994)"`` -> (["The Postman", "Il Postino"], 1994).

    The first name is the main title; the rest are the alternative titles MovieLens gives
    in parentheses (``a.k.a.`` dropped), each with its article moved to the front.
    """
    year = None
    match = _YEAR_SUFFIX.search(title)
    if match:
        year = int(match.group(1))
        title = title[: match.start()]
    alternatives = [a.strip() for a in _PARENS.findall(title)]
    main = _PARENS.sub(" ", title).strip() if alternatives else title.strip()
    names = [main or title.strip()]
    for alt in alternatives:
        alt = re.sub(r"^a\.?k\.?a\.?\s+", "", alt, flags=re.IGNORECASE)
        if alt:
            names.append(alt)
    return [article_first(n) for n in names], year


def title_keys(title: str) -> tuple[list[str], int | None]:
    """Folded index keys of a title (with and without the article), and its year."""
    names, year = split_title(title)
    keys: list[str] = []
    for name in names:
        folded = fold(name)
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
    numpy slice. Built once (about 1 s per 60k titles); ``search`` is then read-only and
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
        # title keys sorted: the titles starting with a text are one slice
        order = sorted(range(len(self.keys)), key=self.keys.__getitem__)
        self._sorted_text = [self.keys[i] for i in order]
        self._sorted_owner = np.asarray([self.key_owner[i] for i in order], dtype=np.int32)
        # title keys by length: a fuzzy match's length is within a factor of the query's
        self._by_length = sorted(range(len(self.keys)), key=lambda i: len(self.keys[i]))
        self._length_keys = [self.keys[i] for i in self._by_length]

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
        for pos in self._exact.get(query.text, ()):
            if self._year_ok(pos, query.year):
                found[pos] = Hit(self.movie_ids[pos], TIER_EXACT, 100.0)
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
        self, found: dict[int, Hit], positions: np.ndarray, query: Query, limit: int, tier: int
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

    def _all_words(self, words: list[str]) -> np.ndarray:
        """Sorted positions of movies with every word of ``words``, the last as a prefix.

        A short last word ("t", "the") is the prefix of thousands of words; when the other
        words already narrow the movies down, those few are checked directly instead.
        """
        if len(words) > 1:
            others = self._candidates([self._word_postings(w, False) for w in words[:-1]])
            if others.size <= FUZZY_POOL * 10:
                prefix = words[-1]
                keep = [
                    pos
                    for pos in others.tolist()
                    if any(w.startswith(prefix) for k in self._movie_keys[pos] for w in k.split())
                ]
                return np.asarray(keep, dtype=np.int32)
            return self._candidates([others, self._word_postings(words[-1], True)])
        postings = [self._word_postings(w, i == len(words) - 1) for i, w in enumerate(words)]
        return self._candidates(postings)

    def _has_word(self, word: str, prefix: bool) -> bool:
        """Whether the vocabulary holds ``word`` (or, if ``prefix``, a word starting with it)."""
        i = bisect.bisect_left(self._words, word)
        if i >= len(self._words):
            return False
        return self._words[i].startswith(word) if prefix else self._words[i] == word

    def _word_postings(self, word: str, last: bool) -> np.ndarray:
        """Sorted positions of movies with ``word`` as a word (the last: as a word's prefix)."""
        start = bisect.bisect_left(self._words, word)
        end = bisect.bisect_left(self._words, word + _AFTER) if last else start + 1
        if not last and (start >= len(self._words) or self._words[start] != word):
            return np.zeros(0, dtype=np.int32)
        block = self._word_owner[self._word_start[start] : self._word_start[end]]
        return np.unique(block) if end - start > 1 else block

    @staticmethod
    def _candidates(postings: list[np.ndarray]) -> np.ndarray:
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

    def _starting_with(self, text: str) -> np.ndarray:
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
        fixes: dict[int, np.ndarray] = {}
        for i in unknown:
            close = process.extract(
                words[i], self._words, scorer=fuzz.ratio, limit=10, score_cutoff=WORD_CUTOFF
            )
            near = [self._word_postings(w, False) for w, _score, _i in close]
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

    def _fuzzy_keys(self, query: Query, best: dict[int, float]) -> None:
        """Raise ``best[pos]`` to the closest title key's ``fuzz.ratio`` with the query.

        Every key is read, with and without its article, whatever its first letter: a typo
        in the first letter (``batrix``, ``gen in black``) or in the article (``tbe matrix``)
        is as likely as any other. Only keys of a length that can reach ``KEY_CUTOFF`` are
        read (``ratio`` <= 200 * shorter / (both lengths)).
        """
        for text in dict.fromkeys((query.text, query.bare)):
            flat, keys = self._keys_near_length(text, query.year)
            for _key, score, index in process.extract(
                text, keys, scorer=fuzz.ratio, limit=FUZZY_POOL, score_cutoff=KEY_CUTOFF
            ):
                pos = self.key_owner[flat[index]]
                best[pos] = max(best.get(pos, 0.0), float(score))

    def _keys_near_length(self, text: str, year: int | None) -> tuple[Sequence[int], list[str]]:
        """Flat indices and texts of the keys (of ``year``, if given) ``text`` could match."""
        shortest = math.ceil(len(text) * KEY_CUTOFF / (200 - KEY_CUTOFF))
        longest = math.floor(len(text) * (200 - KEY_CUTOFF) / KEY_CUTOFF)
        if year is not None:
            year_keys = self._keys_by_year.get(year, [])
            flat = [k for k in year_keys if shortest <= len(self.keys[k]) <= longest]
            return flat, [self.keys[k] for k in flat]
        start = bisect.bisect_left(self._length_keys, shortest, key=len)
        end = bisect.bisect_right(self._length_keys, longest, lo=start, key=len)
        return self._by_length[start:end], self._length_keys[start:end]

    def _year_ok(self, pos: int, year: int | None) -> bool:
        return year is None or self.years[pos] == year


__all__ = [
    "MAX_QUERY",
    "Hit",
    "Query",
    "TitleIndex",
    "article_first",
    "fold",
    "split_title",
    "title_keys",
    "without_article",
]
