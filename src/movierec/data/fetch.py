"""Fetching MovieLens data sets into ``<home>/data/<name>/``, verified and all-or-nothing.

A source is one of: ``None`` (the official GroupLens site, each zip checked against the
md5 GroupLens publishes beside it, ``<name>.zip.md5``), a base URL
(``<base>/<name>.zip``), a zip file, a directory holding ``<name>/`` or ``<name>.zip``,
or the data set folder itself. Files are gathered into a temporary folder under
``<home>/data/``, verified, then renamed into place; on failure the temporary folder
is removed and any previous copy is left as it was.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import re
import shutil
import struct
import tempfile
import time
import zipfile
import zlib
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import requests
from tqdm import tqdm

from movierec.config import load_settings
from movierec.data import movielens
from movierec.data.movielens import DatasetSpec, dataset_dir, get_spec, verify_folder
from movierec.errors import DataError

MARKER_FILE = ".movierec-fetched.json"
OFFICIAL_URL = movielens.OFFICIAL_URL  # module-level so tests can point it at a local server
TIMEOUT = (10, 60)  # seconds: connect, read
STALE_AFTER = 24 * 3600  # seconds before an abandoned temporary folder is swept away
_CHUNK = 1 << 20
MAX_RATIO = 100  # uncompressed / compressed size; MovieLens CSVs deflate ~3-5 times
MD5_FILE_BYTES = 4096  # the most read of a published .md5 file
RATIO_CHECKED_FROM = 1 << 20  # bytes: smaller members may compress as well as they like


def fetch_dataset(
    name: str,
    source: str | os.PathLike[str] | None = None,
    home: str | os.PathLike[str] | None = None,
    progress: bool = True,
    force: bool = False,
) -> Path:
    """Make sure data set ``name`` is in ``<home>/data/<name>/`` and return that folder.

    ``home`` defaults to ``MOVIEREC_HOME``, ``source`` to ``MOVIEREC_DATA_SOURCE`` and,
    if that is unset too, the official GroupLens download. A copy already fetched and
    verified is kept as is unless ``force``. Raises ``DataError`` (naming the file and
    line at fault) if the source is unreachable or its files are not what we expect.
    """
    if home is None or source is None:
        settings = load_settings()
        home = settings.home if home is None else home
        source = settings.data_source if source is None else source
    spec = get_spec(name, home=Path(home).expanduser())
    target = dataset_dir(name, Path(home).expanduser())
    if spec.synthetic:
        if not is_fetched(spec, target):
            raise DataError(
                f"{target}: synthetic set {name} has changed since `movierec data synth` "
                "wrote it; make it again"
            )
        return target
    if not force and (is_fetched(spec, target) or _adopt(spec, target)):
        return target
    try:
        _fetch_into(spec, source, target, progress)
    except OSError as exc:  # disk full, no permission, ...
        raise DataError(f"cannot fetch {name} into {target}: {exc}") from None
    return target


def _fetch_into(
    spec: DatasetSpec, source: str | os.PathLike[str] | None, target: Path, progress: bool
) -> None:
    """Gather, verify and install ``spec`` at ``target`` via a temporary sibling folder."""
    target.parent.mkdir(parents=True, exist_ok=True)
    _sweep_stale(target.parent, spec.name)
    staging = Path(tempfile.mkdtemp(prefix=f".{spec.name}-", suffix=".partial", dir=target.parent))
    try:
        folder = staging / spec.name
        origin = _gather(spec, source, folder, staging, progress)
        verify_folder(spec, folder, origin)
        write_marker(spec, folder, origin)
        _install(spec, folder, target, staging)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def is_fetched(spec: DatasetSpec, folder: Path) -> bool:
    """Whether ``folder`` holds a verified copy (marker present, file sizes unchanged)."""
    try:
        marker = json.loads((folder / MARKER_FILE).read_text(encoding="utf-8"))
        sizes = marker["files"]
        return marker["dataset"] == spec.name and all(
            (folder / f).stat().st_size == sizes[f] for f in spec.filenames
        )
    except (OSError, ValueError, KeyError, TypeError):
        return False


# -- sources --------------------------------------------------------------------------------
def _gather(
    spec: DatasetSpec,
    source: str | os.PathLike[str] | None,
    folder: Path,
    staging: Path,
    progress: bool,
) -> str:
    """Put the files of ``spec`` from ``source`` into ``folder``; return the origin's name."""
    if source is None:
        return _from_url(spec, f"{OFFICIAL_URL}/{spec.name}.zip", folder, staging, progress, True)
    text = os.fspath(source)
    if re.match(r"https?://", text, flags=re.IGNORECASE):
        url = text if text.lower().endswith(".zip") else f"{text.rstrip('/')}/{spec.name}.zip"
        return _from_url(spec, url, folder, staging, progress, url.startswith(OFFICIAL_URL))
    path = Path(text).expanduser()
    if path.is_file():
        _extract(spec, path, folder)
        return str(path)
    if not path.is_dir():
        raise DataError(f"data source {path} does not exist")
    for candidate in (path / spec.name, path):
        if all((candidate / f).is_file() for f in spec.filenames[:1]):
            _copy_folder(candidate, folder)
            return str(candidate)
    if (path / f"{spec.name}.zip").is_file():
        _extract(spec, path / f"{spec.name}.zip", folder)
        return str(path / f"{spec.name}.zip")
    raise DataError(
        f"data source {path} holds no {spec.name}: expected {spec.name}/, {spec.name}.zip "
        f"or the files themselves ({', '.join(spec.filenames[:3])}, ...)"
    )


def _copy_folder(source: Path, folder: Path) -> None:
    """Copy the regular, non-hidden files of ``source`` into a new ``folder``."""
    folder.mkdir()
    for path in sorted(source.iterdir()):
        if path.is_file() and not path.name.startswith("."):
            try:
                shutil.copyfile(path, folder / path.name)
            except OSError as exc:
                raise DataError(
                    f"cannot copy {path} into {folder}: {exc.strerror or exc}"
                ) from None


def _extract(spec: DatasetSpec, archive: Path, folder: Path) -> None:
    """Extract the data set's folder from zip ``archive`` into a new, flat ``folder``.

    The declared sizes are checked before anything is written (at most
    ``spec.max_bytes`` in all, no member inflating more than ``MAX_RATIO`` times), and
    each member is copied through a counter that stops at its declared size, so a zip
    bomb or a lying header writes at most a chunk beyond what was declared.
    """
    _check_archive_size(spec, archive, archive.stat().st_size)
    try:
        with zipfile.ZipFile(archive) as zf:
            members = [m for m in zf.infolist() if not m.is_dir()]
            prefix = _dataset_prefix(spec, [m.filename for m in members], archive)
            wanted = [m for m in members if _extracted_name(m, prefix)]
            _check_unpacked_sizes(spec, archive, wanted)
            folder.mkdir()
            for member in wanted:
                target = folder / _extracted_name(member, prefix)
                with zf.open(member) as src, open(target, "wb") as dst:
                    _copy_bounded(src, dst, member.file_size, archive, member.filename)
    except DataError:
        raise
    # everything a damaged or hostile zip makes zipfile raise: bad headers and CRCs
    # (BadZipFile), truncated streams (EOFError), broken deflate data (zlib.error), an
    # unknown compression method (NotImplementedError), encryption (RuntimeError), bad
    # names or offsets (ValueError, struct.error)
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        zlib.error,
        EOFError,
        NotImplementedError,
        RuntimeError,
        ValueError,
        struct.error,
    ) as exc:
        raise DataError(f"{archive}: not a readable zip file ({_one_line(exc)})") from None


def _extracted_name(member: zipfile.ZipInfo, prefix: str) -> str:
    """The file name ``member`` is extracted to, or ``""`` if it is not extracted."""
    directory, base = posixpath.split(member.filename)
    return base if directory == prefix and base and not base.startswith(".") else ""


def _check_archive_size(spec: DatasetSpec, source: object, size: int) -> None:
    if size > spec.max_bytes:
        raise DataError(
            f"{source}: {size:,} bytes is more than any {spec.name} archive "
            f"({spec.max_bytes:,} bytes at most); refusing it"
        )


def _check_unpacked_sizes(spec: DatasetSpec, archive: Path, members: list[zipfile.ZipInfo]) -> None:
    """Refuse a zip bomb before extracting: total declared size and compression ratio."""
    total = sum(m.file_size for m in members)
    if total > spec.max_bytes:
        raise DataError(
            f"{archive}: unpacks to {total:,} bytes, more than any {spec.name} "
            f"({spec.max_bytes:,} bytes at most); refusing a possible zip bomb"
        )
    for member in members:
        ratio = member.file_size / max(member.compress_size, 1)
        if member.file_size > RATIO_CHECKED_FROM and ratio > MAX_RATIO:
            raise DataError(
                f"{archive}: {member.filename[:100]} inflates {ratio:,.0f} times "
                f"(CSV text inflates at most ~{MAX_RATIO} times); refusing a possible zip bomb"
            )


def _copy_bounded(src: IO[bytes], dst: IO[bytes], declared: int, archive: Path, name: str) -> None:
    """Copy ``src`` to ``dst`` but never more than ``declared`` bytes (a lying header)."""
    written = 0
    while chunk := src.read(_CHUNK):
        written += len(chunk)
        if written > declared:
            raise DataError(
                f"{archive}: {name[:100]} holds more than the {declared:,} bytes its header "
                "declares; refusing it"
            )
        dst.write(chunk)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200] or type(exc).__name__


def _dataset_prefix(spec: DatasetSpec, names: list[str], archive: Path) -> str:
    """The folder inside the zip holding the data set (``"<name>"`` or ``""``, usually)."""
    key = spec.filenames[0]
    folders = {
        posixpath.dirname(n)
        for n in names
        if posixpath.basename(n) == key and not n.startswith("__MACOSX")
    }
    for preferred in (spec.zip_folder or spec.name, spec.name, ""):
        if preferred in folders:
            return preferred
    if len(folders) == 1:
        return folders.pop()
    if not folders:
        raise DataError(f"{archive}: no {spec.name} inside (no {key})")
    raise DataError(f"{archive}: several folders hold {key}: {', '.join(sorted(folders))}")


# -- downloads ------------------------------------------------------------------------------
def _from_url(
    spec: DatasetSpec, url: str, folder: Path, staging: Path, progress: bool, need_md5: bool
) -> str:
    """Download zip ``url`` into ``staging``, check its md5 (if published), extract it."""
    archive = staging / f"{spec.name}.zip"
    _download(url, archive, progress, spec.max_bytes)
    expected = _published_md5(url + ".md5", required=need_md5)
    if expected is not None and _md5(archive) != expected:
        raise DataError(f"{url}: md5 differs from the published {url}.md5 (damaged download?)")
    _extract(spec, archive, folder)
    return url


def _download(url: str, path: Path, progress: bool, max_bytes: int) -> None:
    """Stream ``url`` into ``path`` with a progress bar (bytes), at most ``max_bytes``."""
    try:
        with requests.get(url, stream=True, timeout=TIMEOUT) as response:
            if response.status_code != 200:
                raise DataError(f"cannot download {url}: HTTP {response.status_code}")
            total = _content_length(response.headers.get("Content-Length"))
            if total is not None and total > max_bytes:
                raise DataError(
                    f"{url}: {total:,} bytes is more than expected ({max_bytes:,} at most); "
                    "refusing it"
                )
            received = 0
            with (
                open(path, "wb") as out,
                tqdm(
                    total=total,
                    unit="B",
                    unit_scale=True,
                    unit_divisor=1024,
                    desc=path.name,
                    disable=not progress,
                ) as bar,
            ):
                for chunk in response.iter_content(_CHUNK):
                    received += len(chunk)
                    if received > max_bytes:
                        raise DataError(
                            f"{url}: more than the {max_bytes:,} bytes expected; "
                            "stopped the download"
                        )
                    out.write(chunk)
                    bar.update(len(chunk))
    except requests.RequestException as exc:
        raise DataError(f"cannot download {url}: {_one_line(exc)}") from None


def _content_length(header: str | None) -> int | None:
    """The declared body size in bytes, or ``None`` when absent or malformed."""
    text = (header or "").strip()
    return int(text) if text.isascii() and text.isdigit() and int(text) > 0 else None


def _published_md5(url: str, required: bool) -> str | None:
    """The md5 hex digest published at ``url``; ``None`` if absent and not ``required``."""
    try:
        with requests.get(url, stream=True, timeout=TIMEOUT) as response:
            # an .md5 file is one line: read at most a few KB of whatever is there
            head = next(response.iter_content(MD5_FILE_BYTES), b"") if response.ok else b""
    except requests.RequestException as exc:
        if required:
            raise DataError(f"cannot download {url}: {_one_line(exc)}") from None
        return None
    text = head.decode("ascii", errors="replace")
    match = re.search(r"\b[0-9a-fA-F]{32}\b", text)
    if match:
        return match.group(0).lower()
    if required:
        raise DataError(f"{url}: no md5 digest published (HTTP {response.status_code})")
    return None


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


# -- installing -----------------------------------------------------------------------------
def _adopt(spec: DatasetSpec, target: Path) -> bool:
    """Accept an unmarked copy already at ``target`` if it verifies; mark it as fetched."""
    if not target.is_dir():
        return False
    try:
        verify_folder(spec, target)
    except DataError:
        return False
    write_marker(spec, target, str(target))
    return True


def write_marker(spec: DatasetSpec, folder: Path, origin: str) -> None:
    """Record that ``folder`` was verified: origin, time and file sizes (bytes)."""
    marker = {
        "dataset": spec.name,
        "source": origin,
        "fetched_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "files": {f: (folder / f).stat().st_size for f in spec.filenames},
    }
    partial = folder / f"{MARKER_FILE}.partial"
    partial.write_text(json.dumps(marker, indent=2), encoding="utf-8")
    os.replace(partial, folder / MARKER_FILE)


def _install(spec: DatasetSpec, folder: Path, target: Path, staging: Path) -> None:
    """Rename ``folder`` to ``target``; a previous ``target`` moves into ``staging`` first."""
    previous = staging / "previous"
    had_previous = target.exists()
    if had_previous:
        os.rename(target, previous)
    try:
        os.rename(folder, target)
    except OSError as exc:
        if had_previous:
            os.rename(previous, target)
        elif is_fetched(spec, target):
            return  # another process installed it meanwhile
        raise DataError(f"cannot move the data into {target}: {exc.strerror or exc}") from None


def _sweep_stale(data_dir: Path, name: str) -> None:
    """Remove temporary folders of ``name`` left by fetches killed over a day ago."""
    cutoff = time.time() - STALE_AFTER
    for path in data_dir.glob(f".{name}-*.partial"):
        try:
            if path.stat().st_mtime < cutoff:
                shutil.rmtree(path, ignore_errors=True)
        except OSError:
            pass
