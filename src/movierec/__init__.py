"""movierec: a movie recommender with instant fold-in of new visitors."""

__version__ = "0.1.0"
