"""The embedding of another run as a dataset (data/run_embedding.py): what it reads, what it refuses, and training on
it from the job registry and the CLI."""
from __future__ import annotations

import hashlib
import json
import threading

import numpy as np
import pytest

from dashboard_lib import cli, settings
from dashboard_lib.data import forget_cached, load_dataset, run_embedding
from dashboard_lib.jobs import RunConfig, create_run, execute_run, preflight
from dashboard_lib.store import RunStore

SOURCE = ("mnist_optdigits", {"n": 300})


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """An app home with a real finished AE + k-means run (trained by train_method through the job code) in its store."""
    folder = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FCLAB_HOME", str(folder))
        store = RunStore(settings.store_dir())
        config = RunConfig(dataset=SOURCE[0], method="ae_kmeans", dataset_options=SOURCE[1], device="cpu",
                           hparams={"epochs": 2, "eval_every": 1, "n_init": 1, "batch_size": 100})
        run_id, config = create_run(store, config)
        run = execute_run(store, run_id, config, threading.Event())
        assert run.status == "finished", run.error
    return folder, run_id


@pytest.fixture
def store(home, monkeypatch):
    monkeypatch.setenv("FCLAB_HOME", str(home[0]))
    forget_cached(run_embedding.DATASET_ID)
    return RunStore(settings.store_dir())


def _fake_run(store, epochs: dict[int, np.ndarray], *, status="finished", kept_from=None, dataset=SOURCE, rows=None):
    """A run record with evaluations whose arrays hold the given embeddings (epoch -> N × d), on the source's rows."""
    data = load_dataset(dataset[0], dataset[1])
    run_id = store.create_run(dataset=dataset[0], method="fcmi", config={"dataset_options": dataset[1], "hparams": {}},
                              seed=0, device="cpu", environment={})
    for epoch, embedding in epochs.items():
        n = len(embedding)
        arrays = {"assignment": np.zeros(n, dtype=np.int64), "g": data.g[:n], "row_id": data.row_id[:n] if rows is None
                  else rows, "embedding": embedding.astype(np.float32)}
        store.add_evaluation(run_id, epoch, {"acc": 0.5}, arrays)
    if status != "running":
        store.finish(run_id, status, metrics={"acc": 0.5}, kept_from_epoch=kept_from)
    return run_id


def test_the_embedding_of_a_finished_run_is_its_last_evaluation_on_its_datasets_rows(store, home):
    run_id = home[1]
    data = load_dataset(run_embedding.DATASET_ID, {"run": run_id})
    source = load_dataset(*SOURCE)
    last = max(e["epoch"] for e in store.evaluations(run_id))
    saved = store.load_arrays(run_id, last)
    assert data.X.shape == (300, 10) and np.array_equal(data.X.numpy(), saved["embedding"])
    assert np.array_equal(data.y, source.y) and np.array_equal(data.g, source.g)
    assert np.array_equal(data.row_id, source.row_id) and data.group_names == source.group_names
    assert data.n_clusters == source.n_clusters and data.feature_names[0] == "z1"
    file = store.run_dir(run_id) / f"epoch_{last:06d}.npz"
    assert data.info.provenance == {"input_run": run_id, "input_method": "ae_kmeans", "input_dataset": "mnist_optdigits",
                                    "input_epoch": last, "embedding_file": file.name,
                                    "embedding_sha256": hashlib.sha256(file.read_bytes()).hexdigest()}
    assert run_id in data.info.name and run_embedding.embedding_runs(store)[0].id == run_id


def test_a_stopped_run_gives_the_embedding_of_the_evaluation_its_metrics_were_kept_from(store):
    first, second = np.full((300, 3), 1.0), np.full((300, 3), 2.0)
    run_id = _fake_run(store, {1: first, 2: second}, status="stopped", kept_from=1)
    data = load_dataset(run_embedding.DATASET_ID, {"run": run_id})
    assert float(data.X.mean()) == 1.0 and data.info.provenance["input_epoch"] == 1


def test_a_run_trained_on_an_embedding_records_where_it_came_from(store, home):
    ready = preflight(RunConfig(dataset=run_embedding.DATASET_ID, method="fair_assignment", device="cpu",
                                dataset_options={"run": home[1]}))
    run_id, config = create_run(store, ready)
    run = execute_run(store, run_id, config, threading.Event(), ready.data)
    assert run.status == "finished", run.error
    assert run.dataset_label == f"run_embedding:{home[1]}"
    assert run.dataset_info["provenance"]["input_run"] == home[1] and run.dataset_info["shape"] == [10]
    assert run.metrics["balance"] > 0


@pytest.mark.parametrize("case", ["none", "unknown", "no embedding", "running", "rows", "row ids"])
def test_what_cannot_be_trained_on_is_refused_with_its_reason(store, home, case):
    have = home[1]
    if case == "none":
        run, message = "", run_embedding.ERR_NO_RUN.split(" (")[0]
    elif case == "unknown":
        run, message = "20990101-000000-fcmi-beef", "no run '20990101-000000-fcmi-beef' in the run store"
    elif case == "no embedding":
        run = store.create_run(dataset=SOURCE[0], method="kmeans", config={"dataset_options": SOURCE[1]}, seed=0,
                               device="cpu", environment={})
        store.add_evaluation(run, 0, {"acc": 0.1}, {"assignment": np.zeros(300, dtype=np.int64)})
        store.finish(run, "finished", metrics={"acc": 0.1})
        message = f"run {run} (kmeans) saved no embedding at evaluation 0"
    elif case == "running":
        run = _fake_run(store, {1: np.zeros((300, 2))}, status="running")
        message = f"run {run} is running: only a finished or stopped run"
    elif case == "rows":
        run = _fake_run(store, {4: np.zeros((50, 2))})
        message = "has 50 rows, but its dataset mnist_optdigits has 300"
    else:
        run = _fake_run(store, {4: np.zeros((300, 2))}, rows=np.arange(300) + 10_000)
        message = "holds other rows than its dataset mnist_optdigits now builds"
    with pytest.raises(ValueError) as info:
        preflight(RunConfig(dataset=run_embedding.DATASET_ID, method="kmeans", dataset_options={"run": run}))
    assert message in str(info.value)
    if case in ("none", "unknown", "no embedding"):  # the message names the runs that can be used
        assert have in str(info.value)


def test_a_run_whose_dataset_files_are_missing_is_refused(store, monkeypatch, tmp_path):
    monkeypatch.setenv("FCLAB_OFFLINE", "1")
    run_id = store.create_run(dataset="mnist_usps", method="fcmi", config={"dataset_options": {}, "data_dir": str(tmp_path)},
                              seed=0, device="cpu", environment={})
    store.add_evaluation(run_id, 0, {"acc": 0.1}, {"assignment": np.zeros(5, dtype=np.int64),
                                                  "embedding": np.zeros((5, 2), dtype=np.float32)})
    store.finish(run_id, "finished", metrics={"acc": 0.1})
    with pytest.raises(ValueError) as info:
        load_dataset(run_embedding.DATASET_ID, {"run": run_id})
    assert str(info.value).startswith(run_embedding.ERR_SOURCE_DATA.split("{")[0] + run_id)
    assert "cannot be built on this machine" in str(info.value)


def test_the_cli_trains_on_a_runs_embedding_and_lists_how(store, home, capsys):
    assert cli.main(["train", "--dataset", "run_embedding", "--data", f"run={home[1]}", "--method", "kmeans",
                     "--set", "n_init=1", "--device", "cpu", "--threads", "1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "finished" and out["dataset"] == f"run_embedding:{home[1]}"
    assert store.get_run(out["run_id"]).dataset_info["provenance"]["input_method"] == "ae_kmeans"
    assert cli.main(["train", "--dataset", "run_embedding", "--data", "run=nope", "--method", "kmeans"]) == 2
    assert "no run 'nope' in the run store" in capsys.readouterr().err
    assert cli.main(["datasets"]) == 0
    listing = capsys.readouterr().out
    assert "run_embedding" in listing and "--data run=RUN_ID" in listing


def test_a_deep_method_trains_on_an_embedding_as_on_any_table(store, home):
    ready = preflight(RunConfig(dataset=run_embedding.DATASET_ID, method="ae_kmeans", device="cpu",
                                dataset_options={"run": home[1]},
                                hparams={"epochs": 1, "eval_every": 0, "n_init": 1, "batch_size": 100, "latent_dim": 4}))
    run_id, config = create_run(store, ready)
    run = execute_run(store, run_id, config, threading.Event(), ready.data)
    assert run.status == "finished", run.error
    assert run_embedding.embedding_runs(store)[0].id == run_id  # its own embedding can be trained on in turn


def test_a_sweep_on_a_runs_embedding_expands_and_its_data_travels_with_the_trials(store, home):
    from dashboard_lib.data import REGISTRY
    from dashboard_lib.sweeps import MethodEntry, SweepSpec

    spec = SweepSpec(run_embedding.DATASET_ID, "kmeans", [], seeds=2, dataset_options={"run": home[1]},
                     compare=[MethodEntry("kmeans"), MethodEntry("fair_assignment")])
    trials = spec.trials()
    assert [t.dataset_options["run"] for t in trials] == [home[1]] * 4
    # The runner sends a dataset of this machine's app home (DatasetSpec.local) to a cluster's workers, which
    # cannot read this run store; the others each node builds from its own data folder.
    assert {i for i, s in REGISTRY.items() if s.local} == {"upload", run_embedding.DATASET_ID}


def test_a_stratified_subset_of_the_embedding_keeps_its_rows_labels_and_splits_aligned(store, home):
    full = load_dataset(run_embedding.DATASET_ID, {"run": home[1]})
    part = load_dataset(run_embedding.DATASET_ID, {"run": home[1], "n": 100, "seed": 1})
    assert 90 <= len(part) <= 110 and "stratified subset" in part.info.built
    position = {r: i for i, r in enumerate(full.row_id)}
    rows = [position[r] for r in part.row_id]
    assert np.array_equal(part.X.numpy(), full.X.numpy()[rows]) and np.array_equal(part.g, full.g[rows])
