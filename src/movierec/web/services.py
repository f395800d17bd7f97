"""What the app keeps between requests: the store, TMDB, the catalogue and the models.

One :class:`Services` per app (in ``app.extensions["movierec"]``). Models are loaded
(or trained, the first time) on first use through :func:`movierec.training.ensure_model`
and kept as one :class:`~movierec.recommend.RecommendService` per model name; a lock per
name makes concurrent first requests load a model once.

**A newer model file is swapped in without a restart** (:meth:`Recommenders.refresh`):
when the file's identity (inode, size, modification time) changes, its metadata is read
(a few KB); a new version is loaded memory-mapped (its arrays are views of the file's
pages, shared by every process and released with the last reference), checked as
``serve`` checks a model at start (:func:`movierec.training.serving_problem`), and only
then put in place of the old service by one dict assignment. A request that already
holds the old service finishes on it; nothing else keeps it (the onboarding strategies
and similar-movie finders built from a model are rebuilt for the new one), so its memory
goes with the last such request. A damaged or failing file is logged in one line and
never swapped in.

**Movies added to the catalogue show up without a restart** (:meth:`Recommenders.
refresh_catalog`, called before each request): at most every ``CATALOG_CHECK_EVERY``
seconds a process looks at the added-movies file's identity (one ``stat``); when it
changed, the file is read (a few KB), the catalogue rebuilt from the data set's own
movies plus the added ones, and every model's service rebuilt on it (about 0.1 s each
for ml-latest-small) and swapped in; the search index follows (:mod:`movierec.web.
catalogue`).
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import current_app

from movierec import models
from movierec.config import Settings
from movierec.data import Catalog, Dataset, Movie, load_dataset
from movierec.data.added import added_path, file_stamp, read_added, with_added
from movierec.errors import DataError, InvalidInput, ModelError, MovierecError
from movierec.models.files import FileVersion, UnusableFile, read_model_meta
from movierec.onboarding import DEFAULT_STRATEGY, Batch, Onboarding, min_new_for
from movierec.recommend import RecommendService
from movierec.store import SqlTmdbCache, Store
from movierec.tmdb import NearCache, TmdbClient, TmdbService
from movierec.training import model_path, serving_problem

log = logging.getLogger(__name__)
#: seconds between two looks (one ``stat``) at the added-movies file, per process
CATALOG_CHECK_EVERY = 3.0
ONBOARDING_POOL = 50  # the most-rated movies the onboarding cards are drawn from
ONBOARDING_CARDS = 15
#: on the first page, at most this many cards show movies the visitor rated before
ONBOARDING_RERATE = 5
MODEL_CHOICES = ("ease", "svd", "nmf", "popular")
#: the algorithm picker in the visitor's words (in the spirit of MovieLens's own): a short
#: name, and one line on what each does for the visitor (``MODEL_HELP``)
MODEL_LABELS = {
    "ease": "Taste match",
    "svd": "Star predictor",
    "nmf": "Taste blend",
    "popular": "Crowd favourites",
}
MODEL_HELP = {
    "ease": "Movies that people who liked what you liked also watched and loved.",
    "svd": "The movies we predict you would give the most stars.",
    "nmf": "Builds your taste from a few themes and finds movies strong in them.",
    "popular": "Well-loved movies everyone rates highly, nudged by how you rate.",
}


class Recommenders:
    """One lazily loaded ``RecommendService`` per model name, safe across threads."""

    def __init__(
        self,
        settings: Settings,
        loader: Callable[[str, str, Settings], tuple[Any, Any]] | None = None,
        choices: tuple[str, ...] = MODEL_CHOICES,
    ) -> None:
        self.settings = settings
        names = [settings.model, *choices]
        #: model names that may be loaded (registered ones only)
        self.choices = tuple(n for n in dict.fromkeys(names) if n in models.available())
        self._loader = loader or _ensure_model
        self._services: dict[str, RecommendService] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()
        self._catalog: Catalog | None = None
        self._dataset: Dataset | None = None  # what a newer file is checked against
        #: name -> (inode, size, mtime ns) of its file when last looked at (refresh)
        self._seen: dict[str, tuple[int, int, int] | None] = {}
        self._refresh_lock = threading.Lock()
        self._pool: list[Movie] | None = None
        #: the added-movies file, its identity when the catalogue was read (looked at
        #: before reading, so a change in meanwhile is noticed), and when last looked at
        self._added_path = added_path(settings.dataset, settings.home)
        self._added_seen = file_stamp(self._added_path)
        self._added_checked = time.monotonic()
        #: seconds between two looks at the added-movies file
        self.catalog_check_every = CATALOG_CHECK_EVERY
        #: True once every offered model is loaded (``serve`` before it forks): later
        #: calls never load or train one
        self.frozen = False

    def get(self, name: str) -> RecommendService:
        """The service for model ``name``, loaded (or trained) on first use, once."""
        if name not in self.choices:
            raise InvalidInput(
                f"unknown model {name!r}; choose from {', '.join(self.choices)}", field="model"
            )
        service = self._services.get(name)
        if service is not None:
            return service
        if self.frozen:  # serve loads every offered model before forking workers
            raise ModelError(f"model {name!r} was not loaded before serving")
        with self._lock:
            lock = self._locks.setdefault(name, threading.Lock())
        with lock:
            service = self._services.get(name)
            if service is None:
                seen = self._file_identity(name)
                model, dataset = self._loader(self.settings.dataset, name, self.settings)
                with self._lock:
                    if self._catalog is None:
                        self._catalog = dataset.catalog
                    if self._dataset is None:
                        self._dataset = dataset
                    catalog = self._catalog
                service = RecommendService(model, catalog)
                self._services[name] = service
                # taken before loading: a file renamed in meanwhile is looked at by refresh
                self._seen[name] = seen
        return service

    # -- newer files ---------------------------------------------------------------------
    def path(self, name: str) -> Path:
        """Where model ``name``'s file for the served data set lives."""
        return model_path(self.settings.dataset, name, self.settings)

    def _file_identity(self, name: str) -> tuple[int, int, int] | None:
        try:
            stat = os.stat(self.path(name))
        except OSError:
            return None
        return stat.st_ino, stat.st_size, stat.st_mtime_ns

    def refresh(self, name: str) -> bool:
        """Swap in a newer good file of loaded model ``name``; True if one was.

        Costs one ``stat`` when the file has not changed since last seen. A changed file
        holding the version in use is only noted; a new version is loaded (memory-mapped),
        checked by :func:`~movierec.training.serving_problem` and swapped in atomically,
        each outcome logged in one line. Never trains. Safe from several threads.
        """
        current = self._services.get(name)
        seen = self._file_identity(name)
        if current is None or seen is None or seen == self._seen.get(name):
            return False
        with self._refresh_lock:
            if seen == self._seen.get(name):
                return False
            self._seen[name] = seen
            path = self.path(name)
            old = current.model.version
            try:
                version = FileVersion.of(read_model_meta(path))
                if version == old:  # same content and training time: the same file
                    return False
                loaded = models.load(path)
            except (OSError, UnusableFile, MovierecError) as exc:
                reason = str(exc) if isinstance(exc, MovierecError) else f"model file {path} {exc}"
                log.warning("model %s: newer file not used: %s", name, reason)
                return False
            dataset = self._dataset or load_dataset(self.settings.dataset, home=self.settings.home)
            problem = serving_problem(loaded, name, dataset, path)
            if problem is not None:
                log.warning("model %s: newer file not used: %s", name, problem)
                return False
            self._services[name] = RecommendService(loaded, self.catalog)  # the swap
        was = old.version if old else "unversioned"
        now = loaded.version.version if loaded.version else "unversioned"
        log.info("model %s: now serving version %s (was %s), from %s", name, now, was, path)
        return True

    def refresh_catalog(self) -> bool:
        """Rebuild the catalogue and every service on it if the added-movies file changed
        (looked at, one ``stat``, at most every ``catalog_check_every`` seconds); True if
        it was.

        A damaged file is logged in one line and the catalogue kept; a thread finding
        another already rebuilding (or a model being swapped) leaves it to that one, or
        to the next look.
        """
        now = time.monotonic()
        if self._catalog is None or now - self._added_checked < self.catalog_check_every:
            return False
        self._added_checked = now
        seen = file_stamp(self._added_path)
        if seen == self._added_seen or not self._refresh_lock.acquire(blocking=False):
            return False
        try:
            if seen == self._added_seen:
                return False
            try:
                catalog = with_added(self._catalog, read_added(self._added_path))
            except DataError as exc:
                log.warning("catalogue: added movies not reloaded: %s", exc)
                self._added_seen = seen
                return False
            services = {n: RecommendService(s.model, catalog) for n, s in self._services.items()}
            with self._lock:
                self._catalog = catalog
                self._services.update(services)
                self._pool = None
            self._added_seen = seen
        finally:
            self._refresh_lock.release()
        log.info("catalogue: now %d movies, %d added (%s)", len(catalog), catalog.n_added,
                 self._added_path)  # fmt: skip
        return True

    @property
    def loaded_catalog(self) -> Catalog | None:
        """The catalogue if it is loaded already (never loads it)."""
        return self._catalog

    def refresh_all(self) -> list[str]:
        """:meth:`refresh` every loaded model; the names swapped."""
        return [name for name in self.loaded if self.refresh(name)]

    def withdraw(self, name: str) -> None:
        """Stop offering model ``name`` (it could not be loaded)."""
        self.choices = tuple(c for c in self.choices if c != name)

    def freeze(self) -> None:
        """Load nothing more: every model still offered must already be loaded."""
        missing = [c for c in self.choices if c not in self._services]
        if missing:
            raise ModelError(f"models not loaded before serving: {', '.join(missing)}")
        self.frozen = True

    @property
    def loaded(self) -> list[str]:
        return sorted(self._services)

    @property
    def catalog(self) -> Catalog:
        """The catalogue (shared by every model's service)."""
        if self._catalog is None:
            with self._lock:
                if self._catalog is None:
                    dataset = load_dataset(self.settings.dataset, home=self.settings.home)
                    self._catalog = dataset.catalog
        return self._catalog

    def onboarding_pool(self) -> list[Movie]:
        """The most-rated movies onboarding cards are drawn from."""
        if self._pool is None:
            self._pool = self.catalog.most_rated(ONBOARDING_POOL)
        return self._pool


def _ensure_model(dataset: str, name: str, settings: Settings) -> tuple[Any, Any]:
    from movierec.training import ensure_model

    return ensure_model(dataset, name, settings, progress=False)


@dataclass
class Services:
    """Everything one app instance shares between requests."""

    settings: Settings
    store: Store
    tmdb: TmdbService
    recommenders: Recommenders
    rng: random.Random = field(default_factory=random.Random)
    #: ``"built"`` -> (the default model's service it was built from, the strategies)
    _onboarding: dict[str, tuple[RecommendService, Onboarding]] = field(
        default_factory=dict, repr=False
    )
    _onboarding_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def from_app_config(cls, settings: Settings, config: Mapping[str, Any]) -> Services:
        store = Store(settings.database_url)
        client = TmdbClient(
            api_key=settings.tmdb_api_key,
            read_token=settings.tmdb_read_token,
            transport=config.get("TMDB_TRANSPORT"),
            timeout=float(config.get("TMDB_TIMEOUT", 2.0)),
            base_url=settings.tmdb_url,
        )
        tmdb = TmdbService(
            client,
            NearCache(SqlTmdbCache(store)),
            deadline=float(config.get("TMDB_DEADLINE", 0.8)),
        )
        if settings.model not in models.available():
            raise InvalidInput(
                f"MOVIEREC_MODEL={settings.model!r} is not a model; "
                f"choose from {', '.join(models.available())}",
                field="MOVIEREC_MODEL",
            )
        recommenders = config.get("RECOMMENDERS") or Recommenders(settings)
        return cls(settings=settings, store=store, tmdb=tmdb, recommenders=recommenders)

    @property
    def default_model(self) -> str:
        return self.settings.model

    @property
    def model_choices(self) -> tuple[str, ...]:
        """Model names offered, the default (best) first."""
        others = [n for n in MODEL_CHOICES if n in self.recommenders.choices]
        others = [n for n in others if n != self.default_model]
        return (self.default_model, *others)

    def model_name(self, name: object = None) -> str:
        """The model to use: ``name`` if offered, the default if None/empty."""
        if name is None or name == "":
            return self.default_model
        if not isinstance(name, str) or name not in self.model_choices:
            raise InvalidInput(
                f"unknown model {name!r}; choose from {', '.join(self.model_choices)}",
                field="model",
            )
        return name

    def recommender(self, name: str | None = None) -> RecommendService:
        """The recommend service of model ``name`` (default model if None)."""
        return self.recommenders.get(self.model_name(name))

    def onboarding(self) -> Onboarding:
        """The onboarding strategies over the data set's ratings and the default model's
        item factors (built once, on first use)."""
        service = self.recommender()
        found = self._onboarding.get("built")
        if found is not None and found[0] is service:
            return found[1]
        with self._onboarding_lock:  # built again for a newly swapped-in default model
            found = self._onboarding.get("built")
            if found is None or found[0] is not service:
                catalog = self.recommenders.catalog
                dataset = load_dataset(self.settings.dataset, home=self.settings.home)
                built = Onboarding.build(dataset.ratings, service.model, catalog)
                self._onboarding["built"] = found = (service, built)
        return found[1]

    def draw_onboarding(
        self,
        rated: Mapping[int, float],
        fresh_first: bool = False,
        *,
        shown: Iterable[int] = (),
        strategy: str | None = None,
        genre: str | None = None,
        n: int = ONBOARDING_CARDS,
        year: str = "any",
    ) -> Batch:
        """The next ``n`` cards chosen by ``strategy`` (default: the best measured) given
        the visitor's ratings and the movies ``shown`` this visit, at least a third from
        2010 on while there are such movies; never a movie rated or shown.

        Unless ``fresh_first``, up to ``ONBOARDING_RERATE`` movies the visitor rated
        come first (so they see their stars again) and the strategy fills the rest.
        """
        onboarding = self.onboarding()
        seed = self.rng.randrange(2**32)
        kept: list[Movie] = []
        if not fresh_first and genre is None:
            kept = [
                onboarding.movie(m)
                for m in list(rated)[:ONBOARDING_RERATE]
                if m in self.recommenders.catalog
            ]
        k = n - len(kept)
        batch = onboarding.batch(
            rated,
            shown,
            k,
            strategy or DEFAULT_STRATEGY,
            seed=seed,
            genre=genre,
            year=year,
            min_new=min_new_for(n),
        )
        return Batch(kept + batch.movies, batch.exhausted)


def get_services() -> Services:
    """The current app's :class:`Services`."""
    services: Services = current_app.extensions["movierec"]
    return services
