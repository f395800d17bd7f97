"""Typed hyper-parameters: each model declares a frozen dataclass of them, checked once.

In the spirit of LensKit's typed component configuration, without pydantic: a model's
parameters are a frozen dataclass (``EaseParams``, ``SVDParams`` ...) whose fields carry
their type, default and bounds, so ``__init__`` holds no checks, the fitting code reads
``self.config.n_factors`` (already an ``int``) and an error message always names the
parameter and says what it accepts::

    @dataclass(frozen=True)
    class SVDParams(ModelParams):
        n_factors: int = param(100, strict=True)  # > 0
        lr_all: float = param(0.005)
        lr_bias: float | None = param(None)  # None: use lr_all

The field's annotation gives the kind (``int``, ``float``, ``bool``, ``str``,
``tuple[str, ...]``, ``dict[...]``; ``X | None`` makes ``None`` allowed); :class:`Param`
holds the check itself, one per field (``ModelParams.specs()``).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from movierec.errors import InvalidInput


@dataclass(frozen=True)
class Param:
    """One hyper-parameter.

    name: keyword accepted by the model's ``__init__``.
    default: value when not given (``None`` only with ``optional``).
    kind: ``float`` (any finite real, ints accepted), ``int`` (whole numbers, ``2.0``
        accepted), ``bool``, ``str``, ``list`` (a list or tuple, kept as a new list) or
        ``dict`` (kept as a new dict), or ``tuple`` (a list or tuple, kept as a tuple);
        what a list or dict holds the model checks.
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
        if self.kind is list or self.kind is tuple:
            if isinstance(value, list | tuple):
                return self.kind(value)
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


def param(
    default: Any,
    *,
    low: float | None = 0.0,
    high: float | None = None,
    strict: bool = False,
    choices: tuple[str, ...] | None = None,
    accepts: str | None = None,
) -> Any:
    """A :class:`ModelParams` field: its default and the bounds of :class:`Param`.

    A list or dict default is copied for every instance (a tuple default is kept).
    Typed ``Any`` so that ``n: int = param(3)`` type-checks, as ``dataclasses.field`` is.
    """
    bounds = {"low": low, "high": high, "strict": strict, "choices": choices, "accepts": accepts}
    if isinstance(default, list | dict):
        return dataclasses.field(
            default_factory=functools.partial(type(default), default), metadata=bounds
        )
    return dataclasses.field(default=default, metadata=bounds)


@dataclass(frozen=True)
class ModelParams:
    """Base of every model's typed parameters (a frozen dataclass of :func:`param` fields).

    ``parse`` checks a plain mapping (``train --param k=v``, a saved model's JSON) into
    one, naming the first bad parameter; ``as_dict`` gives the plain mapping back.
    """

    _specs: ClassVar[tuple[Param, ...] | None] = None

    @classmethod
    def specs(cls) -> tuple[Param, ...]:
        """One :class:`Param` per field, in field order, kinds from the annotations."""
        if "_specs" not in cls.__dict__ or cls._specs is None:
            hints = typing.get_type_hints(cls)
            cls._specs = tuple(
                _spec_of(f, hints[f.name]) for f in dataclasses.fields(cls) if f.init
            )
        return cls._specs

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """Every parameter's default, as plain JSON-able values (tuples as lists)."""
        return {spec.name: _plain(spec.default) for spec in cls.specs()}

    @classmethod
    def parse(cls, values: Mapping[str, Any]) -> Self:
        """``values`` (all known names; missing ones take their defaults) checked and
        typed; ``InvalidInput`` naming the first bad one."""
        checked = {
            spec.name: _typed(spec, spec.check(values[spec.name]))
            for spec in cls.specs()
            if spec.name in values
        }
        return cls(**checked)

    def as_dict(self) -> dict[str, Any]:
        """``{name: value}`` of every parameter, JSON-able (tuples as lists, dicts copied)."""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}


def _spec_of(field: dataclasses.Field[Any], hint: Any) -> Param:
    """The :class:`Param` checking ``field`` of annotation ``hint``."""
    optional = False
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        optional = len(args) < len(typing.get_args(hint))
        (hint,) = args
    kind = typing.get_origin(hint) or hint
    if kind is Mapping or kind is dict:
        kind = dict
    if kind not in (int, float, bool, str, tuple, list, dict):
        raise TypeError(f"parameter {field.name}: unsupported annotation {hint!r}")
    if field.default is not dataclasses.MISSING:
        default = field.default
    elif field.default_factory is not dataclasses.MISSING:
        default = field.default_factory()
    else:
        raise TypeError(f"parameter {field.name} has no default")
    return Param(field.name, default, kind, optional=optional, **field.metadata)


def _typed(spec: Param, value: Any) -> Any:
    """A checked ``value`` as its field's annotation says (``3`` -> ``3.0`` for a float)."""
    return float(value) if spec.kind is float and value is not None else value


def _plain(value: Any) -> Any:
    """``value`` as JSON keeps it: tuples as lists, lists and dicts copied."""
    if isinstance(value, tuple | list):
        return list(value)
    if isinstance(value, dict):
        return dict(value)
    return value
