"""The ratings page says visitors' ratings train the next model, and lets them opt out.

The choice is a plain form (CSRF, Post/Redirect/Get, no JavaScript), stored at once and
honoured by what ``movierec train --with-visitors`` reads; it can be reversed.
"""

from __future__ import annotations

from webhelpers import csrf_token

from movierec.store.training_data import read_visitor_ratings

MATRIX, TOY_STORY = 2571, 1
HELPS = "Your ratings help improve everyone's picks"
OPT_OUT = "Don't use my ratings for that"
OPTED_OUT = "You asked that your ratings not help improve everyone's picks"


def _rate(client, movie_id: int, stars: float) -> None:
    token = csrf_token(client.get(f"/movies/{movie_id}").get_data(as_text=True))
    client.post(f"/movies/{movie_id}/rate", data={"csrf_token": token, "stars": stars})


def _choose(client, use: str, **extra: str):
    token = csrf_token(client.get("/ratings").get_data(as_text=True))
    return client.post("/ratings/training", data={"csrf_token": token, "use": use, **extra})


def _trained_on(app) -> list[str]:
    """The visitors ``train --with-visitors`` would learn from."""
    return read_visitor_ratings(app.extensions["movierec"].store).visitor_ids.tolist()


def test_the_page_says_ratings_help_and_the_opt_out_is_stored_and_reversible(app):
    client = app.test_client()
    _rate(client, MATRIX, 4.5)
    _rate(client, TOY_STORY, 3.0)
    page = client.get("/ratings").get_data(as_text=True)
    assert HELPS in page and OPT_OUT in page
    assert len(_trained_on(app)) == 1

    response = _choose(client, "no")
    assert response.status_code == 303 and response.headers["Location"] == "/ratings"
    page = client.get("/ratings").get_data(as_text=True)
    assert "will not be used to train the site&#39;s next model" in page  # the flash
    assert OPTED_OUT in page and "Let my ratings help again" in page and OPT_OUT not in page
    assert _trained_on(app) == []
    assert "Matrix" in page  # their ratings stay theirs: listed, and still make their picks

    assert _choose(client, "yes").status_code == 303
    page = client.get("/ratings").get_data(as_text=True)
    assert HELPS in page and OPTED_OUT not in page
    assert len(_trained_on(app)) == 1


def test_one_visitors_opt_out_leaves_others_in(app):
    first, second = app.test_client(), app.test_client()
    _rate(first, MATRIX, 4.5)
    _rate(second, TOY_STORY, 4.0)
    _choose(first, "no")
    assert len(_trained_on(app)) == 1
    assert HELPS in second.get("/ratings").get_data(as_text=True)


def test_a_bad_choice_is_a_400_naming_it_and_nothing_changes(app):
    client = app.test_client()
    _rate(client, MATRIX, 4.5)
    response = _choose(client, "maybe")
    assert response.status_code == 400
    assert "use must be yes or no" in response.get_data(as_text=True)
    assert "maybe" in response.get_data(as_text=True)
    assert len(_trained_on(app)) == 1


def test_without_the_csrf_token_nothing_is_stored(app):
    client = app.test_client()
    _rate(client, MATRIX, 4.5)
    response = client.post("/ratings/training", data={"use": "no"})
    assert response.status_code == 400
    assert len(_trained_on(app)) == 1
