"""Settings: one typed, frozen object read from the environment once; each field declares
its variable and its one parser, and a bad value is one line naming both."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from movierec import config
from movierec.config import ENV_KEYS, Settings, load_settings
from movierec.errors import InvalidInput


def test_every_field_declares_its_variable_and_env_keys_follow() -> None:
    fields = dataclasses.fields(Settings)
    assert all(isinstance(f.metadata.get("env"), config.EnvVar) for f in fields)
    declared = [name for f in fields for name in f.metadata["env"].names]
    assert sorted(declared) == sorted(ENV_KEYS) and len(set(declared)) == len(declared)


def test_defaults_and_typed_values(tmp_path: Path) -> None:
    empty = load_settings({"MOVIEREC_HOME": str(tmp_path)})
    assert empty.home == tmp_path and empty.database_url == f"sqlite:///{tmp_path}/movierec.db"
    assert (empty.max_body, empty.https, empty.access_log) == (1024 * 1024, False, True)
    assert empty.trusted_hosts == () and empty.secret_key is None and empty.region == "US"
    given = load_settings(
        {
            "MOVIEREC_HOME": str(tmp_path),
            "MOVIEREC_MAX_BODY": " 4096 ",
            "MOVIEREC_HTTPS": "on",
            "MOVIEREC_TRUSTED_HOSTS": "a.example, b.example,,",
            "SECRET_KEY": "  ",  # blank: unset, so the next name counts
            "MOVIEREC_SECRET_KEY": "s" * 20,
            "MOVIEREC_LOG_FORMAT": "JSON",
            "MOVIEREC_REGION": "gb",
            "MOVIEREC_TMDB_URL": "http://127.0.0.1:8080/3/",
        }
    )
    assert given.max_body == 4096 and given.https is True
    assert given.trusted_hosts == ("a.example", "b.example")
    assert given.secret_key == "s" * 20 and given.log_format == "json" and given.region == "GB"
    assert given.tmdb_url == "http://127.0.0.1:8080/3"
    with pytest.raises(dataclasses.FrozenInstanceError):
        given.max_body = 1  # type: ignore[misc]  # frozen: the point of the test


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        (
            "MOVIEREC_MAX_BODY",
            "12",
            "MOVIEREC_MAX_BODY='12' is not a whole number of at least 1024",
        ),
        ("MOVIEREC_WORKERS", "two", "MOVIEREC_WORKERS='two' is not a whole number of at least 1"),
        ("MOVIEREC_TRUSTED_PROXIES", "-1", "MOVIEREC_TRUSTED_PROXIES='-1' is not a whole"),
        ("MOVIEREC_HTTPS", "maybe", "MOVIEREC_HTTPS='maybe': expected 1 or 0"),
        ("MOVIEREC_LOG_FORMAT", "xml", "MOVIEREC_LOG_FORMAT='xml': expected text or json"),
        ("MOVIEREC_METRICS_TOKEN", "short", "MOVIEREC_METRICS_TOKEN must be at least 16"),
        ("MOVIEREC_TMDB_URL", "ftp://x", "MOVIEREC_TMDB_URL='ftp://x': expected an http(s)"),
        ("MOVIEREC_REGION", "USA", "MOVIEREC_REGION='USA': expected a two-letter country"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_variable(name: str, value: str, words: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        load_settings({name: value})
    assert str(caught.value).startswith(words) and "\n" not in str(caught.value)
    assert caught.value.field == name


def test_read_once_until_the_environment_changes(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MOVIEREC_HOME", str(tmp_path))
    first = load_settings()
    assert load_settings() is first
    monkeypatch.setenv("MOVIEREC_THREADS", "3")
    again = load_settings()
    assert again is not first and again.threads == 3
