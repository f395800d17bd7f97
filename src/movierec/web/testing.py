"""Helpers for tests and benchmarks of the web app (no network, small models).

- :class:`FakeTmdb`: a TMDB transport answering from memory, counting requests.
- :func:`prepare_home`: a ``MOVIEREC_HOME`` that reuses fetched data and holds
  quickly trained models, so an app starts in about a second.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from movierec import models
from movierec.config import load_settings
from movierec.data import load_dataset
from movierec.training import model_path, train_model

#: few epochs: good enough to rank sensibly, fast to train
QUICK_PARAMS: dict[str, dict[str, Any]] = {
    "svd": {"n_epochs": 8, "n_factors": 30, "seed": 1},
    "nmf": {"n_epochs": 8, "seed": 1},
    "popular": {},
}


class FakeTmdb:
    """A TMDB transport for tests: every movie has a poster, an overview and a trailer.

    ``missing`` ids answer 404; ``delay`` seconds are slept per request; ``fail``
    raises as a network error would. ``calls`` lists the paths asked, in order.
    """

    def __init__(
        self,
        missing: Iterable[int] = (),
        delay: float = 0.0,
        fail: bool = False,
        append_videos: bool = True,
    ) -> None:
        self.missing = set(missing)
        self.delay = delay
        self.fail = fail
        self.append_videos = append_videos
        self.calls: list[str] = []
        self.requests: list[tuple[str, dict[str, str], dict[str, str]]] = []
        self._lock = threading.Lock()

    def __call__(
        self, url: str, params: dict[str, str], headers: dict[str, str], timeout: float
    ) -> tuple[int, Any]:
        path = urlparse(url).path.removeprefix("/3")
        with self._lock:
            self.calls.append(path)
            self.requests.append((path, dict(params), dict(headers)))
        if self.delay:
            time.sleep(self.delay)
        if self.fail:
            raise ConnectionError("TMDB is unreachable (fake)")
        parts = path.strip("/").split("/")
        if len(parts) < 2 or parts[0] != "movie" or not parts[1].isdigit():
            return 404, {"status_message": "not found"}
        tmdb_id = int(parts[1])
        if tmdb_id in self.missing:
            return 404, {"status_message": "The resource you requested could not be found."}
        if parts[2:] == ["videos"]:
            return 200, self.videos(tmdb_id)
        body = self.details(tmdb_id)
        if self.append_videos and params.get("append_to_response") == "videos":
            body["videos"] = self.videos(tmdb_id)
        return 200, body

    @staticmethod
    def details(tmdb_id: int) -> dict[str, Any]:
        return {
            "id": tmdb_id,
            "poster_path": f"/poster{tmdb_id}.jpg",
            "overview": f"The overview of TMDB movie {tmdb_id}.",
        }

    @staticmethod
    def videos(tmdb_id: int) -> dict[str, Any]:
        return {
            "id": tmdb_id,
            "results": [
                {"site": "YouTube", "type": "Teaser", "key": f"teaser{tmdb_id}", "official": True},
                {"site": "YouTube", "type": "Trailer", "key": f"yt{tmdb_id}", "official": True},
            ],
        }


def prepare_home(
    home: str | os.PathLike[str],
    data_home: str | os.PathLike[str],
    dataset: str = "ml-latest-small",
    params: Mapping[str, Mapping[str, Any]] | None = None,
) -> Path:
    """Make ``home`` a ``MOVIEREC_HOME`` using ``data_home``'s fetched data.

    ``home/data`` links to ``data_home/data``; each model in ``params`` (default
    :data:`QUICK_PARAMS`) not saved yet is trained with those parameters.
    """
    home = Path(home)
    home.mkdir(parents=True, exist_ok=True)
    data = home / "data"
    if not data.exists():
        data.symlink_to(Path(data_home).resolve() / "data", target_is_directory=True)
    settings = load_settings({"MOVIEREC_HOME": str(home)})
    loaded = None
    for name, model_params in (params or QUICK_PARAMS).items():
        if model_path(dataset, name, settings).exists():
            continue
        loaded = loaded or load_dataset(dataset, home=home)
        known = models.model_class(name).defaults
        kept = {k: v for k, v in model_params.items() if k in known or k == "seed"}
        train_model(loaded, name, settings, progress=False, **kept)
    return home
