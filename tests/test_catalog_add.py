"""Adding movies the data set lacks: `movierec catalog add`, the catalogue and the picks."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from movierec import models
from movierec.cli import main
from movierec.data import Ratings, load_dataset
from movierec.data.added import (
    ADDED_FROM,
    NewMovie,
    add_movies,
    added_path,
    read_added,
    with_added,
)
from movierec.errors import InvalidInput
from movierec.recommend import RecommendService
from movierec.search import TitleIndex
from movierec.web.testing import FakeTmdb, fake_tmdb_server

HEADER = "title,year,genres,imdbId,tmdbId\n"
PARASITE = "Parasite,2019,Comedy|Drama|Thriller,tt6751668,496243\n"
IRISHMAN = "The Irishman,2019,Crime|Drama,tt1302006,398978\n"


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def errors_of(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line]


def test_a_csv_adds_movies_with_ids_clear_of_movielens(home, tmp_path, capsys):
    movies = write(tmp_path, "new.csv", HEADER + PARASITE + IRISHMAN)
    assert main(["catalog", "add", "--csv", str(movies)]) == 0
    assert "2 movie(s) added to ml-latest-small" in capsys.readouterr().out
    stored = read_added(added_path("ml-latest-small", home))
    assert [m.movie_id for m in stored] == [ADDED_FROM, ADDED_FROM + 1]
    assert stored[0].imdb_id == 6751668 and stored[0].tmdb_id == 496243

    catalog = load_dataset("ml-latest-small", home=home).catalog
    assert len(catalog) == 9742 + 2 and catalog.n_added == 2 and catalog.last_year == 2018
    irishman = catalog.get(ADDED_FROM + 1)
    assert (irishman.display_title, irishman.year, irishman.genres) == (
        "The Irishman",
        2019,
        ("Crime", "Drama"),
    )
    assert irishman.n_ratings == 0 and irishman.tmdb_id == 398978
    assert int(catalog.frame.index[catalog.frame.index < ADDED_FROM].max()) < ADDED_FROM // 1000

    frame = catalog.frame
    index = TitleIndex(zip(frame.index, frame["title"], frame["n_ratings"], strict=True))
    hits = [h.movie_id for h in index.search("parasite", 5)]
    assert set(hits[:2]) == {2256, ADDED_FROM}  # Parasite (1982) and the added one
    assert [h.movie_id for h in index.search("irishman 2019", 5)] == [ADDED_FROM + 1]

    assert main(["catalog", "list-added"]) == 0
    listed = capsys.readouterr().out
    assert f"{ADDED_FROM}  Parasite (2019)" in listed and "2 movie(s) added" in listed


@pytest.mark.parametrize(
    ("rows", "named"),
    [
        ("Toy Story,1995,Animation|Children,,\n", "same title and year as movieId 1"),
        ("Toy Story (1995),,Animation,,\n", "same title and year as movieId 1"),
        ("Some Other Title,2001,Drama,tt0114709,\n", "IMDb id tt0114709 as movieId 1"),
        ("Another Title,2001,Drama,,862\n", "TMDB id 862 as movieId 1"),
        (PARASITE, "IMDb id tt6751668 as added movieId"),
        ("New One,2020,Drama,,\nNew One,2020,Drama,,\n", "line 3"),
        ("New One,2020,Scifi,,\n", "genre 'Scifi' is not one of"),
        ("New One,20x0,Drama,,\n", "year '20x0'"),
        ("New One,1500,Drama,,\n", "year 1500 is out of range"),
        ("New One,2020,Drama,nm123,\n", "imdbId 'nm123'"),
        ("New One,2020,Drama,,-4\n", "tmdbId '-4'"),
        (",2020,Drama,,\n", "the title is empty"),
        ("New One,2020,Drama\n", "3 fields where the header has 5"),
        ('"New One,2020,Drama,,\n', "not valid CSV"),
    ],
)
def test_bad_or_duplicate_rows_add_nothing(home, tmp_path, capsys, rows, named):
    assert main(["catalog", "add", "--csv", str(write(tmp_path, "a.csv", HEADER + PARASITE))]) == 0
    path = added_path("ml-latest-small", home)
    before = path.read_bytes()
    capsys.readouterr()
    batch = write(tmp_path, "b.csv", HEADER + "Fine Movie,2021,Drama,,\n" + rows)
    assert main(["catalog", "add", "--csv", str(batch)]) == 2
    errors = errors_of(capsys)
    assert len(errors) == 1 and errors[0].startswith("movierec: error: "), errors
    assert named in errors[0] and "b.csv" in errors[0]
    assert path.read_bytes() == before  # all or nothing: "Fine Movie" was not added either
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(f".{path.name}")] == []


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("title,year\nX,2020\n", "expected the columns title,year,genres,imdbId,tmdbId"),
        ("", "is empty"),
        (HEADER, "no movies after the header"),
    ],
)
def test_a_malformed_csv_is_one_line(home, tmp_path, capsys, text, named):
    assert main(["catalog", "add", "--csv", str(write(tmp_path, "m.csv", text))]) == 2
    errors = errors_of(capsys)
    assert len(errors) == 1 and named in errors[0]
    assert not added_path("ml-latest-small", home).exists()


class MovieTmdb(FakeTmdb):
    """FakeTmdb with the details `catalog add --tmdb` reads."""

    def details(self, tmdb_id: int) -> dict[str, Any]:
        return {
            **super().details(tmdb_id),
            "title": f"Film {tmdb_id}",
            "original_title": f"Original {tmdb_id}",
            "release_date": "2021-03-04",
            "genres": [{"id": 878, "name": "Science Fiction"}, {"id": 36, "name": "History"},
                       {"id": 10751, "name": "Family"}],
            "imdb_id": f"tt{9000000 + tmdb_id}",
        }  # fmt: skip


def test_tmdb_ids_are_added_from_tmdbs_details(home, monkeypatch, capsys):
    fake = MovieTmdb(missing={404})
    with fake_tmdb_server(fake) as url:
        monkeypatch.setenv("MOVIEREC_TMDB_URL", url)
        monkeypatch.setenv("TMDB_API_KEY", "test-key")
        assert main(["catalog", "add", "--tmdb", "700001", "--tmdb", "404"]) == 2
        errors = errors_of(capsys)
        assert len(errors) == 1 and "TMDB has no movie with id 404" in errors[0]
        assert not added_path("ml-latest-small", home).exists()
        assert main(["catalog", "add", "--tmdb", "700001", "--tmdb", "700002"]) == 0
        assert main(["catalog", "add", "--tmdb", "700002"]) == 2
        assert (
            f"duplicate: the same IMDb id tt9700002 as added movieId {ADDED_FROM + 1}"
            in (errors_of(capsys)[0])
        )
    added = read_added(added_path("ml-latest-small", home))
    assert [(m.title, m.year, m.genres, m.imdb_id, m.tmdb_id) for m in added] == [
        ("Film 700001", 2021, ("Sci-Fi", "Children"), 9700001, 700001),
        ("Film 700002", 2021, ("Sci-Fi", "Children"), 9700002, 700002),
    ]
    assert "/movie/700001" in fake.calls


def test_tmdb_without_a_key_or_reachable_server_is_one_line(home, monkeypatch, capsys):
    assert main(["catalog", "add", "--tmdb", "5"]) == 2
    assert "needs TMDB_API_KEY or TMDB_READ_TOKEN" in errors_of(capsys)[0]
    with fake_tmdb_server(MovieTmdb(fail=True)) as url:
        monkeypatch.setenv("MOVIEREC_TMDB_URL", url)
        monkeypatch.setenv("TMDB_API_KEY", "test-key")
        assert main(["catalog", "add", "--tmdb", "5"]) == 2
    errors = errors_of(capsys)
    assert len(errors) == 1 and "nothing was added" in errors[0]


def test_a_failed_write_leaves_the_old_list_and_no_temporary_file(ml_small, tmp_path, monkeypatch):
    path = tmp_path / "data" / "ml-latest-small.added.csv"
    first = NewMovie("First New", 2020, ("Drama",), None, None)
    add_movies(path, ml_small.catalog, [first])
    before = path.read_bytes()

    def broken(*_args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(OSError):
        add_movies(path, ml_small.catalog, [NewMovie("Second New", 2020, ("Drama",), None, None)])
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name, path.name + ".lock"]


def test_adders_at_once_keep_every_movie_with_distinct_ids(ml_small, tmp_path):
    path = tmp_path / "data" / "ml-latest-small.added.csv"
    failures: list[BaseException] = []

    def add(k: int) -> None:
        try:
            add_movies(path, ml_small.catalog, [NewMovie(f"Batch {k}", 2020, (), None, None)])
        except BaseException as exc:  # pragma: no cover - reported below
            failures.append(exc)

    threads = [threading.Thread(target=add, args=(k,)) for k in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    added = read_added(path)
    assert not failures
    assert sorted(m.movie_id for m in added) == list(range(ADDED_FROM, ADDED_FROM + 8))
    assert sorted(m.title for m in added) == sorted(f"Batch {k}" for k in range(8))


def test_a_damaged_added_list_is_named_with_its_line(ml_small, tmp_path, session_home):
    path = tmp_path / "x.added.csv"
    path.write_text("movieId,title,year,genres,imdbId,tmdbId,addedAt\n12,Early Id,2020,Drama,,,\n")
    with pytest.raises(Exception, match=r"x.added.csv, line 2: movieId 12 is out of range"):
        read_added(path)


# -- recommended through their content -------------------------------------------------------
@pytest.fixture(scope="module")
def added_service(ml_small) -> RecommendService:
    new = [
        NewMovie("Parasite", 2019, ("Comedy", "Drama", "Thriller"), 6751668, 496243),
        NewMovie("The Irishman", 2019, ("Crime", "Drama"), 1302006, 398978),
        NewMovie("Old Added Western", 1950, ("Western",), None, None),
    ]
    catalog = with_added(ml_small.catalog, [_added(m, ADDED_FROM + k) for k, m in enumerate(new)])
    model = models.create("svd", seed=0, n_epochs=3).fit(ml_small.ratings)
    return RecommendService(model, catalog)


def _added(movie: NewMovie, movie_id: int):
    from movierec.data.added import AddedMovie

    return AddedMovie(**vars(movie), movie_id=movie_id, added_at="2026-01-01T00:00:00+00:00")


def test_an_added_movie_is_offered_on_shared_genres_with_an_honest_reason(added_service):
    # The Godfather (Crime|Drama) liked: The Irishman shares both of its genres
    picks = added_service.recommend({858: 5.0, 296: 4.5, 1: 2.0}, n=5).items
    assert len(picks) == 5
    new = [p for p in picks if p.movie.movie_id >= ADDED_FROM]
    assert [p.movie.display_title for p in new] == ["The Irishman"]
    assert picks[-1] is new[0]  # below the model's picks
    assert new[0].reason == "New to the catalogue; shares Crime and Drama with The Godfather."
    assert new[0].like_probability is None
    # the similarity-weighted mean of the stars of rated movies sharing a genre
    assert new[0].predicted_stars == pytest.approx((5.0 * 1.0 + 4.5 * 0.5) / 1.5)


def test_added_movies_follow_the_year_preference_hidden_movies_and_taste(added_service):
    liked = {858: 5.0, 296: 4.5}
    assert all(p.movie.movie_id < ADDED_FROM for p in added_service.recommend(liked, "old").items)
    hidden = added_service.recommend(liked, exclude=[ADDED_FROM + 1]).items
    assert ADDED_FROM + 1 not in [p.movie.movie_id for p in hidden]
    assert "shares Comedy, Drama and Thriller with Pulp Fiction" in hidden[-1].reason
    # a Toy Story fan (Adventure|Animation|Children|Comedy|Fantasy) shares too little
    toy = added_service.recommend({1: 5.0, 3114: 4.5}).items
    assert all(p.movie.movie_id < ADDED_FROM for p in toy)
    # Unforgiven (Drama|Western) liked brings the old Western in; disliked, it does not
    western = added_service.recommend({858: 5.0, 1266: 5.0}, year="old").items
    assert western[-1].movie.movie_id == ADDED_FROM + 2
    assert "shares Western with Unforgiven" in western[-1].reason
    western = added_service.recommend({858: 5.0, 1266: 1.0}, year="old").items
    assert all(p.movie.movie_id < ADDED_FROM for p in western)


def test_an_added_movie_can_be_rated_and_is_then_never_offered(added_service):
    picks = added_service.recommend({ADDED_FROM: 5.0, 296: 5.0}, n=10).items
    assert len(picks) == 10
    assert not any(p.movie.movie_id == ADDED_FROM for p in picks)  # rated: never offered
    with pytest.raises(InvalidInput, match="unknown movieId 999999999"):
        added_service.recommend({999_999_999: 4.0})


def test_an_added_movie_the_model_learned_is_left_to_the_model(ml_small, added_service):
    """After a retrain in which 30 visitors rated The Irishman, the model ranks it like any
    movie; it is no longer matched on genres (and so never twice in one list)."""
    frame = ml_small.frame
    users = np.arange(100_001, 100_031)
    extra_users = np.repeat(users, 2)
    extra_movies = np.tile([ADDED_FROM + 1, 858], users.size)
    ratings = Ratings.from_arrays(
        np.concatenate([frame["userId"].to_numpy(), extra_users]),
        np.concatenate([frame["movieId"].to_numpy(), extra_movies]),
        np.concatenate([frame["rating"].to_numpy(), np.full(extra_users.size, 5.0)]),
    )
    model = models.create("svd", seed=0, n_epochs=3).fit(ratings)
    service = RecommendService(model, added_service.catalog)
    for n in (5, 20, 50):
        picks = service.recommend({858: 5.0, 296: 4.5}, n=n).items
        irishman = [p for p in picks if p.movie.movie_id == ADDED_FROM + 1]
        assert len(irishman) <= 1 and all(p.note is None for p in irishman)
    # Parasite, which nobody rated, is still matched on its genres
    picks = service.recommend({296: 5.0}, n=5).items
    assert picks[-1].movie.movie_id == ADDED_FROM and picks[-1].note


def test_added_movies_keep_their_places_in_every_prefix_of_a_long_list(added_service):
    """The pages rank 50 picks and show the first 5, 10, ...: added movies sit 5th, 10th."""
    liked = {858: 5.0, 296: 4.5}
    picks = added_service.recommend(liked, n=50).items
    added = [k for k, p in enumerate(picks) if p.movie.movie_id >= ADDED_FROM]
    assert len(picks) == 50 and added == [4, 9]
    assert [picks[k].movie.display_title for k in added] == ["The Irishman", "Parasite"]
    short = added_service.recommend(liked, n=3).items
    assert len(short) == 3 and short[-1].movie.movie_id == ADDED_FROM + 1
