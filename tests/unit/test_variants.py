"""Named variants of a method (its paper's text, its public code): every one valid, composed with a schedule preset."""
import re

import pytest

from dashboard_lib.methods import REGISTRY, Method, Variant
from dashboard_lib.methods.base import ERR_NO_VARIANTS, ERR_UNKNOWN_VARIANT
from dashboard_lib.params import Param


def test_every_variant_of_every_method_sets_declared_values_within_range():
    for method_id, cls in REGISTRY.items():
        cls.check_variants()
        for name, variant in cls.variants.items():
            values = cls.variant(name)
            assert values.keys() == variant.values.keys() and variant.source, (method_id, name)
            resolved = cls(**values).hparams  # an instance accepts them as they are
            assert all(resolved[key] == value for key, value in values.items()), (method_id, name)
            for schedule in ("paper", "quick"):  # and with either schedule on either kind of data
                for dataset in (None, "upload"):
                    cls(**cls.settings(name, schedule, dataset))
        if cls.variants:
            assert cls.variant(None) == cls.variant(next(iter(cls.variants))) == {}  # the first: the declared defaults


def test_senet_and_inv_senet_name_a_paper_text_and_a_public_code_variant():
    for method_id in ("senet", "inv_senet"):
        cls = REGISTRY[method_id]
        assert list(cls.variants) == ["paper text", "public code"]
        public = cls.variant("public code")
        assert public["affinity"] == "knn" and public["n_neighbors"] == 3 and public["spectral_dim"] == 15
        assert public["spectral_n_init"] == 20 and public["top_k"] == 1000 and public["dict_size"] == 0
        assert "github.com/" in cls.variants["public code"].source
    inv = REGISTRY["inv_senet"].variant("public code")
    assert inv["bias_head"] == "shared" and inv["lambda_adv"] == 0.1 and inv["mu"] == 0.01 and inv["optimizer"] == "adamw"
    assert inv["lr"] == inv["lr_bias"] == 1e-4 and inv["lr_schedule"] == "cosine_per_step" and inv["grad_clip_bias"] == 0.001


def test_variant_sets_settings_schedule_sets_budget_and_the_variant_wins_a_shared_name():
    cls = REGISTRY["senet"]
    both = cls.settings("public code", "quick")
    assert both["epochs"] == cls.quick["epochs"] and both["width"] == cls.quick["width"]  # the schedule's budget
    assert both["affinity"] == "knn" and both["dict_size"] == 0  # the variant's settings, over quick's 500 atoms
    assert cls.settings(None, "quick") == cls.preset("quick") and cls.settings("paper text", "paper") == {}


def test_unknown_or_bad_variants_are_clear_errors():
    with pytest.raises(ValueError, match=re.escape(ERR_UNKNOWN_VARIANT.format(
            name="repo", method="senet", valid="paper text, public code"))):
        REGISTRY["senet"].variant("repo")
    with pytest.raises(ValueError, match=re.escape(ERR_NO_VARIANTS.format(method="kmeans"))):
        REGISTRY["kmeans"].variant("public code")

    class Toy(Method):
        id, name, summary = "toy", "Toy", ""
        params = (Param("lr", 0.1, low=0, high=1),)
        variants = {"paper text": Variant(source="paper"), "code": Variant(values={"lr": 2.0}, source="repo")}

    with pytest.raises(ValueError, match=r"method toy, variant 'code': lr = 2.0 is outside its range \[0, 1\]"):
        Toy.check_variants()
    Toy.variants = {"paper text": Variant(source="paper"), "code": Variant(values={"momentum": 0.9}, source="repo")}
    with pytest.raises(ValueError, match="'momentum' is not a declared hyperparameter; valid names: lr"):
        Toy.check_variants()
    Toy.variants = {"code": Variant(values={"lr": 0.5}, source="repo")}
    with pytest.raises(ValueError, match="first variant 'code' must set nothing"):
        Toy.check_variants()
    Toy.variants = {"paper text": Variant(), "code": Variant(values={"lr": 0.5})}
    with pytest.raises(ValueError, match="variant 'paper text' says no source"):
        Toy.check_variants()
