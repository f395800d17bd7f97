"""Every MovieLens release: small files in each one's exact layout, read by the same code."""

from __future__ import annotations

import zipfile
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType

import pandas as pd
import pytest

from movierec.data import load_dataset
from movierec.data import movielens as movielens_module
from movierec.data.fetch import fetch_dataset, is_fetched
from movierec.data.movielens import DATASETS, DataFileError
from movierec.errors import DataError

RATING_COLUMNS = ["userId", "movieId", "rating", "timestamp"]

# -- ml-1m: '::' .dat files in Latin-1, whole stars, users.dat ----------------------------------
ML1M = {
    "ratings.dat": "1::1193::5::978300760\n1::661::3::978302109\n2::1193::4::978298413\n"
    "2::2::1::978299000\n",
    "movies.dat": "1::Toy Story (1995)::Animation|Children's|Comedy\n"
    "2::Misérables, Les (1995)::Drama|Musical\n"
    "661::James and the Giant Peach (1996)::Animation|Children's|Musical\n"
    "1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n",
    "users.dat": "1::F::1::10::48067\n2::M::56::16::70072\n",
}
# -- ml-10m: '::' .dat files in UTF-8, half stars, tags.dat; zip folder ml-10M100K -------------
ML10M = {
    "ratings.dat": "1::122::5::838985046\n1::185::4.5::838983525\n2::122::0.5::868245777\n",
    "movies.dat": "122::Boomerang (1992)::Comedy|Romance\n185::Net, The (1995)::Action|Crime\n"
    "8000::Amélie (Fabuleux destin d'Amélie Poulain, Le) (2001)::(no genres listed)\n",
    "tags.dat": "15::185::computer::1138537770\n20::185::hacker::1188263867\n"
    "20::122::funny::1188263880\n",
}
# -- ml-20m on: CSV with header, links, tags, genome where present -----------------------------
CSV = {
    "ratings.csv": "userId,movieId,rating,timestamp\n1,296,5.0,1147880044\n1,306,3.5,1147868817\n"
    "2,296,4.0,1141415820\n",
    "movies.csv": "movieId,title,genres\n296,Pulp Fiction (1994),Comedy|Crime|Drama|Thriller\n"
    '306,"Three Colors: Red (Trois couleurs: Rouge) (1994)",Drama\n'
    '209171,"Women of Devil\'s Island, The (1962)",Action|Adventure|Drama\n',
    "links.csv": "movieId,imdbId,tmdbId\n296,0110912,680\n306,0111495,110\n209171,0055323,\n",
    "tags.csv": 'userId,movieId,tag,timestamp\n3,296,"dark comedy",1439472355\n'
    '4,296,"Quentin Tarantino",1573943598\n4,306,"Kieslowski, Krzysztof",1573943604\n',
}
GENOME = {
    "genome-scores.csv": "movieId,tagId,relevance\n296,1,0.029\n296,2,0.9625\n306,1,0.5\n"
    "306,2,0.125\n",
    "genome-tags.csv": "tagId,tag\n1,007\n2,dark comedy\n",
}
LAYOUTS = {
    "ml-1m": ("ml-1m", ML1M, "latin-1"),
    "ml-10m": ("ml-10M100K", ML10M, "utf-8"),
    "ml-20m": ("ml-20m", {**CSV, **GENOME}, "utf-8"),
    "ml-25m": ("ml-25m", {**CSV, **GENOME}, "utf-8"),
    "ml-32m": ("ml-32m", CSV, "utf-8"),
    "ml-latest": ("ml-latest", {**CSV, **GENOME}, "utf-8"),
}


def write_release(folder: Path, name: str) -> Path:
    _, files, encoding = LAYOUTS[name]
    folder.mkdir(parents=True)
    for filename, text in files.items():
        (folder / filename).write_bytes(text.encode(encoding))
    return folder


@pytest.fixture
def any_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    """Releases accept our tiny files' row counts (the real counts are checked elsewhere)."""
    relaxed = {
        name: replace(spec, files=tuple(replace(f, rows=None) for f in spec.files))
        for name, spec in DATASETS.items()
    }
    monkeypatch.setattr(movielens_module, "DATASETS", MappingProxyType(relaxed))


def test_every_release_is_known_with_its_files() -> None:
    assert DATASETS["ml-1m"].filenames == ["ratings.dat", "movies.dat", "users.dat"]
    assert DATASETS["ml-10m"].filenames == ["ratings.dat", "movies.dat", "tags.dat"]
    assert DATASETS["ml-10m"].zip_folder == "ml-10M100K"
    for name in ("ml-20m", "ml-25m", "ml-latest"):
        assert set(DATASETS[name].filenames) == set(CSV) | set(GENOME)
    assert set(DATASETS["ml-32m"].filenames) == set(CSV)
    assert DATASETS["ml-25m"].url == "https://files.grouplens.org/datasets/movielens/ml-25m.zip"
    assert DATASETS["ml-25m"].file("ratings.csv").rows == 25_000_095
    assert DATASETS["ml-25m"].max_bytes >= 2 * 1_100_000_000  # above the real unpacked size


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_release_layout_loads(name: str, tmp_path: Path) -> None:
    write_release(tmp_path / "data" / name, name)
    dataset = load_dataset(name, home=tmp_path, fetch=False)
    frame = dataset.frame
    assert list(frame.columns) == RATING_COLUMNS
    assert [str(t) for t in frame.dtypes] == ["int64", "int64", "float64", "int64"]
    files = LAYOUTS[name][1]
    ratings_file = "ratings.dat" if "ratings.dat" in files else "ratings.csv"
    n_lines = files[ratings_file].count("\n") - ratings_file.endswith(".csv")
    assert dataset.ratings.nnz == len(frame) == n_lines
    assert len(dataset.catalog) == files["movies." + ratings_file[-3:]].count("\n") - (
        ratings_file.endswith(".csv")
    )


def test_ml_1m_latin1_titles_and_whole_stars(tmp_path: Path) -> None:
    write_release(tmp_path / "data" / "ml-1m", "ml-1m")
    dataset = load_dataset("ml-1m", home=tmp_path, fetch=False)
    movie = dataset.catalog.get(2)
    assert movie.title == "Misérables, Les (1995)"
    assert movie.display_title == "Les Misérables"
    assert movie.year == 1995 and movie.genres == ("Drama", "Musical")
    assert movie.tmdb_id is None and movie.n_ratings == 1 and movie.mean_rating == 1.0
    assert dataset.catalog.get(1).genres == ("Animation", "Children's", "Comedy")
    assert dataset.catalog.get(1193).n_ratings == 2
    assert dataset.tags == {}


def test_ml_1m_bad_star_names_file_and_line(tmp_path: Path) -> None:
    folder = write_release(tmp_path / "data" / "ml-1m", "ml-1m")
    text = ML1M["ratings.dat"].replace("2::2::1::", "2::2::4.5::")
    (folder / "ratings.dat").write_text(text, encoding="latin-1")
    with pytest.raises(DataFileError, match=r"ratings\.dat, line 4: rating 4\.5 is not a multiple"):
        load_dataset("ml-1m", home=tmp_path, fetch=False)


def test_ml_10m_half_stars_tags_and_utf8(tmp_path: Path) -> None:
    write_release(tmp_path / "data" / "ml-10m", "ml-10m")
    dataset = load_dataset("ml-10m", home=tmp_path, fetch=False)
    assert sorted(dataset.frame["rating"]) == [0.5, 4.5, 5.0]
    assert dataset.catalog.get(8000).title.startswith("Amélie")
    assert dataset.catalog.get(8000).genres == ()
    assert dataset.tags == {122: ["funny"], 185: ["computer", "hacker"]}


def test_csv_release_links_tags_and_quoted_titles(tmp_path: Path) -> None:
    write_release(tmp_path / "data" / "ml-25m", "ml-25m")
    dataset = load_dataset("ml-25m", home=tmp_path, fetch=False)
    assert dataset.catalog.get(296).tmdb_id == 680
    assert dataset.catalog.get(209171).tmdb_id is None
    assert dataset.catalog.get(209171).display_title == "The Women of Devil's Island"
    assert dataset.tags[306] == ["Kieslowski, Krzysztof"]
    assert dataset.catalog.get(296).mean_rating == 4.5


def test_unknown_movie_in_ratings_is_named(tmp_path: Path) -> None:
    folder = write_release(tmp_path / "data" / "ml-10m", "ml-10m")
    with open(folder / "ratings.dat", "a", encoding="utf-8") as out:
        out.write("3::999::4::868245777\n")
    with pytest.raises(DataFileError, match=r"ratings\.dat, line 4: movieId 999 is not in movies"):
        load_dataset("ml-10m", home=tmp_path, fetch=False)


@pytest.mark.parametrize("name", ["ml-10m", "ml-25m"])
def test_fetch_from_official_zip_layout(name: str, tmp_path: Path, any_rows: None) -> None:
    """A zip laid out like GroupLens's (its folder name, extra files) is fetched and loads."""
    zip_folder, files, encoding = LAYOUTS[name]
    archive = tmp_path / f"{name}.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(f"{zip_folder}/", "")
        zf.writestr(f"{zip_folder}/README.txt", "read me")
        for filename, text in files.items():
            zf.writestr(f"{zip_folder}/{filename}", text.encode(encoding))
    home = tmp_path / "home"
    folder = fetch_dataset(name, source=archive, home=home, progress=False)
    assert folder == home / "data" / name
    assert is_fetched(movielens_module.DATASETS[name], folder)
    assert load_dataset(name, home=home, fetch=False).ratings.nnz == 3


def test_fetch_checks_genome_files(tmp_path: Path, any_rows: None) -> None:
    source = write_release(tmp_path / "src" / "ml-20m", "ml-20m")
    (source / "genome-scores.csv").write_text(GENOME["genome-scores.csv"] + "306,3,1.5\n")
    with pytest.raises(DataError, match=r"genome-scores\.csv, line 6: relevance 1\.5 is outside"):
        fetch_dataset("ml-20m", source=source, home=tmp_path / "home", progress=False)
    assert not (tmp_path / "home" / "data" / "ml-20m").exists()


def test_fetch_checks_row_counts(tmp_path: Path) -> None:
    source = write_release(tmp_path / "src" / "ml-32m", "ml-32m")
    with pytest.raises(DataError, match=r"ratings\.csv: 3 rows, expected about 32,000,204"):
        fetch_dataset("ml-32m", source=source, home=tmp_path / "home", progress=False)


def test_frame_matches_pandas_reading(tmp_path: Path) -> None:
    """The pyarrow reader gives what a plain pandas read of the same CSV gives."""
    folder = write_release(tmp_path / "data" / "ml-32m", "ml-32m")
    dataset = load_dataset("ml-32m", home=tmp_path, fetch=False)
    expected = pd.read_csv(folder / "ratings.csv")
    pd.testing.assert_frame_equal(dataset.frame, expected)
