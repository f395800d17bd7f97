"""``movierec train --with-visitors``: visitors' ratings train the next model.

On SQLite and PostgreSQL (the ``store`` fixture): who is read (not the opted-out, not the
forgotten), how they are merged (ids after the data set's, catalogue movies only, a
minimum of ratings) and what the model file records.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from movierec import models
from movierec.cli import main
from movierec.data.ratings import Ratings
from movierec.store import Store, repo
from movierec.store.retention import prune
from movierec.store.training_data import read_visitor_ratings
from movierec.visitor_ratings import MIN_VISITOR_RATINGS, merge_visitors

#: five catalogue movies of ml-latest-small (Toy Story, Heat, Star Wars, Pulp Fiction,
#: The Shawshank Redemption) and one id no data set has
FIVE = {1: 4.0, 6: 3.5, 260: 5.0, 296: 4.5, 318: 5.0}
UNKNOWN_MOVIE = 99_999_999


def rate(store: Store, visitor: str, ratings: dict[int, float], when: datetime | None = None):
    with store.session() as db:
        repo.upsert_ratings(db, visitor, ratings, when=when)


# -- the merge (hand-made data, exact) ---------------------------------------------------
def small_dataset() -> Ratings:
    return Ratings.from_arrays([1, 1, 7, 7], [10, 20, 20, 30], [4.0, 3.0, 5.0, 2.0])


def test_each_visitor_is_one_more_user_after_the_data_sets_ids():
    dataset = small_dataset()
    merged = merge_visitors(
        dataset,
        visitor=np.array([0, 0, 0, 1, 1, 1]),
        movie_ids=np.array([10, 20, 30, 30, 20, 10]),
        stars=np.array([5, 4, 3, 1, 2, 3], dtype=np.float32),
        min_ratings=3,
        bound=False,  # 4 users: the bound would keep one visitor per movie
    )
    assert merged.dataset_users == 2 and merged.visitors == 2 and merged.visitor_ratings == 6
    assert merged.first_visitor_user_id == 8  # the data set's largest user id is 7
    assert merged.ratings.user_ids.tolist() == [1, 7, 8, 9]
    assert np.array_equal(merged.ratings.movie_ids, dataset.movie_ids)
    row = merged.ratings.matrix[merged.ratings.user_of(9)].toarray().ravel()
    assert row.tolist() == [3.0, 2.0, 1.0]  # movies 10, 20, 30
    # the data set's own rows are untouched
    before = dataset.matrix.toarray()
    assert np.array_equal(merged.ratings.matrix.toarray()[:2], before)


def test_only_catalogue_movies_count_and_visitors_need_the_minimum():
    dataset = small_dataset()
    merged = merge_visitors(
        dataset,
        # visitor 0: 3 catalogue ratings + 1 unknown; visitor 1: 2 catalogue + 2 unknown
        visitor=np.array([0, 0, 0, 0, 1, 1, 1, 1]),
        movie_ids=np.array([10, 20, 30, 555, 10, 20, 556, 557]),
        stars=np.full(8, 4.0, dtype=np.float32),
        min_ratings=3,
        opted_out=4,
        bound=False,
    )
    assert merged.visitors == 1 and merged.visitor_ratings == 3
    assert merged.left_out == {
        "opted_out": 4,
        "few_ratings": 1,
        "not_in_catalogue": 3,
        "held_back": 0,
    }
    assert merged.ratings.movie_ids.tolist() == [10, 20, 30]
    figures = merged.figures()
    assert figures["dataset_users"] == 2 and figures["visitors"] == 1
    assert figures["first_visitor_user_id"] == 8 and figures["min_visitor_ratings"] == 3


def test_added_catalogue_movies_count_and_become_columns():
    dataset = small_dataset()
    visitor, movies = np.array([0, 0, 0]), np.array([10, 20, 1_000_000_001])
    stars = np.full(3, 4.0, dtype=np.float32)
    without = merge_visitors(dataset, visitor, movies, stars, min_ratings=2)
    assert without.ratings.movie_ids.tolist() == [10, 20, 30]
    assert without.left_out["not_in_catalogue"] == 1
    added = merge_visitors(
        dataset,
        visitor,
        movies,
        stars,
        min_ratings=2,
        catalogue=np.array([10, 20, 30, 1_000_000_001]),
    )
    assert added.ratings.movie_ids.tolist() == [10, 20, 30, 1_000_000_001]
    assert added.left_out["not_in_catalogue"] == 0 and added.visitor_ratings == 3


def test_a_crowd_of_visitors_gains_a_movie_at_most_five_percent_of_all_users():
    # the data set: 40 users who all rated movie 20; one of them also rated movie 10
    dataset = Ratings.from_arrays([*range(1, 41), 1], [20] * 40 + [10], [4.0] * 41)
    # 60 visitors, in arrival order, each rating 10 and 20: 100 users in all, 5 % is 5
    visitor = np.repeat(np.arange(60), 2)
    movies = np.tile([10, 20], 60)
    stars = np.full(120, 5.0, dtype=np.float32)
    merged = merge_visitors(dataset, visitor, movies, stars, min_ratings=2)
    counts = np.bincount(merged.ratings.matrix.indices, minlength=2)
    assert counts.tolist() == [1 + 5, 40 + 40]  # 10: 5 % of all users; 20: as many as it had
    assert merged.left_out["held_back"] == 55 + 20
    assert merged.visitors == 40  # visitors 40-59 kept nothing
    first = merged.first_visitor_user_id
    movie_10 = merged.ratings.matrix[:, merged.ratings.item_of(10)].nonzero()[0]
    assert sorted(merged.ratings.user_ids[movie_10].tolist()) == [1, *range(first, first + 5)]
    unbounded = merge_visitors(dataset, visitor, movies, stars, min_ratings=2, bound=False)
    assert np.bincount(unbounded.ratings.matrix.indices).tolist() == [61, 100]


def test_no_visitors_gives_the_data_set_back():
    dataset = small_dataset()
    empty = np.zeros(0, dtype=np.int64)
    merged = merge_visitors(dataset, empty, empty, empty.astype(np.float32))
    assert merged.visitors == 0 and merged.visitor_ratings == 0
    assert np.array_equal(merged.ratings.matrix.toarray(), dataset.matrix.toarray())
    assert merged.min_visitor_ratings == MIN_VISITOR_RATINGS


# -- reading the store (SQLite and PostgreSQL) ---------------------------------------------
def test_opted_out_forgotten_and_retired_visitors_are_not_read(store: Store):
    now = datetime.now(UTC)
    rate(store, "first", FIVE, when=now - timedelta(hours=3))
    rate(store, "opted", FIVE, when=now - timedelta(hours=2))
    rate(store, "started-over", FIVE, when=now - timedelta(hours=1))
    rate(store, "idle", FIVE, when=now - timedelta(days=400))
    rate(store, "last", {260: 5.0, UNKNOWN_MOVIE: 1.0}, when=now)
    with store.session() as db:
        repo.set_training_opt_out(db, "opted", True)
        repo.forget_visitor(db, "started-over")  # "Start over"
    prune(store, retention_days=365, shown_per_visitor=10)  # retention forgets "idle"
    with store.session() as db:
        assert repo.training_opt_out(db, "opted") is True
        assert repo.training_opt_out(db, "first") is False

    stored = read_visitor_ratings(store)
    assert stored.visitor_ids.tolist() == ["first", "last"]  # in arrival order
    assert stored.opted_out == 1
    firsts = stored.movie_ids[stored.visitor == 0]
    assert sorted(firsts.tolist()) == sorted(FIVE)
    lasts = dict(
        zip(
            stored.movie_ids[stored.visitor == 1].tolist(),
            stored.stars[stored.visitor == 1].tolist(),
            strict=True,
        )
    )
    assert lasts == {260: 5.0, UNKNOWN_MOVIE: 1.0}


def test_an_opt_out_can_be_reversed(store: Store):
    rate(store, "v", FIVE)
    with store.session() as db:
        repo.set_training_opt_out(db, "v", True)
    assert read_visitor_ratings(store).n_visitors == 0
    with store.session() as db:
        repo.set_training_opt_out(db, "v", False)
    assert read_visitor_ratings(store).visitor_ids.tolist() == ["v"]


# -- the command -------------------------------------------------------------------------
def test_train_with_visitors_records_and_prints_who_it_learned_from(
    store: Store, home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
):
    monkeypatch.setenv("DATABASE_URL", store.url)
    for n in range(3):
        rate(store, f"fan-{n}", {**FIVE, UNKNOWN_MOVIE: 4.0})
    rate(store, "one-rating", {260: 5.0})
    rate(store, "private", FIVE)
    with store.session() as db:
        repo.set_training_opt_out(db, "private", True)

    assert main(["train", "--model", "popular", "--with-visitors"]) == 0
    out = capsys.readouterr().out
    assert "users: 610 from the data set + 3 visitors (15 ratings)" in out
    assert "opted out: 1 visitors" in out and "under 2 ratings: 1 visitors" in out
    assert "movies outside the catalogue: 3 ratings" in out

    model = models.load(home / "models" / "ml-latest-small-popular.npz")
    assert model.training["dataset_users"] == 610 and model.training["visitors"] == 3
    assert model.training["visitor_ratings"] == 15
    first = model.training["first_visitor_user_id"]
    assert first == 611  # ml-latest-small's users are 1-610
    assert model.user_ids.tolist()[-3:] == [first, first + 1, first + 2]


def test_train_without_visitors_records_none(home: Path, capsys: pytest.CaptureFixture):
    assert main(["train", "--model", "popular"]) == 0
    assert "from the data set +" not in capsys.readouterr().out
    model = models.load(home / "models" / "ml-latest-small-popular.npz")
    assert model.training["dataset_users"] == 610 and model.training["visitors"] == 0


def test_with_visitors_and_spark_is_one_clear_line(home: Path, capsys: pytest.CaptureFixture):
    assert main(["train", "--engine", "spark", "--with-visitors"]) == 2
    assert capsys.readouterr().err.strip() == (
        "movierec: error: --with-visitors trains locally only, not with --engine spark"
    )


@pytest.mark.slow
def test_an_honest_group_makes_two_movies_similar(
    sqlite_store: Store, home: Path, monkeypatch: pytest.MonkeyPatch
):
    """40 visitors rate an obscure movie (Home Alone 3, 8 ratings) and a mid-popular one
    (Notting Hill, 56) 5 stars beside 8 movies of their own: after ``train
    --with-visitors`` (default model, the influence bound on: 5 % of 650 users is 33 of
    them) the obscure one is in the mid-popular one's similar list on the movie page."""
    from movierec.data import load_dataset
    from movierec.similar import SimilarMovies
    from movierec.web.movies import SIMILAR

    obscure, middle = 1707, 2671
    monkeypatch.setenv("DATABASE_URL", sqlite_store.url)
    dataset = load_dataset("ml-latest-small", home=home)
    counts = dataset.catalog.frame["n_ratings"]
    assert counts[obscure] < 10 and 40 <= counts[middle] <= 80
    others = counts.index[(counts >= 20) & ~counts.index.isin([obscure, middle])].to_numpy()
    rng = np.random.default_rng(0)
    before = models.create("ease").fit(dataset.ratings, catalog=dataset.catalog)
    assert obscure not in SimilarMovies(before, dataset.catalog).similar(middle, SIMILAR)
    for n in range(40):
        own = rng.choice(others, size=8, replace=False)
        stars = rng.choice([2.0, 3.0, 3.5, 4.0, 4.5, 5.0], size=8)
        rate(
            sqlite_store,
            f"fan-{n}",
            {obscure: 5.0, middle: 5.0, **dict(zip(own, stars, strict=True))},
        )

    assert main(["train", "--with-visitors"]) == 0
    after = models.load(home / "models" / "ml-latest-small-ease.npz")
    assert after.training["visitors"] == 40
    assert obscure in SimilarMovies(after, dataset.catalog).similar(middle, SIMILAR)


def test_a_model_file_keeps_its_training_ratings_per_movie(tmp_path: Path):
    from movierec.models.files import read_model_file, write_model_file

    dataset = small_dataset()
    merged = merge_visitors(
        dataset, np.array([0, 0]), np.array([10, 30]), np.ones(2), min_ratings=2
    )
    model = models.create("popular").fit(merged.ratings)
    assert model.item_counts.tolist() == [2, 2, 2]  # movies 10, 20, 30
    loaded = models.load(model.save(tmp_path / "m.npz"))
    assert loaded.item_counts.tolist() == [2, 2, 2]
    # a file saved before item_counts were recorded still loads, without them
    meta, arrays = read_model_file(tmp_path / "m.npz")
    del arrays["item_counts"]
    meta = {k: v for k, v in meta.items() if k not in ("format", "arrays", "content_hash")}
    write_model_file(tmp_path / "old.npz", arrays, meta)
    assert models.load(tmp_path / "old.npz").item_counts is None


def test_a_database_that_cannot_be_reached_is_one_line_and_no_model(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
):
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres:secret@127.0.0.1:1/nothing")
    assert main(["train", "--model", "popular", "--with-visitors"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("movierec: error: cannot use the database at postgresql")
    assert "secret" not in err and len(err.splitlines()) == 1
    assert not (home / "models" / "ml-latest-small-popular.npz").exists()


def test_serve_takes_a_model_that_learned_an_added_movie_and_nothing_outside(ml_small, tmp_path):
    from dataclasses import replace

    import pandas as pd

    from movierec.data import Catalog
    from movierec.training import serving_problem

    added = 1_000_000_001
    merged = merge_visitors(
        ml_small.ratings,
        np.array([0, 0, 1, 1]),
        np.array([1, added, 260, added]),
        np.full(4, 5.0, dtype=np.float32),
        catalogue=np.array([added]),
    )
    assert merged.ratings.movie_ids[-1] == added and merged.visitors == 2
    model = models.create("popular").fit(merged.ratings)
    path = model.save(tmp_path / "ml-latest-small-popular.npz")
    loaded = models.load(path)
    # the data set as serve loads it once the movie is added: its catalogue has the movie
    frame = ml_small.catalog.frame
    row = pd.DataFrame(
        {"title": ["A New Movie (2024)"], "year": [2024], "genres": [("Drama",)],
         "tmdb_id": [None], "n_ratings": [0], "mean_rating": [float("nan")]},
        index=pd.Index([added], name=frame.index.name),
    ).astype(frame.dtypes.to_dict())  # fmt: skip
    with_added = replace(ml_small, catalog=Catalog(pd.concat([frame, row]), added=[added]))
    assert serving_problem(loaded, "popular", with_added, path) is None
    problem = serving_problem(loaded, "popular", ml_small, path)  # the movie was removed
    assert problem is not None and "does not fit ml-latest-small" in problem
