"""The pages as a visitor uses them: rate, choose years, see picks, come back."""

from __future__ import annotations

import re
import threading

import numpy as np
import pandas as pd
import pytest
from flask import template_rendered
from webhelpers import card_ids, checked_stars, csrf_token, result_ids, result_years, submit

from movierec.store import repo

# Forrest Gump, Shawshank, Pulp Fiction, Silence of the Lambs, The Matrix, Star Wars IV
LIKES = {356: 4.5, 318: 5.0, 296: 4.0, 593: 4.0, 2571: 5.0, 260: 3.5}


def top50(app) -> set[int]:
    return {m.movie_id for m in app.extensions["movierec"].recommenders.onboarding_pool()}


def test_index_shows_15_distinct_cards_from_the_catalogue(app, client):
    first = client.get("/")
    assert first.status_code == 200
    html = first.get_data(as_text=True)
    ids = card_ids(html)
    assert len(ids) == len(set(ids)) == 15
    catalog = app.extensions["movierec"].recommenders.catalog
    assert all(m in catalog for m in ids)  # which movies: the onboarding strategies' tests


def test_each_card_has_poster_title_year_genres_and_an_accessible_rating(client):
    html = client.get("/").get_data(as_text=True)
    cards = re.findall(r'<li class="card".*?</li>', html, re.S)
    assert len(cards) == 15
    for card in cards:
        movie_id = re.search(r'data-movie-id="(\d+)"', card).group(1)
        assert f'src="/poster/{movie_id}.svg"' in card  # no TMDB: drawn poster
        assert re.search(rf'<h2 class="card-title"><a href="/movies/{movie_id}"[^>]*>[^<]+<', card)
        assert re.search(r'<span class="year">\d{4}</span>', card)
        assert '<span class="genres">' in card
        assert re.search(r"<legend[^>]*>Your rating of [^<]+</legend>", card)
        values = re.findall(
            rf'name="rating-{movie_id}" id="(r{movie_id}-\d+)" value="([\d.]+)"', card
        )
        assert [float(v) for _, v in values] == [i / 2 for i in range(11)]  # 0 = not seen
        for input_id, _ in values:  # every choice has a label
            assert '<label class="' in card and f'for="{input_id}"' in card
    assert "Not seen" in html and "3½ stars" in html
    for choice in ("old", "new", "any"):
        assert f'<option value="{choice}"' in html  # the year choice beside the button
    assert csrf_token(html)


def test_every_card_links_to_its_movie_page_in_a_new_tab(client):
    """Cards to rate link to their movie page; a new tab keeps unsent stars on this one."""
    html = client.get("/").get_data(as_text=True)
    ids = card_ids(html)
    links = re.findall(r'<a href="/movies/(\d+)" target="_blank" rel="noopener">', html)
    assert [int(m) for m in links] == ids and len(ids) == 15
    assert html.count("(opens in a new tab)") == 15
    for movie_id in ids[:3]:
        assert client.get(f"/movies/{movie_id}").status_code == 200


def test_submit_redirects_with_303_to_the_picks(client):
    """Post/Redirect/Get: the form POST stores and answers 303 to a GET page, so a
    reload or Back never re-posts."""
    response = submit(client, LIKES, year="old", follow=False)
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/recommendations?year=old")
    assert result_ids(client.get(response.headers["Location"]).get_data(as_text=True))


def test_submit_shows_five_picks_with_explanations(client):
    response = submit(client, LIKES, year="any")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    ids = result_ids(html)
    assert len(ids) == 5 and not set(ids) & set(LIKES)
    assert len(re.findall(r"\d\.\d predicted stars", html)) == 5
    chances = re.findall(r'<strong class="chance" title="([^"]+)">(\d+)&nbsp;% chance', html)
    assert len(chances) == 5 and all(1 <= int(c) <= 99 for _, c in chances)  # calibrated
    assert all("4 stars or more" in title for title, _ in chances)  # says what it means
    assert "Because you rated" in html
    assert 'href="/?more=1"' in html and 'href="/start-over"' in html
    assert 'action="/start-over"' not in html  # start over asks first, on its own page
    assert 'name="model"' in html  # model choice on the results page


def test_year_preference_old_and_new(client):
    old = submit(client, LIKES, year="old").get_data(as_text=True)
    assert len(result_years(old)) == 5 and all(y < 2010 for y in result_years(old))
    new = submit(client, LIKES, year="new").get_data(as_text=True)
    assert len(result_years(new)) == 5 and all(y >= 2010 for y in result_years(new))


def test_submit_without_csrf_token_is_refused(client):
    response = client.post("/recommendations", data={"rating-356": "4", "year": "any"})
    assert response.status_code == 400
    assert "expired" in response.get_data(as_text=True)


def test_nothing_rated_is_a_friendly_200_offering_popular_picks(client):
    response = submit(client, {}, year="old")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "Rate a movie or two first" in html and ">400<" not in html
    assert len(result_ids(html)) == 5 and all(y < 2010 for y in result_years(html))
    assert 'href="/"' in html
    fresh = client.application.test_client().get("/recommendations")  # "My picks" at once
    assert fresh.status_code == 200 and "Rate a movie or two first" in fresh.get_data(True)


def test_bad_stars_or_unknown_movie_are_400_pages(client):
    assert submit(client, {356: 4.2}).status_code == 400
    assert submit(client, {356: 6}).status_code == 400
    response = submit(client, {99999999: 4})
    assert response.status_code == 400
    assert "unknown movie" in response.get_data(as_text=True)
    assert submit(client, LIKES, year="recent").status_code == 400


@pytest.mark.parametrize(
    "field",
    ["rating-²", "rating-" + "7" * 5000, "rating-١", "rating-１", "rating-1_0", "rating- 1",
     "rating-", "rating-+1", "rating-1234567890"],
)  # fmt: skip
def test_rating_field_names_are_checked_before_conversion(client, field):
    response = submit(client, LIKES, **{field: "4"})
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "unknown movie in field" in html
    assert field[:20] in html.replace("&#39;", "'")  # names the field ...
    assert "7" * 101 not in html  # ... quoting at most 100 characters of it


def test_bad_stars_are_quoted_at_most_100_characters(client):
    response = submit(client, {356: 4.5}, **{"rating-318": "9" * 5000})
    assert response.status_code == 400 and "9" * 101 not in response.get_data(as_text=True)


def test_returning_visitor_finds_ratings_prefilled(app, client):
    submit(client, LIKES)
    html = client.get("/").get_data(as_text=True)
    prefilled = {m: s for m, s in checked_stars(html).items() if s > 0}
    shown = set(card_ids(html))
    assert prefilled == {m: s for m, s in LIKES.items() if m in shown}
    assert prefilled  # earlier ratings come back first
    assert "Welcome back" in html
    # a new browser (no cookie) starts blank
    fresh = app.test_client().get("/").get_data(as_text=True)
    assert all(s == 0 for s in checked_stars(fresh).values())


def test_rate_more_offers_unrated_movies_and_keeps_earlier_ratings(client):
    submit(client, LIKES)
    html = client.get("/?more=1").get_data(as_text=True)
    assert not set(card_ids(html)) & set(LIKES)
    assert "you have rated 6 movies in all." in html  # the total, once
    extra = {m: 3.0 for m in card_ids(html)[:2]}
    response = submit(client, extra)
    assert response.status_code == 200
    assert "Based on your 8 ratings" in response.get_data(as_text=True)
    assert "You have rated 8 movies" in client.get("/").get_data(as_text=True)


def test_not_seen_clears_an_earlier_rating(app, client):
    submit(client, LIKES)
    submit(client, {356: 0})
    with app.app_context():
        store = app.extensions["movierec"].store
        with client.session_transaction() as session:
            visitor = session["visitor"]
        with store.session() as db:
            ratings = repo.visitor_ratings(db, visitor)
    assert set(ratings) == set(LIKES) - {356}


def test_start_over_asks_first_then_forgets_ratings_and_the_id(client):
    submit(client, LIKES)
    with client.session_transaction() as session:
        old_visitor = session["visitor"]
    confirm = client.get("/start-over")
    assert confirm.status_code == 200
    page = confirm.get_data(as_text=True)
    assert "Start over?" in page and "6 ratings" in page and "Keep my ratings" in page
    response = client.post("/start-over", data={"csrf_token": csrf_token(page)})
    assert response.status_code == 303 and response.headers["Location"] == "/"
    html = client.get("/").get_data(as_text=True)
    assert all(s == 0 for s in checked_stars(html).values())
    assert "Your ratings were cleared" in html
    assert "Rate a movie or two first" in client.get("/recommendations").get_data(True)
    submit(client, {356: 4.0})
    with client.session_transaction() as session:
        assert session["visitor"] != old_visitor


def test_model_choice_on_results_page(client):
    submit(client, LIKES, year="old")
    by_model = {}
    for model in ("svd", "nmf", "popular"):
        response = client.get(f"/recommendations?model={model}&year=old")
        assert response.status_code == 200, model
        html = response.get_data(as_text=True)
        assert re.search(rf'name="model" value="{model}" checked>', html)
        by_model[model] = result_ids(html)
        assert len(by_model[model]) == 5 and all(y < 2010 for y in result_years(html))
    assert by_model["svd"] != by_model["popular"]
    assert client.get("/recommendations?model=knn").status_code == 400


def test_default_model_comes_from_config(make_app):
    app = make_app(MOVIEREC_MODEL="popular")
    client = app.test_client()
    html = submit(client, LIKES).get_data(as_text=True)
    assert 'name="model" value="popular" checked>' in html


def test_shown_recommendations_are_recorded(app, client):
    html = submit(client, LIKES, year="new").get_data(as_text=True)
    with client.session_transaction() as session:
        visitor = session["visitor"]
    with app.extensions["movierec"].store.session() as db:
        shown = repo.shown_to(db, visitor)
    assert [s.movie_id for s in shown] == result_ids(html)
    assert [s.rank for s in shown] == [1, 2, 3, 4, 5]
    assert {s.model for s in shown} == {"svd"} and {s.year for s in shown} == {"new"}


def test_templates_get_plain_python_values(app, client):
    contexts = []

    def record(sender, template, context, **extra):
        contexts.append(context)

    template_rendered.connect(record, app)
    try:
        client.get("/")
        submit(client, LIKES)
    finally:
        template_rendered.disconnect(record, app)
    assert len(contexts) >= 2

    def check(value, where):
        assert not isinstance(value, np.ndarray | np.generic | pd.Series | pd.DataFrame), where
        if isinstance(value, dict):
            for k, v in value.items():
                check(v, f"{where}.{k}")
        elif isinstance(value, list | tuple):
            for i, v in enumerate(value):
                check(v, f"{where}[{i}]")

    for context in contexts:
        for key in ("cards", "n_rated", "year", "model"):
            if key in context:
                check(context[key], key)


def test_concurrent_submissions_from_one_visitor_lose_nothing(app, client):
    pool = sorted(top50(app))
    submit(client, {pool[0]: 4.0})  # the visitor now has a cookie
    token = csrf_token(client.get("/").get_data(as_text=True))
    cookie = client.get_cookie("movierec").value
    errors: list[BaseException] = []

    def post(movies: list[int]) -> None:
        tab = app.test_client()  # another tab of the same browser
        tab.set_cookie("movierec", cookie)
        try:
            for movie in movies:
                data = {"csrf_token": token, "year": "any", f"rating-{movie}": "3.5"}
                assert tab.post("/recommendations", data=data).status_code == 303
        except BaseException as exc:  # reported below
            errors.append(exc)

    batches = [pool[1 + i * 4 : 5 + i * 4] for i in range(6)]
    threads = [threading.Thread(target=post, args=(batch,)) for batch in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    with client.session_transaction() as session:
        visitor = session["visitor"]
    with app.extensions["movierec"].store.session() as db:
        ratings = repo.visitor_ratings(db, visitor)
    assert ratings == {pool[0]: 4.0, **{m: 3.5 for batch in batches for m in batch}}


def test_show_more_goes_up_to_50_picks(client):
    html = submit(client, LIKES).get_data(as_text=True)
    assert len(result_ids(html)) == 5 and "Show 5 more picks" in html
    ids = {}
    for n in (10, 45, 50):
        page = client.get(f"/recommendations?n={n}").get_data(as_text=True)
        ids[n] = result_ids(page)
        assert len(ids[n]) == n
        assert ("Show 5 more picks" in page) == (n < 50)
    assert ids[50][:10] == ids[10]
    for bad in ("0", "51", "x", "١"):
        assert client.get(f"/recommendations?n={bad}").status_code == 400


def test_not_interested_hides_a_pick_for_good_and_re_ranks(app, client):
    html = submit(client, LIKES, year="old").get_data(as_text=True)
    before = result_ids(html)
    response = client.post(
        "/recommendations/hide",
        data={
            "csrf_token": csrf_token(html),
            "movie_id": str(before[0]),
            "year": "old",
            "rank": "1",
        },
    )
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/recommendations?year=old")
    assert response.headers["Location"].endswith("#rank-1")  # back where the visitor was
    after_html = client.get(response.headers["Location"]).get_data(as_text=True)
    after = result_ids(after_html)
    # the model's own first picks move up; later ones follow the genre mix (rerank.py)
    assert before[0] not in after and after[:3] == before[1:4] and len(after) == 5
    assert "is hidden" in after_html and "1 movie you hid left out" in after_html
    # remembered in the store, for other models too
    other_model = client.get("/recommendations?year=old&model=svd").get_data(as_text=True)
    assert before[0] not in result_ids(other_model)
    with client.session_transaction() as session:
        visitor = session["visitor"]
    with app.extensions["movierec"].store.session() as db:
        assert repo.hidden_movies(db, visitor) == {before[0]}
    bad = client.post(
        "/recommendations/hide", data={"csrf_token": csrf_token(html), "movie_id": "x"}
    )
    assert bad.status_code == 400


def test_seen_it_rates_a_pick_where_it_stands(client):
    html = submit(client, LIKES).get_data(as_text=True)
    first = result_ids(html)[0]
    assert f'name="rating-{first}"' in html and "Seen it? Rate it" in html
    response = client.post(
        "/recommendations",
        data={"csrf_token": csrf_token(html), f"rating-{first}": "4.5", "year": "any"},
    )
    assert response.status_code == 303
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert first not in result_ids(page) and "Based on your 7 ratings" in page


def test_cards_without_tmdb_show_genres_and_tags_and_no_play_icon(client):
    # Pulp Fiction and Fight Club carry many MovieLens tags in ml-latest-small
    html = submit(client, {296: 5.0, 2959: 5.0, 2571: 4.5}, n="20").get_data(as_text=True)
    cards = re.findall(r'<li class="result".*?</li>\s*(?=<li class="result"|</ol>)', html, re.S)
    assert cards and all('<span class="genres">' in c for c in cards)
    assert any('<ul class="tags" aria-label="MovieLens tags">' in c for c in cards)
    svg = client.get(f"/poster/{result_ids(html)[0]}.svg").get_data(as_text=True)
    assert "<path" not in svg and "<circle" not in svg  # no play button that does nothing


def test_page_errors_speak_plainly_and_hide_internals(client, app, monkeypatch, caplog):
    from movierec.errors import ModelError

    def broken(*args, **kwargs):
        raise ModelError("cannot read /srv/secret/models/ease.npz: checksum mismatch")

    submit(client, LIKES)
    monkeypatch.setattr(app.extensions["movierec"], "recommender", broken)
    response = client.get("/recommendations")
    html = response.get_data(as_text=True)
    assert response.status_code == 503
    assert "/srv/secret" not in html and "checksum" not in html
    assert "try again" in html.lower()
    assert "/srv/secret/models/ease.npz" in caplog.text  # the detail went to the log
    api = app.test_client().post("/api/v1/recommendations", json={"ratings": {"356": 4}})
    assert api.status_code == 503 and "/srv/secret" not in api.get_data(as_text=True)


def test_hidden_movies_are_forgotten_with_idle_visitors_and_on_start_over(app, client):
    from datetime import timedelta

    from sqlalchemy import func, select

    from movierec.store.retention import prune
    from movierec.store.schema import HiddenMovie, utcnow

    store = app.extensions["movierec"].store

    def hidden_rows() -> int:
        with store.session() as db:
            return int(db.scalar(select(func.count()).select_from(HiddenMovie)))

    def hide_first() -> str:
        html = submit(client, LIKES).get_data(as_text=True)
        data = {"csrf_token": csrf_token(html), "movie_id": str(result_ids(html)[0])}
        assert client.post("/recommendations/hide", data=data).status_code == 303
        return html

    html = hide_first()
    assert hidden_rows() == 1
    prune(store, retention_days=30, shown_per_visitor=50)  # not idle yet: kept
    assert hidden_rows() == 1
    prune(store, retention_days=30, shown_per_visitor=50, now=utcnow() + timedelta(days=31))
    assert hidden_rows() == 0
    hide_first()
    assert hidden_rows() == 1
    client.post("/start-over", data={"csrf_token": csrf_token(html)})
    assert hidden_rows() == 0
