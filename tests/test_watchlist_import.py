"""Reading Letterboxd and IMDb watchlist exports and matching them to the catalogue."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from movierec.errors import InvalidInput
from movierec.imports import MAX_ROWS, Matcher, read_watchlist

MOVIES = [
    (2571, "Matrix, The (1999)", 278),
    (4973, "Amelie (Fabuleux destin d'Amélie Poulain, Le) (2001)", 120),
    (858, "Godfather, The (1972)", 192),
    (1, "Toy Story (1995)", 215),
]
IMDB = {133093: 2571, 211915: 4973, 68646: 858, 114709: 1}
LETTERBOXD = "Date,Name,Year,Letterboxd URI\n"
IMDB_HEADER = "Position,Const,Created,Modified,Description,Title,Title Type,Year\n"


@pytest.fixture(scope="module")
def matcher() -> Matcher:
    return Matcher(MOVIES, IMDB)


def test_letterboxd_rows_match_by_title_and_year_keeping_dates(matcher):
    data = (
        "\ufeff" + LETTERBOXD + "2024-01-05,The Matrix,1999,https://boxd.it/1\n"
        "2024-02-01,Amélie,2001,https://boxd.it/2\n"
        ",The Godfather,,https://boxd.it/3\n"
        "2024-03-01,Unknown Film,2011,https://boxd.it/4\n"
    ).encode()
    result = read_watchlist(data, "letterboxd", matcher)
    assert list(result.added) == [2571, 4973]
    assert result.added[2571] == datetime(2024, 1, 5, tzinfo=UTC)
    assert result.rows == 4 and not result.detected
    # a title without its year is not guessed (as for ratings); the film no one made
    assert [(u.line, u.title, u.year) for u in result.unmatched] == [
        (4, "The Godfather", None),
        (5, "Unknown Film", 2011),
    ]
    assert result.unmatched[1].ref == "https://boxd.it/4"


def test_imdb_rows_match_by_const_and_name_what_is_not_a_movie(matcher):
    data = (
        IMDB_HEADER + "1,tt0133093,2023-05-01,2023-05-01,,The Matrix,Movie,1999\n"
        "2,tt0903747,2023-05-02,2023-05-02,,Breaking Bad,TV Series,2008\n"
        "3,tt9999999,2023-05-03,2023-05-03,,Some Film,Movie,2019\n"
    ).encode()
    result = read_watchlist(data, "imdb", matcher)
    assert list(result.added) == [2571]
    assert [u.reason for u in result.unmatched] == [
        "not a movie (TV Series)",
        "not in the catalogue",
    ]


def test_the_header_decides_when_the_format_is_wrong_or_absent(matcher):
    data = (LETTERBOXD + "2024-01-05,Toy Story,1995,\n").encode()
    for fmt in ("imdb", None):
        result = read_watchlist(data, fmt, matcher)
        assert result.format == "letterboxd" and result.detected and list(result.added) == [1]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("Title,Year\nHeat,1995\n", "line 1: no 'Name' column"),
        (LETTERBOXD + "2024-01-05,Heat,95,\n", "line 2: Year must be 4 digits"),
        (LETTERBOXD + "yesterday,Toy Story,1995,\n", "line 2: Date must be a date"),
        (IMDB_HEADER + "1,nm0000151,,,,Someone,Person,1937\n", "line 2: Const must be an IMDb id"),
        ("", "empty"),
    ],
)
def test_bad_files_name_the_line(matcher, data, message):
    with pytest.raises(InvalidInput, match=message):
        read_watchlist(data.encode(), "letterboxd", matcher)


def test_limits_and_encoding(matcher):
    with pytest.raises(InvalidInput, match="format must be one of"):
        read_watchlist(b"", "trakt", matcher)
    with pytest.raises(InvalidInput, match="not UTF-8"):
        read_watchlist((LETTERBOXD + ",Am\xe9lie,2001,\n").encode("latin-1"), "letterboxd", matcher)
    rows = "".join(f",Film {i},2000,\n" for i in range(MAX_ROWS + 1))
    with pytest.raises(InvalidInput, match="more than"):
        read_watchlist((LETTERBOXD + rows).encode(), "letterboxd", matcher)
