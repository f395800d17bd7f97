"""Drawn placeholder posters (``/poster/<movieId>.svg``) for when TMDB has none.

Used when no TMDB key is set, TMDB lacks the movie, or TMDB did not answer in time:
a 2:3 card in a colour picked from the movie id, with the title and year (no play
button: nothing here plays).
"""

from __future__ import annotations

import textwrap
from xml.sax.saxutils import escape, quoteattr

from flask import Blueprint, Response, abort

from movierec.data.catalog import display_title
from movierec.web.services import get_services

bp = Blueprint("posters", __name__)

WIDTH, HEIGHT = 342, 513
MAX_LINES = 6


@bp.get("/poster/<int:movie_id>.svg")
def poster(movie_id: int) -> Response:
    catalog = get_services().recommenders.catalog
    if movie_id not in catalog:
        abort(404)
    movie = catalog.get(movie_id)
    svg = placeholder_svg(movie_id, display_title(movie.title), movie.year)
    response = Response(svg, mimetype="image/svg+xml")
    response.headers["Cache-Control"] = "public, max-age=604800"
    return response


def placeholder_svg(movie_id: int, title: str, year: int | None) -> str:
    """An SVG poster: gradient, film-strip edges, the title wrapped, the year below."""
    hue = (movie_id * 47) % 360
    lines = textwrap.wrap(title, width=16, break_long_words=True)
    if len(lines) > MAX_LINES:
        lines = lines[:MAX_LINES]
        lines[-1] = lines[-1][:14].rstrip() + "…"
    size = 34 if len(lines) <= 3 else 28
    top = HEIGHT / 2 - (len(lines) - 1) * size * 0.6 - 20
    text = "".join(
        f'<text x="{WIDTH / 2:.0f}" y="{top + i * size * 1.2:.0f}" font-size="{size}" '
        f'font-weight="700">{escape(line)}</text>'
        for i, line in enumerate(lines)
    )
    year_y = top + len(lines) * size * 1.2 + 18
    year_text = (
        f'<text x="{WIDTH / 2:.0f}" y="{year_y:.0f}" font-size="22" opacity="0.8">{year}</text>'
        if year
        else ""
    )
    holes = "".join(
        f'<rect x="10" y="{y}" width="14" height="20" rx="3"/>'
        f'<rect x="{WIDTH - 24}" y="{y}" width="14" height="20" rx="3"/>'
        for y in range(14, HEIGHT - 20, 40)
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" role="img" aria-label={quoteattr(title)}>'
        f'<defs><linearGradient id="g" x1="0" y1="0" x2="0.4" y2="1">'
        f'<stop offset="0" stop-color="hsl({hue},55%,38%)"/>'
        f'<stop offset="1" stop-color="hsl({(hue + 40) % 360},60%,16%)"/>'
        f"</linearGradient></defs>"
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="url(#g)"/>'
        f'<g fill="#000" opacity="0.28">{holes}</g>'
        f'<g fill="#fff" text-anchor="middle" '
        f'font-family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif">'
        f"{text}{year_text}</g></svg>"
    )
