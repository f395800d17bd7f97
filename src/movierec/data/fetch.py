"""Fetching MovieLens data sets into ``<home>/data/<name>/``, verified and all-or-nothing.

A source is one of: ``None`` (the official GroupLens site, md5 checked), a base URL
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
import tempfile
import time
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import requests
from tqdm import tqdm

from movierec.config import load_settings
from movierec.data.movielens import DatasetSpec, get_spec, verify_folder
from movierec.errors import DataError

OFFICIAL_URL = "https://files.grouplens.org/datasets/movielens"
MARKER_FILE = ".movierec-fetched.json"
TIMEOUT = (10, 60)  # seconds: connect, read
STALE_AFTER = 24 * 3600  # seconds before an abandoned temporary folder is swept away
_CHUNK = 1 << 20


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
    spec = get_spec(name)
    if home is None or source is None:
        settings = load_settings()
        home = settings.home if home is None else home
        source = settings.data_source if source is None else source
    target = dataset_dir(name, Path(home).expanduser())
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
        _write_marker(spec, folder, origin)
        _install(folder, target, staging)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def dataset_dir(name: str, home: Path) -> Path:
    """Where data set ``name`` lives under ``home``."""
    return home / "data" / name


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
                raise DataError(f"cannot copy {path}: {exc.strerror or exc}") from None


def _extract(spec: DatasetSpec, archive: Path, folder: Path) -> None:
    """Extract the data set's folder from zip ``archive`` into a new, flat ``folder``."""
    try:
        with zipfile.ZipFile(archive) as zf:
            members = [m for m in zf.infolist() if not m.is_dir()]
            prefix = _dataset_prefix(spec, [m.filename for m in members], archive)
            folder.mkdir()
            for member in members:
                directory, base = posixpath.split(member.filename)
                if directory == prefix and base and not base.startswith("."):
                    with zf.open(member) as src, open(folder / base, "wb") as dst:
                        shutil.copyfileobj(src, dst, _CHUNK)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as exc:
        raise DataError(f"{archive}: not a readable zip file ({exc})") from None


def _dataset_prefix(spec: DatasetSpec, names: list[str], archive: Path) -> str:
    """The folder inside the zip holding the data set (``"<name>"`` or ``""``, usually)."""
    key = spec.filenames[0]
    folders = {
        posixpath.dirname(n)
        for n in names
        if posixpath.basename(n) == key and not n.startswith("__MACOSX")
    }
    for preferred in (spec.name, ""):
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
    _download(url, archive, progress)
    expected = _published_md5(url + ".md5", required=need_md5)
    if expected is not None and _md5(archive) != expected:
        raise DataError(f"{url}: md5 differs from the published {url}.md5 (damaged download?)")
    _extract(spec, archive, folder)
    return url


def _download(url: str, path: Path, progress: bool) -> None:
    """Stream ``url`` into ``path`` with a progress bar (bytes)."""
    try:
        with requests.get(url, stream=True, timeout=TIMEOUT) as response:
            if response.status_code != 200:
                raise DataError(f"cannot download {url}: HTTP {response.status_code}")
            total = int(response.headers.get("Content-Length") or 0) or None
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
                    out.write(chunk)
                    bar.update(len(chunk))
    except requests.RequestException as exc:
        raise DataError(f"cannot download {url}: {exc}") from None


def _published_md5(url: str, required: bool) -> str | None:
    """The md5 hex digest published at ``url``; ``None`` if absent and not ``required``."""
    try:
        response = requests.get(url, timeout=TIMEOUT)
    except requests.RequestException as exc:
        if required:
            raise DataError(f"cannot download {url}: {exc}") from None
        return None
    match = re.search(r"\b[0-9a-fA-F]{32}\b", response.text) if response.ok else None
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
    _write_marker(spec, target, str(target))
    return True


def _write_marker(spec: DatasetSpec, folder: Path, origin: str) -> None:
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


def _install(folder: Path, target: Path, staging: Path) -> None:
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
        elif is_fetched(get_spec(target.name), target):
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
