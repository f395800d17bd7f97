"""Error pages: 404, 400, 405 and 500, as pages and as JSON under /api/."""

from __future__ import annotations

import pytest


def test_404_page(client):
    response = client.get("/no/such/page")
    assert response.status_code == 404
    html = response.get_data(as_text=True)
    assert "Page not found" in html and 'href="/"' in html and "<footer" in html


def test_invalid_input_page_is_a_400_naming_the_problem(client):
    response = client.get("/recommendations?year=soon")
    assert response.status_code == 400
    assert "unknown year preference" in response.get_data(as_text=True)


def test_405_page(client):
    response = client.delete("/")
    assert response.status_code == 405 and "GET" in response.headers["Allow"]


@pytest.fixture
def broken_app(make_app):
    app = make_app()
    app.config["PROPAGATE_EXCEPTIONS"] = False

    @app.get("/boom")
    def boom():
        raise RuntimeError("kaput")

    @app.get("/api/v1/boom")
    def api_boom():
        raise RuntimeError("kaput")

    return app


def test_500_page_hides_the_error(broken_app):
    response = broken_app.test_client().get("/boom")
    assert response.status_code == 500
    html = response.get_data(as_text=True)
    assert "Something went wrong on our side" in html and "kaput" not in html


def test_500_under_api_is_json(broken_app):
    response = broken_app.test_client().get("/api/v1/boom")
    assert response.status_code == 500 and response.is_json
    assert response.get_json()["error"]


def test_model_trouble_is_a_503_not_a_crash(make_app, web_home, monkeypatch):
    from movierec.config import load_settings
    from movierec.errors import ModelError
    from movierec.web.services import Recommenders

    def failing_loader(dataset, name, settings):
        raise ModelError(f"cannot read model file for {name}")

    settings = load_settings({"MOVIEREC_HOME": str(web_home)})
    app = make_app(RECOMMENDERS=Recommenders(settings, loader=failing_loader))
    response = app.test_client().post("/api/v1/recommendations", json={"ratings": {"1": 4}})
    assert response.status_code == 503 and set(response.get_json()) == {"error", "field"}
    # the detail goes to the log only (issue 9: no internal text, e.g. file paths, shown)
    assert "cannot read model file" not in response.get_json()["error"]
    assert "try again" in response.get_json()["error"]
