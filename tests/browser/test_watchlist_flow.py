"""Issue 20 items 1 and 2 in headless Chromium, at 1366 x 900 (light) and 390 x 844
(dark): add a pick to the watchlist (with JavaScript: the button flips in place), import a
Letterboxd watchlist,
set the country and services against a fake TMDB server on loopback, and filter the picks
to "on my services"; axe-core finds no serious or critical violation on any of the pages.

The browser may reach only the app: every other request is aborted, so nothing leaves
the machine (the fake TMDB gives no poster paths, and the app asks it from the server).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from browserhelpers import blocking_violations, whole_page_screenshot

from movierec.web import create_app
from movierec.web.testing import FakeTmdb, fake_tmdb_server, prepare_home

pytestmark = pytest.mark.browser

SIZES = {"desktop": {"width": 1366, "height": 900}, "phone": {"width": 390, "height": 844}}
LETTERBOXD = (
    "Date,Name,Year,Letterboxd URI\n"
    "2024-01-05,Heat,1995,https://boxd.it/1\n"
    "2024-02-11,Amélie,2001,https://boxd.it/2\n"
    "2024-03-01,A Film Nobody Made,2011,https://boxd.it/3\n"
)


@pytest.fixture(scope="module")
def watch_server(session_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app under waitress with TMDB answered by the fake server on loopback."""
    from waitress.server import create_server

    home = prepare_home(tmp_path_factory.mktemp("watch-home"), session_home, params={
        "ease": {"seed": 1},
    })  # fmt: skip
    with fake_tmdb_server(FakeTmdb(posters=False, append_providers=False)) as tmdb_url:
        app = create_app(
            {
                "TESTING": True,
                "SECRET_KEY": "browser-watch-test",
                "MOVIEREC_HOME": str(home),
                "DATASET": "ml-latest-small",
                "MOVIEREC_MODEL": "ease",
                "DATABASE_URL": f"sqlite:///{home / 'watch.db'}",
                "TMDB_API_KEY": "fake-key",
                "TMDB_READ_TOKEN": "",
                "MOVIEREC_TMDB_URL": tmdb_url,
                "TMDB_DEADLINE": 5.0,  # a busy test machine: wait for the fake's answers
            }
        )
        app.extensions["movierec"].recommender()  # warm, as serve() does
        server = create_server(app, host="127.0.0.1", port=0, threads=4)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        yield f"http://127.0.0.1:{server.effective_port}"
        server.close()
        thread.join(timeout=5)


def _axe():
    try:
        from axe_playwright_python.sync_playwright import Axe
    except ImportError:
        pytest.skip("axe-playwright-python is not installed (pip install -e '.[test]')")
    return Axe()


@pytest.mark.slow
@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_watchlist_and_where_to_watch(browser, watch_server, screenshots, tmp_path, size):
    axe = _axe()
    base = watch_server
    scheme = "light" if size == "desktop" else "dark"  # both schemes, one walk each
    context = browser.new_context(viewport=SIZES[size], locale="en-GB", color_scheme=scheme)
    context.route(
        "**/*",
        lambda route: route.continue_() if route.request.url.startswith(base) else route.abort(),
    )
    page = context.new_page()
    problems: dict[str, list[str]] = {}

    def check(name: str) -> None:
        page.wait_for_load_state("networkidle")
        found = blocking_violations(axe.run(page).response)
        if found:
            problems[name] = found
        whole_page_screenshot(page, screenshots / f"watchlist-{name}-{size}.png")

    # rate five movies, then add the first pick to the watchlist (fetch: no page load)
    page.goto(base + "/")
    cards = page.locator("li.card")
    for i, label in enumerate(("5 stars", "4½ stars", "4 stars", "2 stars", "3½ stars")):
        cards.nth(i).get_by_title(label, exact=True).click()
    page.get_by_role("button", name="Show my recommendations").click()
    page.wait_for_selector("ol.results")
    first = page.locator("li.result").first
    first_id = first.get_attribute("data-movie-id")
    first_title = first.locator(".result-title a").inner_text()
    button = first.locator(".watch-button")
    assert button.get_attribute("aria-pressed") == "false"
    url_before = page.url
    button.click()
    page.wait_for_function(
        "b => b.getAttribute('aria-pressed') === 'true'", arg=button.element_handle()
    )
    assert page.url == url_before  # flipped in place
    check("picks-added")

    # the next picks leave it out and rank it under "From your watchlist"
    page.goto(base + "/recommendations")
    ids = page.locator("ol.results li.result").evaluate_all(
        "items => items.map(i => i.dataset.movieId)"
    )
    assert first_id not in ids
    section = page.locator("section.from-watchlist")
    assert section.get_by_role("link", name=first_title).count() == 1
    check("picks-with-watchlist")

    # import a Letterboxd watchlist
    page.goto(base + "/watchlist/import")
    page.get_by_label("Letterboxd watchlist.csv").check()
    csv_file = tmp_path / "watchlist.csv"
    csv_file.write_text(LETTERBOXD, encoding="utf-8")
    page.get_by_label("CSV file").set_input_files(str(csv_file))
    check("import")
    page.get_by_role("button", name="Import").click()
    page.wait_for_url(base + "/watchlist")
    notice = page.locator("p.notice").first.inner_text()
    assert "added 2" in notice and "A Film Nobody Made (2011)" in notice
    titles = page.locator(".watchlist-title").all_inner_texts()
    assert "Heat" in titles and len(titles) == 3
    # where to watch in the browser's country (en-GB: GB), credited to JustWatch
    assert page.get_by_text("In GB", exact=False).count() >= 1
    assert page.get_by_role("link", name="Where-to-watch data by JustWatch").count() >= 1
    check("watchlist")

    # country and services
    page.get_by_role("link", name="Where to watch: GB").click()
    page.get_by_label("Country").select_option("US")
    page.get_by_label("Netflix").check()
    check("where-to-watch")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url("**/watchlist**")
    assert (
        "Saved: where to watch in US, 1 service ticked."
        in page.locator(".notice").first.inner_text()
    )

    # picks on my services only: every one streams on Netflix
    page.goto(base + "/recommendations")
    page.get_by_role("link", name="On my services").click()
    page.wait_for_selector("ol.results")
    assert "on=mine" in page.url
    picks = page.locator("ol.results li.result")
    assert picks.count() >= 1
    for i in range(picks.count()):
        assert "On your Netflix" in picks.nth(i).inner_text()
    check("on-my-services")

    # the movie page: where to watch, and taking it off the watchlist in place
    page.goto(f"{base}/movies/{first_id}")
    assert page.locator(".watch-section").get_by_text("Rent", exact=True).count() == 1
    check("movie")
    button = page.locator(".your-rating .watch-button")
    assert button.get_attribute("aria-pressed") == "true"
    button.click()
    page.wait_for_function(
        "b => b.getAttribute('aria-pressed') === 'false'", arg=button.element_handle()
    )
    page.goto(base + "/search?q=heat")
    check("search")

    context.close()
    assert problems == {}, problems
