"""Where to watch and watchlist files in the JSON API, added to the ``api`` blueprint
(``/api/v1``: rate limited, CSRF-exempt, errors as ``{"error", "field"}``).

The API is anonymous (no cookie, no visitor): a caller keeps its own watchlist, as it
keeps its own ratings and posts them to ``/api/v1/recommendations``. So the watchlist's
API equivalents are what needs no stored visitor:

- ``GET /api/v1/movies/<id>/watch?region=GB``: where one movie streams, rents and sells
  in a country (TMDB's watch providers, JustWatch's data; default country
  ``MOVIEREC_REGION``). Without a TMDB key, or when TMDB does not answer in time,
  ``known`` is false and the lists are empty.
- ``POST /api/v1/watchlist/import``: multipart ``file`` and ``format``
  (``letterboxd|imdb``): a Letterboxd ``watchlist.csv`` or an IMDb watchlist export,
  matched to movieIds; nothing is stored.

Importing this module registers the routes; :func:`movierec.web.create_app` does so before
it registers the blueprint.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from flask import request
from pydantic import Field
from pydantic.json_schema import SkipJsonSchema
from werkzeug.exceptions import UnsupportedMediaType

from movierec.errors import InvalidInput, quoted
from movierec.imports import MAX_BYTES, MAX_ROWS, WATCHLIST_FORMATS, read_watchlist
from movierec.inputs import validated
from movierec.tmdb import OFFER_KINDS
from movierec.web.api import bp, form_fields, unknown_movie
from movierec.web.catalogue import get_catalogue
from movierec.web.schemas import (
    _TEXT_CELL,
    MoviePath,
    Operation,
    Strict,
    Unmatched,
    _csv_layout,
    _no_default,
    documented,
)
from movierec.web.services import get_services

__all__ = ["import_watchlist", "where_to_watch"]

ATTRIBUTION = "Where-to-watch data by JustWatch, through TMDB (themoviedb.org)."


class WatchQuery(Strict):
    """``GET /api/v1/movies/<id>/watch``'s query string."""

    region: Annotated[
        str | None,
        Field(
            pattern="^[A-Za-z]{2}$",
            description="ISO 3166-1 alpha-2 country; absent: the site's (MOVIEREC_REGION)",
        ),
    ] = None


class Provider(Strict):
    provider_id: int = Field(description="TMDB's watch provider id")
    name: str


class WatchAnswer(Strict):
    movie_id: int
    region: str = Field(description="the country these offers are for (upper case)")
    known: bool = Field(
        description="false without a TMDB key, or when TMDB did not answer in time "
        "(ask again later); the lists are then empty"
    )
    link: str | None = Field(description="TMDB's watch page for this movie and country")
    flatrate: list[Provider] = Field(description="streaming with a subscription")
    free: list[Provider]
    ads: list[Provider] = Field(description="free with ads")
    rent: list[Provider]
    buy: list[Provider]
    attribution: str = Field(description="the credit TMDB and JustWatch ask for")


#: the layouts the document promises are read, in their plain form (the parser reads
#: more: any column order, extra columns, quoted cells)
WATCHLIST_LAYOUTS = (
    _csv_layout(
        "Date,Name,Year,Letterboxd URI",
        f"(?:2024-0[1-9]-[12][0-9])?,{_TEXT_CELL},(?:19|20)[0-9]{{2}},"
        "(?:https://boxd\\.it/[A-Za-z0-9]{1,8})?",
    ),
    _csv_layout("Const,Title Type", "tt[0-9]{7,8},(?:Movie|TV Series)?"),
)


class WatchlistForm(Strict):
    """``POST /api/v1/watchlist/import``'s multipart form."""

    format: Literal[WATCHLIST_FORMATS] | SkipJsonSchema[None] = Field(  # type: ignore[valid-type]  # a tuple of names
        None,
        json_schema_extra=_no_default,  # a form field is absent, never null
        description="letterboxd: watchlist.csv (Date,Name,Year,Letterboxd URI); "
        "imdb: the IMDb watchlist export (Const, Created, Title, Title Type, Year, ...); "
        "absent, or another than the file's header names: the header's (`detected` says so)",
    )
    file: str = Field(
        description=f"the CSV file, a file part or text (UTF-8; at most "
        f"{MAX_BYTES // 1024 // 1024} MB and {MAX_ROWS:,} rows)",
        pattern=f"^(?:{'|'.join(WATCHLIST_LAYOUTS)})$",
        json_schema_extra={"contentMediaType": "text/csv"},
    )


class WatchlistResult(Strict):
    format: Literal[WATCHLIST_FORMATS] = Field(description="the format the file was read as")  # type: ignore[valid-type]  # a tuple of names
    detected: bool = Field(
        description="true when the header named another format than sent"
    )  # a tuple of choices
    rows: int = Field(ge=0, description="data rows read")
    matched: int = Field(ge=0, description="movies matched")
    movie_ids: list[int] = Field(description="matched movieIds, in the file's order")
    unmatched: list[Unmatched]


@bp.get("/movies/<movie_id>/watch")
@documented(
    Operation(
        "Where one movie streams, rents and sells in a country (JustWatch's data via TMDB)",
        WatchAnswer,
        errors=(400, 404, 429, 503),
        query=WatchQuery,
        path=MoviePath,
    )
)
def where_to_watch(movie_id: str) -> dict[str, Any] | tuple[dict[str, Any], int]:
    """The offers for one movie in ``region`` (default the site's)."""
    query = validated(WatchQuery, request.args.to_dict(), "parameter")
    services = get_services()
    catalog = services.recommenders.catalog
    if (missing := unknown_movie(movie_id, catalog)) is not None:
        return missing
    region = (query.region or services.settings.region).upper()
    movie = catalog.get(int(movie_id))
    info = services.tmdb.info(movie.tmdb_id)
    known = info is not None and info.providers is not None
    options = info.watch_options(region) if known and info is not None else None
    offers = options.to_dict() if options is not None else {}
    return {
        "movie_id": movie.movie_id,
        "region": region,
        "known": known,
        "link": offers.get("link"),
        **{kind: offers.get(kind, []) for kind in OFFER_KINDS},
        "attribution": ATTRIBUTION,
    }


@bp.post("/watchlist/import")
@documented(
    Operation(
        "Match a Letterboxd or IMDb watchlist CSV to movieIds (nothing stored)",
        WatchlistResult,
        errors=(400, 413, 415, 429, 503),
        body=WatchlistForm,
        body_media="multipart/form-data",
    )
)
def import_watchlist() -> dict[str, Any]:
    """Parse and match an uploaded watchlist; nothing is stored."""
    if request.mimetype != "multipart/form-data":
        raise UnsupportedMediaType(
            "send the file as multipart/form-data with fields file and format, "
            f"got {quoted(request.content_type or '')}"
        )
    form_fields(("file", "format"))
    fmt = request.form.get("format") or None
    if fmt is not None and fmt not in WATCHLIST_FORMATS:
        raise InvalidInput(
            f"format must be one of {', '.join(WATCHLIST_FORMATS)}, got {quoted(fmt or '')}",
            field="format",
        )
    upload = request.files.get("file")
    if upload is not None:
        data = upload.read(MAX_BYTES + 1)
    elif "file" in request.form:
        data = request.form["file"].encode("utf-8", "surrogatepass")
    else:
        raise InvalidInput("no file field: send the CSV as the multipart field file", "file")
    return read_watchlist(data, fmt, get_catalogue().matcher).to_dict()
