"""Every method on an uploaded census-like table (tests/tabular_data.py) as a user would bring it: strings one-hot
encoded by the upload, rows with a missing value dropped, columns z-scored; quick presets, through the real runner."""
import threading

import numpy as np
import pandas as pd
import pytest

from dashboard_lib.data.upload import build_upload
from dashboard_lib.jobs import RunConfig, create_run, execute_run
from dashboard_lib.methods import REGISTRY, get_method
from dashboard_lib.store import RunStore
from tests.tabular_data import census_like, save_upload


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """An app home with two uploads of the census-like table: 'small' (300 rows, 5 % with a missing categorical,
    those dropped) and 'census' (4,000 complete rows)."""
    home = tmp_path_factory.mktemp("tabular") / "home"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FCLAB_HOME", str(home))
        small = save_upload(300, seed=1, missing=0.05, name="small")
        save_upload(4000, seed=0, name="census")
    assert small["rows_dropped"] > 0 and small["encodings"]["occupation"] == "one-hot"
    return home


def train(home, monkeypatch, method: str, upload: str, **hparams):
    monkeypatch.setenv("FCLAB_HOME", str(home))
    store = RunStore(home / "store")
    config = RunConfig(dataset="upload", method=method, dataset_options={"name": upload},
                       hparams={**get_method(method).preset("quick", "upload"), **hparams}, device="cpu")
    run_id, config = create_run(store, config)
    return execute_run(store, run_id, config, threading.Event()), store.scalars(run_id)


@pytest.mark.parametrize("method", sorted(REGISTRY))
def test_every_method_finishes_its_quick_preset_on_a_mixed_type_table(home, monkeypatch, method):
    run, scalars = train(home, monkeypatch, method, "small")
    assert run.status == "finished", run.error
    assert len(scalars) and np.isfinite(scalars["value"].to_numpy()).all()
    assert 0.0 <= run.metrics["acc"] <= 1.0 and np.isfinite(run.metrics["mnce"])


def test_dfc_quick_preset_no_longer_diverges_on_the_census_table(home, monkeypatch):
    """Before log σ² was bounded, L_s drove it past 100 in 20 fair iterations: L_c became NaN at step 123."""
    run, scalars = train(home, monkeypatch, "dfc", "census")
    assert run.status == "finished", run.error
    assert np.isfinite(scalars["value"].to_numpy()).all()


def test_kmeans_is_unfair_on_the_census_table_and_dfc_and_fcmi_are_not(home, monkeypatch):
    """The table's point: its sex-linked columns (relationship, occupation, hours) make k-means' clusters follow sex;
    DFC's quick schedule for tables finds the fair college stratum instead, at an ACC close to k-means'. FCMI's
    clusters are fair too (MNCE ≥ 0.92 on 3 tables × 5 seeds in bench/bench_tabular.py), but which fair split they
    follow varies with the seed, so only its fairness is asserted."""
    kmeans, _ = train(home, monkeypatch, "kmeans", "census")
    assert kmeans.metrics["mnce"] < 0.3
    dfc, _ = train(home, monkeypatch, "dfc", "census")
    assert dfc.metrics["mnce"] > 0.8 and dfc.metrics["acc"] > kmeans.metrics["acc"] - 0.05
    fcmi, _ = train(home, monkeypatch, "fcmi", "census")
    assert fcmi.metrics["mnce"] > 0.8


def test_a_table_too_small_for_a_method_says_so(fclab_home):
    table = pd.DataFrame({"x": [0.1, 0.5, 0.9], "job": ["a", "b", "a"], "sex": ["F", "M", "M"]})
    build_upload(table, ["x", "job"], "sex", name="tiny")
    store = RunStore(fclab_home / "store")
    expected = {
        "dfc": "DFC: the data is too small: its batches take at least 2 of the samples of its smallest group (F), "
               "which number 1; upload more rows or choose another method",
        "fcmi": "FCMI: batch size 256 is larger than the 3 samples; lower batch_size to at most 3",
    }
    for method, message in expected.items():
        run_id, config = create_run(store, RunConfig(dataset="upload", method=method, dataset_options={"name": "tiny"},
                                                     hparams=get_method(method).preset("quick", "upload"), device="cpu"))
        run = execute_run(store, run_id, config, threading.Event())
        assert run.status == "failed" and run.error == message


def test_the_generator_makes_what_its_docstring_says():
    table = census_like(2000, seed=0, missing=0.1)
    assert table.shape == (2000, 16) and set(table["sex"]) == {"Female", "Male"}
    assert 0.2 < (table["income"] == ">50K").mean() < 0.35
    assert 0.05 < table["occupation"].isna().mean() < 0.15
    husbands = table["relationship"] == "Husband"
    assert (table.loc[husbands, "sex"] == "Male").all()
    with pytest.raises(ValueError, match="missing must lie in"):
        census_like(10, missing=1.0)
