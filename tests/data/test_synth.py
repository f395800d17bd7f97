"""``movierec data synth``: deterministic, MovieLens-shaped, and usable as ``--dataset NAME``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from movierec.cli import main
from movierec.data import Dataset, fetch_dataset, get_spec, load_dataset, parse_year
from movierec.data.movielens import SYNTHETIC_MARKER
from movierec.data.synth import GENRES, NO_GENRES, synthesize
from movierec.errors import DataError, InvalidInput

CSV_FILES = ("ratings.csv", "movies.csv", "links.csv", "tags.csv")
N_RATINGS = 60_000
N_MOVIES = 4_000


@pytest.fixture(scope="module")
def synth_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("synth-home")
    synthesize("syn", N_RATINGS, seed=7, home=home, n_movies=N_MOVIES)
    return home


@pytest.fixture(scope="module")
def syn(synth_home: Path) -> Dataset:
    return load_dataset("syn", home=synth_home)


def test_same_seed_same_bytes(synth_home: Path, tmp_path: Path) -> None:
    synthesize("syn", N_RATINGS, seed=7, home=tmp_path, n_movies=N_MOVIES)
    for name in CSV_FILES:
        ours = (tmp_path / "data" / "syn" / name).read_bytes()
        assert ours == (synth_home / "data" / "syn" / name).read_bytes(), name
    synthesize("other", N_RATINGS, seed=8, home=tmp_path, n_movies=N_MOVIES)
    other = (tmp_path / "data" / "other" / "ratings.csv").read_bytes()
    assert other != (synth_home / "data" / "syn" / "ratings.csv").read_bytes()


def test_counts_and_every_user_rates_twenty(syn: Dataset) -> None:
    assert syn.ratings.nnz == len(syn.frame) == N_RATINGS
    per_user = np.diff(syn.ratings.matrix.indptr)
    assert per_user.min() >= 20
    assert np.median(per_user) < per_user.mean()  # a long tail of heavy users
    assert per_user.max() > 5 * np.median(per_user)
    assert len(syn.catalog) == N_MOVIES


def test_popularity_is_skewed(syn: Dataset) -> None:
    counts = np.sort(syn.catalog.frame["n_ratings"].to_numpy())[::-1]
    top_tenth = counts[: N_MOVIES // 10].sum() / counts.sum()
    assert top_tenth > 0.5  # a tenth of the movies gets most ratings
    assert (counts == 0).any() or counts[-1] < counts[0] / 100


def test_half_stars_centred_like_movielens(syn: Dataset) -> None:
    stars = syn.frame["rating"].to_numpy()
    assert set(np.unique(stars)) <= {x / 2 for x in range(1, 11)}
    assert len(np.unique(stars)) == 10
    assert 3.3 < stars.mean() < 3.8 and 0.8 < stars.std() < 1.2
    whole = np.isin(stars, [1, 2, 3, 4, 5]).mean()
    assert whole > 0.55  # whole stars are given more often than half stars


def test_stars_are_learnable(syn: Dataset) -> None:
    """Movie and user biases fitted on half the ratings predict the other half."""
    frame = syn.frame.sample(frac=1.0, random_state=0)
    train, test = frame.iloc[: len(frame) // 2], frame.iloc[len(frame) // 2 :]
    mean = train["rating"].mean()
    movie = (train.groupby("movieId")["rating"].mean() - mean).reindex(test["movieId"]).fillna(0)
    user = (train.groupby("userId")["rating"].mean() - mean).reindex(test["userId"]).fillna(0)
    guess = mean + 0.7 * movie.to_numpy() + 0.7 * user.to_numpy()
    rmse_bias = np.sqrt(np.mean((test["rating"].to_numpy() - guess) ** 2))
    rmse_mean = np.sqrt(np.mean((test["rating"].to_numpy() - mean) ** 2))
    assert rmse_bias < 0.93 * rmse_mean


def test_titles_years_and_genres(syn: Dataset) -> None:
    catalog = syn.catalog.frame
    assert all(parse_year(title) is not None for title in catalog["title"])
    years = catalog["year"].to_numpy(dtype=float)
    assert years.max() <= 2019 and years.min() < 1970 and 1995 < np.median(years) < 2015
    genres = [g for movie_genres in catalog["genres"] for g in movie_genres]
    assert set(genres) <= set(GENRES)
    assert len(set(genres)) >= 15
    shares = {g: genres.count(g) / len(catalog) for g in ("Drama", "Comedy", "Film-Noir")}
    assert shares["Drama"] > shares["Comedy"] > 0.15 > 0.02 > shares["Film-Noir"]
    movies_csv = (syn.folder / "movies.csv").read_text()
    assert NO_GENRES in movies_csv


def test_timestamps_increase_over_each_users_ratings(syn: Dataset) -> None:
    frame = syn.frame
    assert frame["timestamp"].between(820_454_400, 1_574_208_000 + 86_400 * 365).all()
    spans = frame.groupby("userId")["timestamp"].agg(lambda t: t.max() - t.min())
    assert (spans > 0).mean() > 0.95
    # the file is ordered by user, then movie, like ml-25m's
    users, movies = frame["userId"].to_numpy(), frame["movieId"].to_numpy()
    same_user = users[1:] == users[:-1]
    assert (np.diff(users) >= 0).all() and (movies[1:][same_user] > movies[:-1][same_user]).all()


def test_tags_and_links(syn: Dataset) -> None:
    assert 0.01 < sum(len(t) for t in syn.tags.values()) / N_RATINGS < 0.1
    assert len({tag for tags in syn.tags.values() for tag in tags}) <= 40
    links = (syn.folder / "links.csv").read_text().splitlines()
    assert links[0] == "movieId,imdbId,tmdbId" and len(links) == N_MOVIES + 1
    imdb = [line.split(",")[1].strip('"') for line in links[1:]]
    assert all(len(i) == 7 and i.isdigit() for i in imdb) and len(set(imdb)) == N_MOVIES
    assert sum(m.tmdb_id is not None for m in syn.catalog.most_rated(100)) > 90


def test_marker_and_spec(synth_home: Path) -> None:
    marker = json.loads((synth_home / "data" / "syn" / SYNTHETIC_MARKER).read_text())
    assert marker["synthetic"] is True and marker["like"] == "ml-25m" and marker["seed"] == 7
    spec = get_spec("syn", home=synth_home)
    assert spec.synthetic and spec.layout == "csv" and spec.ratings == N_RATINGS
    assert fetch_dataset("syn", home=synth_home, progress=False) == synth_home / "data" / "syn"


def test_like_ml_latest_small(tmp_path: Path) -> None:
    made = synthesize("small", 30_000, like="ml-latest-small", seed=1, home=tmp_path)
    assert made.movies == 9_742 and made.ratings == 30_000
    dataset = load_dataset("small", home=tmp_path)
    assert len(dataset.catalog) == 9_742 and dataset.ratings.nnz == 30_000


def test_refusals(synth_home: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="exists; pass --force"):
        synthesize("syn", N_RATINGS, home=synth_home, n_movies=N_MOVIES)
    with pytest.raises(InvalidInput, match="is a MovieLens release"):
        synthesize("ml-25m", 1_000, home=tmp_path)
    with pytest.raises(InvalidInput, match="must be 1-64 letters"):
        synthesize("../escape", 1_000, home=tmp_path)
    with pytest.raises(InvalidInput, match="--like must be one of"):
        synthesize("x", 1_000, like="ml-100k", home=tmp_path)
    assert not (tmp_path / "data").exists() or not any((tmp_path / "data").iterdir())


def test_changed_synthetic_set_is_refused(tmp_path: Path) -> None:
    synthesize("tiny", 2_000, seed=1, home=tmp_path, n_movies=500)
    with open(tmp_path / "data" / "tiny" / "ratings.csv", "a") as out:
        out.write("1,1,5.0,1\n")
    with pytest.raises(DataError, match="has changed since `movierec data synth`"):
        load_dataset("tiny", home=tmp_path)


def test_cli_synth_list_and_train(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "synth", "cli-syn", "--ratings", "5000", "--movies", "800"]) == 0
    assert "5,000 ratings" in capsys.readouterr().out
    assert main(["data", "list"]) == 0
    listed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("cli-syn")]
    assert len(listed) == 1 and "synthetic" in listed[0] and "5,000" in listed[0]
    assert main(["train", "--dataset", "cli-syn", "--model", "popular"]) == 0
    assert "cli-syn" in capsys.readouterr().out
    assert main(["data", "synth", "cli-syn", "--ratings", "5000"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("movierec: error:") and "--force" in err[0]
