"""``serve()``: prepares data and model, warms them, hands the app to waitress."""

from __future__ import annotations

import dataclasses

import waitress

from movierec.config import load_settings
from movierec.web import serve as serve_module


def test_serve_warms_the_default_model_and_uses_waitress(web_home, tmp_path, monkeypatch, capsys):
    settings = dataclasses.replace(
        load_settings({"MOVIEREC_HOME": str(web_home)}),
        database_url=f"sqlite:///{tmp_path / 'serve.db'}",
        model="popular",
    )
    served = {}

    def fake_serve(app, **kwargs):
        served["app"] = app
        served.update(kwargs)

    monkeypatch.setattr(waitress, "serve", fake_serve)
    serve_module.serve(host="127.0.0.1", port=5099, settings=settings)
    assert served["host"] == "127.0.0.1" and served["port"] == 5099
    app = served["app"]
    assert app.extensions["movierec"].recommenders.loaded == ["popular"]  # warm
    assert app.extensions["movierec"].settings == settings
    assert "http://127.0.0.1:5099/" in capsys.readouterr().out
    assert app.test_client().get("/").status_code == 200


def test_serve_trains_a_missing_model(session_home, tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    (home / "data").symlink_to(session_home / "data", target_is_directory=True)
    settings = dataclasses.replace(load_settings({"MOVIEREC_HOME": str(home)}), model="popular")
    monkeypatch.setattr(waitress, "serve", lambda app, **kwargs: None)
    serve_module.serve(settings=settings)
    assert (home / "models" / "ml-latest-small-popular.npz").exists()
