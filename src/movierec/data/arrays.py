"""Typed numpy arrays: one alias per dtype the package passes around.

A signature says the dtype (mypy checks it; numpy's stubs carry it through indexing,
``astype`` and arithmetic); the docstring keeps the shape, which numpy's typing cannot
check. ``FloatArray`` and ``IndexArray`` are for the places that take either width on
purpose (a model's float type, scipy's CSR index type); everything else names its width.
"""

from __future__ import annotations

from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt

Float32Array: TypeAlias = npt.NDArray[np.float32]
Float64Array: TypeAlias = npt.NDArray[np.float64]
#: float32 or float64, as the caller chose (a model's fitting dtype, a kernel's arguments)
FloatArray: TypeAlias = npt.NDArray[np.floating[Any]]
Int32Array: TypeAlias = npt.NDArray[np.int32]
Int64Array: TypeAlias = npt.NDArray[np.int64]
#: int32 or int64: scipy's CSR ``indices``/``indptr`` (int64 only past 2^31 entries),
#: raw MovieLens ids as read, visiting orders
IndexArray: TypeAlias = npt.NDArray[np.signedinteger[Any]]
IntpArray: TypeAlias = npt.NDArray[np.intp]
UInt8Array: TypeAlias = npt.NDArray[np.uint8]
BoolArray: TypeAlias = npt.NDArray[np.bool_]
StrArray: TypeAlias = npt.NDArray[np.str_]
#: any dtype: arrays of many kinds side by side (a model file's members)
AnyArray: TypeAlias = npt.NDArray[Any]

__all__ = [
    "AnyArray",
    "BoolArray",
    "Float32Array",
    "Float64Array",
    "FloatArray",
    "IndexArray",
    "Int32Array",
    "Int64Array",
    "IntpArray",
    "StrArray",
    "UInt8Array",
]
