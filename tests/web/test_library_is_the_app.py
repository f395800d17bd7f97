"""The library is the app: ``movierec.recommend.recommend`` with the default model gives
exactly the picks the web page shows, in the same order, with the same reasons."""

from __future__ import annotations

import html
import re
from pathlib import Path

from webhelpers import submit

from movierec import models
from movierec.evaluate.personas import genre_personas
from movierec.recommend import recommend


def test_the_page_shows_the_librarys_picks(make_app, web_home: Path, ml_small):
    app = make_app(MOVIEREC_MODEL="ease")
    for persona in genre_personas(ml_small.ratings, ml_small.catalog, seed=0)[::30]:
        client = app.test_client()  # a new visitor (no cookie) each time
        page = submit(client, persona.ratings).get_data(as_text=True)
        shown = [int(m) for m in re.findall(r'<li class="result" data-movie-id="(\d+)"', page)]
        reasons = [html.unescape(r) for r in re.findall(r'<p class="reason">([^<]*)</p>', page)]
        served = models.load(web_home / "models" / "ml-latest-small-ease.npz")
        library = recommend(served, ml_small.catalog, persona.ratings, n=len(shown))
        assert shown and shown == [p.movie.movie_id for p in library.items]
        assert reasons == [p.reason for p in library.items]


def test_a_visitor_who_liked_nothing_sees_no_high_figure(make_app, ml_small):
    persona = genre_personas(ml_small.ratings, ml_small.catalog, seed=0)[0]
    hated = {m: 1.0 for m in persona.hated}
    page = submit(make_app(MOVIEREC_MODEL="ease").test_client(), hated).get_data(as_text=True)
    assert "% match" not in page and "100&nbsp;%" not in page
    chances = [int(c) for c in re.findall(r"(\d+)&nbsp;% chance you", page)]
    assert all(c < 90 for c in chances), chances
