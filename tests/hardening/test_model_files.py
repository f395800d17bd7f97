"""Damaged model files (issue 7, row 4) are refused in one line, retrained or exit 2.

Every case of the issue (truncated, empty, a flipped byte, a missing array, a wrong
shape or dtype, NaN weights, shuffled or duplicated ids, bad metadata) is written over a
real model of ml-latest-small, then:

- ``models.load`` raises ``ModelError``, one line naming the file;
- ``ensure_model(train=False)`` raises ``ModelError`` naming it;
- ``ensure_model(train=True)`` says so in one line, retrains, and recommends exactly as
  the undamaged model does;
- ``movierec recommend`` retrains and prints the same picks (or exits 2), never a traceback.

The ``popular`` model fits in a fraction of a second, so every case can retrain it; a
quick ``svd`` covers factor arrays in the load checks. A killed ``save`` is a real
process killed just before its rename.
"""

from __future__ import annotations

import io
import json
import os
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from movierec import models
from movierec.cli import main
from movierec.config import Settings, load_settings
from movierec.errors import ModelError
from movierec.models import Recommender
from movierec.models.files import STALE_AFTER, write_model_file
from movierec.training import ensure_model, model_path

DATASET = "ml-latest-small"
MODEL = "popular"  # fits in ~0.1 s: every damage case can retrain it
RATINGS = {260: 4.5, 1: 3.0, 2571: 5.0, 356: 2.0}  # Star Wars, Toy Story, Matrix, Forrest Gump
CLI_ARGS = ["recommend", "--dataset", DATASET, "--model", MODEL, "-n", "5"]
CLI_ARGS += [arg for movie, stars in RATINGS.items() for arg in ("--rate", f"{movie}={stars}")]

Damage = Callable[[bytes, str], bytes]  # (file bytes, name of a float weight array) -> bytes


# -- writing damaged files ----------------------------------------------------------------------
def _parts(data: bytes) -> tuple[dict, dict[str, np.ndarray]]:
    """``(meta, arrays)`` of a model file's bytes, read without any checks."""
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    return json.loads(arrays.pop("__meta__").tobytes()), arrays


def _zip(meta: dict | bytes, arrays: dict[str, np.ndarray]) -> bytes:
    """A file of ``arrays`` whose metadata is ``meta`` as given (checksums not updated)."""
    raw = meta if isinstance(meta, bytes) else json.dumps(meta).encode()
    out = io.BytesIO()
    np.savez(out, **arrays, __meta__=np.frombuffer(raw, dtype=np.uint8))
    return out.getvalue()


def consistent(change: Callable[[dict[str, np.ndarray], str], None]) -> Damage:
    """Arrays changed by ``change`` and written *with* matching checksums: a file that
    is wrong in what it holds, not in its bytes."""

    def damage(data: bytes, weights: str) -> bytes:
        meta, arrays = _parts(data)
        change(arrays, weights)
        with tempfile.TemporaryDirectory() as scratch:
            out = Path(scratch) / "rewritten.npz"
            write_model_file(out, arrays, {k: v for k, v in meta.items() if k != "arrays"})
            return out.read_bytes()

    return damage


def stale_checksums(change: Callable[[dict[str, np.ndarray], str], None]) -> Damage:
    """Arrays changed by ``change`` behind the metadata's back (checksums not updated)."""

    def damage(data: bytes, weights: str) -> bytes:
        meta, arrays = _parts(data)
        change(arrays, weights)
        return _zip(meta, arrays)

    return damage


def meta_changed(change: Callable[[dict], dict | bytes]) -> Damage:
    def damage(data: bytes, weights: str) -> bytes:
        meta, arrays = _parts(data)
        return _zip(change(meta), arrays)

    return damage


def flipped(locate: Callable[[bytes, str], int]) -> Damage:
    """One byte inverted at ``locate(data, weights)``."""

    def damage(data: bytes, weights: str) -> bytes:
        at = locate(data, weights)
        return data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :]

    return damage


def inside(array: str) -> Callable[[bytes, str], int]:
    """The middle of an array's data (``"*"``: the float weight array)."""

    def locate(data: bytes, weights: str) -> int:
        values = _parts(data)[1][weights if array == "*" else array]
        start = data.index(values.tobytes()[:64])
        return start + values.nbytes // 2

    return locate


def _set(name: str, value: Callable[[np.ndarray], np.ndarray]):
    def change(arrays: dict[str, np.ndarray], weights: str) -> None:
        key = weights if name == "*" else name
        arrays[key] = value(arrays[key])

    return change


def _with_nan(values: np.ndarray) -> np.ndarray:
    values = values.copy()
    values.reshape(-1)[values.size // 3] = np.nan
    return values


def _shuffled(ids: np.ndarray) -> np.ndarray:
    return np.random.default_rng(0).permutation(ids)


def _duplicated(ids: np.ndarray) -> np.ndarray:
    ids = ids.copy()
    ids[1] = ids[0]
    return ids


def _drop(name: str):
    def change(arrays: dict[str, np.ndarray], weights: str) -> None:
        del arrays[weights if name == "*" else name]

    return change


#: case -> (damage, words the one-line message must hold)
CASES: dict[str, tuple[Damage, str]] = {
    "truncated-half": (lambda data, _: data[: len(data) // 2], "damaged"),
    "truncated-tail": (lambda data, _: data[:-10], "damaged"),
    "empty": (lambda data, _: b"", "empty"),
    "flip-zip-signature": (flipped(lambda data, _: 0), "damaged"),
    "flip-weights": (flipped(inside("*")), "checksum"),
    "flip-movie-ids": (flipped(inside("movie_ids")), "checksum"),
    "flip-rated-stars": (flipped(inside("m_rated_stars")), "checksum"),
    "flip-npy-header": (flipped(lambda data, _: data.index(b"{'descr'") + 3), "damaged"),
    "flip-metadata": (flipped(lambda data, _: data.index(b'"sha256"') + 2), "damaged"),
    "flip-compression-method": (
        flipped(lambda data, _: data.rindex(b"PK\x01\x02") + 10),
        "damaged",
    ),
    "missing-array": (stale_checksums(_drop("*")), "missing"),
    "missing-array-unlisted": (consistent(_drop("*")), "missing"),
    "wrong-shape": (consistent(_set("*", lambda v: v[:-1])), "expected"),
    "wrong-dtype": (consistent(_set("*", lambda v: v.astype(np.float64))), "float64"),
    "nan-weights": (consistent(_set("*", _with_nan)), "NaN"),
    "inf-weights": (consistent(_set("*", lambda v: v * np.float32(np.inf))), "NaN or infinite"),
    "shuffled-ids": (stale_checksums(_set("movie_ids", _shuffled)), "checksum of movie_ids"),
    "duplicated-ids": (consistent(_set("movie_ids", _duplicated)), "duplicates"),
    "bad-json": (meta_changed(lambda meta: b'{"format": 2, "arr'), "JSON"),
    "meta-not-object": (meta_changed(lambda meta: b"[2]"), "JSON object"),
    "unknown-model": (meta_changed(lambda meta: {**meta, "model": "gpt"}), "unknown model"),
    "wrong-params": (
        meta_changed(lambda meta: {**meta, "params": {"damping": "ten"}}),
        "bad parameters",
    ),
    "old-format": (
        meta_changed(lambda meta: {k: v for k, v in meta.items() if k != "arrays"} | {"format": 1}),
        "format 1",
    ),
}


# -- fixtures ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def model_home(tmp_path_factory: pytest.TempPathFactory, session_home: Path) -> Path:
    """A MOVIEREC_HOME of this module's own, ml-latest-small fetched into it."""
    home = tmp_path_factory.mktemp("model-files")
    settings = load_settings(
        {"MOVIEREC_HOME": str(home), "MOVIEREC_DATA_SOURCE": str(session_home / "data")}
    )
    ensure_model(DATASET, MODEL, settings, progress=False)  # fetches the data, trains once
    return home


@pytest.fixture
def settings(model_home: Path, session_home: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name in ("DATABASE_URL", "TMDB_API_KEY", "TMDB_READ_TOKEN", "MOVIEREC_MODEL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MOVIEREC_HOME", str(model_home))
    monkeypatch.setenv("MOVIEREC_DATA_SOURCE", str(session_home / "data"))
    return load_settings()


@pytest.fixture(scope="module")
def pristine(model_home: Path) -> tuple[bytes, Recommender]:
    """The undamaged model file's bytes and the model loaded from it."""
    path = model_home / "models" / f"{DATASET}-{MODEL}.npz"
    return path.read_bytes(), models.load(path)


@pytest.fixture(scope="module")
def svd_file(ml_small, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A quick svd of ml-latest-small (float factor arrays), as file bytes."""
    path = tmp_path_factory.mktemp("svd") / "svd.npz"
    models.create("svd", n_epochs=3, n_factors=8).fit(ml_small.ratings).save(path)
    return path.read_bytes()


def same_picks(model: Recommender, reference: Recommender) -> None:
    """``model`` ranks and scores every movie exactly as ``reference`` for a visitor."""
    np.testing.assert_array_equal(model.movie_ids, reference.movie_ids)
    a, b = model.fold_in(RATINGS, RATINGS.values()), reference.fold_in(RATINGS, RATINGS.values())
    np.testing.assert_array_equal(model.score(a), reference.score(b))
    np.testing.assert_array_equal(model.rank(a), reference.rank(b))


def assert_one_line(message: str, *words: str) -> None:
    assert "\n" not in message and "Traceback" not in message
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"


# -- load ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize(("kind", "weights"), [(MODEL, "m_item_mean"), ("svd", "m_item_factors")])
def test_load_refuses_damage_in_one_line(
    case: str, kind: str, weights: str, settings: Settings, pristine, svd_file: bytes
) -> None:
    damage, words = CASES[case]
    data = pristine[0] if kind == MODEL else svd_file
    path = settings.home / f"damaged-{kind}.npz"
    path.write_bytes(damage(data, weights))
    with pytest.raises(ModelError) as caught:
        models.load(path)
    assert_one_line(str(caught.value), str(path), words)


@pytest.mark.slow  # ~5 s: 3,000 loads
def test_every_single_flipped_byte_is_refused_or_harmless(tmp_path: Path) -> None:
    """All positions of a tiny file: one inverted byte never loads a different model.

    About 17% of the bytes are zip fields nobody reads (each member's local header
    repeats the central directory's times, sizes and CRC; zipfile uses the latter), so
    those flips load the same model; every other flip is refused.
    """
    import pandas as pd

    from movierec.data import Ratings

    frame = pd.DataFrame({"userId": [1, 1, 2], "movieId": [10, 20, 20], "rating": [5.0, 3.0, 4.0]})
    model = models.create(MODEL).fit(Ratings.from_frame(frame))
    data = model.save(tmp_path / "tiny.npz").read_bytes()
    path, refused = tmp_path / "flipped.npz", 0
    for at in range(len(data)):
        path.write_bytes(data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :])
        try:
            loaded = models.load(path)
        except ModelError as exc:
            assert_one_line(str(exc), str(path))
            refused += 1
            continue
        for name, array in model._arrays().items():
            np.testing.assert_array_equal(loaded._arrays()[name], array, err_msg=f"byte {at}")
        assert loaded.params == model.params and loaded.global_mean == model.global_mean
    assert refused > 0.75 * len(data)


def test_save_refuses_what_load_would_refuse(tmp_path: Path, pristine) -> None:
    """A model whose training diverged (NaN weights) is not written at all."""
    (tmp_path / "good.npz").write_bytes(pristine[0])
    model = models.load(tmp_path / "good.npz")
    model.item_mean = _with_nan(model.item_mean)
    target = tmp_path / "diverged.npz"
    with pytest.raises(ModelError) as caught:
        model.save(target)
    assert_one_line(str(caught.value), str(target), "m_item_mean", "NaN")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good.npz"]


@pytest.mark.parametrize("umask", [0o000, 0o022, 0o077])
def test_a_saved_model_is_readable_by_its_owner_only(tmp_path: Path, pristine, umask: int) -> None:
    """0600 whatever the umask, as the database and the secret key; a model an earlier
    version left world-readable is replaced by a private file on its next save."""
    path = tmp_path / "model.npz"
    path.write_bytes(pristine[0])
    path.chmod(0o644)
    previous = os.umask(umask)
    try:
        pristine[1].save(path)
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert models.load(path).movie_ids.size == pristine[1].movie_ids.size
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]  # no temp file left


def test_a_trained_model_is_readable_by_its_owner_only(settings: Settings) -> None:
    path = model_path(DATASET, MODEL, settings)
    path.unlink(missing_ok=True)
    ensure_model(DATASET, MODEL, settings, progress=False)  # trains and saves
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


# -- ensure_model and the CLI -------------------------------------------------------------------
@pytest.mark.parametrize("case", sorted(CASES))
def test_ensure_model_refuses_or_retrains(case: str, settings: Settings, pristine) -> None:
    data, reference = pristine
    damage, words = CASES[case]
    path = model_path(DATASET, MODEL, settings)
    path.write_bytes(damage(data, "m_item_mean"))

    with pytest.raises(ModelError) as caught:
        ensure_model(DATASET, MODEL, settings, progress=False, train=False)
    assert_one_line(str(caught.value), str(path), words)

    notices: list[str] = []
    model, _ = ensure_model(DATASET, MODEL, settings, progress=False, notice=notices.append)
    assert len(notices) == 1
    assert_one_line(notices[0], str(path), words, "retraining")
    same_picks(model, reference)
    same_picks(models.load(path), reference)  # and the file is good again


@pytest.mark.parametrize(
    "case", ["truncated-half", "empty", "flip-weights", "missing-array", "wrong-shape",
             "nan-weights", "shuffled-ids", "bad-json"]
)  # fmt: skip
def test_cli_recommend_retrains_a_damaged_model(
    case: str, settings: Settings, pristine, capsys: pytest.CaptureFixture[str]
) -> None:
    path = model_path(DATASET, MODEL, settings)
    path.write_bytes(pristine[0])
    assert main(CLI_ARGS) == 0
    expected = capsys.readouterr().out
    assert expected.count("\n") >= 5

    path.write_bytes(CASES[case][0](pristine[0], "m_item_mean"))
    code = main(CLI_ARGS)
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("movierec:")]
    assert code == 0 and out == expected
    assert len(lines) == 1
    assert_one_line(lines[0], str(path), "retraining")


def test_model_of_another_data_set_version_is_retrained(
    settings: Settings, pristine, ml_100k
) -> None:
    """Sound file, wrong movies (ml-100k's, or ml-latest-small's in another order)."""
    data, reference = pristine
    path = model_path(DATASET, MODEL, settings)
    other = models.create(MODEL).fit(ml_100k.ratings)
    shuffled = consistent(_set("movie_ids", _shuffled))(data, "m_item_mean")
    for write, words in [
        (lambda: other.save(path), f"{ml_100k.ratings.n_items:,} movies"),
        (lambda: path.write_bytes(shuffled), "movie ids differ"),
        (lambda: models.create("svd", n_epochs=1).fit(ml_100k.ratings).save(path), "'svd'"),
    ]:
        write()
        models.load(path)  # a sound file: only the data set can tell
        with pytest.raises(ModelError) as caught:
            ensure_model(DATASET, MODEL, settings, progress=False, train=False)
        assert_one_line(str(caught.value), str(path), words)
        notices: list[str] = []
        model, _ = ensure_model(DATASET, MODEL, settings, progress=False, notice=notices.append)
        assert len(notices) == 1 and "retraining" in notices[0]
        same_picks(model, reference)


def test_missing_model_without_training_names_the_path(settings: Settings) -> None:
    path = model_path(DATASET, MODEL, settings)
    path.unlink(missing_ok=True)
    with pytest.raises(ModelError) as caught:
        ensure_model(DATASET, MODEL, settings, progress=False, train=False)
    assert_one_line(str(caught.value), str(path), "no trained model")
    assert not path.exists()


# -- a killed save ------------------------------------------------------------------------------
KILLED_SAVE = """
import os, signal, sys
from movierec import models
model = models.load(sys.argv[1])
os.replace = lambda *args: os.kill(os.getpid(), signal.SIGKILL)  # die just before the rename
model.save(sys.argv[1])
"""


def temps_of(path: Path) -> list[Path]:
    return sorted(path.parent.glob(f"{path.stem}.tmp-*.npz"))


def test_a_killed_save_leaves_the_old_file_and_its_temp_is_removed(
    settings: Settings, pristine, capsys: pytest.CaptureFixture[str]
) -> None:
    data, reference = pristine
    path = model_path(DATASET, MODEL, settings)
    path.write_bytes(data)
    run = subprocess.run([sys.executable, "-c", KILLED_SAVE, str(path)], capture_output=True)
    assert run.returncode == -signal.SIGKILL, run.stderr.decode()[-500:]
    (temp,) = temps_of(path)
    assert temp.stat().st_size > 0.9 * len(data)  # fully written, never renamed
    assert path.read_bytes() == data  # the old file is untouched

    assert main(CLI_ARGS) == 0  # the CLI serves the old file ...
    assert "Traceback" not in capsys.readouterr().err
    assert temps_of(path) == []  # ... and removed the dead writer's temp file
    same_picks(ensure_model(DATASET, MODEL, settings, progress=False, train=False)[0], reference)


def test_stale_temp_rules(settings: Settings, pristine) -> None:
    """Dead writer: removed at once; live writer: kept until idle for STALE_AFTER."""
    data, reference = pristine
    path = model_path(DATASET, MODEL, settings)
    path.write_bytes(data)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    dead_temp = path.with_name(f"{path.stem}.tmp-{int(dead.stdout)}-0a1b2c3d.npz")
    live_temp = path.with_name(f"{path.stem}.tmp-{os.getpid()}-00ff00ff.npz")
    idle_temp = path.with_name(f"{path.stem}.tmp-{os.getpid()}-deadbeef.npz")
    legacy_temp = path.with_name(f"{path.name}k3j2_x.tmp.npz")  # the old naming
    other_model = path.with_name(f"{DATASET}-svd.tmp-{int(dead.stdout)}-0a1b2c3d.npz")
    for temp in (dead_temp, live_temp, idle_temp, legacy_temp, other_model):
        temp.write_bytes(data[:1000])
    long_ago = time.time() - STALE_AFTER - 5
    for temp in (idle_temp, legacy_temp):
        os.utime(temp, (long_ago, long_ago))

    model, _ = ensure_model(DATASET, MODEL, settings, progress=False, train=False)
    same_picks(model, reference)
    assert temps_of(path) == [live_temp]
    assert not legacy_temp.exists() and other_model.exists()
    model.save(path)  # save applies the same rules: the live writer's fresh temp stays
    assert temps_of(path) == [live_temp]
    for temp in (live_temp, other_model):
        temp.unlink()
