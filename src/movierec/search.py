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
import heapq
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

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

    Built once (about 0.3 s per 10k titles); ``search`` is then thread-safe and read-only.
    """

    def __init__(self, movies: Iterable[tuple[int, str, int]]) -> None:
        self.movie_ids: list[int] = []
        self.n_ratings: list[int] = []
        self.years: list[int | None] = []
        #: flat list of keys and, per key, the position of its movie
        self.keys: list[str] = []
        self.key_owner: list[int] = []
        self._exact: dict[str, list[int]] = defaultdict(list)
        self._postings: dict[str, set[int]] = defaultdict(set)
        self._keys_by_year: dict[int, list[int]] = defaultdict(list)
        for movie_id, title, count in movies:
            pos = len(self.movie_ids)
            keys, year = title_keys(title)
            self.movie_ids.append(int(movie_id))
            self.n_ratings.append(int(count))
            self.years.append(year)
            for key in keys:
                if year is not None:
                    self._keys_by_year[year].append(len(self.keys))
                self.keys.append(key)
                self.key_owner.append(pos)
                self._exact[key].append(pos)
                for word in key.split():
                    self._postings[word].add(pos)
        self._words = sorted(self._postings)
        #: (key, position) sorted by key: the titles starting with a text are one range
        self._sorted_keys = sorted(zip(self.keys, self.key_owner, strict=True))
        self._sorted_text = [k for k, _ in self._sorted_keys]
        #: first letter -> (keys, their flat indices): the fuzzy pass reads one bucket
        self._by_initial: dict[str, tuple[list[str], list[int]]] = defaultdict(lambda: ([], []))
        for i, key in enumerate(self.keys):
            bucket = self._by_initial[key[0]]
            bucket[0].append(key)
            bucket[1].append(i)
        self._by_initial = dict(self._by_initial)
        self._movie_keys: dict[int, list[str]] = defaultdict(list)
        for key, owner in zip(self.keys, self.key_owner, strict=True):
            self._movie_keys[owner].append(key)

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
        starting = [
            p
            for p in self._starting_with(query.text)
            if p not in found and self._year_ok(p, query.year)
        ]
        for pos in heapq.nlargest(limit, starting, key=self.n_ratings.__getitem__):
            found[pos] = Hit(self.movie_ids[pos], TIER_PREFIX, 100.0)
        words = query.text.split()
        candidates = self._candidates(
            [self._word_postings(w, i == len(words) - 1) for i, w in enumerate(words)]
        )
        fresh = [p for p in candidates if p not in found and self._year_ok(p, query.year)]
        for pos in heapq.nlargest(limit, fresh, key=self.n_ratings.__getitem__):
            found[pos] = Hit(self.movie_ids[pos], TIER_WORDS, 100.0)
        if len(found) < limit:
            for pos, similarity in self._fuzzy(query, words):
                if pos not in found:
                    found[pos] = Hit(self.movie_ids[pos], TIER_FUZZY, similarity)
        order = heapq.nsmallest(
            limit,
            found.items(),
            key=lambda kv: (-kv[1].tier, -kv[1].similarity, -self.n_ratings[kv[0]], kv[1].movie_id),
        )
        return [hit for _, hit in order]

    def _word_postings(self, word: str, last: bool) -> set[int]:
        """Movies with ``word`` as a word (or, for the last query word, as a word's prefix)."""
        return self._prefix_postings(word) if last else self._postings.get(word, set())

    @staticmethod
    def _candidates(postings: list[set[int]]) -> set[int]:
        """Movies in every one of ``postings`` (smallest first: cheap intersections)."""
        if not postings:
            return set()
        postings = sorted(postings, key=len)
        result = set(postings[0])
        for other in postings[1:]:
            result &= other
            if not result:
                break
        return result

    def _prefix_postings(self, prefix: str) -> set[int]:
        start = bisect.bisect_left(self._words, prefix)
        out: set[int] = set()
        for word in self._words[start:]:
            if not word.startswith(prefix):
                break
            out |= self._postings[word]
        return out

    def _starting_with(self, text: str) -> set[int]:
        """Movies with a title key starting with ``text`` (one bisected range)."""
        start = bisect.bisect_left(self._sorted_text, text)
        out: set[int] = set()
        for key, pos in self._sorted_keys[start:]:
            if not key.startswith(text):
                break
            out.add(pos)
        return out

    def _fuzzy(self, query: Query, words: list[str]) -> list[tuple[int, float]]:
        """Typo-tolerant matches with their similarity (0-100), best first.

        Two rapidfuzz passes, both ``fuzz.ratio`` (normalised Indel distance, C++): the whole
        query against every title key (``spiderman`` ~ ``spider man``), and each query word
        not in the vocabulary against the vocabulary (``matirx`` ~ ``matrix``), whose movies
        must hold a close word for every query word.
        """
        best: dict[int, float] = {}
        if query.year is not None:
            flat = self._keys_by_year.get(query.year, [])
            keys = [self.keys[k] for k in flat]
        else:  # a typo in the first letter is rare: read only keys with the query's initial
            keys, flat = self._by_initial.get(query.text[0], ([], []))
        if len(query.text) >= 3:
            for _key, score, index in process.extract(
                query.text, keys, scorer=fuzz.ratio, limit=FUZZY_POOL, score_cutoff=KEY_CUTOFF
            ):
                pos = self.key_owner[flat[index]]
                best[pos] = max(best.get(pos, 0.0), float(score))
        postings = []
        for i, word in enumerate(words):
            exact = self._word_postings(word, i == len(words) - 1)
            if exact or len(word) < 3:
                postings.append(exact)
                continue
            close = process.extract(
                word, self._words, scorer=fuzz.ratio, limit=10, score_cutoff=WORD_CUTOFF
            )
            near: set[int] = set()
            for w, _score, _i in close:
                near |= self._postings[w]
            postings.append(near)
        if len(postings) > sum(1 for w in words if self._postings.get(w)):  # some word fixed
            candidates = self._candidates(postings)
            if len(candidates) > FUZZY_POOL:
                popular = heapq.nlargest(FUZZY_POOL, candidates, key=self.n_ratings.__getitem__)
                candidates = set(popular)
            for pos in candidates:
                if self._year_ok(pos, query.year):
                    score = max(fuzz.WRatio(query.text, k) for k in self._movie_keys[pos])
                    best[pos] = max(best.get(pos, 0.0), float(score))
        return sorted(best.items(), key=lambda kv: -kv[1])

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
