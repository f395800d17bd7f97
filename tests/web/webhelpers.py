"""Helpers for web tests: read the pages like a user would, submit the form."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from flask.testing import FlaskClient

from movierec import models
from movierec.config import Settings, load_settings
from movierec.training import model_path


def csrf_token(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


def card_ids(html: str) -> list[int]:
    """Movie ids of the onboarding cards, in page order."""
    return [int(m) for m in re.findall(r'<li class="card" data-movie-id="(\d+)"', html)]


def checked_stars(html: str) -> dict[int, float]:
    """``{movieId: stars}`` pre-checked in the form (0 = not seen)."""
    found = re.findall(r'name="rating-(\d+)" id="r\d+-\d+" value="([\d.]+)" checked', html)
    return {int(m): float(v) for m, v in found}


def result_ids(html: str) -> list[int]:
    return [int(m) for m in re.findall(r'<li class="result" data-movie-id="(\d+)"', html)]


def result_years(html: str) -> list[int]:
    return [
        int(y)
        for y in re.findall(r'<li class="result" data-movie-id="\d+" data-year="(\d+)"', html)
    ]


def submit(
    client: FlaskClient,
    stars: dict[int, float],
    year: str = "any",
    follow: bool = True,
    **extra: str,
):
    """Open the form (for its CSRF token) and post ``stars`` with the year preference.

    The POST answers 303 to the picks page (Post/Redirect/Get); with ``follow`` (the
    default) the response is that page's, as a browser shows it.
    """
    page = client.get("/").get_data(as_text=True)
    data = {"csrf_token": csrf_token(page), "year": year, **extra}
    data.update({f"rating-{m}": str(s) for m, s in stars.items()})
    return client.post("/recommendations", data=data, follow_redirects=follow)


#: the data set of the served-model tests (test_model_reload, test_api_model)
SERVED_DATASET = "ml-latest-small"


def served_settings(home: Path) -> Settings:
    """Settings serving ``popular`` on ``SERVED_DATASET`` from ``home``."""
    return load_settings(
        {
            "MOVIEREC_HOME": str(home),
            "MOVIEREC_DATASET": SERVED_DATASET,
            "MOVIEREC_MODEL": "popular",
        }
    )


def save_served_popular(home: Path, dataset: Any, **params: float) -> Path:
    """A popular model (fitted in well under a second) with ``params`` saved (atomically)
    as the file ``served_settings(home)`` serves."""
    fitted = models.create("popular", **params).fit(dataset.ratings)
    return fitted.save(model_path(SERVED_DATASET, "popular", served_settings(home)))
