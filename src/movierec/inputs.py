"""One parser per input: a movieId, stars, a year, a count (``n``, ``limit``) and a page.

The JSON API (:mod:`movierec.web.schemas` wraps these in its pydantic models), the forms
(``web/pages.py``, ``web/movies.py``, ``web/ratings.py``), the file imports
(:mod:`movierec.imports`) and the command line all call the functions here, so an input
means the same thing wherever it arrives. Each parser takes what its source gives (text
from a form, a query string or a CSV cell; a value from parsed JSON) and returns the plain
value, or ``None`` / :class:`~movierec.errors.InvalidInput` when it is not one; callers
word the message for their field (a CSV line, a form field, a JSON path) around the rule
texts below (``STARS_RULE`` ...), so the rule itself is written once.

The rules:

- a movieId has one spelling: ASCII decimal digits without sign, spaces or leading zeros,
  at most 10 of them (``"356"``, not ``"0356"``, ``"+356"``, ``" 356"``, ``"3_56"``, ``"３５６"``);
  in JSON a whole number 1 to ``MAX_MOVIE_ID`` (``356`` or ``356.0``, never ``true``);
- stars are 0.5 to 5 in half steps: a JSON number (not a string or a boolean), or in text
  ASCII digits with an optional decimal part (``"4.5"``, ``"4"``; not ``"４"``, ``"nan"``,
  ``"4_0"``); forms also take ``0`` for "not seen" / remove;
- a count or page is a whole number in a range: in JSON an integer or an integral float
  (JSON Schema counts ``38.0`` as an integer, so it is one), never a boolean or a string; in
  a query string ASCII digits without sign or leading zero;
- the year preference is one of ``YEAR_CHOICES``; a release year is 4 ASCII digits;
- a JSON body is read without ``NaN``/``Infinity`` and at most ``MAX_JSON_DEPTH`` deep.

This module sits below ``recommend`` and ``web`` (it imports only :mod:`movierec.errors`
and pydantic), so every layer may use it.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from movierec.errors import QUOTE_LIMIT, InvalidInput, quoted

#: the most digits a movieId has, and so the largest one
MOVIE_ID_DIGITS = 10
MAX_MOVIE_ID = 10**MOVIE_ID_DIGITS - 1
#: a movieId's one spelling, as a JSON Schema pattern and compiled
MOVIE_ID_PATTERN = f"^[1-9][0-9]{{0,{MOVIE_ID_DIGITS - 1}}}$"
_MOVIE_ID = re.compile(MOVIE_ID_PATTERN.strip("^$"), re.ASCII)
MOVIE_ID_RULE = "ASCII digits without sign, spaces or leading zeros"

STARS_MIN, STARS_MAX, STARS_STEP = 0.5, 5.0, 0.5
#: every star value, 0.5 .. 5.0
STAR_STEPS = tuple(i / 2 for i in range(1, 11))
STARS_RULE = "0.5 to 5 in half steps"
#: stars as text: ASCII digits, optionally a point and more digits (at most 8 characters)
_STARS_TEXT = re.compile(r"[0-9]{1,2}(?:\.[0-9]{1,5})?", re.ASCII)

#: the year preference of the picks: before 2010, from 2010 on, or either
YEAR_CHOICES = ("old", "new", "any")
#: a release year as files and titles give it
_RELEASE_YEAR = re.compile(r"[0-9]{4}", re.ASCII)

#: the most picks one request may ask for
MAX_N = 100
#: the highest page number a query may ask for
MAX_PAGE = 100_000
#: a whole number in a query string: ASCII digits without sign or leading zero
_WHOLE_TEXT = re.compile(r"[1-9][0-9]{0,9}", re.ASCII)

#: deepest JSON nesting accepted; a request needs 2 (``{"ratings": {...}}``)
MAX_JSON_DEPTH = 5

#: a query is searchable when it holds a character other than ASCII white space
#: (the same pattern is the API document's, so both agree on what "blank" is)
NOT_BLANK_PATTERN = "[^\t\n\v\f\r ]"
_NOT_BLANK = re.compile(NOT_BLANK_PATTERN)


# --- movieIds ---------------------------------------------------------------------------


def movie_id_text(text: str) -> int | None:
    """The movieId spelled by ``text`` (its one spelling only), else None."""
    return int(text) if _MOVIE_ID.fullmatch(text) else None


def movie_id_json(value: object) -> int | None:
    """A JSON movieId: a whole number 1 to ``MAX_MOVIE_ID`` (``356.0`` too), else None."""
    number = whole_json(value)
    return number if number is not None and 1 <= number <= MAX_MOVIE_ID else None


def parse_movie_id(text: str, field: str) -> int:
    """:func:`movie_id_text`, or ``InvalidInput`` naming ``field``."""
    movie_id = movie_id_text(text)
    if movie_id is None:
        raise InvalidInput(f"movieId must be {MOVIE_ID_RULE}, got {quoted(text)}", field=field)
    return movie_id


# --- stars ------------------------------------------------------------------------------


def is_stars(stars: float) -> bool:
    """Whether ``stars`` is 0.5 to 5 in half steps (NaN and infinities are not)."""
    return STARS_MIN <= stars <= STARS_MAX and (stars * 2).is_integer()


def stars_json(value: object) -> float | None:
    """Stars from parsed JSON: a number (not a string or bool) 0.5-5 in half steps."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, int):  # before float(): a 4,000-digit int overflows a float
        return float(value) if 1 <= value <= 5 else None
    return value if math.isfinite(value) and is_stars(value) else None


def stars_text(text: str, allow_zero: bool = False) -> float | None:
    """Stars from text (a form field, a CSV cell, the CLI): ``"4.5"``, ``"4"``; ``"0"``
    when ``allow_zero`` (a form's "not seen" or "remove"), else None."""
    if not _STARS_TEXT.fullmatch(text):
        return None
    stars = float(text)
    return stars if is_stars(stars) or (allow_zero and stars == 0) else None


# --- counts, pages, years ---------------------------------------------------------------


def whole_json(value: object) -> int | None:
    """A JSON whole number: an int or an integral float (``38.0``), never a bool."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return None


def whole_text(text: str) -> int | None:
    """A whole number >= 1 from a query string: ASCII digits, no sign or leading zero."""
    return int(text) if _WHOLE_TEXT.fullmatch(text) else None


def count_rule(name: str, low: int, high: int) -> str:
    return f"{name} must be a whole number from {low} to {high}"


def count_json(value: object, name: str, low: int, high: int) -> int:
    """A count (``n``, ...) from parsed JSON in ``low..high``, else ``InvalidInput``."""
    number = whole_json(value)
    if number is None or not low <= number <= high:
        raise InvalidInput(f"{count_rule(name, low, high)}, got {quoted(value)}", field=name)
    return number


def count_text(text: str, name: str, low: int, high: int) -> int:
    """A count or page from a query string or form in ``low..high``, else ``InvalidInput``."""
    number = whole_text(text)
    if number is None or not low <= number <= high:
        raise InvalidInput(f"{count_rule(name, low, high)}, got {quoted(text)}", field=name)
    return number


def year_preference(value: object, field: str = "year") -> str:
    """One of ``YEAR_CHOICES``, else ``InvalidInput`` naming ``field``."""
    if not isinstance(value, str) or value not in YEAR_CHOICES:
        raise InvalidInput(
            f"unknown year preference {quoted(value)}; choose old, new or any", field=field
        )
    return value


def release_year(text: str) -> int | None:
    """A 4-digit release year from text, else None."""
    return int(text) if _RELEASE_YEAR.fullmatch(text) else None


def searchable(text: str) -> bool:
    """Whether a search query holds something other than ASCII white space."""
    return _NOT_BLANK.search(text) is not None


# --- JSON bodies ------------------------------------------------------------------------


def load_json(text: str, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse JSON ``text`` nested at most ``max_depth`` deep, without ``NaN``/``Infinity``.

    ``InvalidInput`` (field ``body``) otherwise, also for an integer of more than 4,300
    digits; the message quotes at most ``QUOTE_LIMIT`` characters.
    """
    if json_depth_exceeds(text, max_depth):
        raise InvalidInput(
            f"the request body is nested more than {max_depth} levels deep", field="body"
        )
    try:
        return json.loads(text, parse_constant=_no_constant)
    except ValueError as exc:  # also int() of more than 4300 digits
        message = str(exc)[:QUOTE_LIMIT]
        raise InvalidInput(f"the request body is not valid JSON: {message}", field="body") from None


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


# Written by hand because the standard json module has no depth limit and recurses once
# per level (a RecursionError, i.e. a 500, near 1,000 levels), while catching RecursionError
# would leave the limit to the interpreter's stack. Strings are blanked out first (one C-speed
# regex pass) so brackets inside them don't count; then only the brackets are walked.
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKETS = re.compile(r"[\[\]{}]")


def json_depth_exceeds(text: str, limit: int) -> bool:
    """Whether JSON ``text`` opens more than ``limit`` arrays/objects inside each other."""
    depth = 0
    for match in _BRACKETS.finditer(_JSON_STRING.sub('""', text)):
        if match.group() in "[{":
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


# --- pydantic models --------------------------------------------------------------------

M = TypeVar("M", bound=BaseModel)


def validated(model: type[M], data: object, kind: str = "field") -> M:
    """``data`` validated as ``model``; the first problem as one ``InvalidInput``.

    ``kind`` names what the model's fields are in messages ("field", "parameter").
    An unknown field is reported first (a typo would otherwise be hidden behind another
    error); a parser above that refused a value keeps its own message; pydantic's other
    errors are worded as ``"<field>: <what>, got <value>"`` naming the top-level field.
    """
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
    first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    cause = first.get("ctx", {}).get("error")
    if isinstance(cause, InvalidInput):
        raise cause from None
    name = str(first["loc"][0]) if first["loc"] else "body"
    field = name[:QUOTE_LIMIT]
    if first["type"] == "extra_forbidden":
        expected = ", ".join(model.model_fields)
        raise InvalidInput(f"unknown {kind} {quoted(name)}; expected {expected}", field=field)
    if first["type"] == "missing":
        raise InvalidInput(f"{field} is required", field=field)
    raise InvalidInput(f"{field}: {first['msg']}, got {quoted(first['input'])}", field=field)
