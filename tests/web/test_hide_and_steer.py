"""Issue 20 on the server side: hidden movies (undo, the Hidden tab), picks steered by
genre and "more like this", "show 5 more" up to 50, "Seen it? Rate it" without stars,
the welcome-back total, compact cards and the year choice beside the button."""

from __future__ import annotations

import re

from webhelpers import csrf_token, result_ids, submit

from movierec.web.catalogue import get_catalogue

# Forrest Gump, Shawshank, Pulp Fiction, Silence of the Lambs, The Matrix, Star Wars IV
LIKES = {356: 4.5, 318: 5.0, 296: 4.0, 593: 4.0, 2571: 5.0, 260: 3.5}


def _hide(client, movie_id: int, rank: int = 1, **headers: str):
    token = csrf_token(client.get("/recommendations").get_data(as_text=True))
    return client.post(
        "/recommendations/hide",
        data={"csrf_token": token, "movie_id": str(movie_id), "rank": str(rank), "year": "any"},
        headers=headers,
    )


def _unhide(client, movie_id: int, **fields: str):
    token = csrf_token(client.get("/ratings/hidden").get_data(as_text=True))
    data = {"csrf_token": token, "movie_id": str(movie_id), **fields}
    return client.post("/recommendations/unhide", data=data)


def test_hide_offers_undo_in_place_and_unhide_brings_the_pick_back(client):
    before = result_ids(submit(client, LIKES).get_data(as_text=True))
    response = _hide(client, before[0])
    assert response.status_code == 303 and response.location.endswith("#rank-1")
    page = client.get(response.location).get_data(as_text=True)
    assert before[0] not in result_ids(page)
    card = re.search(r'<li class="result"[^>]*id="rank-1".*?</li>', page, re.S).group(0)
    assert "is hidden: we will not suggest it again." in card  # where the visitor acted
    assert re.search(rf'name="movie_id" value="{before[0]}">\s*<button[^>]*>Undo', card)
    # the notice is said once
    assert "Undo</button>" not in client.get("/recommendations").get_data(as_text=True)
    undone = _unhide(client, before[0], rank="1", year="any")
    assert undone.status_code == 303 and "/recommendations" in undone.location
    assert result_ids(client.get("/recommendations").get_data(as_text=True)) == before


def test_hide_and_unhide_answer_json_to_the_script(client):
    first = result_ids(submit(client, LIKES).get_data(as_text=True))[0]
    answer = _hide(client, first, Accept="application/json")
    assert answer.status_code == 200
    assert answer.get_json()["movie_id"] == first and answer.get_json()["hidden"] is True
    token = csrf_token(client.get("/ratings").get_data(as_text=True))
    back = client.post(
        "/recommendations/unhide",
        data={"csrf_token": token, "movie_id": str(first)},
        headers={"Accept": "application/json"},
    )
    assert back.get_json() == {**answer.get_json(), "hidden": False}


def test_the_hidden_tab_lists_hidden_movies_and_unhides_them(client):
    picks = result_ids(submit(client, LIKES).get_data(as_text=True))
    _hide(client, picks[0])
    _hide(client, picks[1])
    page = client.get("/ratings/hidden").get_data(as_text=True)
    listed = [int(m) for m in re.findall(r'<tr data-movie-id="(\d+)"', page)]
    assert sorted(listed) == sorted(picks[:2])
    assert "Hidden (2)" in page and "Hidden (2)" in client.get("/ratings").get_data(as_text=True)
    response = _unhide(client, picks[0], back="hidden")
    assert response.status_code == 303 and response.location.endswith("/ratings/hidden")
    page = client.get("/ratings/hidden").get_data(as_text=True)
    assert [int(m) for m in re.findall(r'<tr data-movie-id="(\d+)"', page)] == [picks[1]]
    assert "is no longer hidden" in page
    assert picks[0] in result_ids(client.get("/recommendations").get_data(as_text=True))
    assert _unhide(client, 999999999, back="hidden").status_code == 400


def test_hidden_movies_stay_out_of_similar_and_more_like_this(app, client):
    submit(client, LIKES)
    page = client.get("/recommendations?like=1").get_data(as_text=True)  # Toy Story
    ids = result_ids(page)
    assert ids and "More like Toy Story" in page
    _hide(client, ids[0])
    again = result_ids(client.get("/recommendations?like=1").get_data(as_text=True))
    assert ids[0] not in again
    movie = client.get("/movies/1").get_data(as_text=True)
    assert f'href="/movies/{ids[0]}"' not in movie


def test_more_like_this_ranks_the_movies_similar_to_a_pick_for_the_visitor(app, client):
    html = submit(client, LIKES).get_data(as_text=True)
    first = result_ids(html)[0]
    assert f"like={first}" in html  # every pick links to its "More like this"
    page = client.get(f"/recommendations?like={first}&n=10").get_data(as_text=True)
    ids = result_ids(page)
    assert len(ids) == 10 and first not in ids and not set(ids) & set(LIKES)
    with app.app_context():
        services = app.extensions["movierec"]
        finder = get_catalogue().similar_for(services.default_model, services.recommender())
        pool = set(finder.similar(first, 40, exclude=set(LIKES)))
    assert set(ids) <= pool  # among its similar movies ...
    assert ids != [m for m in finder.similar(first, 40, exclude=set(LIKES)) if m in ids]  # ranked
    for bad in ("x", "0", "99999999"):
        assert client.get(f"/recommendations?like={bad}").status_code == 400


def test_picks_can_be_narrowed_to_one_genre(app, client):
    submit(client, LIKES)
    page = client.get("/recommendations?genre=Horror&n=10").get_data(as_text=True)
    assert "only Horror" in page
    catalog = app.extensions["movierec"].recommenders.catalog
    ids = result_ids(page)
    assert len(ids) == 10 and all("Horror" in catalog.get(m).genres for m in ids)
    assert '<option value="Horror" selected>' in page
    # acting on a pick keeps the filter
    token = csrf_token(page)
    response = client.post(
        "/recommendations/hide",
        data={"csrf_token": token, "movie_id": str(ids[0]), "genre": "Horror", "year": "any"},
    )
    assert "genre=Horror" in response.location
    bad = client.get("/recommendations?genre=Gore")
    assert bad.status_code == 400 and "unknown genre" in bad.get_data(as_text=True)


def test_seen_it_without_stars_says_to_choose_them_and_a_saved_rating_is_confirmed(client):
    html = submit(client, LIKES).get_data(as_text=True)
    first = result_ids(html)[0]
    token = csrf_token(html)
    base = {"csrf_token": token, "seen": str(first), "rank": "1", "year": "any"}
    response = client.post("/recommendations", data=base)
    page = client.get(response.location).get_data(as_text=True)
    assert "Choose stars first" in page and result_ids(page)[0] == first  # nothing saved
    assert '<details class="seen-it" open>' in page
    response = client.post("/recommendations", data={**base, f"rating-{first}": "4.5"})
    page = client.get(response.location).get_data(as_text=True)
    assert "Saved: you gave" in page and "4½ stars" in page and first not in result_ids(page)


def test_welcome_back_states_the_total_once(client):
    submit(client, LIKES)
    html = client.get("/").get_data(as_text=True)
    notice = re.search(r"Welcome back:.*?</p>", html, re.S).group(0)
    assert "you have rated 6 movies in all" in notice
    assert "more not shown" not in notice and notice.count("6") == 1


def test_cards_without_a_poster_are_compact_and_the_year_sits_by_the_button(client):
    html = client.get("/").get_data(as_text=True)
    assert html.count("data-compact") == 15  # no TMDB here: no poster is known
    finish = re.search(r'<div class="finish">.*?</div>', html, re.S).group(0)
    assert '<select id="year" name="year">' in finish and "Show my recommendations" in finish
    assert 'href="#movies"' in html and 'id="movies"' in html
