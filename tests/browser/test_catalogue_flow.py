"""In real Chromium: search and rate, a movie page with similar movies, an IMDb import,
the ratings page, recommendations that leave out everything rated, and "not interested"."""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

SIZES = {"desktop": {"width": 1366, "height": 900}, "mobile": {"width": 390, "height": 844}}


def _imdb_csv(path: Path) -> list[int]:
    """A 30-line IMDb export: 27 ml-latest-small movies (from links.csv), The Matrix at 10/10,
    a title the catalogue lacks, and the header. Returns the 27 movies' ids."""
    source = Path(os.environ.get("MOVIEREC_DATA_SOURCE", "data")) / "ml-latest-small"
    with open(source / "links.csv", newline="") as f:
        links = [r for r in csv.DictReader(f) if r["imdbId"]][100:127]
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["Const", "Your Rating", "Date Rated", "Title", "Year"])
        for i, row in enumerate(links):
            writer.writerow([f"tt{row['imdbId']}", 3 + i % 8, "2024-05-01", f"Movie {i}", ""])
        writer.writerow(["tt0133093", 10, "2024-05-02", "The Matrix", 1999])
        writer.writerow(["tt9999999", 7, "2024-05-03", "A Film From 2031", 2031])
    assert len(path.read_text().splitlines()) == 30
    return [int(r["movieId"]) for r in links]


def _shots(page, screenshots: Path, name: str) -> None:
    for label, size in SIZES.items():
        page.set_viewport_size(size)
        page.screenshot(path=str(screenshots / f"{name}-{label}.png"), full_page=True)
    page.set_viewport_size(SIZES["desktop"])


def test_search_rate_movie_page_import_and_ratings(browser, live_server, screenshots, tmp_path):
    page = browser.new_page(viewport=SIZES["desktop"])
    page.goto(live_server + "/")
    box = page.get_by_role("combobox", name="Search movies")
    box.fill("matrix")
    option = page.get_by_role("option").first
    option.wait_for()
    assert "Matrix" in option.inner_text()
    box.press("ArrowDown")
    assert box.get_attribute("aria-activedescendant") == "site-search-opt-0"
    box.press("Escape")
    assert box.get_attribute("aria-expanded") == "false"
    box.press("Enter")  # no suggestion highlighted: the form's GET /search?q=matrix
    page.wait_for_url(re.compile(r"/search\?q=matrix"))
    _shots(page, screenshots, "search")
    first = page.locator("li.hit").first
    assert first.get_attribute("data-movie-id") == "2571"
    first.locator("select[name=stars]").select_option("4.5")
    first.get_by_role("button", name="Rate").click()
    page.wait_for_url(re.compile(r"/search\?q=matrix"))
    assert "You gave The Matrix 4½ stars." in page.inner_text("main")

    page.get_by_role("link", name="The Matrix", exact=True).first.click()
    page.wait_for_url(re.compile(r"/movies/2571$"))
    assert page.locator("li.similar-item").count() == 10
    assert "You gave it" in page.inner_text("main")
    _shots(page, screenshots, "movie")

    csv_path = tmp_path / "imdb.csv"
    imported = _imdb_csv(csv_path)
    page.goto(live_server + "/ratings/import")
    page.get_by_label("IMDb ratings export").check()
    page.set_input_files("#import-file", str(csv_path))
    _shots(page, screenshots, "import")
    page.get_by_role("button", name="Import").click()
    heading = page.locator("h1").inner_text()
    assert heading == "Imported 28 of 29 rows", heading
    assert "A Film From 2031" in page.locator(".unmatched").inner_text()
    conflicts = page.locator(".conflicts")
    assert "The Matrix" in conflicts.inner_text()  # rated 4.5 here, 10/10 = 5 on IMDb
    _shots(page, screenshots, "imported")
    box = conflicts.get_by_role("checkbox", name="The Matrix")
    assert not box.is_checked()  # nothing is replaced unless ticked
    box.check()
    conflicts.get_by_role("button", name="Replace these").click()
    page.wait_for_url(re.compile(r"/ratings$"))
    matrix = page.locator('tr[data-movie-id="2571"] select[name=stars]')
    assert matrix.input_value() == "5.0"

    page.goto(live_server + "/ratings")
    listed = {
        int(x)
        for x in page.locator("tr[data-movie-id]").evaluate_all(
            "rows => rows.map(r => r.dataset.movieId)"
        )
    }
    assert listed == {2571, *imported}
    _shots(page, screenshots, "ratings")

    page.goto(live_server + "/recommendations")
    picks = {
        int(x)
        for x in page.locator("li.result").evaluate_all(
            "items => items.map(i => i.dataset.movieId)"
        )
    }
    assert picks and not picks & listed

    # "not interested" on the first pick: it goes, another takes its place, none rated
    first = page.locator("li.result").first
    gone = int(first.get_attribute("data-movie-id"))
    first.get_by_role("button", name=re.compile("Not interested")).click()
    page.locator("li.result.hidden-pick").wait_for()  # hidden in place, with Undo
    page.reload()
    page.locator(f"li.result[data-movie-id='{gone}']").wait_for(state="detached")
    after = [
        int(x)
        for x in page.locator("li.result").evaluate_all(
            "items => items.map(i => i.dataset.movieId)"
        )
    ]
    assert gone not in after and len(after) == len(picks)
    assert not set(after) & listed
    page.close()
