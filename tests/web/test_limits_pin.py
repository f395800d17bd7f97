"""``SweptMemoryStorage`` replaces a private method of ``limits``' ``MemoryStorage``
(``__schedule_expiry``, name-mangled), so pyproject.toml pins ``limits`` to the minor
release this was checked on. These fail if an upgrade moves what the override relies on;
``tests/hardening/test_rate_limit.py`` checks that no Timer thread starts per request."""

from __future__ import annotations

import inspect
from importlib.metadata import version

from limits.storage import MemoryStorage
from packaging.version import Version

from movierec.web.limits import SweptMemoryStorage

PRIVATE = "_MemoryStorage__schedule_expiry"
SWEEP = "_MemoryStorage__expire_events"


def test_the_installed_limits_is_the_pinned_minor_release() -> None:
    assert Version("5.8") <= Version(version("limits")) < Version("5.9")


def test_memory_storage_still_has_the_private_methods_the_override_replaces() -> None:
    assert PRIVATE in vars(MemoryStorage) and SWEEP in vars(MemoryStorage)
    assert PRIVATE in vars(SweptMemoryStorage)  # ours, not the stock timer
    assert not inspect.signature(getattr(MemoryStorage, PRIVATE)).parameters.keys() - {"self"}
    callers = inspect.getsource(MemoryStorage)
    assert callers.count("self.__schedule_expiry()") >= 2  # incr and the window adds
