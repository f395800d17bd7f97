"""movierec.inputs: one parser per input, the same rule wherever the input arrives."""

from __future__ import annotations

import json
import math
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict

from movierec import inputs
from movierec.errors import InvalidInput

# --- movieIds ---------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["1", "356", "2571", "1000000001", "9999999999"])
def test_a_movie_id_has_one_spelling(text):
    assert inputs.movie_id_text(text) == int(text)
    assert str(inputs.movie_id_text(text)) == text


@pytest.mark.parametrize(
    "text",
    ["", "0", "0356", "+356", "-1", " 356", "356 ", "3_56", "３５６", "٣٥٦", "²", "1.0", "1e3",
     "0x10", "10000000000", "9" * 5000],
)  # fmt: skip
def test_other_spellings_are_not_movie_ids(text):
    assert inputs.movie_id_text(text) is None
    with pytest.raises(InvalidInput) as raised:
        inputs.parse_movie_id(text, field="movie_id")
    assert raised.value.field == "movie_id" and len(str(raised.value)) < 200


@given(st.integers(min_value=1, max_value=inputs.MAX_MOVIE_ID))
def test_every_id_round_trips_through_its_spelling(movie_id):
    assert inputs.movie_id_text(str(movie_id)) == movie_id
    assert inputs.movie_id_json(movie_id) == movie_id
    assert inputs.movie_id_json(float(movie_id)) == movie_id  # 356.0 is 356 in JSON


@given(st.text(max_size=12))
def test_the_text_rule_is_the_documented_pattern(text):
    """What the API document says (``MOVIE_ID_PATTERN``) is what the parser takes."""
    documented = re.fullmatch(inputs.MOVIE_ID_PATTERN.strip("^$"), text) is not None
    # the document's pattern is ECMA-262: [0-9] is ASCII, as in the parser
    assert (inputs.movie_id_text(text) is not None) == documented


@pytest.mark.parametrize("value", [True, False, 0, -1, 35.5, "356", None, 10**10, math.inf])
def test_json_movie_ids_are_whole_numbers_in_range(value):
    assert inputs.movie_id_json(value) is None


# --- stars ------------------------------------------------------------------------------


def test_the_star_steps_are_the_half_steps():
    assert inputs.STAR_STEPS == (0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0)
    assert all(inputs.is_stars(s) for s in inputs.STAR_STEPS)


@pytest.mark.parametrize("value", [0.5, 1, 3, 4.5, 5, 5.0])
def test_json_stars(value):
    assert inputs.stars_json(value) == float(value)


@pytest.mark.parametrize(
    "value", ["4.5", True, False, None, [4], 0, 6, 4.2, 0.25, math.nan, math.inf, 10**400]
)
def test_json_stars_refused(value):
    assert inputs.stars_json(value) is None


@pytest.mark.parametrize(
    ("text", "allow_zero", "expected"),
    [("4.5", False, 4.5), ("4", False, 4.0), ("5.0", False, 5.0), ("0.5", False, 0.5),
     ("0", True, 0.0), ("0", False, None), ("4.2", False, None), ("5.5", False, None),
     ("nan", True, None), ("inf", True, None), (" 4", False, None), ("４", False, None),
     ("4_0", False, None), ("1e0", False, None), ("-1", True, None), ("", True, None),
     ("9" * 5000, True, None)],
)  # fmt: skip
def test_text_stars(text, allow_zero, expected):
    assert inputs.stars_text(text, allow_zero=allow_zero) == expected


@given(st.sampled_from(inputs.STAR_STEPS))
def test_text_and_json_stars_agree(stars):
    assert inputs.stars_text(str(stars)) == inputs.stars_json(stars) == stars
    assert inputs.stars_json(json.loads(json.dumps(stars))) == stars


# --- counts, pages, years ---------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [(38, 38), (38.0, 38), (1e2, 100)])
def test_json_whole_numbers_include_integral_floats(value, expected):
    """JSON Schema counts 38.0 as an integer, so the parser does too."""
    assert inputs.count_json(value, "n", 1, 100) == expected


@pytest.mark.parametrize("value", [0, 101, 2.5, "5", True, None, 10**30, math.inf, math.nan])
def test_json_counts_refused_naming_the_field(value):
    with pytest.raises(InvalidInput) as raised:
        inputs.count_json(value, "n", 1, 100)
    assert raised.value.field == "n"
    assert str(raised.value).startswith("n must be a whole number from 1 to 100, got")


@pytest.mark.parametrize("text", ["0", "01", "+1", "-1", " 1", "1.0", "１", "", "9" * 500])
def test_query_counts_are_ascii_digits_without_leading_zero(text):
    with pytest.raises(InvalidInput) as raised:
        inputs.count_text(text, "page", 1, inputs.MAX_PAGE)
    assert raised.value.field == "page" and len(str(raised.value)) < 200


def test_query_counts():
    assert inputs.count_text("1", "page", 1, inputs.MAX_PAGE) == 1
    assert inputs.count_text("100000", "page", 1, inputs.MAX_PAGE) == inputs.MAX_PAGE
    with pytest.raises(InvalidInput):
        inputs.count_text("100001", "page", 1, inputs.MAX_PAGE)


def test_year_preference_and_release_year():
    assert [inputs.year_preference(y) for y in inputs.YEAR_CHOICES] == ["old", "new", "any"]
    for bad in ("recent", "", None, 2000, "OLD"):
        with pytest.raises(InvalidInput, match="unknown year preference .*; choose old, new"):
            inputs.year_preference(bad)
    assert inputs.release_year("1999") == 1999
    assert inputs.release_year("99") is None and inputs.release_year("１９９９") is None


@pytest.mark.parametrize(
    ("text", "searchable"),
    [("a", True), (" x ", True), ("\u00a0", True), (" ", False), ("\t\n", False), ("", False)],
)
def test_searchable_is_the_documented_pattern(text, searchable):
    assert inputs.searchable(text) is searchable
    assert (re.search(inputs.NOT_BLANK_PATTERN, text) is not None) is searchable


# --- JSON bodies ------------------------------------------------------------------------


def test_load_json_refuses_depth_and_constants():
    assert inputs.load_json('{"ratings": {"356": 4}}') == {"ratings": {"356": 4}}
    for text in ('{"a": NaN}', '{"a": Infinity}', "[-Infinity]", '{"a": 1', "9" * 5000):
        with pytest.raises(InvalidInput) as raised:
            inputs.load_json(text)
        assert raised.value.field == "body" and len(str(raised.value)) < 200
    deep = "[" * (inputs.MAX_JSON_DEPTH + 1) + "]" * (inputs.MAX_JSON_DEPTH + 1)
    with pytest.raises(InvalidInput, match="nested more than 5 levels"):
        inputs.load_json(deep)
    assert inputs.load_json('{"a": "[[[[[[[[[["}') == {"a": "[[[[[[[[[["}


# --- pydantic models --------------------------------------------------------------------


class Query(BaseModel):
    model_config = ConfigDict(extra="forbid")
    n: int = 5
    year: str = "any"


def test_validated_reports_an_unknown_field_first():
    with pytest.raises(InvalidInput) as raised:
        inputs.validated(Query, {"n": "x", "colour": "red"})
    assert raised.value.field == "colour"
    assert str(raised.value) == "unknown field 'colour'; expected n, year"
    with pytest.raises(InvalidInput, match="unknown parameter 'x'"):
        inputs.validated(Query, {"x": 1}, "parameter")


def test_validated_words_pydantic_errors_by_field():
    with pytest.raises(InvalidInput) as raised:
        inputs.validated(Query, {"n": "x" * 500})
    assert raised.value.field == "n" and len(str(raised.value)) < 250
    assert inputs.validated(Query, {"n": 3}).n == 3
