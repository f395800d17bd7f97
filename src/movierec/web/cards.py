"""Plain dicts for templates and JSON: movies, recommendations, TMDB extras.

Templates get only str/int/float/list/dict values built here, never numpy or pandas.
URLs of the app's own pages and posters are relative (``/poster/1.svg``): nothing here
is built from the request's Host header, which a client can set to anything.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from flask import url_for
from markupsafe import Markup

from movierec.data import Movie
from movierec.data.added import ADDED_FROM
from movierec.inputs import STAR_STEPS
from movierec.recommend import Recommendation
from movierec.tmdb import MovieInfo

#: tags shown on a card without TMDB text (the movie's most used MovieLens tags)
CARD_TAGS = 4


def genres_of(movie: Movie) -> list[str]:
    return [g for g in movie.genres if g and not g.startswith("(")]


def movie_card(movie: Movie, info: MovieInfo | None) -> dict[str, Any]:
    """Everything a card shows of one movie."""
    placeholder = url_for("posters.poster", movie_id=movie.movie_id, _external=False)
    poster_url = info.poster_url if info else None
    return {
        "movie_id": movie.movie_id,
        "title": movie.display_title,
        "full_title": movie.title,
        #: also known as: MovieLens's other titles for it (shown only on the movie page)
        "alternative_titles": movie.alternative_titles,
        #: added by the site (``movierec catalog add``), not in the MovieLens data set
        "added": movie.movie_id >= ADDED_FROM,
        "year": movie.year,
        "genres": genres_of(movie),
        "poster_url": poster_url or placeholder,
        "has_poster": poster_url is not None,
        "overview": info.overview if info else None,
        "trailer_url": info.trailer_url if info else None,
        "trailer_watch_url": info.trailer_watch_url if info else None,
        "tmdb_url": f"https://www.themoviedb.org/movie/{movie.tmdb_id}" if movie.tmdb_id else None,
    }


def rating_card(movie: Movie, info: MovieInfo | None, stars: float | None) -> dict[str, Any]:
    """An onboarding card: the movie and the visitor's earlier stars (0 = not seen)."""
    value = float(stars or 0.0)
    return {
        **movie_card(movie, info),
        "stars": value,
        "stars_text": star_label(value) if value else "",
        "star_inputs": star_inputs(movie.movie_id, value),
    }


def recommendation_card(
    rec: Recommendation,
    info: MovieInfo | None,
    tags: Mapping[int, list[str]] | None = None,
) -> dict[str, Any]:
    """A results card: the movie, the chance the visitor likes it (``like_percent``, 1-99,
    None when not calibrated), predicted stars, why it was picked and (for "seen it") a
    rating control; ``tags``: the catalogue's ``movieId -> tags``."""
    predicted = round(float(rec.predicted_stars), 1)
    movie_tags = (tags or {}).get(rec.movie.movie_id, [])
    return {
        **movie_card(rec.movie, info),
        "predicted_stars": predicted,
        "stars_quarters": int(round(predicted * 4)),
        "like_percent": like_percent(rec.like_probability),
        "personal": rec.personal,
        "because": [{"movie_id": m.movie_id, "title": m.display_title} for m in rec.because],
        "reason": rec.reason,
        "tags": top_tags(movie_tags),
        "star_inputs": star_inputs(rec.movie.movie_id, 0.0),
    }


def like_percent(probability: float | None) -> int | None:
    """A calibrated probability as a whole percentage, 1-99 (a frequency measured on
    held-out people is never a certainty); None stays None (no figure is shown)."""
    if probability is None:
        return None
    return min(max(int(round(100 * probability)), 1), 99)


def top_tags(tags: list[str], k: int = CARD_TAGS) -> list[str]:
    """The ``k`` most used of a movie's MovieLens tags, case-insensitively distinct.

    ``tags`` lists each distinct tag once in first-use order (see ``data.movielens``),
    so "most used" is counted over case variants ("dark comedy", "Dark Comedy").
    """
    counts: dict[str, int] = {}
    shown: dict[str, str] = {}
    for tag in tags:
        key = tag.casefold()
        counts[key] = counts.get(key, 0) + 1
        shown.setdefault(key, tag)
    order = sorted(counts, key=lambda key: -counts[key])  # stable: first used first
    return [shown[key] for key in order[:k]]


def recommendation_json(rec: Recommendation, info: MovieInfo | None) -> dict[str, Any]:
    """The API's item: ``Recommendation.to_dict()`` plus poster, overview and trailer."""
    card = movie_card(rec.movie, info)
    return {
        **rec.to_dict(),
        "poster_url": card["poster_url"],
        "overview": card["overview"],
        "trailer_url": card["trailer_url"],
    }


def movie_json(movie: Movie, info: MovieInfo | None) -> dict[str, Any]:
    """The API's movie: ``Movie.to_dict()`` plus poster, overview and trailer."""
    card = movie_card(movie, info)
    return {
        **movie.to_dict(),
        "poster_url": card["poster_url"],
        "overview": card["overview"],
        "trailer_url": card["trailer_url"],
    }


def tmdb_ids(movies: Iterable[Movie]) -> list[int]:
    return [m.tmdb_id for m in movies if m.tmdb_id is not None]


def info_for(movie: Movie, infos: Mapping[int, MovieInfo]) -> MovieInfo | None:
    return infos.get(movie.tmdb_id) if movie.tmdb_id is not None else None


def star_label(stars: float) -> str:
    """``3.5`` -> ``"3½ stars"`` (for screen readers and titles)."""
    whole, half = int(stars), stars % 1 >= 0.5
    text = (str(whole) if whole else "") + ("½" if half else "")
    return f"{text} star" if stars <= 1 else f"{text} stars"


#: ``(value, half steps, side, label)`` of each star choice, labels computed once
STAR_CHOICES = tuple(
    (f"{step}", int(step * 2), "left" if int(step * 2) % 2 else "right", star_label(step))
    for step in STAR_STEPS
)
_STAR_INPUT = (
    '<input class="visually-hidden" type="radio" name="rating-{mid}" id="r{mid}-{half}" '
    'value="{value}"{checked}>'
    '<label class="half {side}" for="r{mid}-{half}" title="{label}">'
    '<span class="visually-hidden">{label}</span></label>'
)
_MID = "\x00"  # stands for the movie id in the prebuilt HTML below
#: each choice's HTML with the movie id left open, unchecked and checked
_STAR_HTML = tuple(
    tuple(
        _STAR_INPUT.format(
            mid=_MID, half=half, value=value, checked=checked, side=side, label=label
        )
        for checked in ("", " checked")
    )
    for value, half, side, label in STAR_CHOICES
)


def star_inputs(movie_id: int, stars: float) -> Markup:
    """The ten half-star radios and labels of one movie's rating control, as HTML.

    Built here from HTML prepared once rather than in a Jinja loop: 15 cards x 10 stars
    of escaped template expressions were most of a page's rendering time. The movie id
    is an int and the labels are fixed, so nothing needs escaping.
    """
    parts = [html[stars == (k + 1) / 2] for k, html in enumerate(_STAR_HTML)]
    return Markup("".join(parts).replace(_MID, str(int(movie_id))))
