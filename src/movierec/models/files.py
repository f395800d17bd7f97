"""Model files: ``.npz`` arrays plus JSON metadata, written atomically, checked on read.

A file holds one ``<name>.npy`` zip member per array and ``__meta__.npy`` (the UTF-8
bytes of a JSON object). The metadata lists every array's sha256, shape and dtype, so a
reader can tell a damaged file from a good one:

- ``write_model_file`` writes to ``<stem>.tmp-<pid>-<random>.npz`` beside the target
  (mode 0600, as the database and the secret key), fsyncs it, renames it over the target
  and fsyncs the directory; a crash leaves either the old file or the new one, never
  half of one.
- ``read_model_file`` checks each array's npy header against the metadata *before*
  reading its bytes (so a damaged header never makes us allocate a huge array), then the
  checksum of the bytes read and that float arrays are finite. It reads the zip with
  :mod:`zipfile` and numpy's public npy header readers rather than ``np.load``, which
  offers no way to check a header before it allocates.
- ``ArraySpec`` lets each model declare the dtype and shape of the arrays it saves.

**Versions.** Every file's metadata carries ``trained_at`` (UTC, ISO 8601, to the second)
and ``content_hash``: the sha256 of its arrays' checksums and of the rest of its
metadata, leaving out only what says *when* and *how long* (:data:`UNHASHED`), so two
files with equal arrays and parameters hash the same. :class:`FileVersion` names a
file by both (``20261207T071003Z-3f9a1c2b7d4e``); :func:`read_model_meta` reads a
file's metadata without its arrays (a few KB), for a server checking whether a newer
file has arrived.
"""

from __future__ import annotations

import glob
import hashlib
import json
import mmap
import os
import re
import secrets
import struct
import time
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from movierec.data.arrays import AnyArray, UInt8Array

FORMAT_VERSION = 2
META = "__meta__"
TEMP_MARK = ".tmp-"
#: permissions of a model file: read and written by its owner only
FILE_MODE = 0o600
#: a temp file not written to for this long is abandoned, whoever wrote it (seconds)
STALE_AFTER = 60.0
#: longest piece of an exception message (which may quote file bytes) we repeat
QUOTE_LIMIT = 100
#: metadata left out of the content hash: when and how long, not what
UNHASHED = frozenset({"trained_at", "content_hash", "training"})

_HEADER_READERS = {
    (1, 0): np.lib.format.read_array_header_1_0,
    (2, 0): np.lib.format.read_array_header_2_0,
}


class UnusableFile(Exception):
    """A model file that cannot be used; the message completes "model file <path> ..."."""


def damaged(reason: str) -> UnusableFile:
    return UnusableFile(f"is damaged ({reason})")


# -- declared array shapes ------------------------------------------------------------------
@dataclass(frozen=True)
class ArraySpec:
    """What one saved array must look like.

    dtype: a numpy dtype name (``"float32"``, ``"int64"``), or ``"str"`` for text.
    shape: one entry per dimension: an int; a size the model knows (``"n_users"``,
    ``"n_items"``, an integer parameter such as ``"n_factors"``), optionally ``"+1"``
    (``"n_users+1"`` for CSR row starts); or a free name (``"nnz"``) that takes the
    size it first meets and must match wherever else it appears.
    """

    dtype: str
    shape: tuple[int | str, ...]

    def check(self, name: str, array: AnyArray | None, sizes: dict[str, int]) -> None:
        """Raise ``UnusableFile`` if ``array`` breaks the spec; binds free names in ``sizes``."""
        if array is None:
            raise damaged(f"array {name} is missing")
        kind_ok = array.dtype.kind == "U" if self.dtype == "str" else array.dtype == self.dtype
        if not kind_ok:
            raise damaged(f"array {name} is {array.dtype}, expected {self.dtype}")
        if array.ndim != len(self.shape):
            raise damaged(f"array {name} has shape {array.shape}, expected {self.shape}")
        for axis, (dim, actual) in enumerate(zip(self.shape, array.shape, strict=True)):
            if isinstance(dim, int):
                expected = dim
            else:
                base, plus, extra = dim.partition("+")
                if base not in sizes:
                    sizes[base] = actual - int(extra or 0)
                expected = sizes[base] + (int(extra) if plus else 0)
            if actual != expected:
                raise damaged(
                    f"array {name} has {actual} along axis {axis}, expected {expected} ({dim})"
                )


def check_specs(
    specs: Mapping[str, ArraySpec],
    arrays: Mapping[str, AnyArray],
    sizes: dict[str, int],
    prefix: str = "",
) -> None:
    """Check every array named in ``specs`` (looked up as ``prefix + name``)."""
    for name, spec in specs.items():
        spec.check(prefix + name, arrays.get(prefix + name), sizes)


# -- checksums --------------------------------------------------------------------------------
def _bytes_of(array: AnyArray) -> memoryview:
    """The array's raw bytes in C order (no copy for a C-contiguous array)."""
    return np.ascontiguousarray(array).reshape(-1).view(np.uint8).data


def describe(array: AnyArray) -> dict[str, Any]:
    """``{"sha256", "shape", "dtype"}`` of ``array`` as the metadata records it."""
    return {
        "sha256": hashlib.sha256(_bytes_of(array)).hexdigest(),
        "shape": list(array.shape),
        "dtype": array.dtype.str,
    }


def check_finite(name: str, array: AnyArray) -> None:
    if array.dtype.kind in "fc" and not np.isfinite(array).all():
        raise damaged(f"array {name} holds NaN or infinite values")


# -- versions ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class FileVersion:
    """Which model file: ``content_hash`` (64 hex digits) and ``trained_at`` (UTC ISO 8601,
    or None for a file written before versions were recorded)."""

    content_hash: str
    trained_at: str | None

    @property
    def version(self) -> str:
        """``<trained_at as 20261207T071003Z>-<first 12 hex digits of the hash>``: sorts by
        training time, and differs whenever the content does."""
        when = (self.trained_at or "unknown").replace("-", "").replace(":", "")
        return f"{when}-{self.content_hash[:12]}"

    @classmethod
    def of(cls, meta: Mapping[str, Any]) -> FileVersion:
        """The version ``meta`` (a file's metadata) records, its hash computed if absent."""
        digest = meta.get("content_hash")
        if not isinstance(digest, str):
            digest = content_hash(meta)
        trained_at = meta.get("trained_at")
        return cls(digest, trained_at if isinstance(trained_at, str) else None)


def content_hash(meta: Mapping[str, Any]) -> str:
    """sha256 (hex) of ``meta`` (with its ``arrays`` checksums) less :data:`UNHASHED`."""
    kept = {k: v for k, v in meta.items() if k not in UNHASHED}
    canonical = json.dumps(kept, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def utc_now() -> str:
    """Now as ``2026-12-07T07:10:03Z`` (UTC, to the second)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- writing ----------------------------------------------------------------------------------
def write_model_file(
    path: Path, arrays: Mapping[str, AnyArray], meta: dict[str, Any]
) -> dict[str, Any]:
    """Write ``arrays`` and ``meta`` (plus format, per-array checksums, ``trained_at``
    unless given, and ``content_hash``) to ``path``, atomically and durably; returns the
    metadata written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path)
    contiguous = {name: np.ascontiguousarray(array) for name, array in arrays.items()}
    meta = {
        "trained_at": utc_now(),
        **meta,
        "format": FORMAT_VERSION,
        "arrays": {name: describe(array) for name, array in contiguous.items()},
    }
    meta["content_hash"] = content_hash(meta)
    members = {**contiguous, META: np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)}
    tmp = path.with_name(f"{path.stem}{TEMP_MARK}{os.getpid()}-{secrets.token_hex(4)}.npz")
    try:
        with _private_new_file(tmp) as fh:
            np.savez(fh, **members)  # type: ignore[arg-type]  # numpy's stub: ** as allow_pickle
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)
    return meta


def _private_new_file(path: Path) -> BinaryIO:
    """``path`` created for writing (``FileExistsError`` if it exists), mode 0600 whatever
    the umask, like the database and the secret key: only the server's user reads models."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)  # the umask only ever removes bits; this sets them exactly
        return os.fdopen(fd, "wb")
    except BaseException:
        os.close(fd)
        raise


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable (POSIX keeps it in the directory's metadata)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return  # platforms that cannot open a directory have nothing to fsync
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse fsync on a directory; the rename still happened
    finally:
        os.close(fd)


def remove_stale_temps(path: Path) -> list[Path]:
    """Remove temp files an interrupted save of ``path`` left behind; returns them.

    A temp file is stale when the process named in it (``<stem>.tmp-<pid>-...``) is no
    longer running on this machine (a killed ``train``: removed at once), or when nothing
    has written to it for ``STALE_AFTER`` seconds (a pid reused since, or a writer on
    another machine sharing the directory: ``np.savez`` writes continuously and the
    rename follows the last write within milliseconds, so a live save never looks idle
    that long). Files of the previous naming (``<name>XXXX.tmp.npz``, no pid) go by age.
    A file that cannot be removed (read-only directory) is left; saving will say why.
    """
    own = re.compile(rf"{re.escape(path.stem)}{re.escape(TEMP_MARK)}(\d+)-[0-9a-f]+\.npz")
    candidates = [*path.parent.glob(f"{glob.escape(path.stem)}{TEMP_MARK}*.npz")]
    candidates += path.parent.glob(f"{glob.escape(path.name)}*.tmp.npz")
    removed = []
    now = time.time()
    for temp in candidates:
        match = own.fullmatch(temp.name)
        try:
            idle = now - temp.stat().st_mtime
            if (match and not _running(int(match.group(1)))) or idle > STALE_AFTER:
                temp.unlink()
                removed.append(temp)
        except OSError:
            continue  # gone already, or not ours to remove
    return removed


def _running(pid: int) -> bool:
    """True if a process ``pid`` exists on this machine."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)  # signal 0: existence check only
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists but belongs to someone else (or we cannot tell: keep it)
    except (OverflowError, ValueError):
        return False  # not a valid pid at all
    return True


# -- reading ----------------------------------------------------------------------------------
def read_model_file(path: Path) -> tuple[dict[str, Any], dict[str, AnyArray]]:
    """``(meta, arrays)`` of a file written by ``write_model_file``, every array checked.

    Raises ``FileNotFoundError`` if there is no file and ``UnusableFile`` for anything else
    wrong with it.
    """
    try:
        if path.stat().st_size == 0:
            raise UnusableFile("is empty")
        with open(path, "rb") as raw, zipfile.ZipFile(raw) as archive:
            mapped = mmap.mmap(raw.fileno(), 0, access=mmap.ACCESS_READ)
            names = set(archive.namelist())
            meta = _read_meta(archive, names)
            arrays = {
                name: _read_array(archive, names, name, spec, mapped)
                for name, spec in meta["arrays"].items()
            }
    except (FileNotFoundError, UnusableFile):
        raise
    except OSError as exc:  # permissions, a directory, I/O errors
        raise UnusableFile(f"cannot be read ({exc.strerror or exc})") from None
    except Exception as exc:
        # The bytes are untrusted: zipfile, zlib, lzma, bz2, struct and numpy's header
        # parser raise a dozen types on damaged input (BadZipFile, EOFError, zlib.error,
        # struct.error, NotImplementedError for a flipped compression method, ...).
        # Any failure while parsing means the file is damaged.
        raise damaged(_one_line(exc)) from None
    return meta, arrays


def read_model_meta(path: Path) -> dict[str, Any]:
    """The metadata of the model file at ``path`` (its arrays not read or checked).

    Raises ``FileNotFoundError`` if there is no file and ``UnusableFile`` if it has no
    readable metadata.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            return _read_meta(archive, set(archive.namelist()))
    except (FileNotFoundError, UnusableFile):
        raise
    except OSError as exc:
        raise UnusableFile(f"cannot be read ({exc.strerror or exc})") from None
    except Exception as exc:  # damaged bytes: see read_model_file
        raise damaged(_one_line(exc)) from None


def _mapped_member(
    mapped: mmap.mmap, info: zipfile.ZipInfo, header_len: int, nbytes: int, name: str
) -> UInt8Array:
    """``(nbytes,)`` uint8 view of a stored member's array data (after its npy header of
    ``header_len`` bytes) in ``mapped``; ``UnusableFile`` if the member is cut short or
    its CRC-32 does not match the zip directory's."""
    local = info.header_offset
    if mapped[local : local + 4] != b"PK\x03\x04":
        raise damaged(f"array {name} has no zip local header")
    name_len, extra_len = struct.unpack("<HH", mapped[local + 26 : local + 30])
    start = local + 30 + name_len + extra_len
    end = start + info.file_size
    if header_len + nbytes > info.file_size or end > len(mapped):
        raise damaged(f"array {name} is truncated")
    with memoryview(mapped) as whole, whole[start:end] as member:
        crc = zlib.crc32(member)
    if crc != info.CRC:
        raise damaged(f"checksum of {name} does not match (zip CRC-32)")
    return np.frombuffer(mapped, dtype=np.uint8, count=nbytes, offset=start + header_len)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if len(text) > QUOTE_LIMIT:
        text = text[:QUOTE_LIMIT] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _read_meta(archive: zipfile.ZipFile, names: set[str]) -> dict[str, Any]:
    if f"{META}.npy" not in names:
        raise UnusableFile("is not a movierec model (no metadata)")
    with archive.open(f"{META}.npy") as fh:
        raw = np.lib.format.read_array(fh, allow_pickle=False)
    try:
        meta = json.loads(raw.tobytes().decode("utf-8"))
    except ValueError:
        raise damaged("metadata is not valid JSON") from None
    if not isinstance(meta, dict):
        raise damaged("metadata is not a JSON object")
    if meta.get("format") != FORMAT_VERSION:
        raise UnusableFile(
            f"was saved in format {str(meta.get('format'))[:20]}; this movierec reads "
            f"format {FORMAT_VERSION} (train the model again)"
        )
    listed = meta.get("arrays")
    if not isinstance(listed, dict) or not all(
        isinstance(spec, dict) and {"sha256", "shape", "dtype"} <= spec.keys()
        for spec in listed.values()
    ):
        raise damaged("metadata lists no valid array checksums")
    return meta


def _read_array(
    archive: zipfile.ZipFile,
    names: set[str],
    name: str,
    listed: dict[str, Any],
    mapped: mmap.mmap | None = None,
) -> AnyArray:
    """One array, its header checked against ``listed`` before its bytes are read."""
    if f"{name}.npy" not in names:
        raise damaged(f"array {name} is missing")
    shape, dtype = tuple(int(n) for n in listed["shape"]), np.dtype(listed["dtype"])
    if dtype.hasobject or dtype.itemsize == 0:
        raise damaged(f"array {name} has an unusable dtype {dtype}")
    try:
        buffer = _read_member(archive, name, shape, dtype, mapped)
    except zipfile.BadZipFile as exc:  # zipfile checks the member's CRC-32 as it reads
        if "CRC" not in str(exc):
            raise
        raise damaged(f"checksum of {name} does not match (zip CRC-32)") from None
    if hashlib.sha256(buffer.data).hexdigest() != listed["sha256"]:
        raise damaged(f"checksum of {name} does not match")
    array: AnyArray = buffer.view(dtype).reshape(shape)
    check_finite(name, array)
    return array


def _read_member(
    archive: zipfile.ZipFile,
    name: str,
    shape: tuple[int, ...],
    dtype: np.dtype[Any],
    mapped: mmap.mmap | None = None,
) -> UInt8Array:
    """``(nbytes,)`` uint8: the data of member ``<name>.npy``, whose header must say
    ``shape`` and ``dtype``.

    With ``mapped`` (a read-only memory map of the whole file) a stored (uncompressed)
    member, as ``np.savez`` writes them, is not copied: the array is a view of the map
    (read-only), its zip CRC-32 checked here as zipfile would while reading. zipfile's
    own reader copies in small chunks and took 9-14 s for a 572 MiB file on a busy
    machine. ``np.load(mmap_mode=...)`` cannot map inside a zip. Files are only ever
    replaced by rename, never rewritten in place, so the mapped bytes cannot change.
    """
    info = archive.getinfo(f"{name}.npy")
    with archive.open(info) as fh:
        reader = _HEADER_READERS.get(np.lib.format.read_magic(fh))
        if reader is None:
            raise damaged(f"array {name} has an unknown npy version")
        header_shape, fortran_order, header_dtype = reader(fh)
        if header_shape != shape or header_dtype != dtype or fortran_order:
            raise damaged(
                f"array {name} is {header_dtype} {header_shape}, metadata says {dtype} {shape}"
            )
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if mapped is not None and info.compress_type == zipfile.ZIP_STORED:
            return _mapped_member(mapped, info, fh.tell(), nbytes, name)
        buffer = np.empty(int(np.prod(shape, dtype=np.int64)) * dtype.itemsize, dtype=np.uint8)
        if fh.readinto(buffer) != buffer.size:  # type: ignore[attr-defined]  # a ZipExtFile
            raise damaged(f"array {name} is truncated")
    return buffer
