"""Reading IMDb, Letterboxd and movierec CSVs and matching them to the catalogue."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from movierec.errors import InvalidInput
from movierec.imports import MAX_ROWS, Matcher, read_import

MOVIES = [
    (2571, "Matrix, The (1999)", 278),
    (4973, "Amelie (Fabuleux destin d'Amélie Poulain, Le) (2001)", 120),
    (858, "Godfather, The (1972)", 192),
    (1, "Toy Story (1995)", 215),
    (5618, "Spirited Away (Sen to Chihiro no kamikakushi) (2001)", 87),
]
IMDB = {133093: 2571, 211915: 4973, 68646: 858, 114709: 1, 245429: 5618}
IMDB_HEADER = "Const,Your Rating,Date Rated,Title,URL,Title Type,IMDb Rating,Year\n"


@pytest.fixture(scope="module")
def matcher() -> Matcher:
    return Matcher(MOVIES, IMDB)


def imdb_csv(*rows: str) -> bytes:
    return (IMDB_HEADER + "".join(r + "\n" for r in rows)).encode()


def test_imdb_ratings_map_1_to_10_onto_half_stars(matcher):
    rows = [f"tt0114709,{r},2024-05-0{r % 9 + 1},Toy Story,u,movie,8.3,1995" for r in (1,)]
    data = imdb_csv(
        *rows,
        "tt0133093,10,2024-05-31,The Matrix,u,movie,8.7,1999",
        "tt211915,7,,Amélie,u,movie,8.3,2001",  # no zero padding
        "0068646,2,2020-01-01,The Godfather,u,movie,9.2,1972",  # no tt prefix
    )
    result = read_import(data, "imdb", matcher)
    assert result.ratings == {1: 0.5, 2571: 5.0, 4973: 3.5, 858: 1.0}
    assert result.rated_at[2571] == datetime(2024, 5, 31, tzinfo=UTC)
    assert 4973 not in result.rated_at
    assert result.matched == 4 and result.unmatched == []


def test_imdb_unmatched_and_unrated_rows_are_listed_not_fatal(matcher):
    data = imdb_csv(
        "tt9999999,8,2024-01-01,Some New Film,u,movie,7.0,2024",
        "tt0133093,,2024-01-01,The Matrix,u,movie,8.7,1999",  # watch-list row
    )
    result = read_import(data, "imdb", matcher)
    assert result.ratings == {}
    assert result.skipped == 1
    [missing] = result.unmatched
    assert (missing.line, missing.title, missing.year, missing.ref) == (
        2,
        "Some New Film",
        2024,
        "tt9999999",
    )


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("tt0133093,11,,x,u,movie,1,1999", "line 3: Your Rating must be a whole number"),
        ("tt0133093,4.5,,x,u,movie,1,1999", "line 3: Your Rating"),
        ("nm0000206,8,,x,u,movie,1,1999", "line 3: Const must be an IMDb id"),
        ("tt0133093,8,31/05/2024,x,u,movie,1,1999", "line 3: Date Rated must be a date"),
        ("tt0133093,8,,x,u,movie,1,1999,extra,extra", "line 3: 10 fields"),
    ],
)
def test_imdb_malformed_rows_name_their_line(matcher, row, message):
    data = imdb_csv("tt0114709,8,,Toy Story,u,movie,8.3,1995", row)
    with pytest.raises(InvalidInput, match=message) as info:
        read_import(data, "imdb", matcher)
    assert info.value.field == "file"


def test_letterboxd_matches_title_and_year_ignoring_accents_and_articles(matcher):
    data = (
        "Date,Name,Year,Letterboxd URI,Rating\n"
        "2024-01-02,The Matrix,1999,https://boxd.it/a,4.5\n"
        "2024-01-03,Amélie,2001,https://boxd.it/b,4\n"
        '2024-01-04,"Godfather, The",1972,https://boxd.it/c,5\n'
        "2024-01-05,Spirited Away,2002,https://boxd.it/d,3.5\n"  # one year off, unique
        "2024-01-06,The Matrix,2021,https://boxd.it/e,2\n"  # no such year
        "2024-01-07,Toy Story,,https://boxd.it/f,\n"  # logged without a rating
    ).encode("utf-8-sig")  # with a byte-order mark
    result = read_import(data, "letterboxd", matcher)
    assert result.ratings == {2571: 4.5, 4973: 4.0, 858: 5.0, 5618: 3.5}
    assert [(u.line, u.title, u.year) for u in result.unmatched] == [(6, "The Matrix", 2021)]
    assert result.skipped == 1


def test_letterboxd_rating_out_of_range_names_the_line(matcher):
    data = b"Date,Name,Year,Letterboxd URI,Rating\n2024-01-02,The Matrix,1999,u,4.25\n"
    with pytest.raises(InvalidInput, match="line 2: Rating must be 0.5 to 5"):
        read_import(data, "letterboxd", matcher)


def test_movierec_export_round_trips_with_timestamps(matcher):
    data = (
        b"movieId,title,rating,timestamp\n"
        b'2571,"Matrix, The (1999)",4.5,1717113600\n'
        b"1,Toy Story (1995),3.0,\n"
        b"999999,Gone (2000),2.0,1717113600\n"
    )
    result = read_import(data, "movielens", matcher)
    assert result.ratings == {2571: 4.5, 1: 3.0}
    assert result.rated_at[2571] == datetime(2024, 5, 31, tzinfo=UTC)
    assert [u.ref for u in result.unmatched] == ["999999"]


def test_movielens_ratings_csv_is_accepted_too(matcher):
    data = b"userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,858,5.0,964981247\n"
    assert read_import(data, "movielens", matcher).ratings == {1: 4.0, 858: 5.0}


def test_wrong_encoding_names_the_line_and_asks_for_utf8(matcher):
    data = "Date,Name,Year,Letterboxd URI,Rating\n2024-01-02,Amélie,2001,u,4\n".encode("latin-1")
    with pytest.raises(InvalidInput, match="line 2: the file is not UTF-8"):
        read_import(data, "letterboxd", matcher)


def test_limits_on_size_rows_format_and_columns(matcher):
    with pytest.raises(InvalidInput, match="at most 5 MB"):
        read_import(b"x" * (5 * 1024 * 1024 + 1), "imdb", matcher)
    rows = "".join("tt0114709,8,,T,u,movie,8,1995\n" for _ in range(MAX_ROWS + 1))
    with pytest.raises(InvalidInput, match="more than 20,000 rows"):
        read_import((IMDB_HEADER + rows).encode(), "imdb", matcher)
    with pytest.raises(InvalidInput) as info:
        read_import(b"a,b\n", "netflix", matcher)
    assert info.value.field == "format"
    with pytest.raises(
        InvalidInput, match=r"line 1 \(the header\): no 'Const' column; is this an IMDb ratings"
    ):
        read_import(b"Title,Year,Stars\nx,1999,4\n", "imdb", matcher)
    with pytest.raises(InvalidInput, match="empty"):
        read_import(b"", "imdb", matcher)


def test_a_later_row_of_the_same_movie_wins_and_the_repeat_is_reported(matcher):
    data = imdb_csv(
        "tt0133093,6,,M,u,movie,1,1999",  # line 2
        "tt0114709,8,,Toy Story,u,movie,8.3,1995",
        "0133093,9,,M,u,movie,1,1999",  # line 4: the same movie, written another way
        "tt0114709,8,,Toy Story,u,movie,8.3,1995",
    )
    result = read_import(data, "imdb", matcher)
    assert result.ratings == {2571: 4.5, 1: 4.0}
    assert [d.message for d in result.duplicates] == [
        "line 4 repeats line 2; the later stars were kept",
        "line 5 repeats line 3; the later stars were kept",
    ]
    assert [d.movie_id for d in result.duplicates] == [2571, 1]


LETTERBOXD = b"Date,Name,Year,Letterboxd URI,Rating\n2024-01-02,The Matrix,1999,u,4.5\n"


@pytest.mark.parametrize("chosen", [None, "imdb", "movielens"])
def test_the_format_is_told_by_the_header_when_none_or_another_is_chosen(matcher, chosen):
    result = read_import(LETTERBOXD, chosen, matcher)
    assert result.format == "letterboxd" and result.detected
    assert result.ratings == {2571: 4.5}
    assert not read_import(LETTERBOXD, "letterboxd", matcher).detected


def test_a_header_of_no_known_format_is_named_as_line_1(matcher):
    with pytest.raises(InvalidInput, match=r"line 1 \(the header\) has 'Film', 'Score'") as info:
        read_import(b"Film,Score\nThe Matrix,9\n", None, matcher)
    assert "an IMDb ratings export" in str(info.value)
    assert info.value.field == "file"


def test_a_short_row_names_its_own_line_and_column(matcher):
    data = b"movieId,title,rating,timestamp\n1,Toy Story (1995),4.0,\n858\n"
    with pytest.raises(InvalidInput, match=r"line 3: no value in the 'rating' column"):
        read_import(data, "movielens", matcher)
