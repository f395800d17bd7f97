"""Typed parameters (``ModelParams`` of ``Param`` checks) and declared arrays, as the base
class applies them."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest

from movierec import models
from movierec.errors import InvalidInput
from movierec.models.params import ModelParams, Param, param


@pytest.mark.parametrize(
    ("spec", "value", "expected"),
    [
        (Param("n", 1, int), 3.0, 3),
        (Param("x", 0.5), 0, 0),
        (Param("lr", None, optional=True), None, None),
        (Param("flag", False, bool), 1, True),
        (Param("kind", "a", str, choices=("a", "b")), "b", "b"),
        (Param("x", 0.5, high=1.0), 1.0, 1.0),
        (Param("names", [], list), ("a", "b"), ["a", "b"]),
        (Param("overrides", {}, dict), {"a": {}}, {"a": {}}),
    ],
)
def test_good_values_are_typed(spec: Param, value, expected) -> None:
    got = spec.check(value)
    assert got == expected and type(got) is type(expected)


@pytest.mark.parametrize(
    ("spec", "value", "words"),
    [
        (Param("n_factors", 1, int, strict=True), 0, "a whole number > 0"),
        (Param("n_epochs", 1, int), 2.5, "a whole number >= 0"),
        (Param("reg", 0.1), -0.1, "a number >= 0"),
        (Param("reg", 0.1), float("nan"), "a number"),
        (Param("reg", 0.1), "ten", "a number"),
        (Param("reg", 0.1), True, "a number"),
        (Param("reg", 0.1), None, "a number"),
        (Param("share", 0.1, high=1.0), 1.5, "<= 1"),
        (Param("flag", False, bool), "yes", "true or false"),
        (Param("kind", "a", str, choices=("a", "b")), "c", "one of a, b"),
        (Param("names", [], list), "a", "a list"),
        (Param("overrides", {}, dict), [1], "an object"),
        (Param("names", [], list, accepts="a list of names"), 3, "must be a list of names, got 3"),
    ],
)
def test_bad_values_name_the_parameter(spec: Param, value, words: str) -> None:
    with pytest.raises(InvalidInput, match=words) as caught:
        spec.check(value)
    assert caught.value.field == spec.name
    assert spec.name in str(caught.value)


def test_quoted_bad_value_is_cut_to_100_characters() -> None:
    with pytest.raises(InvalidInput) as caught:
        Param("reg", 0.1).check("x" * 1000)
    assert len(str(caught.value)) < 200


@pytest.mark.parametrize("name", ["svd", "svdpp", "nmf", "als"])
def test_factor_models_declare_their_parameters(name: str) -> None:
    klass = models.model_class(name)
    assert klass.defaults == {spec.name: spec.default for spec in klass.param_specs}
    model = models.create(name, n_factors=4.0)
    assert model.params["n_factors"] == 4 and isinstance(model.params["n_factors"], int)


@pytest.mark.parametrize("name", models.available())
def test_every_model_declares_its_parameters(name: str) -> None:
    """Each model declares its own frozen, typed parameters; ``defaults`` and the checks
    follow from them, and every default passes its own check."""
    klass = models.model_class(name)
    assert "params_type" in klass.__dict__ and klass.params_type is not ModelParams
    assert klass.params_type.__dataclass_params__.frozen  # type: ignore[attr-defined]
    assert [spec.name for spec in klass.param_specs] == [
        f.name for f in dataclasses.fields(klass.params_type)
    ]
    assert klass.defaults == {spec.name: spec.default for spec in klass.param_specs} | {
        k: list(v) for k, v in klass.defaults.items() if isinstance(v, list)
    }
    model = klass()
    assert model.params == klass.defaults and isinstance(model.config, klass.params_type)
    assert klass.params_type.parse(klass.defaults) == model.config  # defaults pass, round trip
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(model.config, klass.param_specs[0].name, None)


def test_config_is_typed_from_annotations() -> None:
    """Fitting code reads ``model.config``: ints are ints, floats floats (``3`` -> 3.0),
    optional ones None, lists tuples; ``params`` gives the JSON-able dict back."""
    svd = models.create("svd", n_factors=8.0, reg_all=1, lr_bias=None)
    assert svd.config.n_factors == 8 and type(svd.config.n_factors) is int
    assert svd.config.reg_all == 1.0 and type(svd.config.reg_all) is float
    assert svd.config.lr_bias is None and svd.params["lr_bias"] is None
    blend = models.create("blend", members=["svd", "als"])
    assert blend.config.members == ("svd", "als") and blend.params["members"] == ["svd", "als"]


def test_an_unsupported_annotation_is_refused_when_declared() -> None:
    @dataclass(frozen=True)
    class Odd(ModelParams):
        when: complex = param(1j)

    with pytest.raises(TypeError, match="when"):
        Odd.specs()


@pytest.mark.parametrize(
    ("name", "param", "bad", "words"),
    [
        ("ease", "l2", 0, "l2 must be a number > 0, got 0"),
        ("ease", "max_items", 0, "max_items must be a whole number > 0, got 0"),
        ("ease", "fit_to_budget", "yes", "fit_to_budget must be true or false"),
        ("ease", "n_factors", 0, "n_factors must be a whole number > 0, got 0"),
        ("itemknn", "k", 2.5, "k must be a whole number > 0, got 2.5"),
        ("itemknn", "min_k", -1, "min_k must be a whole number >= 0, got -1"),
        ("itemknn", "shrinkage", "x", "shrinkage must be a number >= 0, got 'x'"),
        ("content", "min_df", 1.5, "min_df must be a whole number >= 0, got 1.5"),
        ("content", "tag_weight", -1.0, "tag_weight must be a number >= 0, got -1.0"),
        ("popular", "damping", float("inf"), "damping must be a number >= 0, got inf"),
        ("blend", "members", "svd", "members must be a non-empty list of distinct model"),
        ("blend", "members", [], "members must be a non-empty list of distinct model"),
        ("blend", "member_params", 3, "member_params must be a map of member names"),
        ("blend", "validation_fraction", 0, "validation_fraction must be a number > 0"),
        ("blend", "validation_fraction", 1.0, "validation_fraction must be below 1"),
    ],
)
def test_bad_values_get_one_line_naming_the_parameter(
    name: str, param: str, bad, words: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        models.create(name, **{param: bad})
    assert caught.value.field == param
    assert str(caught.value).startswith(words) and "\n" not in str(caught.value)


def test_whole_numbers_are_typed_and_lists_copied() -> None:
    knn = models.create("itemknn", k=20.0)
    assert knn.params["k"] == 20 and isinstance(knn.params["k"], int)
    members = ["svd", "als"]
    blend = models.create("blend", members=members)
    assert blend.params["members"] == members and blend.params["members"] is not members
    assert (
        models.create("blend").params["members"]
        is not models.model_class("blend").defaults["members"]
    )


def test_a_model_written_as_maths_only_round_trips(tmp_path, small_split) -> None:
    """A new model declares its parameters and arrays and writes only its maths; the base
    class checks the parameters, keeps what users rated and saves/loads the arrays."""
    from movierec.models.base import ArraySpec, Recommender, UserState
    from movierec.models.foldin import RatedItems

    @dataclass(frozen=True)
    class ItemMeanParams(ModelParams):
        shrink: float = param(5.0)

    class ItemMean(Recommender):
        name: ClassVar[str] = "item-mean-test"
        params_type: ClassVar[type[ModelParams]] = ItemMeanParams
        config: ItemMeanParams
        array_specs: ClassVar[dict[str, ArraySpec]] = {
            "item_mean": ArraySpec("float32", ("n_items",)),
            **RatedItems.specs,
        }

        def _fit(self, ratings, progress):  # noqa: ANN001
            m = ratings.matrix
            totals = np.bincount(m.indices, m.data, minlength=ratings.n_items)
            shrink = self.config.shrink
            counts = ratings.item_counts()
            self.item_mean = (totals + shrink * self.global_mean) / (counts + shrink)

        def _predict(self, users, items):  # noqa: ANN001
            return np.where(items >= 0, self.item_mean[np.maximum(items, 0)], self.global_mean)

        def _fold_in(self, items, stars):  # noqa: ANN001
            return UserState(items=items, stars=stars)

        def _score(self, state):  # noqa: ANN001
            return self.item_mean

    with pytest.raises(InvalidInput, match="shrink"):
        ItemMean(shrink=-1)
    train, _ = small_split
    model = ItemMean(shrink=2).fit(train)
    assert model.item_mean.dtype == np.float64  # as _fit left it
    state = model.user_state(int(train.user_ids[3]))
    np.testing.assert_array_equal(np.sort(state.items), np.sort(train.user_row(3)[0]))
    arrays = model._arrays()
    assert set(arrays) == {"item_mean", "rated_indptr", "rated_items", "rated_stars"}
    assert arrays["item_mean"].dtype == np.float32  # saved as declared
    again = ItemMean(shrink=2)
    again._set_ids(model.user_ids, model.movie_ids)
    again._set_arrays({**arrays, "item_mean": arrays["item_mean"]})
    assert again.item_mean.dtype == np.float32
    np.testing.assert_allclose(again.item_mean, model.item_mean, rtol=1e-6)
    assert again.user_state(int(train.user_ids[3])).stars.sum() == pytest.approx(state.stars.sum())
