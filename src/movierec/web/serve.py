"""``serve()``: data and model ready, model warm, then the app under waitress.

``movierec serve [--host] [--port]`` calls this. The first run fetches the data set
from the configured source and trains the default model (with a progress bar); later
runs load the saved model in about a second.
"""

from __future__ import annotations

import logging
import time

from movierec.config import Settings, load_settings
from movierec.training import ensure_model

log = logging.getLogger(__name__)

THREADS = 8


def serve(host: str = "127.0.0.1", port: int = 5000, settings: Settings | None = None) -> None:
    """Prepare data and the default model, warm them, and serve until interrupted."""
    import waitress

    app = prepare_app(settings, progress=True)
    print(f"movierec: serving on http://{host}:{port}/ (Ctrl-C to stop)", flush=True)
    waitress.serve(app, host=host, port=port, threads=THREADS, ident="movierec")


def prepare_app(settings: Settings | None = None, progress: bool = True):  # type: ignore[no-untyped-def]
    """The app with its default model loaded and one recommendation computed."""
    from movierec.web import create_app
    from movierec.web.services import Recommenders

    settings = settings or load_settings()
    started = time.perf_counter()
    print(
        f"movierec: preparing {settings.dataset} / {settings.model} in {settings.home}", flush=True
    )

    def loader(dataset: str, model: str, s: Settings):  # type: ignore[no-untyped-def]
        return ensure_model(dataset, model, s, progress=progress)

    recommenders = Recommenders(settings, loader=loader)
    app = create_app({"SETTINGS": settings, "RECOMMENDERS": recommenders})
    warm(app)
    print(f"movierec: ready in {time.perf_counter() - started:.1f} s", flush=True)
    return app


def warm(app) -> None:  # type: ignore[no-untyped-def]
    """Load the default model and run one recommendation so the first visitor waits not."""
    services = app.extensions["movierec"]
    service = services.recommender()
    pool = services.recommenders.onboarding_pool()
    service.recommend({pool[0].movie_id: 4.0, pool[1].movie_id: 2.5}, year="any", n=5)
