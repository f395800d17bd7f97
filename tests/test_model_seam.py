"""Nothing outside ``movierec.models`` reads a model's private or model-specific arrays.

Callers use the ``Recommender`` protocol (``rank``, ``score``, ``item_similarity``, ...);
EASE's ``kept`` / ``item_item`` / ``member`` and any ``_private`` attribute stay inside
``models/``. The scan reads every module's syntax tree: an attribute read off something
named like a model (``model.kept``, ``service.model._position``, ``self.model.member``),
or a ``getattr`` / ``hasattr`` of such a name with one of those attribute names.
"""

from __future__ import annotations

import ast
from pathlib import Path

import movierec

SRC = Path(movierec.__file__).resolve().parent
#: attributes only the model itself may read (besides any ``_private`` one)
MODEL_SPECIFIC = frozenset({"kept", "item_item", "member"})
#: leaks known when this test was written, listed so that no new one comes in: none left
#: (the onboarding simulator uses ``pull_ranking``, the index ``fold_in_reg``, the Spark
#: engine ``set_fitted``)
KNOWN_LEAKS: dict[str, set[str]] = {}


def _is_model(node: ast.expr) -> bool:
    """``model``, ``fitted_model``, ``service.model``, ``self.model`` ..."""
    if isinstance(node, ast.Name):
        return "model" in node.id.lower()
    return isinstance(node, ast.Attribute) and node.attr == "model"


def _forbidden(name: str) -> bool:
    return name in MODEL_SPECIFIC or (name.startswith("_") and not name.startswith("__"))


def model_reads(source: str) -> set[str]:
    """The forbidden model attributes ``source`` reads (see the module doc)."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and _is_model(node.value) and _forbidden(node.attr):
            found.add(node.attr)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in {"getattr", "hasattr"}
            and len(node.args) >= 2
            and _is_model(node.args[0])
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
            and _forbidden(node.args[1].value)
        ):
            found.add(node.args[1].value)
    return found


def test_the_scan_catches_a_leak_and_passes_the_protocol() -> None:
    leaky = (
        "def similar(service, movie):\n"
        "    row = service.model.item_item[0]\n"
        "    kept = getattr(model, 'kept', None)\n"
        "    return model._position, self.model.member\n"
    )
    assert model_reads(leaky) == {"item_item", "kept", "_position", "member"}
    clean = "def f(service, m):\n    return service.model.item_similarity(m), model.movie_ids\n"
    assert model_reads(clean) == set()


def test_nothing_outside_models_reads_model_internals() -> None:
    new_leaks = {}
    for path in sorted(SRC.rglob("*.py")):
        relative = path.relative_to(SRC).as_posix()
        if relative.startswith("models/"):
            continue
        reads = model_reads(path.read_text(encoding="utf-8"))
        extra = reads - KNOWN_LEAKS.get(relative, set())
        if extra:
            new_leaks[relative] = sorted(extra)
    assert not new_leaks, f"use the Recommender protocol instead of model internals: {new_leaks}"
    assert "web/catalogue.py" not in KNOWN_LEAKS  # the similar-movies finder is clean
