"""A visitor who rated movies but liked none of them is told so on the picks page."""

from __future__ import annotations

from webhelpers import submit

from movierec.recommend import LIKED_NOTHING

#: Forrest Gump, The Shawshank Redemption and Pulp Fiction, all at 1 star
DISLIKED = {356: 1.0, 318: 1.0, 296: 1.0}


def test_the_page_asks_for_a_movie_they_enjoyed(client):
    page = submit(client, DISLIKED).get_data(as_text=True)
    assert "Rate a movie you enjoyed" in page
    assert LIKED_NOTHING.split(":")[0].replace("'", "&#39;") in page
    liked = submit(client, {**DISLIKED, 260: 5.0}).get_data(as_text=True)
    assert "Rate a movie you enjoyed" not in liked


def test_the_api_carries_the_flag(client):
    body = client.post(
        "/api/v1/recommendations", json={"ratings": {str(m): s for m, s in DISLIKED.items()}}
    ).get_json()
    assert body["liked_nothing"] is True
    assert body["message"] == LIKED_NOTHING
