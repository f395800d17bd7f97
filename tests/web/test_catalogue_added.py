"""An honest catalogue on the site: where it ends, clean titles, and movies added while
the app runs (searched, opened, rated and recommended without a restart)."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from webhelpers import result_ids, submit

from movierec.config import load_settings
from movierec.data.added import ADDED_FROM, NewMovie, add_movies, added_path
from movierec.web.services import Recommenders
from movierec.web.testing import serve_env, serve_process

DATASET = "ml-latest-small"
PARASITE = NewMovie("Parasite", 2019, ("Comedy", "Drama", "Thriller"), 6751668, 496243)
IRISHMAN = NewMovie("The Irishman", 2019, ("Crime", "Drama"), 1302006, 398978)


def csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


# -- where the catalogue ends, clean titles, blank queries ------------------------------
def test_the_footer_says_where_the_catalogue_ends(client):
    page = client.get("/search?q=matrix").get_data(as_text=True)
    assert "Movies up to 2018." in page and "added" not in page.split("catalogue-coverage")[1]


def test_a_search_without_recent_hits_says_the_catalogue_ends_in_2018(client):
    page = client.get("/search?q=parasite").get_data(as_text=True)
    assert "/movies/2256" in page  # Parasite (1982), the only one
    assert "The catalogue ends in 2018: a newer film may not be in it yet." in page
    nothing = client.get("/search?q=qqqxxzzq").get_data(as_text=True)
    assert "No movie matches" in nothing and "The catalogue ends in 2018" in nothing
    api = client.get("/api/v1/movies?q=parasite").get_json()
    assert api["movies"][0]["movieId"] == 2256
    assert api["catalog_ends"] == "The catalogue ends in 2018: a newer film may not be in it yet."
    assert client.get("/api/v1/movies?q=deadpool 2").get_json()["catalog_ends"] is None
    recent = client.get("/search?q=deadpool 2").get_data(as_text=True)
    assert "/movies/189333" in recent or "Deadpool 2" in recent
    assert "The catalogue ends in" not in recent


def test_walle_is_the_first_hit_on_the_page_and_in_the_api(client):
    page = client.get("/search?q=walle").get_data(as_text=True)
    first = re.search(r'data-movie-id="(\d+)"', page).group(1)
    assert first == "60069"  # WALL·E (2008)
    assert client.get("/api/v1/movies?q=walle").get_json()["movies"][0]["movieId"] == 60069


def test_a_query_of_only_spaces_is_an_empty_query(client):
    page = client.get("/search?q=%20%20%20").get_data(as_text=True)
    assert "No movie matches" not in page and "Search movies" in page
    answer = client.get("/api/v1/movies?q=%20%20%20")
    assert answer.status_code == 400 and answer.get_json()["field"] == "q"


def test_the_movie_page_shows_the_movielens_title_only_where_it_differs(client):
    raiders = client.get("/movies/1198").get_data(as_text=True)
    assert "<h1>Raiders of the Lost Ark" in raiders
    assert "MovieLens title: Raiders of the Lost Ark (Indiana Jones and the Raiders" in raiders
    matrix = client.get("/movies/2571").get_data(as_text=True)
    assert "<h1>The Matrix" in matrix and "MovieLens title" not in matrix
    search = client.get("/search?q=indiana jones and the raiders").get_data(as_text=True)
    assert re.search(r'data-movie-id="(\d+)"', search).group(1) == "1198"


# -- movies added while the app runs ---------------------------------------------------
def private_home(web_home: Path, home: Path) -> Path:
    """A home reading the web tests' data set and models, with its own added-movies file
    (the web home's ``data`` is the session's, shared by every test)."""
    (home / "data").mkdir(parents=True)
    (home / "data" / DATASET).symlink_to((web_home / "data" / DATASET).resolve())
    (home / "models").symlink_to((web_home / "models").resolve())
    return home


@pytest.fixture
def added_home(web_home: Path, tmp_path: Path) -> Path:
    return private_home(web_home, tmp_path / "home")


def test_an_added_movie_is_found_opened_rated_and_recommended_without_a_restart(
    make_app, added_home
):
    settings = load_settings({"MOVIEREC_HOME": str(added_home), "MOVIEREC_DATASET": DATASET})
    recommenders = Recommenders(settings)
    app = make_app(MOVIEREC_HOME=str(added_home), RECOMMENDERS=recommenders)
    client = app.test_client()
    before = client.get("/search?q=irishman").get_data(as_text=True)
    assert f"/movies/{ADDED_FROM + 1}" not in before
    assert client.get(f"/movies/{ADDED_FROM + 1}").status_code == 404

    catalog = recommenders.catalog
    add_movies(added_path(DATASET, added_home), catalog, [PARASITE, IRISHMAN])
    assert client.get("/search?q=irishman").status_code == 200  # not looked at yet (3 s)
    recommenders.catalog_check_every = 0.0

    found = client.get("/search?q=irishman").get_data(as_text=True)
    assert f"/movies/{ADDED_FROM + 1}" in found
    assert "Added to this site's catalogue: no ratings yet" in found
    assert "Movies up to 2018, plus 2 added." in found
    assert recommenders.catalog is not catalog and len(recommenders.catalog) == len(catalog) + 2
    parasite = client.get("/search?q=parasite").get_data(as_text=True)
    assert f"/movies/{ADDED_FROM}" in parasite and "The catalogue ends in" not in parasite

    movie = client.get(f"/movies/{ADDED_FROM + 1}").get_data(as_text=True)
    assert "<h1>The Irishman" in movie and "tt1302006" in movie
    answer = client.post(
        f"/movies/{ADDED_FROM + 1}/rate",
        data={"stars": "4.5", "csrf_token": csrf(movie), "next": f"/movies/{ADDED_FROM + 1}"},
    )
    assert answer.status_code == 303
    assert "You gave The Irishman" in client.get(f"/movies/{ADDED_FROM + 1}").get_data(as_text=True)
    api = client.get(f"/api/v1/movies/{ADDED_FROM + 1}").get_json()
    assert api["title"] == "The Irishman (2019)" and api["display_title"] == "The Irishman"

    # The Godfather liked: The Irishman shares its genres, the model has never seen it
    picks = client.post(
        "/api/v1/recommendations", json={"ratings": {"858": 5, "296": 4.5}, "n": 5}
    ).get_json()["recommendations"]
    assert picks[-1]["movieId"] == ADDED_FROM + 1
    assert picks[-1]["reason"] == (
        "New to the catalogue; shares Crime and Drama with The Godfather."
    )
    # the picks page, as a visitor who rated on the first page sees it
    page = submit(app.test_client(), {858: 5.0, 296: 4.5}).get_data(as_text=True)
    assert result_ids(page)[-1] == ADDED_FROM + 1
    assert "New to the catalogue; shares Crime and Drama with The Godfather." in page


def test_a_damaged_added_file_keeps_the_catalogue_and_the_site_up(make_app, added_home):
    settings = load_settings({"MOVIEREC_HOME": str(added_home), "MOVIEREC_DATASET": DATASET})
    recommenders = Recommenders(settings)
    client = make_app(MOVIEREC_HOME=str(added_home), RECOMMENDERS=recommenders).test_client()
    catalog = recommenders.catalog
    recommenders.catalog_check_every = 0.0
    added_path(DATASET, added_home).write_text("movieId,title\n1,broken\n")
    assert client.get("/search?q=matrix").status_code == 200
    assert recommenders.catalog is catalog


# -- against a real `movierec serve` -------------------------------------------------------
@pytest.mark.slow
def test_a_running_server_finds_opens_and_rates_an_added_movie(web_home, tmp_path):
    """Two workers, a movie added with `movierec catalog add --csv`: every worker finds,
    opens and rates it within a few seconds, with no restart."""
    home = private_home(web_home, tmp_path / "home")
    env = serve_env(
        MOVIEREC_HOME=str(home),
        MOVIEREC_MODEL="svd",
        MOVIEREC_WORKERS="2",
        DATABASE_URL=f"sqlite:///{tmp_path / 'serve.db'}",
        MOVIEREC_SECRET_KEY="catalogue-test-secret-key",
    )
    with serve_process(env, tmp_path / "server.log") as server:
        base = f"http://127.0.0.1:{server.port}"
        workers = server.workers()
        first = requests.get(f"{base}/search", params={"q": "parasite"}, timeout=10).text
        assert "The catalogue ends in 2018" in first and "Movies up to 2018." in first

        movies = tmp_path / "new.csv"
        movies.write_text("title,year,genres,imdbId,tmdbId\nParasite,2019,Comedy|Drama|Thriller,"
                          "tt6751668,496243\n")  # fmt: skip
        added = subprocess.run(
            [sys.executable, "-m", "movierec.cli", "catalog", "add", "--csv", str(movies)],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert added.returncode == 0, added.stderr
        movie_url = f"/movies/{ADDED_FROM}"

        deadline = time.monotonic() + 30
        while True:  # fresh connections: either worker may answer each
            text = requests.get(f"{base}/search", params={"q": "parasite 2019"}, timeout=10).text
            if movie_url in text:
                break
            assert time.monotonic() < deadline, server.log.read_text()[-3000:]
            time.sleep(0.5)
        time.sleep(4)  # past every worker's next look at the file
        for _ in range(12):
            text = requests.get(f"{base}/search", params={"q": "parasite"}, timeout=10).text
            assert movie_url in text and "Movies up to 2018, plus 1 added." in text

        visitor = requests.Session()
        page = visitor.get(base + movie_url, timeout=10)
        assert page.status_code == 200 and "<h1>Parasite" in page.text
        rated = visitor.post(
            base + movie_url + "/rate",
            data={"stars": "5", "csrf_token": csrf(page.text), "next": movie_url},
            timeout=10,
        )
        assert rated.status_code == 200 and "You gave Parasite 5 stars" in rated.text
        ratings = visitor.get(f"{base}/ratings", timeout=10).text
        assert "Parasite" in ratings and movie_url in ratings
        assert server.workers() == workers  # no worker was restarted
