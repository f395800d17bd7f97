"""Every request and response of ``/api/v1``, declared once as pydantic v2 models.

The same models validate the requests (:func:`movierec.inputs.validated`) and write the
OpenAPI document (:mod:`movierec.web.openapi`), so the two cannot drift apart. Why pydantic
rather than flask-smorest (marshmallow), spectree or flask-openapi3: no second web framework
around Flask's routes and error handlers, and the field parsers are the plain functions of
:mod:`movierec.inputs` that the forms, the file imports and the command line call too; a
pydantic type only adds the JSON Schema facts (``minimum``, ``pattern``, ``enum``) next to
the parser that enforces them.

Each field's parser runs first (``BeforeValidator``) and keeps the API's own messages
(``"n must be a whole number from 1 to 100, got '5'"``); pydantic then checks the declared
constraints again, so a value the parser let through that the document refuses would still
be a 400, never a silent disagreement.

Choices that depend on the running app (the models it serves, the catalogue's genres) are
``Literal`` types of request models built per app by :func:`request_models` (cached).

Responses are built by the views as plain dicts (no pydantic on the hot path); the response
models here document them, and tests/hardening/test_openapi.py and test_api_fuzz.py check
real responses against the document.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Any, Literal

from annotated_types import Interval
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    create_model,
)
from pydantic import Strict as NoCoercion
from pydantic.json_schema import SkipJsonSchema

from movierec import inputs
from movierec.errors import InvalidInput, quoted
from movierec.imports import FORMATS, MAX_BYTES, MAX_ROWS
from movierec.onboarding import DEFAULT_STRATEGY, MAX_CARDS, STRATEGIES
from movierec.search import MAX_QUERY

#: the most movieIds ``shown`` and ``watchlist`` may list
MAX_SHOWN = 20_000
#: the most movieIds ``hidden`` may list ("not interested"; a visitor of the pages may
#: hide any number, but an API request is bounded like every other list)
MAX_HIDDEN = 20_000
#: the most hits of a title search and of "similar movies"
MAX_LIMIT = 50
ONBOARDING_CARDS = 15


class Strict(BaseModel):
    """A JSON object with exactly the declared fields (others are a 400 / not documented)."""

    model_config = ConfigDict(extra="forbid")


# --- field types: a parser from movierec.inputs plus the schema facts it enforces -------


def _ratings_problem(value: object) -> None:
    """Raise the message for the first bad entry of ``{"<movieId>": stars}``."""
    if not isinstance(value, dict):
        raise InvalidInput('ratings must be an object like {"1": 4.5}', field="ratings")
    for key, stars in value.items():
        if not isinstance(key, str) or inputs.movie_id_text(key) is None:
            raise InvalidInput(
                f"movieId must be {inputs.MOVIE_ID_RULE}, got {quoted(key)}", field="ratings"
            )
        if inputs.stars_json(stars) is None:
            raise InvalidInput(
                f"stars for movieId {key} must be a number from {inputs.STARS_RULE}, "
                f"got {quoted(stars)}",
                field="ratings",
            )


def _ratings(value: object, check: ValidatorFunctionWrapHandler) -> dict[str, float]:
    """pydantic checks the declared schema (in Rust: a tenth of the time of a Python loop
    over 200 ratings); only when it refuses does :func:`_ratings_problem` word why."""
    try:
        checked: dict[str, float] = check(value)
        return checked
    except ValidationError:
        _ratings_problem(value)
        raise


MovieIdKey = Annotated[str, NoCoercion(), Field(pattern=inputs.MOVIE_ID_PATTERN)]
Stars = Annotated[
    float,
    NoCoercion(),  # a JSON number: not a string or a boolean
    Field(ge=inputs.STARS_MIN, le=inputs.STARS_MAX, multiple_of=inputs.STARS_STEP),
]
Ratings = Annotated[
    dict[MovieIdKey, Stars],
    WrapValidator(_ratings),
    Field(
        description="stars (0.5-5 in half steps) by movieId (ASCII digits, no sign or "
        "leading zero); movies this catalogue lacks are ignored and listed in `ignored`",
        json_schema_extra={"additionalProperties": False},
    ),
]


def _count(name: str, high: int, text: bool = False) -> Any:
    """A whole number 1-``high``: JSON (``5``, ``5.0``) or query-string text (``"5"``)."""

    def parse(value: object) -> int:
        if text:
            return inputs.count_text(value if isinstance(value, str) else "", name, 1, high)
        return inputs.count_json(value, name, 1, high)

    return Annotated[int, Interval(ge=1, le=high), BeforeValidator(parse)]


def _choice(
    name: str, choices: Sequence[str], nullable: bool, message: str, empty: bool = False
) -> Any:
    """One of ``choices`` (or null when ``nullable``, or ``""`` when ``empty``: a query
    string's "none chosen"); ``message`` is formatted with ``value`` and ``choices`` for
    anything else."""
    allowed = ("", *choices) if empty else tuple(choices)

    def parse(value: object) -> object:
        if value is None and nullable:
            return None
        if not isinstance(value, str) or value not in allowed:
            raise InvalidInput(
                message.format(value=quoted(value), choices=", ".join(choices)), field=name
            )
        return value

    kind: Any = Literal[allowed] if allowed else str  # built at run time
    return Annotated[kind | None if nullable else kind, BeforeValidator(parse)]


def _movie_ids(name: str, most: int, description: str) -> Any:
    """A JSON list of at most ``most`` movieIds (whole numbers, as
    :func:`movierec.inputs.movie_id_json` reads them); anything else is ``InvalidInput``
    naming ``name``."""

    def parse(value: object) -> list[int]:
        if not isinstance(value, list) or len(value) > most:
            raise InvalidInput(f"{name} must be a list of at most {most:,} movieIds", field=name)
        ids = [inputs.movie_id_json(v) for v in value]
        for raw, movie_id in zip(value, ids, strict=True):
            if movie_id is None:
                raise InvalidInput(f"{name} holds no movieId like {quoted(raw)}", field=name)
        return ids  # type: ignore[return-value]  # no None left

    return Annotated[
        list[Annotated[int, Field(ge=1, le=inputs.MAX_MOVIE_ID)]],
        Field(max_length=most, description=description),
        BeforeValidator(parse),
    ]


Shown = _movie_ids(
    "shown", MAX_SHOWN, "movieIds already offered (rated or not seen): never asked again"
)
Watchlist = _movie_ids(
    "watchlist",
    MAX_SHOWN,
    "movieIds the caller wants to see: never new picks, ranked apart in "
    "from_watchlist (ids this catalogue lacks are ignored and listed in ignored)",
)
Hidden = _movie_ids(
    "hidden",
    MAX_HIDDEN,
    "movieIds the caller is not interested in: never picked, nor ranked in "
    "from_watchlist (ids this catalogue lacks are ignored and listed in ignored)",
)
Year = Annotated[
    Literal[inputs.YEAR_CHOICES],  # type: ignore[valid-type]  # a tuple of choices
    BeforeValidator(inputs.year_preference),
    Field(description="old: before 2010; new: from 2010 on; any"),
]
Strategy = _choice(
    "strategy", list(STRATEGIES), False, "unknown strategy {value}; choose from {choices}"
)
PositiveId = Annotated[int, Field(ge=1)]


# --- requests that depend on the app (models served, genres of the catalogue) -----------


@dataclass(frozen=True)
class Requests:
    """The request models of one app's choices."""

    recommendations: type[BaseModel]
    onboarding_next: type[BaseModel]
    onboarding_query: type[BaseModel]
    #: ``?model=`` of ``GET /api/v1/model``
    model_query: type[BaseModel]


@lru_cache(maxsize=16)
def request_models(models: tuple[str, ...], genres: tuple[str, ...]) -> Requests:
    """The request models for an app serving ``models`` over a catalogue with ``genres``."""
    model = _choice("model", models, True, "unknown model {value}; choose from {choices}")
    genre = _choice("genre", genres, True, "unknown genre {value}; choose from {choices}")
    query_genre = _choice(
        "genre", genres, False, "unknown genre {value}; choose from {choices}", empty=True
    )
    config = ConfigDict(extra="forbid")
    recommendations = create_model(
        "RecommendationRequest",
        __config__=config,
        __doc__="What to recommend from; every field may be left out.",
        ratings=(Ratings, Field(default_factory=dict)),
        year=(Year, "any"),
        n=(_count("n", inputs.MAX_N), Field(5, description="how many picks")),
        model=(
            model,
            Field(None, description=f"a served model; null or absent: {models[0]}"),
        ),
        watchlist=(Watchlist, Field(default_factory=list)),
        hidden=(Hidden, Field(default_factory=list)),
    )
    onboarding_next = create_model(
        "OnboardingNextRequest",
        __config__=config,
        __doc__="The answers so far; every field may be left out.",
        ratings=(Ratings, Field(default_factory=dict)),
        shown=(Shown, Field(default_factory=list)),
        n=(_count("n", MAX_CARDS), Field(ONBOARDING_CARDS, description="movies to ask")),
        strategy=(Strategy, DEFAULT_STRATEGY),
        genre=(genre, Field(None, description="only this genre; null or absent: any")),
        year=(Year, "any"),
    )
    onboarding_query = create_model(
        "OnboardingQuery",
        __config__=ConfigDict(extra="ignore"),
        genre=(
            query_genre,  # absent: None (pydantic does not check a default)
            Field(
                None,
                description="only this genre of the catalogue; empty or absent: any",
                json_schema_extra=_no_default,
            ),
        ),
        page=(
            _count("page", inputs.MAX_PAGE, text=True),
            Field(1, description="1-based; past the last page: no movies, exhausted true"),
        ),
    )
    return Requests(recommendations, onboarding_next, onboarding_query, model_query(models))


@lru_cache(maxsize=16)
def model_query(models: tuple[str, ...]) -> type[BaseModel]:
    """``?model=`` of ``GET /api/v1/model`` for an app serving ``models``: it needs no
    genres, so answering it never waits for the onboarding index (rebuilt, for seconds,
    after a new default model is swapped in)."""
    return create_model(
        "ModelQuery",
        __config__=ConfigDict(extra="forbid"),
        model=(
            _choice("model", models, False, "unknown model {value}; choose from {choices}") | None,  # type: ignore[maybe-unrecognized-str-typeform]  # a type built at run time
            Field(None, description=f"a served model; absent: {models[0]}"),
        ),
    )


# --- requests that do not depend on the app ---------------------------------------------


Limit = _count("limit", MAX_LIMIT, text=True)
SimilarCount = _count("n", MAX_LIMIT, text=True)


def _query(value: object) -> str:
    if not isinstance(value, str) or not inputs.searchable(value):
        raise InvalidInput(
            f"q must be 1 to {MAX_QUERY} characters of a title to search for", field="q"
        )
    if len(value) > MAX_QUERY:
        raise InvalidInput(f"q is {len(value)} characters long; at most {MAX_QUERY}", field="q")
    return value


class SearchQuery(Strict):
    """``GET /api/v1/movies``'s query string."""

    q: Annotated[
        str,
        Field(
            min_length=1,
            max_length=MAX_QUERY,
            pattern=inputs.NOT_BLANK_PATTERN,
            description="title words (accents and articles optional); a 4-digit year "
            "narrows the search",
        ),
        BeforeValidator(_query),
    ]
    limit: Limit = 10  # type: ignore[valid-type]  # an Annotated type made by _count


class SimilarQuery(Strict):
    """``GET /api/v1/movies/<id>/similar``'s query string."""

    n: SimilarCount = 10  # type: ignore[valid-type]  # an Annotated type made by _count
    year: Year = "any"


class MoviePath(Strict):
    """A movie's path: ``movie_id`` in its one spelling; malformed or unknown -> 404."""

    movie_id: Annotated[
        int, Field(ge=1, le=inputs.MAX_MOVIE_ID, description="the MovieLens movieId")
    ]


def _csv_layout(header: str, row: str) -> str:
    """A file pattern: ``header``, then rows, lines ending in LF or CRLF."""
    return f"(?:{header}(?:\\r?\\n{row})*(?:\\r?\\n)?)"


_STARS_CELL = r"(?:0\.5|[1-4](?:\.[05])?|5(?:\.0)?)"
_TEXT_CELL = r"[A-Za-z0-9 .:'!?&-]{1,40}"
#: the layouts the document promises are read: IMDb's, Letterboxd's and movierec's exports
#: in their plain form (:mod:`movierec.imports` reads more: any column order, extra
#: columns, quoted cells, dates; the pattern only has to be a subset of what it accepts)
FILE_LAYOUTS = (
    _csv_layout("Const,Your Rating", r"tt[0-9]{7,8},(?:[1-9]|10)?"),
    _csv_layout("Name,Year,Rating", f"{_TEXT_CELL},(?:19|20)[0-9]{{2}},{_STARS_CELL}"),
    _csv_layout("movieId,rating", f"[1-9][0-9]{{0,5}},{_STARS_CELL}"),
)


def _no_default(schema: dict[str, Any]) -> None:
    """Leave out ``"default": null``: a form field is absent, never null."""
    schema.pop("default", None)


class ImportForm(Strict):
    """``POST /api/v1/ratings/import``'s multipart form, for the document: the view checks
    ``format`` against the same ``FORMATS`` and :func:`movierec.imports.read_import` reads
    ``file`` (its pattern documents the plain layouts; the parser reads more)."""

    format: Literal[FORMATS] | SkipJsonSchema[None] = Field(  # type: ignore[valid-type]  # a tuple of names
        None,
        description="the format chosen; absent, or another than the file's header names: "
        "the header's (the answer's `detected` says so)",
        json_schema_extra=_no_default,
    )
    file: str = Field(
        pattern=f"^(?:{'|'.join(FILE_LAYOUTS)})$",
        description=f"the CSV file, a file part or text (UTF-8; at most "
        f"{MAX_BYTES // 1024 // 1024} MB and {MAX_ROWS:,} rows; a header and rows of one "
        "of the formats)",
        json_schema_extra={"contentMediaType": "text/csv"},
    )


# --- responses ----------------------------------------------------------------------------


class Error(Strict):
    """Every error: what went wrong, for people, and the field (or header) at fault."""

    error: str
    field: str | None


class Movie(Strict):
    movieId: int = Field(ge=1)
    title: str = Field(description="MovieLens title, e.g. 'Matrix, The (1999)'")
    display_title: str = Field(description="e.g. 'The Matrix'")
    year: int | None
    genres: list[str]
    tmdbId: int | None
    n_ratings: int = Field(ge=0)
    mean_rating: float | None
    poster_url: str = Field(description="TMDB poster or a drawn placeholder")
    overview: str | None
    trailer_url: str | None


class MovieList(Strict):
    movies: list[Movie]


class MovieSearch(MovieList):
    catalog_ends: str | None = Field(
        description="where the catalogue ends, when no hit is from its last 3 years or "
        'nothing matched ("The catalogue ends in 2018: a newer film may not be in it yet."); '
        "null otherwise"
    )


class Because(Strict):
    movieId: int
    title: str


class Recommendation(Movie):
    predicted_stars: float = Field(ge=inputs.STARS_MIN, le=inputs.STARS_MAX)
    like_probability: float | None = Field(
        ge=0,
        le=1,
        description="the chance that a person with these ratings gives the movie 4 stars "
        "or more, calibrated on MovieLens users held out at training (the same meaning for "
        "every visitor; not in list order); null where it cannot be calibrated (no usable "
        "rating, or a model saved without calibration)",
    )
    because: list[Because] = Field(
        description="the rated movies whose removal lowers this pick's rank score most "
        "(largest first)"
    )
    reason: str


class RecommendationList(Strict):
    model: str
    year: Literal[inputs.YEAR_CHOICES]  # type: ignore[valid-type]  # a tuple of choices
    fallback: bool = Field(description="true when no rating was usable: popular picks instead")
    message: str | None
    liked_nothing: bool = Field(
        description="true when movies were rated but none 3.5 stars or more: the picks only "
        "avoid what was disliked, and message says so"
    )
    ignored: list[int] = Field(
        description="rated movieIds not used: not in this catalogue, or unknown to the model"
    )
    recommendations: list[Recommendation]
    from_watchlist: list[Recommendation] = Field(
        description="the request's watchlist ranked for these ratings, best match first "
        "(year preference not applied; empty without a watchlist)"
    )


class StarScale(Strict):
    min: float
    max: float
    step: float


class Onboarding(Strict):
    movies: list[Movie]
    page: int = Field(ge=1)
    pages: int = Field(ge=0, description="pages in all")
    exhausted: bool = Field(description="true on the last page and past it (then movies is empty)")
    genre: str | None
    genres: list[str]
    stars: StarScale
    years: list[Literal[inputs.YEAR_CHOICES]]  # type: ignore[valid-type]  # a tuple of choices
    models: list[str]


class OnboardingNext(Strict):
    movies: list[Movie]
    strategy: Literal[tuple(STRATEGIES)]  # type: ignore[valid-type]  # a tuple of choices
    exhausted: bool = Field(description="true when nothing is left to ask after these movies")
    ignored: list[int] = Field(description="movieIds of ratings and shown not in this catalogue")


class Unmatched(Strict):
    line: int = Field(ge=2)
    title: str
    year: int | None
    ref: str = Field(description="IMDb id or movieId given")
    reason: str


class Duplicate(Strict):
    line: int = Field(ge=3)
    earlier: int = Field(ge=2, description="the line of the earlier row naming the movie")
    movie_id: int = Field(ge=1)
    message: str = Field(description='"line 9 repeats line 3; the later stars were kept"')


class ImportResult(Strict):
    format: Literal[FORMATS] = Field(description="the format the file was read as")  # type: ignore[valid-type]  # a tuple of choices
    detected: bool = Field(description="true when the header named another format than sent")
    rows: int = Field(ge=0, description="data rows read")
    matched: int = Field(ge=0, description="movies matched")
    skipped: int = Field(ge=0, description="rows without a rating")
    unmatched: list[Unmatched]
    duplicates: list[Duplicate] = Field(
        description="rows naming a movie an earlier row named (the later stars are kept)"
    )
    ratings: dict[MovieIdKey, Stars] = Field(
        description="matched stars by movieId (nothing is stored)",
        json_schema_extra={"additionalProperties": False},
    )


class Health(Strict):
    status: Literal["ok"]


class Readiness(Strict):
    status: Literal["ready", "not ready"]
    checks: dict[str, str]
    reasons: list[str] = Field(default_factory=list, description="present when not ready")


# --- operations -------------------------------------------------------------------------


@dataclass(frozen=True)
class Operation:
    """What the document says of one view: its summary, inputs, answer and errors.

    ``query``/``body`` name a model or a callable ``(Requests) -> model`` for the app's
    choices; ``response`` is the 200's model (None: ``media`` with ``text`` schema).
    """

    summary: str
    response: type[BaseModel] | None
    errors: tuple[int, ...] = ()
    query: type[BaseModel] | Callable[[Requests], type[BaseModel]] | None = None
    body: type[BaseModel] | Callable[[Requests], type[BaseModel]] | Any = None
    body_media: str = "application/json"
    path: type[BaseModel] | None = None
    media: str = "application/json"
    responses: tuple[tuple[int, str, type[BaseModel] | None], ...] = ()
    #: what the 200 holds, if more than the summary says
    answer: str = ""


def documented(operation: Operation) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Attach ``operation`` to a view; :func:`movierec.web.openapi.document` reads it."""

    def attach(view: Callable[..., Any]) -> Callable[..., Any]:
        view.openapi = operation  # type: ignore[attr-defined]  # read by openapi.document
        return view

    return attach
