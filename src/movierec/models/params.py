"""Declared hyper-parameters: a model lists its ``Param`` s, the base class checks them.

In the spirit of LensKit's typed component configuration, without pydantic: a model's
parameters are data (name, type, default, bounds), so ``__init__`` holds no checks and
an error message always names the parameter and says what it accepts::

    param_specs = (
        Param("n_factors", 100, int, low=1),
        Param("lr_all", 0.005),
        Param("lr_bias", None, optional=True),  # None: use lr_all
    )
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from movierec.errors import InvalidInput


@dataclass(frozen=True)
class Param:
    """One hyper-parameter.

    name: keyword accepted by the model's ``__init__``.
    default: value when not given (``None`` only with ``optional``).
    kind: ``float`` (any finite real, ints accepted), ``int`` (whole numbers, ``2.0``
        accepted), ``bool``, ``str``, ``list`` (a list or tuple, kept as a new list) or
        ``dict`` (kept as a new dict); what a list or dict holds the model checks.
    low / high: inclusive bounds for numbers (``low`` defaults to 0: no parameter here
        is negative); ``strict`` makes ``low`` exclusive (``> 0``).
    optional: ``None`` is allowed (the model reads it as "fall back to another").
    choices: the only values a ``str`` parameter takes.
    accepts: what the error message says the parameter takes, where the kind and bounds
        do not say it well (e.g. "a non-empty list of distinct model names").
    """

    name: str
    default: Any
    kind: type = float
    low: float | None = 0.0
    high: float | None = None
    strict: bool = False
    optional: bool = False
    choices: tuple[str, ...] | None = None
    accepts: str | None = None

    def check(self, value: Any) -> Any:
        """``value`` as this parameter's type; ``InvalidInput`` naming it if it does not fit."""
        if value is None and self.optional:
            return None
        if self.kind is bool:
            if isinstance(value, bool | int) and value in (0, 1):
                return bool(value)
            raise self._bad(value, "true or false")
        if self.kind is str:
            if isinstance(value, str) and (self.choices is None or value in self.choices):
                return value
            raise self._bad(value, "one of " + ", ".join(self.choices or ()))
        if self.kind is list:
            if isinstance(value, list | tuple):
                return list(value)
            raise self._bad(value, "a list")
        if self.kind is dict:
            if isinstance(value, dict):
                return dict(value)
            raise self._bad(value, "an object")
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if not number or not math.isfinite(value):
            raise self._bad(value, self._what())
        if self.kind is int and not float(value).is_integer():
            raise self._bad(value, self._what())
        too_low = self.low is not None and (value <= self.low if self.strict else value < self.low)
        if too_low or (self.high is not None and value > self.high):
            raise self._bad(value, self._what())
        return int(value) if self.kind is int else value

    def _what(self) -> str:
        kind = "a whole number" if self.kind is int else "a number"
        bounds = []
        if self.low is not None:
            bounds.append(f"{'>' if self.strict else '>='} {self.low:g}")
        if self.high is not None:
            bounds.append(f"<= {self.high:g}")
        text = f"{kind} {' and '.join(bounds)}".strip()
        return text + (" (or null)" if self.optional else "")

    def _bad(self, value: Any, what: str) -> InvalidInput:
        what = self.accepts or what
        shown = repr(value)[:100]
        return InvalidInput(f"{self.name} must be {what}, got {shown}", field=self.name)


def check_params(specs: tuple[Param, ...], params: dict[str, Any]) -> dict[str, Any]:
    """``params`` with every declared one checked and typed (in place and returned)."""
    for spec in specs:
        params[spec.name] = spec.check(params[spec.name])
    return params
