"""The title search engine: folding, articles, years, typos, ranking order."""

from __future__ import annotations

import random

import numpy as np
import pytest
from rapidfuzz import fuzz, process

from movierec.data.titles import alternative_titles, display_title, fold_joined
from movierec.search import (
    KEY_CUTOFF,
    WORD_CUTOFF,
    Query,
    TitleIndex,
    article_first,
    fold,
    split_title,
    title_keys,
)

MOVIES = [
    (1, "Matrix, The (1999)", 278),
    (2, "Matrix Reloaded, The (2003)", 57),
    (3, "Matrix Revolutions, The (2003)", 51),
    (4, "Animatrix, The (2003)", 10),
    (5, "Amelie (Fabuleux destin d'Amélie Poulain, Le) (2001)", 120),
    (6, "Godfather, The (1972)", 192),
    (7, "Godfather: Part II, The (1974)", 129),
    (8, "2001: A Space Odyssey (1968)", 109),
    (9, "Die Hard (1988)", 145),
    (10, "Hard Day's Night, A (1964)", 20),
    (11, "Léon: The Professional (a.k.a. The Professional) (Léon) (1994)", 133),
    (12, "Hamlet (1996)", 30),
    (13, "Hamlet (1990)", 10),
    (14, "Hamlet (2000)", 5),
    (15, "Shawshank Redemption, The (1994)", 317),
]


@pytest.fixture(scope="module")
def index() -> TitleIndex:
    return TitleIndex(MOVIES)


def ids(index: TitleIndex, q: str, limit: int = 10) -> list[int]:
    return [h.movie_id for h in index.search(q, limit)]


def test_fold_drops_accents_case_and_punctuation():
    assert fold("Amélie") == "amelie"
    assert fold("LÉON: The Professional") == "leon the professional"
    assert fold("Schindler's List") == "schindlers list"
    assert fold("Søren Ærø") == "soren aero"


def test_articles_move_to_the_front_and_alternative_titles_are_kept():
    assert article_first("Matrix, The") == "The Matrix"
    assert article_first("Auberge espagnole, L'") == "L'Auberge espagnole"
    assert article_first("Hello, World") == "Hello, World"
    names, year = split_title("Postman, The (Postino, Il) (1994)")
    assert names == ["The Postman", "Il Postino"] and year == 1994
    keys, _ = title_keys("Matrix, The (1999)")
    assert keys == ["the matrix", "matrix"]


def test_query_year_is_split_off_only_when_there_is_other_text():
    assert Query.parse("matrix 1999").year == 1999
    assert Query.parse("matrix 1999").text == "matrix"
    assert Query.parse("1917").year is None


def test_exact_title_comes_first_whichever_way_the_article_is_written(index):
    for q in ("matrix", "the matrix", "Matrix, The", "THE MATRIX"):
        found = index.search(q, 5)
        assert found[0].movie_id == 1 and found[0].kind == "exact", q


def test_then_prefix_then_word_matches_then_fuzzy(index):
    hits = index.search("matrix", 10)
    assert [h.movie_id for h in hits[:3]] == [1, 2, 3]  # exact, then prefixes by popularity
    assert [h.kind for h in hits[:3]] == ["exact", "prefix", "prefix"]
    assert 4 not in [h.movie_id for h in hits[:3]]  # "animatrix": not a prefix or word match
    tiers = [h.tier for h in hits]
    assert tiers == sorted(tiers, reverse=True)


def test_word_matches_anywhere_and_partial_last_word(index):
    assert ids(index, "redemption")[0] == 15
    assert ids(index, "shawsh")[0] == 15  # typing: the last word is a prefix
    assert ids(index, "professional")[0] == 11


def test_accents_either_way(index):
    assert ids(index, "amelie")[0] == 5
    assert ids(index, "Amélie")[0] == 5
    assert ids(index, "leon")[0] == 11
    assert ids(index, "léon")[0] == 11


def test_typos_are_found(index):
    assert ids(index, "matirx")[0] == 1
    assert ids(index, "shawshank redemtion")[0] == 15
    assert ids(index, "godfathr")[0] == 6


def test_a_year_narrows_and_a_title_year_is_still_text(index):
    assert ids(index, "hamlet 1990") == [13]
    assert ids(index, "hamlet (2000)") == [14]
    assert ids(index, "2001 a space odyssey")[0] == 8  # no 2001 movie of that name
    assert ids(index, "godfather 1974")[0] == 7


def test_ties_go_to_the_more_rated_movie(index):
    assert ids(index, "hamlet") == [12, 13, 14]


def test_an_article_word_is_not_dropped_from_other_titles(index):
    assert ids(index, "die hard")[0] == 9
    assert 10 not in ids(index, "die hard")[:1]


def test_limit_and_nothing_found(index):
    assert len(index.search("matrix", 2)) == 2
    assert index.search("zzzzqqqq", 10) == []
    assert index.search("   ", 10) == []


TYPO_MOVIES = MOVIES + [
    (16, "Men in Black (a.k.a. MIB) (1997)", 165),
    (17, "Star Wars: Episode IV - A New Hope (1977)", 251),
    (18, "Worse Than Death (2000)", 2),
    (19, "Fargo (1996)", 181),
    (20, "Margot at the Wedding (2007)", 4),
]


@pytest.fixture(scope="module")
def typo_index() -> TitleIndex:
    return TitleIndex(TYPO_MOVIES)


@pytest.mark.parametrize(
    ("query", "movie_id"),
    [
        ("batrix", 1),  # one word: the first letter changed
        ("gen in black", 16),  # several words: the first letter changed
        ("dic hard", 9),  # "Die" is also an article (German)
        ("tbe matrix", 1),  # the typo in the leading article
        ("bhe godfather", 6),
        ("fargp", 19),
    ],
)
def test_a_typo_in_a_first_letter_or_an_article_is_found(typo_index, query, movie_id):
    assert ids(typo_index, query)[0] == movie_id


def test_a_typo_in_the_last_word_that_starts_another_word_is_found(typo_index):
    assert ids(typo_index, "star wors")[0] == 17  # "wors" also starts "worse"


def test_exact_prefix_and_word_matches_still_outrank_typos(typo_index):
    hits = typo_index.search("margo", 10)
    assert [h.movie_id for h in hits[:1]] == [20]  # the prefix "Margot" before "Fargo"
    assert [h.kind for h in hits] == ["prefix", "fuzzy"] and hits[1].movie_id == 19
    assert typo_index.search("fargo", 10)[0].kind == "exact"


def test_an_exact_title_shared_by_more_movies_than_the_limit_lists_the_most_rated():
    hamlets = [(i, f"Hamlet ({1900 + i})", i) for i in range(1, 31)]
    index = TitleIndex([*hamlets, (99, "Hamlet Goes Business (1987)", 1000)])
    hits = index.search("hamlet", 10)
    assert [h.movie_id for h in hits] == list(range(30, 20, -1))
    assert {h.kind for h in hits} == {"exact"}


# -- the character-count pre-filter changes no result (ml-latest-small's titles) -----------
class EveryTitleIndex(TitleIndex):
    """The index without its shortcuts: rapidfuzz scores every title key and every word, and
    every movie with the other words is checked for a word starting with the last."""

    def _reachable_keys(self, text: str, year: int | None) -> tuple[list[int], list[str]]:
        if year is None:
            return self._by_length, self._length_keys
        flat = self._keys_by_year.get(year, [])
        return flat, [self.keys[k] for k in flat]

    def _close_words(self, word: str) -> list[str]:
        close = process.extract(
            word, self._words, scorer=fuzz.ratio, limit=10, score_cutoff=WORD_CUTOFF
        )
        return [w for w, _score, _i in close]

    def _all_words(self, words: list[str]) -> np.ndarray:
        if len(words) == 1:
            return super()._all_words(words)
        *whole, prefix = words
        others = self._candidates([self._word_postings(w, False) for w in whole])
        keep = [
            pos
            for pos in others.tolist()
            if any(w.startswith(prefix) for k in self._movie_keys[pos] for w in k.split())
        ]
        return np.asarray(keep, dtype=np.int32)


@pytest.fixture(scope="module")
def real_movies(ml_small) -> list[tuple[int, str, int]]:
    """ml-latest-small's 9,742 ``(movieId, title, n_ratings)`` from its catalogue (the titles
    the app's search index is built from)."""
    frame = ml_small.catalog.frame
    return list(zip(frame.index.tolist(), frame["title"], frame["n_ratings"].tolist(), strict=True))


@pytest.fixture(scope="module")
def real_index(real_movies) -> TitleIndex:
    return TitleIndex(real_movies)


@pytest.fixture(scope="module")
def every_title_index(real_movies) -> EveryTitleIndex:
    return EveryTitleIndex(real_movies)


def mistype(text: str, rng: random.Random) -> str:
    """``text`` with one letter (the first one too) swapped with the next, dropped or changed."""
    letters = [i for i, c in enumerate(text[:-1]) if c.isalpha()]
    if not letters:
        return text
    i = rng.choice(letters)
    kind = rng.randrange(3)
    if kind == 0:
        return text[:i] + text[i + 1] + text[i] + text[i + 2 :]
    if kind == 1:
        return text[:i] + text[i + 1 :]
    return text[:i] + rng.choice("aeiourstn") + text[i + 1 :]


@pytest.fixture(scope="module")
def typo_queries(real_movies) -> list[str]:
    """250 mistyped titles (one typo, or two; an alternative title at times, a year on 1 in
    10) and 50 titles' first 2-8 letters; seeded, so every run asks the same."""
    rng = random.Random(8)
    queries = []
    for _, title, _ in rng.sample(real_movies, 250):
        names, year = split_title(title)
        query = mistype(rng.choice(names), rng)
        if rng.random() < 0.3:
            query = mistype(query, rng)
        if rng.random() < 0.1 and year:
            query = f"{query} {year}"
        queries.append(query)
    queries += [
        split_title(t)[0][0][: rng.randint(2, 8)] for _, t, _ in rng.sample(real_movies, 50)
    ]
    return queries


def test_the_typo_passes_find_what_scoring_every_title_and_word_finds(
    real_index, every_title_index, typo_queries
):
    near_cutoff = 0
    for raw in typo_queries:
        query = Query.parse(raw)
        found: dict[int, float] = {}
        expected: dict[int, float] = {}
        real_index._fuzzy_keys(query, found)
        every_title_index._fuzzy_keys(query, expected)
        assert found == expected, raw  # the same movies, with the same scores
        near_cutoff += sum(KEY_CUTOFF <= score < KEY_CUTOFF + 5 for score in found.values())
        for word in query.text.split():
            if len(word) >= 3 and not real_index._has_word(word, False):
                assert real_index._close_words(word) == every_title_index._close_words(word), raw
    assert near_cutoff >= 50  # tested where the bound is tight, not only on easy hits


def test_real_titles_searched_with_typos_give_the_hits_of_scoring_every_title(
    real_index, every_title_index, typo_queries
):
    fuzzy = 0
    for raw in typo_queries:
        hits = real_index.search(raw, 10)
        assert hits == every_title_index.search(raw, 10), raw
        fuzzy += sum(h.kind == "fuzzy" for h in hits)
    assert fuzzy >= 300


# -- titles folded as queries, display titles (issue 20 items 5 and 6) ----------------------
@pytest.mark.parametrize(
    ("title", "shown", "also"),
    [
        ("Raiders of the Lost Ark (Indiana Jones and the Raiders of the Lost Ark) (1981)",
         "Raiders of the Lost Ark", ["Indiana Jones and the Raiders of the Lost Ark"]),
        ("City of Lost Children, The (Cité des enfants perdus, La) (1995)",
         "The City of Lost Children", ["La Cité des enfants perdus"]),
        ("Léon: The Professional (a.k.a. The Professional) (Léon) (1994)",
         "Léon: The Professional", ["The Professional", "Léon"]),
        ("Legend of 1900, The (a.k.a. The Legend of the Pianist on the Ocean) "
         "(Leggenda del pianista sull'oceano) (1998)", "The Legend of 1900",
         ["The Legend of the Pianist on the Ocean", "Leggenda del pianista sull'oceano"]),
        ("Auberge espagnole, L' (2002)", "L'Auberge espagnole", []),
        ("(500) Days of Summer (2009)", "(500) Days of Summer", []),
        ("Evangelion: 3.0 You Can (Not) Redo (2012)", "Evangelion: 3.0 You Can (Not) Redo", []),
        ("Birdman: Or (The Unexpected Virtue of Ignorance) (2014)",
         "Birdman: Or (The Unexpected Virtue of Ignorance)", []),
        ("Babylon 5 (1994-1998)", "Babylon 5", []),
    ],
)  # fmt: skip
def test_display_titles_leave_alternatives_out_and_keep_them_as_other_names(title, shown, also):
    assert display_title(title) == shown
    assert alternative_titles(title) == also


def test_a_title_is_folded_like_a_query_so_punctuation_inside_a_word_drops():
    assert fold_joined("WALL·E") == "walle"
    assert fold_joined("Spider-Man 2") == "spiderman 2"
    assert fold_joined("Léon: The Professional") == "leon the professional"
    assert "walle" in title_keys("WALL·E (2008)")[0]


def test_walle_finds_wall_e_before_titles_that_start_with_the_letters():
    index = TitleIndex(
        [(1, "Walled In (2009)", 40), (2, "WALL·E (2008)", 20), (3, "Wall Street (1987)", 60)]
    )
    for query in ("walle", "wall-e", "wall e", "WALL·E"):
        assert ids(index, query)[0] == 2, query


def test_walle_ranks_wall_e_first_in_the_real_catalogue(real_index, real_movies):
    first = real_index.search("walle", 5)[0]
    assert dict((m, t) for m, t, _ in real_movies)[first.movie_id] == "WALL·E (2008)"


def test_an_alternative_title_still_finds_the_movie(index):
    raiders = TitleIndex(
        [
            (
                1198,
                "Raiders of the Lost Ark (Indiana Jones and the Raiders of the Lost Ark) (1981)",
                200,
            )
        ]
    )
    assert ids(raiders, "indiana jones and the raiders") == [1198]
    assert ids(index, "fabuleux destin") == [5]
