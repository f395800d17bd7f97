"""Onboarding in the app: GET /api/v1/onboarding?genre=&page=, POST
/api/v1/onboarding/next, genre chips and "show me 15 more" on the rating page."""

from __future__ import annotations

from webhelpers import card_ids, csrf_token

NEW = 2010


def test_pages_go_down_the_catalogue_without_repeats(client):
    seen: list[int] = []
    for page in (1, 2, 3, 4, 5):
        body = client.get(f"/api/v1/onboarding?page={page}").get_json()
        assert body["page"] == page and not body["exhausted"]
        movies = body["movies"]
        assert len(movies) == 15 and sum(m["year"] >= NEW for m in movies) >= 5
        seen += [m["movieId"] for m in movies]
    assert len(seen) == len(set(seen)) == 75  # past the first 50 most-rated


def test_a_genre_narrows_the_pages_and_the_last_one_says_so(client):
    first = client.get("/api/v1/onboarding?genre=Film-Noir").get_json()
    assert first["genre"] == "Film-Noir" and "Comedy" in first["genres"]
    pages = first["pages"]
    ids = []
    for page in range(1, pages + 1):
        body = client.get(f"/api/v1/onboarding?genre=Film-Noir&page={page}").get_json()
        assert all("Film-Noir" in m["genres"] for m in body["movies"])
        assert body["exhausted"] == (page == pages)
        ids += [m["movieId"] for m in body["movies"]]
    assert len(ids) == len(set(ids)) > 15
    past = client.get(f"/api/v1/onboarding?genre=Film-Noir&page={pages + 1}")
    assert past.status_code == 200
    assert past.get_json()["movies"] == [] and past.get_json()["exhausted"]


def test_bad_genre_or_page_is_a_400_naming_it(client):
    for query, field in (
        ("genre=Comedyy", "genre"),
        ("page=0", "page"),
        ("page=-1", "page"),
        ("page=two", "page"),
        ("page=1000001", "page"),
        ("page=" + "9" * 500, "page"),
    ):
        response = client.get(f"/api/v1/onboarding?{query}")
        assert response.status_code == 400, query
        body = response.get_json()
        assert body["field"] == field and len(body["error"]) < 400


def test_next_never_repeats_and_reacts_to_answers(client):
    first = client.post("/api/v1/onboarding/next", json={}).get_json()
    assert first["strategy"] == "adaptive" and len(first["movies"]) == 15
    shown = [m["movieId"] for m in first["movies"]]
    likes_a = {str(m): 5 for m in shown[:7]}
    likes_b = {str(m): 5 for m in shown[7:]}
    a = client.post("/api/v1/onboarding/next", json={"ratings": likes_a, "shown": shown})
    b = client.post("/api/v1/onboarding/next", json={"ratings": likes_b, "shown": shown})
    ids_a = [m["movieId"] for m in a.get_json()["movies"]]
    ids_b = [m["movieId"] for m in b.get_json()["movies"]]
    assert len(ids_a) == 15 and not set(ids_a) & set(shown)
    assert ids_a != ids_b
    assert sum(m["year"] >= NEW for m in a.get_json()["movies"]) >= 5


def test_next_with_the_original_random_draw_and_a_genre(client):
    body = {"strategy": "random-top", "genre": "Comedy", "n": 10, "year": "old"}
    got = client.post("/api/v1/onboarding/next", json=body).get_json()
    assert got["strategy"] == "random-top" and len(got["movies"]) == 10
    assert all("Comedy" in m["genres"] and m["year"] < NEW for m in got["movies"])


def test_next_ignores_and_lists_movies_the_catalogue_lacks(client):
    body = {"ratings": {"999999999": 4}, "shown": [356, 999999998]}
    response = client.post("/api/v1/onboarding/next", json=body)
    assert response.status_code == 200
    assert response.get_json()["ignored"] == [999999998, 999999999]


def test_next_refuses_bad_fields_naming_them(client):
    for body, field in (
        ({"strategy": "smart"}, "strategy"),
        ({"genre": "Comedyy"}, "genre"),
        ({"n": 0}, "n"),
        ({"n": True}, "n"),
        ({"shown": "356"}, "shown"),
        ({"shown": [356, 0]}, "shown"),
        ({"shown": [True]}, "shown"),
        ({"shown": [35.5]}, "shown"),
        ({"ratings": {"0356": 4}}, "ratings"),
        ({"ratings": {"356": 7}}, "ratings"),
        ({"year": "soon"}, "year"),
        ({"colour": "red"}, "colour"),
    ):
        response = client.post("/api/v1/onboarding/next", json=body)
        assert response.status_code == 400, body
        assert response.get_json()["field"] == field
    assert client.post("/api/v1/onboarding/next", data="{}").status_code == 415


def test_show_me_15_more_keeps_the_stars_and_never_repeats(client):
    page = client.get("/").get_data(as_text=True)
    assert "Show me 15 more" in page and 'aria-label="Movies to rate by genre"' in page
    shown = card_ids(page)
    token = csrf_token(page)
    form = {"csrf_token": token, f"rating-{shown[0]}": "4.5", f"rating-{shown[1]}": "0"}
    more = client.post("/more", data=form)
    assert more.status_code == 303 and "more=1" in more.headers["Location"]
    seen = set(shown)
    for _ in range(4):
        html = client.get("/?more=1").get_data(as_text=True)
        ids = card_ids(html)
        assert len(ids) == 15 and not set(ids) & seen
        seen |= set(ids)
    # the star given before "more" was stored: it comes back on a fresh first page
    assert f'name="rating-{shown[0]}" id="r{shown[0]}-9" value="4.5" checked' in client.get(
        "/"
    ).get_data(as_text=True)


def test_genre_chips_narrow_the_cards_and_the_end_is_said(app, client):
    catalog = app.extensions["movierec"].recommenders.catalog
    html = client.get("/?genre=Film-Noir").get_data(as_text=True)
    ids = card_ids(html)
    assert ids and all("Film-Noir" in catalog.get(m).genres for m in ids)
    assert 'aria-current="page">Film-Noir</a>' in html
    for _ in range(20):
        html = client.get("/?more=1&genre=Film-Noir").get_data(as_text=True)
        if "data-catalogue-end" in html:
            break
    assert "data-catalogue-end" in html and "every movie in Film-Noir" in html
    assert client.get("/?genre=Nope").status_code == 400
