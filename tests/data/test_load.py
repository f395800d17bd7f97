"""Loading ml-latest-small and ml-100k: counts, catalogue contents, folds, corrupt files."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from movierec.data import (
    DATASETS,
    Catalog,
    Dataset,
    Ratings,
    available_datasets,
    fetch_dataset,
    load_dataset,
    load_split,
    official_folds,
)
from movierec.data.parsing import DataFileError
from movierec.errors import DataError, InvalidInput

from .helpers import copy_dataset, replace_line

RATING_COLUMNS = ["userId", "movieId", "rating", "timestamp"]


def test_known_datasets() -> None:
    releases = ["ml-100k", "ml-10m", "ml-1m", "ml-20m", "ml-25m", "ml-32m", "ml-latest"]
    assert available_datasets() == [*releases, "ml-latest-small"]
    assert set(DATASETS) == {*releases, "ml-latest-small"}


def test_unknown_name_lists_known_ones(tmp_path: Path) -> None:
    with pytest.raises(
        InvalidInput, match=r"'ml-2m'.*ml-100k, ml-10m, .*ml-latest-small"
    ) as caught:
        load_dataset("ml-2m", home=tmp_path)
    assert caught.value.field == "name"


# -- ml-latest-small --------------------------------------------------------------------------
def test_ml_small_counts(ml_small: Dataset) -> None:
    assert isinstance(ml_small.ratings, Ratings)
    assert isinstance(ml_small.catalog, Catalog)
    assert ml_small.name == "ml-latest-small"
    assert (ml_small.ratings.n_users, ml_small.ratings.n_items) == (610, 9724)
    assert ml_small.ratings.nnz == len(ml_small.frame) == 100_836
    assert len(ml_small.catalog) == 9742


def test_ml_small_frame(ml_small: Dataset) -> None:
    frame = ml_small.frame
    assert frame.columns.tolist() == RATING_COLUMNS
    assert [str(t) for t in frame.dtypes] == ["int64", "int64", "float64", "int64"]
    assert frame.iloc[0].tolist() == [1, 1, 4.0, 964982703]
    assert set(np.unique(frame["rating"])) == set(np.arange(0.5, 5.01, 0.5))
    assert ml_small.ratings.global_mean == pytest.approx(frame["rating"].mean(), rel=1e-6)


def test_ml_small_catalog(ml_small: Dataset) -> None:
    catalog = ml_small.catalog
    toy = catalog.get(1)
    assert (toy.title, toy.year, toy.tmdb_id) == ("Toy Story (1995)", 1995, 862)
    assert toy.genres == ("Adventure", "Animation", "Children", "Comedy", "Fantasy")
    assert toy.n_ratings == 215
    assert toy.mean_rating == pytest.approx(
        ml_small.frame.loc[ml_small.frame["movieId"] == 1, "rating"].mean()
    )
    babylon = catalog.get(40697)
    assert (babylon.title, babylon.year) == ("Babylon 5", None)
    death_note = catalog.get(171749)
    assert (death_note.year, death_note.genres) == (2006, ())
    dusk = catalog.get(27008)  # "... (1999) " in movies.csv: stripped
    assert (dusk.title, dusk.year) == ("From Dusk Till Dawn 2: Texas Blood Money (1999)", 1999)


def test_ml_small_catalog_frame(ml_small: Dataset) -> None:
    frame = ml_small.catalog.frame
    assert frame.index.name == "movieId"
    assert str(frame["year"].dtype) == "Int64"
    assert str(frame["tmdb_id"].dtype) == "Int64"
    assert frame["year"].isna().sum() == 12
    assert frame["tmdb_id"].isna().sum() == 8
    assert frame["n_ratings"].sum() == 100_836
    unrated = frame[frame["n_ratings"] == 0]
    assert len(unrated) == 9742 - 9724
    assert unrated["mean_rating"].isna().all()
    assert not frame["title"].str.contains(r"^\s|\s$").any()
    assert all(isinstance(g, tuple) for g in frame["genres"])


def test_ml_small_tags(ml_small: Dataset) -> None:
    assert ml_small.catalog.tags is ml_small.tags
    assert ml_small.tags[1] == ["pixar", "fun"]
    assert all(len(tags) == len(set(tags)) for tags in ml_small.tags.values())


def test_ml_small_loads_fast(session_home: Path) -> None:
    start = time.perf_counter()
    load_dataset("ml-latest-small", home=session_home)
    assert time.perf_counter() - start < 3.0


def test_crlf_copy_loads_the_same(shared: Path, tmp_path: Path, ml_small: Dataset) -> None:
    # the official zip has CRLF line ends (and no SHA256SUMS)
    source = copy_dataset(
        shared / "ml-latest-small", tmp_path / "src" / "ml-latest-small", crlf=True, checksums=False
    )
    assert b"\r\n" in (source / "movies.csv").read_bytes()
    fetch_dataset("ml-latest-small", source=source, home=tmp_path / "home", progress=False)
    crlf = load_dataset("ml-latest-small", home=tmp_path / "home", fetch=False)
    pd.testing.assert_frame_equal(crlf.frame, ml_small.frame)
    pd.testing.assert_frame_equal(crlf.catalog.frame, ml_small.catalog.frame)
    assert crlf.tags == ml_small.tags


# -- ml-100k ----------------------------------------------------------------------------------
def test_ml_100k_counts(ml_100k: Dataset) -> None:
    assert (ml_100k.ratings.n_users, ml_100k.ratings.n_items) == (943, 1682)
    assert ml_100k.ratings.nnz == len(ml_100k.frame) == 100_000
    assert len(ml_100k.catalog) == 1682
    assert ml_100k.frame.columns.tolist() == RATING_COLUMNS
    assert set(ml_100k.frame["rating"]) == {1.0, 2.0, 3.0, 4.0, 5.0}
    assert ml_100k.tags == {}


def test_ml_100k_catalog(ml_100k: Dataset) -> None:
    catalog = ml_100k.catalog
    toy = catalog.get(1)
    assert (toy.title, toy.year, toy.tmdb_id) == ("Toy Story (1995)", 1995, None)
    assert toy.genres == ("Animation", "Children's", "Comedy")
    assert toy.n_ratings == 452
    assert catalog.get(543).title == "Misérables, Les (1995)"  # Latin-1 decoded
    assert catalog.get(1104).title == "C'est arrivé près de chez vous (1992)"
    unknown = catalog.get(267)  # the item with no title, date or genre
    assert (unknown.title, unknown.year, unknown.genres) == ("unknown", None, ())
    assert catalog.get(1373).genres == ()  # flagged only "unknown"
    assert catalog.frame["tmdb_id"].isna().all()
    assert catalog.frame["n_ratings"].sum() == 100_000


def test_official_folds(ml_100k: Dataset, session_home: Path) -> None:
    folds = official_folds(home=session_home)
    assert [(len(base), len(test)) for base, test in folds] == [(80_000, 20_000)] * 5
    for base, test in folds:
        assert base.columns.tolist() == test.columns.tolist() == RATING_COLUMNS
    for base, test in folds:  # base and test never share a (user, movie) pair
        assert not pd.concat([base, test]).duplicated(["userId", "movieId"]).any()
    # the tests nearly partition u.data. A quirk of the official release: 3 ratings are in
    # both u4.test and u5.test, and 3 others of u.data (863/1680, 896/1681, 916/1682) in none
    tests = pd.concat([test for _, test in folds])
    assert tests.duplicated().sum() == 3
    merged = tests.drop_duplicates().merge(ml_100k.frame, how="outer", indicator=True)
    missing = merged.loc[merged["_merge"] == "right_only", ["userId", "movieId"]]
    assert (merged["_merge"] == "both").sum() == 99_997
    assert sorted(map(tuple, missing.to_numpy().tolist())) == [
        (863, 1680),
        (896, 1681),
        (916, 1682),
    ]


def test_load_split(session_home: Path) -> None:
    base, test = load_split("ml-100k", "ua", home=session_home)
    assert (len(base), len(test)) == (90_570, 9_430)
    assert test.groupby("userId").size().eq(10).all()  # ua: 10 ratings per user held out
    with pytest.raises(InvalidInput, match=r"'u9'.*u1, u2, u3, u4, u5, ua, ub"):
        load_split("ml-100k", "u9", home=session_home)
    with pytest.raises(InvalidInput, match="ml-latest-small has no official folds"):
        official_folds("ml-latest-small", home=session_home)


# -- missing and corrupt data ------------------------------------------------------------------
def test_missing_without_fetch(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"ml-100k is not in .*data/ml-100k; fetch it first"):
        load_dataset("ml-100k", home=tmp_path, fetch=False)


def test_fetches_when_missing(home: Path) -> None:
    dataset = load_dataset("ml-latest-small", progress=False)  # home and source from env
    assert dataset.folder == home / "data" / "ml-latest-small"
    assert dataset.ratings.nnz == 100_836


@pytest.mark.parametrize(
    ("filename", "line_no", "text", "problem"),
    [
        ("ratings.csv", 5000, "32,1,4.0", "expected 4 fields, found 3"),
        ("ratings.csv", 77_777, "480,1,five,1179178193", "rating 'five' is not a number"),
        ("ratings.csv", 100_837, "610,1,5.5,1479542900", "rating 5.5 is outside 0.5–5"),
        ("ratings.csv", 3, "1,999999,4.0,964981247", "movieId 999999 is not in movies.csv"),
        ("movies.csv", 9743, "1,Toy Story again (1995),Comedy", "movieId 1 listed twice"),
        ("links.csv", 10, "9,0114576,abc", "tmdbId 'abc' is not an integer"),
    ],
)
def test_corrupt_line_is_named(
    shared: Path, tmp_path: Path, filename: str, line_no: int, text: str, problem: str
) -> None:
    folder = copy_dataset(shared / "ml-latest-small", tmp_path / "data" / "ml-latest-small")
    replace_line(folder / filename, line_no, text)
    with pytest.raises(DataFileError) as caught:
        load_dataset("ml-latest-small", home=tmp_path, fetch=False)
    assert (caught.value.file, caught.value.line) == (str(folder / filename), line_no)
    assert str(caught.value) == f"{folder / filename}, line {line_no}: {problem}"


def test_corrupt_ml_100k_line(shared: Path, tmp_path: Path) -> None:
    folder = copy_dataset(shared / "ml-100k", tmp_path / "data" / "ml-100k")
    replace_line(folder / "u.data", 123, "196\t242\t6\t881250949")
    with pytest.raises(DataError, match=r"u\.data, line 123: rating 6 is outside 1–5"):
        load_dataset("ml-100k", home=tmp_path, fetch=False)


def test_missing_file_is_named(shared: Path, tmp_path: Path) -> None:
    folder = copy_dataset(shared / "ml-100k", tmp_path / "data" / "ml-100k")
    (folder / "u.genre").unlink()
    with pytest.raises(DataError, match=r"u\.genre: file not found"):
        load_dataset("ml-100k", home=tmp_path, fetch=False)


def test_hand_made_tiny_set(tmp_path: Path) -> None:
    folder = tmp_path / "data" / "ml-latest-small"
    folder.mkdir(parents=True)
    (folder / "ratings.csv").write_text(
        "userId,movieId,rating,timestamp\r\n1,1,4.0,9\r\n1,2,3.5,9\r\n2,1,5.0,9\r\n"
    )
    (folder / "movies.csv").write_text(
        'movieId,title,genres\n1,Toy Story (1995),Comedy\n2,"Babylon 5",Sci-Fi\n'
        "3,Hyena Road (2015) ,(no genres listed)\n"
    )
    (folder / "links.csv").write_text("movieId,imdbId,tmdbId\n1,0114709,862\n3,1,\n")
    (folder / "tags.csv").write_text("userId,movieId,tag,timestamp\n1,1,pixar,9\n2,1,pixar ,9\n")
    dataset = load_dataset("ml-latest-small", home=tmp_path, fetch=False)
    assert [m.to_dict() for m in dataset.catalog.movies([1, 2, 3])] == [
        {
            "movieId": 1,
            "title": "Toy Story (1995)",
            "display_title": "Toy Story",
            "year": 1995,
            "genres": ["Comedy"],
            "tmdbId": 862,
            "n_ratings": 2,
            "mean_rating": 4.5,
        },
        {
            "movieId": 2,
            "title": "Babylon 5",
            "display_title": "Babylon 5",
            "year": None,
            "genres": ["Sci-Fi"],
            "tmdbId": None,
            "n_ratings": 1,
            "mean_rating": 3.5,
        },
        {
            "movieId": 3,
            "title": "Hyena Road (2015)",
            "display_title": "Hyena Road",
            "year": 2015,
            "genres": [],
            "tmdbId": None,
            "n_ratings": 0,
            "mean_rating": None,
        },
    ]
    assert dataset.tags == {1: ["pixar"]}
