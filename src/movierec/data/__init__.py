"""MovieLens data: fetch, verify and load every release; make synthetic look-alikes.

Example::

    ds = load_dataset("ml-latest-small")  # fetched into MOVIEREC_HOME on first use
    ds.ratings.matrix.shape  # (610, 9724): users x rated movies
    len(ds.catalog)  # 9742 movies
"""

from movierec.data.catalog import Catalog, Movie
from movierec.data.fetch import dataset_dir, fetch_dataset, is_fetched
from movierec.data.load import load_dataset, load_split, official_folds
from movierec.data.movielens import (
    DATASETS,
    Dataset,
    available_datasets,
    get_spec,
    synthetic_datasets,
)
from movierec.data.parsing import DataFileError, parse_year
from movierec.data.ratings import Ratings

__all__ = [
    "DATASETS",
    "Catalog",
    "DataFileError",
    "Dataset",
    "Movie",
    "Ratings",
    "available_datasets",
    "dataset_dir",
    "fetch_dataset",
    "get_spec",
    "is_fetched",
    "load_dataset",
    "load_split",
    "official_folds",
    "parse_year",
    "synthetic_datasets",
]
