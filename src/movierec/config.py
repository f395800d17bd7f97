"""Configuration, read from the environment in one place.

- ``MOVIEREC_HOME``: where data, models and the database live (default: a per-user
  data directory, e.g. ``~/.local/share/movierec``).
- ``MOVIEREC_DATA_SOURCE``: a mirror for MovieLens files: a directory holding
  ``<name>/`` folders or ``<name>.zip`` files, a zip file, or a base URL. Unset means
  the official GroupLens site.
- ``TMDB_API_KEY`` (v3 key) or ``TMDB_READ_TOKEN`` (v4 bearer token): posters and trailers.
- ``DATABASE_URL``: SQLAlchemy URL; default a SQLite file under ``MOVIEREC_HOME``.
- ``MOVIEREC_DATASET`` / ``MOVIEREC_MODEL``: what ``serve`` and ``recommend`` use by default.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from platformdirs import user_data_dir

DEFAULT_DATASET = "ml-latest-small"
DEFAULT_MODEL = "ease"  # best on the onboarding protocol (README, "Measured")


@dataclass(frozen=True)
class Settings:
    """Everything movierec reads from the environment."""

    home: Path
    data_source: str | None
    tmdb_api_key: str | None
    tmdb_read_token: str | None
    database_url: str
    dataset: str
    model: str

    @property
    def data_dir(self) -> Path:
        """Where fetched data sets live: ``<home>/data/<name>/``."""
        return self.home / "data"

    @property
    def models_dir(self) -> Path:
        """Where trained models live: ``<home>/models/<dataset>-<model>.npz``."""
        return self.home / "models"


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    """Read the settings from ``environ`` (default ``os.environ``)."""
    env = os.environ if environ is None else environ
    home = Path(env.get("MOVIEREC_HOME") or user_data_dir("movierec", appauthor=False))
    home = home.expanduser()
    database_url = env.get("DATABASE_URL") or f"sqlite:///{home / 'movierec.db'}"
    return Settings(
        home=home,
        data_source=env.get("MOVIEREC_DATA_SOURCE") or None,
        tmdb_api_key=env.get("TMDB_API_KEY") or None,
        tmdb_read_token=env.get("TMDB_READ_TOKEN") or None,
        database_url=database_url,
        dataset=env.get("MOVIEREC_DATASET") or DEFAULT_DATASET,
        model=env.get("MOVIEREC_MODEL") or DEFAULT_MODEL,
    )
