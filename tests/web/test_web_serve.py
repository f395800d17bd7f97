"""``serve()``: binds, prepares data and model, hands the app to waitress.

The real multi-process server is exercised in tests/hardening/test_slow_clients.py.
"""

from __future__ import annotations

import dataclasses
import socket

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

    def fake_run(app, listener, settings, started=None):
        served.update(app=app, address=listener.getsockname(), settings=settings)
        served.update(started=started)

    monkeypatch.setattr(serve_module, "run_waitress", fake_run)
    serve_module.serve(host="127.0.0.1", port=0, settings=settings, workers=1)
    assert served["address"][0] == "127.0.0.1"
    # one process is watched too: its SIGTERM drains (tests/hardening/test_supervisor.py)
    assert served["started"] is not None
    app = served["app"]
    recommenders = app.extensions["movierec"].recommenders
    # every offered model is loaded (trained first where missing) before serving, the
    # default included, and nothing more is loaded after
    assert recommenders.loaded == sorted(recommenders.choices) == ["ease", "nmf", "popular", "svd"]
    assert recommenders.frozen
    assert app.extensions["movierec"].settings == settings
    assert "http://127.0.0.1:0/" in capsys.readouterr().out
    assert app.test_client().get("/").status_code == 200


def test_waitress_gets_the_limits_from_the_settings(monkeypatch):
    settings = dataclasses.replace(
        load_settings({}), threads=3, connection_limit=77, channel_timeout=9, max_body=4096
    )
    made = {}

    class FakeServer:
        def run(self):
            made["ran"] = True

    def fake_create_server(app, **kwargs):
        made.update(kwargs)
        return FakeServer()

    monkeypatch.setattr(waitress, "create_server", fake_create_server)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        serve_module.run_waitress(object(), listener, settings)
        assert made["sockets"] == [listener]
    assert made["ran"]
    assert (made["threads"], made["connection_limit"], made["channel_timeout"]) == (3, 77, 9)
    # the app refuses bodies over max_body; waitress lets a ratings-file import through
    assert made["max_request_body_size"] == serve_module.largest_body(settings)
    assert made["max_request_body_size"] >= 5 * 1024 * 1024
    assert made["asyncore_use_poll"] is True


def test_serve_trains_a_missing_model(session_home, tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    (home / "data").symlink_to(session_home / "data", target_is_directory=True)
    settings = dataclasses.replace(load_settings({"MOVIEREC_HOME": str(home)}), model="popular")
    monkeypatch.setattr(serve_module, "run_waitress", lambda app, listener, settings, **_: None)
    serve_module.serve(port=0, settings=settings, workers=1)
    assert (home / "models" / "ml-latest-small-popular.npz").exists()


def test_waitress_reads_the_larger_of_the_app_cap_and_the_import_cap():
    from movierec.web.ratings import IMPORT_MAX_BODY

    small = dataclasses.replace(load_settings({}), max_body=4096)
    large = dataclasses.replace(load_settings({}), max_body=IMPORT_MAX_BODY * 2)
    assert serve_module.largest_body(small) == IMPORT_MAX_BODY
    assert serve_module.largest_body(large) == IMPORT_MAX_BODY * 2


def test_serve_without_training_offers_only_the_models_it_has(session_home, tmp_path, capsys):
    """``--no-train``: the default model must be there; any other offered model that is
    not is left out of the offer, said in one line, and never trained."""
    from movierec.web.testing import prepare_home

    home = prepare_home(tmp_path / "home", session_home, params={"popular": {}})
    settings = dataclasses.replace(
        load_settings({"MOVIEREC_HOME": str(home)}),
        database_url=f"sqlite:///{tmp_path / 'serve.db'}",
        model="popular",
    )
    app = serve_module.prepare_app(settings, progress=False, train=False)
    services = app.extensions["movierec"]
    assert services.recommenders.choices == ("popular",)
    assert list(services.model_choices) == ["popular"]
    said = capsys.readouterr().err
    for name in ("ease", "svd", "nmf"):
        assert f"not offering {name!r}" in said
        assert not (home / "models" / f"ml-latest-small-{name}.npz").exists()
    answer = app.test_client().post("/api/v1/recommendations", json={"model": "svd"})
    assert answer.status_code == 400 and answer.get_json()["field"] == "model"
