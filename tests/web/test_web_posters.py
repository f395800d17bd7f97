"""Drawn placeholder posters."""

from __future__ import annotations

from xml.etree import ElementTree

from movierec.web.posters import placeholder_svg


def test_poster_route_draws_the_title(client):
    response = client.get("/poster/2571.svg")
    assert response.status_code == 200 and response.mimetype == "image/svg+xml"
    assert "max-age" in response.headers["Cache-Control"]
    svg = response.get_data(as_text=True)
    ElementTree.fromstring(svg)  # well-formed
    assert "The Matrix" in svg and "1999" in svg


def test_unknown_movie_poster_is_404(client):
    assert client.get("/poster/99999999.svg").status_code == 404


def test_titles_are_escaped_and_long_ones_shortened():
    svg = placeholder_svg(1, "Tom & Jerry <Live> " + "word " * 40, 2001)
    root = ElementTree.fromstring(svg)
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert texts[0].startswith("Tom & Jerry") and texts[-1] == "2001"
    assert len(texts) <= 7 and texts[-2].endswith("…")


def test_a_title_cannot_break_out_of_the_aria_label():
    for title in ('Evil" onload="alert(1)', "Evil' onload='alert(1)", """Both " and ' <x>"""):
        svg = placeholder_svg(1, title, 2001)
        root = ElementTree.fromstring(svg)  # well-formed: nothing broke out
        assert root.get("aria-label") == title
        assert "onload" not in root.attrib and set(root.attrib) == {
            "viewBox",
            "width",
            "height",
            "role",
            "aria-label",
        }
