"""Every registered method as a scikit-learn style estimator, in the spirit of scikit-learn's estimator checks: clone,
get/set params, refit, determinism under random_state, fit_predict, predict where offered, progress, bad input."""
from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.base import clone

import dashboard_lib
from dashboard_lib.methods import FCMI, KMeans, REGISTRY, SENet, get_method
from dashboard_lib.methods.base import (ERR_CANNOT_PREDICT, ERR_DATASET_WITH_LABELS, ERR_LENGTH, ERR_NEEDS_GROUPS,
                                        ERR_NO_K, ERR_NOT_FITTED, ERR_PREDICT_SHAPE, ERR_PROGRESS, ERR_RANDOM_STATE,
                                        ERR_TOO_MANY_CLUSTERS, ERR_X_DIMENSIONS, ERR_X_NOT_FINITE, Method)
from dashboard_lib.params import ERR_OUT_OF_RANGE, ERR_UNKNOWN_PARAM
from tests.unit.test_dec import single_thread, synthetic  # noqa: F401 (autouse fixture)

README = Path(__file__).resolve().parents[2] / "README.md"
DEC_LIKE = {"pretrain_epochs": 1, "n_init": 1, "eval_every": 0, "iterations": 4, "update_interval": 2, "batch_size": 16}
SENET = {"epochs": 1, "width": 16, "pca_dim": 10, "features": "pca", "dict_size": 40, "top_k": 10, "eval_every": 0,
         "embed_dim": 4, "batch_size": 16}
# Each method's smallest schedule: the quick preset with fewer epochs and smaller networks; (image data?, settings).
SMALL = {
    "kmeans": (False, {"n_init": 1}),
    "ae_kmeans": (False, {"epochs": 1, "eval_every": 0, "n_init": 1, "batch_size": 16}),
    "dec": (True, {**DEC_LIKE, "latent_dim": 3}),
    "idec": (False, DEC_LIKE),
    "statdec": (False, DEC_LIKE),
    "dfc": (True, {"pretrain_steps": 2, "n_init": 1, "eval_every": 0, "batch_per_group": 8, "pretrain_batch_size": 16,
                   "group_pretrain_epochs": 1, "group_dec_epochs": 1, "iterations": 2, "latent_dim": 4}),
    "fcmi": (True, {"epochs": 2, "warmup_epochs": 1, "eval_every": 0, "kmeans_n_init": 1, "batch_size": 16}),
    "erm": (True, {"ae_epochs": 1, "epochs": 1, "eval_every": 0, "width": 8, "batch_size": 16}),
    "clusterfix": (True, {"ae_epochs": 1, "epochs": 1, "eval_every": 0, "width": 8, "clusters_per_class": 2,
                          "batch_size": 16}),
    "senet": (False, SENET),
    "inv_senet": (False, SENET),
    "fairlets": (False, {}),
    "fair_assignment": (False, {}),
    "variational_fair": (False, {"max_iter": 5, "bound_iter": 20}),
    "socially_fair_kmeans": (False, {"max_iter": 10}),
}
# The methods that assign new points: k-means style centres (on an embedding or the features), and the classifiers;
# a classic fair assignment is a decision over the whole fitted set (Fair-Lloyd aside, which assigns by distance).
PREDICTS = {"kmeans", "ae_kmeans", "dec", "idec", "statdec", "dfc", "fcmi", "erm", "clusterfix", "socially_fair_kmeans"}


def arrays(image: bool, n: int = 64):
    """X (n vectors of 20 features, or n 1 × 28 × 28 images), y (4 classes), g (2 groups) as numpy arrays."""
    data = synthetic((1, 28, 28) if image else (20,), n=n)
    return data.X.numpy(), data.y, data.g


def estimator(method_id: str, **keywords) -> Method:
    _, settings = SMALL[method_id]
    return get_method(method_id)(schedule="quick", random_state=0, device="cpu", **settings, **keywords)


def test_every_registered_method_is_checked_and_exported():
    assert set(SMALL) == set(REGISTRY)
    assert set(dashboard_lib.ESTIMATORS) == {cls.__name__ for cls in REGISTRY.values()}
    assert all(getattr(dashboard_lib, cls.__name__) is cls for cls in REGISTRY.values())


@pytest.mark.parametrize("method_id", sorted(REGISTRY))
def test_clone_and_params_round_trip(method_id):
    model = estimator(method_id, progress=lambda fraction, stage: None)
    params = model.get_params()
    assert set(params) == {p.name for p in model.params} | {"schedule", "random_state", "device", "progress"}
    copy = clone(model)  # checks that each value given comes back as the same object
    assert type(copy) is type(model) and copy is not model
    assert copy.get_params() == params and copy.hparams == model.hparams
    assert type(model)().set_params(**params).hparams == model.hparams
    assert repr(model).startswith(type(model).__name__ + "(")


@pytest.mark.parametrize("method_id", sorted(REGISTRY))
def test_fit_refit_fit_predict_predict_and_progress(method_id):
    image, _ = SMALL[method_id]
    X, y, g = arrays(image)
    fractions = []
    model = estimator(method_id, progress=lambda fraction, stage: fractions.append(fraction))
    first = model.fit(X, y, sensitive=g).labels_.copy()
    assert first.shape == (len(X),)
    assert model.history_["scalars"] or model.history_["evaluations"]
    assert all(isinstance(v, float) for series in model.history_["scalars"].values() for v in series["value"])
    assert {"nmi", "balance"} <= set(model.metrics_) or {"avg_acc"} <= set(model.metrics_)
    assert fractions[0] == 0.0 and fractions[-1] == 1.0 and fractions == sorted(fractions)
    # The same random_state on the CPU: the refit gives the same labels, through fit_predict.
    assert np.array_equal(model.fit_predict(X, y, sensitive=g), first)
    if method_id in PREDICTS:
        assert np.array_equal(model.predict(X), first)
        assert model.predict(X[:5]).shape == (5,)
    else:
        with pytest.raises(ValueError, match=re.escape(ERR_CANNOT_PREDICT.format(name=model.name))):
            model.predict(X)


def test_bad_input_is_refused_with_its_message():
    X, y, g = arrays(False, n=24)
    with pytest.raises(ValueError, match=re.escape(ERR_X_DIMENSIONS.format(ndim=3, shape=(24, 4, 5)))):
        KMeans(n_clusters=2).fit(X.reshape(24, 4, 5))
    bad = X.copy()
    bad[3, 1], bad[5, 0] = np.nan, np.inf
    with pytest.raises(ValueError, match=re.escape(ERR_X_NOT_FINITE.format(count=2))):
        KMeans(n_clusters=2).fit(bad)
    with pytest.raises(ValueError, match=re.escape(ERR_LENGTH.format(name="sensitive", length=23, n=24))):
        KMeans(n_clusters=2).fit(X, sensitive=g[:-1])
    with pytest.raises(ValueError, match=re.escape(ERR_LENGTH.format(name="y", length=25, n=24))):
        KMeans(n_clusters=2).fit(X, np.arange(25))
    one_group = ERR_NEEDS_GROUPS.format(name=FCMI.name, dataset="the data passed to fit", n_groups=1)
    with pytest.raises(ValueError, match=re.escape(one_group)):
        FCMI(n_clusters=2).fit(X)
    with pytest.raises(ValueError, match=re.escape(one_group)):
        FCMI(n_clusters=2).fit(X, sensitive=np.zeros(24))
    with pytest.raises(ValueError, match=re.escape(ERR_TOO_MANY_CLUSTERS.format(name=KMeans.name, k=30, n=24))):
        KMeans(n_clusters=30).fit(X)
    with pytest.raises(ValueError, match=re.escape(ERR_NO_K.format(name=KMeans.name, dataset="the data passed to fit"))):
        KMeans().fit(X)
    with pytest.raises(ValueError, match=re.escape(ERR_DATASET_WITH_LABELS)):
        KMeans().fit(synthetic((20,)), sensitive=g)


def test_bad_settings_are_refused_by_the_constructor_and_set_params():
    valid = ", ".join(p.name for p in KMeans.params)
    unknown = ERR_UNKNOWN_PARAM.format(what="hyperparameter", name="k", owner="method kmeans", valid=valid)
    with pytest.raises(ValueError, match=re.escape(unknown)):
        KMeans(k=3)
    with pytest.raises(ValueError, match=re.escape(unknown)):
        KMeans().set_params(k=3)
    out_of_range = ERR_OUT_OF_RANGE.format(owner="method kmeans", label="n_init", value=0, range="[1, 100]")
    with pytest.raises(ValueError, match=re.escape(out_of_range)):
        KMeans(n_init=0)
    with pytest.raises(ValueError, match=re.escape(out_of_range)):
        KMeans().set_params(n_init=0)
    for bad in (-1, 1.5, "0", True):
        with pytest.raises(ValueError, match=re.escape(ERR_RANDOM_STATE.format(value=bad))):
            KMeans(random_state=bad)
    with pytest.raises(ValueError, match=re.escape(ERR_PROGRESS.format(value="yes"))):
        KMeans(progress="yes")
    with pytest.raises(ValueError, match="unknown schedule preset 'fast'"):
        KMeans(schedule="fast")


def test_predict_needs_a_fit_and_the_fitted_shape():
    X, _, g = arrays(False, n=24)
    with pytest.raises(ValueError, match=re.escape(ERR_NOT_FITTED.format(name="KMeans"))):
        KMeans(n_clusters=2).predict(X)
    model = KMeans(n_clusters=2, n_init=1, random_state=0).fit(X, sensitive=g)
    with pytest.raises(ValueError, match=re.escape(ERR_PREDICT_SHAPE.format(got=(19,), expected=(20,), name="KMeans"))):
        model.predict(X[:, 1:])
    with pytest.raises(ValueError, match=re.escape(ERR_CANNOT_PREDICT.format(name=SENet.name))):
        SENet().assign(torch.from_numpy(X))


def test_labels_of_any_kind_and_tensors_are_taken():
    X, y, g = arrays(False, n=24)
    names = np.array(["north", "south"])[g]
    model = KMeans(n_clusters=2, n_init=1, random_state=0).fit(torch.from_numpy(X), np.array(list("abcd"))[y],
                                                              sensitive=names)
    same = KMeans(n_clusters=2, n_init=1, random_state=0).fit(X, y, sensitive=g)
    assert np.array_equal(model.labels_, same.labels_) and model.metrics_ == same.metrics_


def test_a_tqdm_bar_shows_the_progress(capsys):
    X, _, g = arrays(False, n=24)
    KMeans(n_clusters=2, n_init=1, random_state=0, progress=True).fit(X, sensitive=g)
    err = capsys.readouterr().err
    assert KMeans.name in err and "100%" in err


def test_random_state_none_draws_a_fresh_seed():
    X, _, g = arrays(False, n=24)
    model = KMeans(n_clusters=2, n_init=1).fit(X, sensitive=g)
    again = KMeans(n_clusters=2, n_init=1, random_state=model.seed_).fit(X, sensitive=g)
    assert np.array_equal(model.labels_, again.labels_)


def test_the_readme_example_runs():
    text = README.read_text()
    section = text[text.index("## From Python"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert len(code.strip().splitlines()) <= 5  # load, fit, audit
    namespace: dict = {}
    exec(compile(code, str(README), "exec"), namespace)
    assert math.isfinite(namespace["model"].metrics_["nmi"])
