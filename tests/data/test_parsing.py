"""Parsing MovieLens files: years in titles, genres, and exact errors on corrupt lines."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from movierec.data.movielens import MOVIES_CSV, RATINGS_CSV, U_DATA, U_ITEM
from movierec.data.parsing import (
    DataFileError,
    parse_year,
    parse_years,
    read_table,
    split_genres,
)
from movierec.errors import DataError

GOOD_RATINGS = "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,3,0.5,964981247\n"


@pytest.mark.parametrize(
    ("title", "year"),
    [
        ("Toy Story (1995)", 1995),
        ("Babylon 5", None),
        ("Hyena Road (2015) ", 2015),
        ("  Heat (1995)  ", 1995),
        ("Death Note: Desu nôto (2006–2007)", 2006),
        ("Fawlty Towers (1975-1979)", 1975),
        ("Some Series (2016- )", 2016),
        ("The Godfather Trilogy: 1972-1990 (1992)", 1992),
        ("Land Before Time III: The Time of the Great Giving (1995) (V)", 1995),
        ("1984 (1984)", 1984),
        ("2001: A Space Odyssey", None),
        ("unknown", None),
        ("", None),
    ],
)
def test_parse_year(title: str, year: int | None) -> None:
    assert parse_year(title) == year


@given(st.lists(st.text(alphabet="ab 0123456789()-–", max_size=20), min_size=1))
def test_parse_years_matches_parse_year(titles: list[str]) -> None:
    years = parse_years(pd.Series(titles, dtype="str"))
    assert str(years.dtype) == "Int64"
    assert [None if pd.isna(y) else int(y) for y in years] == [parse_year(t) for t in titles]


def test_split_genres() -> None:
    genres = split_genres(pd.Series(["Adventure|Comedy", "(no genres listed)", "Drama"]))
    assert list(genres) == [("Adventure", "Comedy"), (), ("Drama",)]


def write(tmp_path: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def test_reads_lf_and_crlf_alike(tmp_path: Path) -> None:
    lf = read_table(write(tmp_path, "lf.csv", GOOD_RATINGS), RATINGS_CSV)
    crlf = read_table(write(tmp_path, "crlf.csv", GOOD_RATINGS.replace("\n", "\r\n")), RATINGS_CSV)
    pd.testing.assert_frame_equal(lf, crlf)
    assert lf["rating"].tolist() == [4.0, 0.5]
    assert str(lf["userId"].dtype) == "int64"


def test_quoted_titles_keep_commas(tmp_path: Path) -> None:
    text = 'movieId,title,genres\n11,"American President, The (1995)",Comedy|Drama\n'
    movies = read_table(write(tmp_path, "movies.csv", text), MOVIES_CSV)
    assert movies["title"].tolist() == ["American President, The (1995)"]


@pytest.mark.parametrize(
    ("bad_line", "problem"),
    [
        ("1,5,4.0,964982703,extra", "expected 4 fields, found 5"),
        ("1,5,4.0", "expected 4 fields, found 3"),
        ("1,5,four,964982703", "rating 'four' is not a number"),
        ("1,5,,964982703", "rating '' is not a number"),
        ("1,5,7.0,964982703", "rating 7.0 is outside 0.5–5"),
        ("1,5,0,964982703", "rating 0 is outside 0.5–5"),
        ("1,5,3.7,964982703", "rating 3.7 is not a multiple of 0.5"),
        ("1,5,nan,964982703", "rating 'nan' is not a finite number"),
        ("x,5,4.0,964982703", "userId 'x' is not an integer"),
        ("1,-5,4.0,964982703", "movieId -5 is outside >= 1"),
    ],
)
def test_corrupt_line_is_named(tmp_path: Path, bad_line: str, problem: str) -> None:
    # line 1 header, 2-3 good, 4 blank (skipped but counted), 5 bad, 6 good
    text = GOOD_RATINGS + "\n" + bad_line + "\n2,1,3.0,964982703\n"
    path = write(tmp_path, "ratings.csv", text)
    with pytest.raises(DataError) as caught:
        read_table(path, RATINGS_CSV)
    err = caught.value
    assert isinstance(err, DataFileError)
    assert (err.line, err.problem) == (5, problem)
    assert str(err) == f"{path}, line 5: {problem}"


def test_corrupt_line_with_crlf(tmp_path: Path) -> None:
    text = (GOOD_RATINGS + "1,5,9,964982703\n").replace("\n", "\r\n")
    with pytest.raises(DataFileError, match=r"ratings\.csv, line 4: rating 9 is outside"):
        read_table(write(tmp_path, "ratings.csv", text), RATINGS_CSV)


def test_wrong_header(tmp_path: Path) -> None:
    path = write(tmp_path, "ratings.csv", "user,movie,rating,timestamp\n1,1,4.0,9\n")
    with pytest.raises(DataFileError, match=r"line 1: header is 'user,movie,rating,timestamp'"):
        read_table(path, RATINGS_CSV)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match="nope.csv: file not found"):
        read_table(tmp_path / "nope.csv", RATINGS_CSV)


def test_bad_utf8_is_named(tmp_path: Path) -> None:
    path = tmp_path / "movies.csv"
    path.write_bytes(b"movieId,title,genres\n1,Toy Story (1995),Comedy\n2,Mis\xe9rables,Drama\n")
    with pytest.raises(DataFileError, match=r"line 3: not valid utf-8 text"):
        read_table(path, MOVIES_CSV)


def test_u_data_tab_separated(tmp_path: Path) -> None:
    path = write(tmp_path, "u.data", "196\t242\t3\t881250949\n186\t302\t3\t891717742\n")
    frame = read_table(path, U_DATA)
    assert frame.columns.tolist() == ["userId", "movieId", "rating", "timestamp"]
    assert frame["rating"].tolist() == [3.0, 3.0]
    bad = write(tmp_path, "u1.base", "196\t242\t3\t881250949\n186\t302\t3.5\t891717742\n")
    with pytest.raises(DataFileError, match=r"u1\.base, line 2: rating 3.5 is not a multiple of 1"):
        read_table(bad, U_DATA)


def test_u_item_latin1_and_field_count(tmp_path: Path) -> None:
    flags = "|".join(["0"] * 8 + ["1"] + ["0"] * 10)
    line = f"543|Misérables, Les (1995)|01-Jan-1995||http://x|{flags}\n"
    items = read_table(write(tmp_path, "u.item", line, "latin-1"), U_ITEM)
    assert items["title"].tolist() == ["Misérables, Les (1995)"]
    short = write(tmp_path, "short.item", line + "544|Short|01-Jan-1995||http://x|0|1\n", "latin-1")
    with pytest.raises(DataFileError, match=r"line 2: expected 24 fields, found 7"):
        read_table(short, U_ITEM)


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match=r"cannot be read \(Is a directory\)"):
        read_table(tmp_path, RATINGS_CSV)
