"""MOVIEREC_MODEL_CHECK_EVERY: how often a server looks for newer model files; 0 leaves
only SIGHUP (hosts sharing the files, one at a time; tests/deploy shows the rollout)."""

from __future__ import annotations

import pytest

from movierec.config import DEFAULT_MODEL_CHECK_EVERY, load_settings
from movierec.errors import InvalidInput


def test_the_default_and_zero():
    assert load_settings({}).model_check_every == DEFAULT_MODEL_CHECK_EVERY
    assert load_settings({"MOVIEREC_MODEL_CHECK_EVERY": "0"}).model_check_every == 0


@pytest.mark.parametrize("raw", ["-1", "ten", "2.5"])
def test_a_malformed_value_names_the_variable(raw: str):
    with pytest.raises(InvalidInput, match="MOVIEREC_MODEL_CHECK_EVERY"):
        load_settings({"MOVIEREC_MODEL_CHECK_EVERY": raw})


@pytest.mark.parametrize("every", ["0", "30"])
def test_the_model_api_says_how_often_files_are_looked_at(make_app, monkeypatch, every: str):
    monkeypatch.setenv("MOVIEREC_MODEL_CHECK_EVERY", every)
    answer = make_app().test_client().get("/api/v1/model")
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.get_json()["checks_every_seconds"] == int(every)
