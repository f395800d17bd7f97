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
    )
    assert merged.visitors == 1 and merged.visitor_ratings == 3
    assert merged.left_out == {"opted_out": 4, "few_ratings": 1, "not_in_catalogue": 3}
    assert merged.ratings.movie_ids.tolist() == [10, 20, 30]
    figures = merged.figures()
    assert figures["dataset_users"] == 2 and figures["visitors"] == 1
    assert figures["first_visitor_user_id"] == 8 and figures["min_visitor_ratings"] == 3


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
    rate(store, "two-ratings", {1: 4.0, 260: 5.0})
    rate(store, "private", FIVE)
    with store.session() as db:
        repo.set_training_opt_out(db, "private", True)

    assert main(["train", "--model", "popular", "--with-visitors"]) == 0
    out = capsys.readouterr().out
    assert "users: 610 from the data set + 3 visitors (15 ratings)" in out
    assert "opted out: 1 visitors" in out and "under 5 ratings: 1 visitors" in out
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
