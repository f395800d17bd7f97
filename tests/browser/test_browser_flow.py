"""End to end in real headless Chromium: rate five movies, choose "old", get five picks."""

from __future__ import annotations

import pytest
from browserhelpers import whole_page_screenshot

pytestmark = pytest.mark.browser


def test_rate_five_by_keyboard_and_click_then_see_old_picks(browser, live_server, screenshots):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    console_errors: list[str] = []
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    page.goto(live_server + "/")
    cards = page.locator("li.card")
    assert cards.count() == 15
    rated_titles = []

    # three by keyboard: Tab into the group's "Not seen", arrows move through the stars
    for i, presses in enumerate((8, 9, 6)):
        card = cards.nth(i)
        card.get_by_text("Not seen").click()  # selects "Not seen" and focuses the group
        for _ in range(presses):
            page.keyboard.press("ArrowRight")
        checked = card.locator("input[type=radio]:checked")
        assert checked.get_attribute("value") == str(presses / 2)
        assert (
            card.locator("[data-rating-value]").inner_text()
            == f"{presses // 2}{'½' if presses % 2 else ''} stars"
        )
        rated_titles.append(card.locator(".card-title").inner_text())

    # two by clicking a star: each half star is the label of a radio named e.g. "5 stars"
    for i, label in ((3, "5 stars"), (4, "2½ stars")):
        card = cards.nth(i)
        card.get_by_title(label, exact=True).click()
        assert card.get_by_label(label, exact=True).is_checked()
        assert card.locator("input[type=radio]:checked").get_attribute("value") in ("5.0", "2.5")
        rated_titles.append(card.locator(".card-title").inner_text())

    page.locator("select[name=year]").select_option(label="Older, before 2010")
    assert page.locator("select[name=year]").input_value() == "old"
    assert page.locator("[data-rated-count]").inner_text() == "You have rated 5 movies"
    whole_page_screenshot(page, screenshots / "onboarding.png")

    page.get_by_role("button", name="Show my recommendations").click()
    page.wait_for_selector("ol.results")
    assert page.title().startswith("Your recommendations")
    assert "/recommendations?year=old" in page.url  # Post/Redirect/Get: a GET page
    results = page.locator("li.result")
    assert results.count() == 5
    years = [int(results.nth(i).get_attribute("data-year")) for i in range(5)]
    assert all(year < 2010 for year in years), years
    titles = [results.nth(i).locator(".result-title a").inner_text() for i in range(5)]
    assert not set(titles) & set(rated_titles)
    assert page.get_by_text("Because you rated").count() >= 1
    whole_page_screenshot(page, screenshots / "results.png")

    # back to the form: the five ratings are there again
    page.get_by_role("link", name="Rate movies").click()
    assert page.locator(".stars input:checked").count() == 5
    assert not console_errors, console_errors
    page.close()
    assert (screenshots / "onboarding.png").stat().st_size > 10_000
