"""The Embeddings and Compare pages through Streamlit's AppTest, on real runs (tiny data) recorded by dashboard_lib.jobs."""
import json
import threading

import pytest

from dashboard_lib import projection
from dashboard_lib.jobs import RunConfig, create_run, execute_run
from dashboard_lib.store import RunStore
from tests.app.helpers import TIMEOUT, charts, open_app
from tests.conftest import train_finished


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """An app home holding two real runs: AE + k-means with embeddings at epochs 2 and 4, k-means on the pixels."""
    home = tmp_path_factory.mktemp("views") / "home"
    store = RunStore(home / "store")
    runs = {"ae": train_finished(store, "ae_kmeans", epochs=4, eval_every=2, n_init=2),
            "kmeans": train_finished(store, "kmeans", n_init=2)}
    return home, runs


@pytest.fixture
def runs(home, monkeypatch):
    path, runs = home
    monkeypatch.setenv("FCLAB_HOME", str(path))
    return runs


def _markdown(at) -> str:
    return "\n".join(m.value for m in at.markdown)


# --- Embeddings ------------------------------------------------------------------------------------------------
def test_embeddings_empty_store_says_what_to_do(fclab_home):
    at = open_app("pages/embeddings.py")
    assert at.title[0].value == "Embeddings"
    assert "No runs yet" in at.info[0].value and "Train" in at.info[0].value


def test_embeddings_shows_pca_at_once_three_colourings_and_the_counts(runs, home):
    n = len(RunStore(home[0] / "store").load_arrays(runs["ae"], 4)["assignment"])  # ~600: a stratified subset
    at = open_app("pages/embeddings.py", query={"run": runs["ae"]})
    assert at.select_slider[0].options == ["2", "4"] and at.select_slider[0].value == 4
    text = _markdown(at)
    assert f"**Epoch 4** · {n:,} samples" in text
    figures = charts(at)
    titles = [c["layout"]["title"]["text"] for c in figures]
    assert titles[:3] == ["By cluster (the run's assignment)", "By sensitive group", "By true class"]
    assert titles[3].startswith(f"Cluster × group counts (all {n:,} samples)")
    groups = [t["name"] for t in figures[1]["data"]]
    assert groups == ["MNIST sample", "UCI optdigits"]  # names from the dataset, not numbers
    heat = figures[3]["data"][0]
    assert heat["y"][-1] == "all data"
    assert sum(map(int, (c.replace(",", "") for c in heat["text"][-1]))) == n
    labels = [m.label for m in at.metric]
    assert "ACC" in labels and "Balance" in labels
    if "UMAP of the embedding" not in text:  # not cached yet: PCA now, UMAP in the background, said so
        assert "PCA of the embedding" in text
        assert any("The UMAP layout" in i.value for i in at.info)


def test_embeddings_pca_layout_and_epoch_from_the_url(runs):
    at = open_app("pages/embeddings.py", query={"run": runs["ae"], "epoch": "2"})
    assert at.select_slider[0].value == 2
    at.button_group(key="emb_layout").set_value("PCA").run()
    text = _markdown(at)
    assert "**Epoch 2**" in text and "PCA of the embedding" in text
    at.select_slider[0].set_value(4).run()
    assert "**Epoch 4**" in _markdown(at) and "aligned to epoch 2" in _markdown(at)
    assert at.query_params["epoch"] in ("4", ["4"])


def test_embeddings_of_a_method_on_raw_features_projects_the_input(runs):
    at = open_app("pages/embeddings.py", query={"run": runs["kmeans"]})
    at.button_group(key="emb_layout").set_value("PCA").run()
    assert "PCA of the input features" in _markdown(at)
    assert any("One saved evaluation: epoch 0" in c.value for c in at.caption)


def test_embeddings_umap_replaces_pca_when_ready(runs):
    from dashboard_lib.state import run_store

    projection.warm_up_umap(background=False)  # compiles once per test process (shared with the unit tests)
    at = open_app("pages/embeddings.py", query={"run": runs["ae"]})
    assert projection.projector_for(run_store()).wait_idle(TIMEOUT)
    at.run()
    text = _markdown(at)
    assert "UMAP of the embedding" in text
    assert not any("The UMAP layout" in i.value for i in at.info)
    at.select_slider[0].set_value(2).run()  # prefetched in the background, and aligned to epoch 4
    assert "UMAP of the embedding · aligned to epoch 4" in _markdown(at)


def test_embeddings_of_an_image_run_has_no_feature_profiles(runs):
    at = open_app("pages/embeddings.py", query={"run": runs["kmeans"]})
    assert not [h for h in at.subheader if "What the clusters mean" in h.value]


def test_embeddings_of_a_table_run_show_what_each_cluster_means_in_each_group(tmp_path, monkeypatch):
    """k-means on a census-like upload: the profiles section shows the agreement that metrics.profile_agreement
    gives on the same features, and a heatmap whose columns are cluster · group with relationship=Husband among the
    rows (the k-means clusters split men by marriage)."""
    from dashboard_lib.data import load_dataset
    from dashboard_lib.metrics import profile_agreement
    from tests.tabular_data import save_upload

    monkeypatch.setenv("FCLAB_HOME", str(tmp_path / "home"))
    save_upload(600, seed=0, name="census")
    store = RunStore(tmp_path / "home" / "store")
    run_id, config = create_run(store, RunConfig(dataset="upload", method="kmeans", dataset_options={"name": "census"},
                                                 hparams={"n_init": 2}, device="cpu"))
    assert execute_run(store, run_id, config, threading.Event()).status == "finished"
    arrays = store.load_arrays(run_id, 0)
    expected, _ = profile_agreement(load_dataset("upload", {"name": "census"}).X.numpy(), arrays["assignment"], arrays["g"])

    at = open_app("pages/embeddings.py", query={"run": run_id})
    assert [h.value for h in at.subheader] == ["What the clusters mean in each group"]
    metric = next(m for m in at.metric if m.label == "Profile agreement")
    assert metric.value == f"{expected:.3f}"
    assert "cosine" in metric.help and "sd of j within g" in metric.help
    heat = next(c for c in charts(at) if c["layout"]["title"]["text"].startswith("What sets each cluster apart"))
    assert heat["data"][0]["x"] == ["cluster 0 · Female", "cluster 0 · Male", "cluster 1 · Female", "cluster 1 · Male"]
    assert "relationship=Husband" in heat["data"][0]["y"]


# --- Compare ---------------------------------------------------------------------------------------------------
def test_compare_empty_store_says_what_to_do(fclab_home):
    at = open_app("pages/compare.py")
    assert at.title[0].value == "Compare runs"
    assert "No runs yet" in at.info[0].value


def test_compare_table_has_settings_metrics_and_definitions(runs):
    at = open_app("pages/compare.py")
    table = at.dataframe[0].value
    assert set(table["run"]) == set(runs.values())
    assert {"acc", "nmi", "balance", "mnce", "hp.latent_dim", "hp.n_init"} <= set(table.columns)
    config = json.loads(at.dataframe[0].proto.columns)
    assert config["acc"]["label"] == "ACC" and "Hungarian" in config["acc"]["help"]
    assert "min over clusters" in config["balance"]["help"]
    assert config["hp.latent_dim"]["label"] == "latent_dim" and "Embedding size" in config["hp.latent_dim"]["help"]


def test_compare_filters_select_and_draw(runs):
    at = open_app("pages/compare.py")
    assert set(at.multiselect(key="compare_runs").value) == set(runs.values())  # default: the recent finished runs
    figures = charts(at)
    bars = next(c for c in figures if c["layout"]["title"]["text"] == "Metrics of the selected runs")
    assert {t["name"] for t in bars["data"]} == {"ae_kmeans", "kmeans"}
    pareto = next(c for c in figures if c["layout"]["title"]["text"] == "Fairness versus quality")
    assert any(t["name"].startswith("Pareto front") for t in pareto["data"])
    heatmaps = [c for c in figures if c["data"][0]["type"] == "heatmap"]
    assert len(heatmaps) == 2

    at.selectbox(key="pareto_y").select("mnce").run()
    pareto = next(c for c in charts(at) if c["layout"]["title"]["text"] == "Fairness versus quality")
    assert pareto["layout"]["yaxis"]["title"]["text"].startswith("MNCE (fairness")

    at.multiselect(key="filter.method").select("kmeans").run()
    assert list(at.dataframe[0].value["run"]) == [runs["kmeans"]]
    assert at.multiselect(key="compare_runs").value == [runs["kmeans"]]

    at.multiselect(key="compare_runs").set_value([]).run()
    assert any("Choose at least one run" in i.value for i in at.info)
    labels = [b.label for b in at.get("download_button")]
    assert labels == []  # nothing to export without a selection


def test_compare_exports_csv_and_html(runs):
    at = open_app("pages/compare.py")
    labels = [b.proto.label for b in at.get("download_button")]
    assert labels == ["Download table (CSV)", "Download figures (HTML)"]


def test_compare_delete_asks_then_removes_the_run_and_its_files(tmp_path, monkeypatch):
    home = tmp_path / "home"
    store = RunStore(home / "store")
    keep, doomed = train_finished(store, "kmeans", n_init=1), train_finished(store, "kmeans", n_init=2)
    monkeypatch.setenv("FCLAB_HOME", str(home))
    at = open_app("pages/compare.py", query={"run": doomed})
    at.multiselect(key="compare_runs").set_value([doomed]).run()
    at.button(key="delete").click().run()
    assert any("cannot be undone" in w.value for w in at.warning)
    assert {r.id for r in store.list_runs()} == {keep, doomed}  # nothing deleted before confirming

    at.button(key="delete_cancel").click().run()
    assert not at.warning
    at.button(key="delete").click().run()
    at.button(key="delete_confirm").click().run()
    assert [r.id for r in store.list_runs()] == [keep]
    assert not store.run_dir(doomed).exists()
    assert any("Deleted 1 run" in s.value for s in at.success)
    assert "run" not in at.query_params  # the deleted run is no longer the selected one
    assert list(at.dataframe[0].value["run"]) == [keep]


def test_method_specific_metrics_are_shown_with_their_definitions(tmp_path, monkeypatch):
    """A SENet run's same-group link share: on the Monitor beside the headline metrics (chance on hover), and as a
    Compare column that appears because a run has it."""
    monkeypatch.setenv("FCLAB_HOME", str(tmp_path))
    run_id = train_finished(RunStore(tmp_path / "store"), "senet", width=32, depth=2, pca_dim=20, epochs=1, batch_size=50,
                    dict_size=100, top_k=30, embed_dim=8)
    monitor = open_app("pages/monitor.py", query={"run": run_id})
    share = next(m for m in monitor.metric if m.label == "Same-group link share")
    assert 0 <= float(share.value) <= 1
    assert "same group" in share.help and "Chance (links blind to the group) here: 0." in share.help
    compare = open_app("pages/compare.py")
    config = json.loads(compare.dataframe[0].proto.columns)
    assert config["same_group_share"]["label"] == "Same-group link share"
    assert compare.dataframe[0].value["same_group_share"].between(0, 1).all()


def test_compare_labels_name_the_dataset_option_and_seed_that_tell_runs_apart(tmp_path, monkeypatch):
    """Two k-means runs on subsets of different size, and a third that differs only in its seed: the chart's legend
    names what differs (the dataset option n, and the seed), not only the method."""
    store = RunStore(tmp_path / "store")
    ids = []
    for n, seed in ((300, 0), (600, 0), (600, 1)):
        run_id, config = create_run(store, RunConfig(dataset="mnist_optdigits", method="kmeans", dataset_options={"n": n},
                                                     hparams={"n_init": 1}, seed=seed, device="cpu"))
        run = execute_run(store, run_id, config, threading.Event())
        assert run.status == "finished", run.error
        ids.append(run_id)
    monkeypatch.setenv("FCLAB_HOME", str(tmp_path))
    at = open_app("pages/compare.py")
    at.multiselect(key="compare_runs").set_value(ids).run()
    bars = next(c for c in charts(at) if c["layout"]["title"]["text"] == "Metrics of the selected runs")
    assert [t["name"] for t in bars["data"]] == ["kmeans · n=300, seed=0", "kmeans · n=600, seed=0",
                                                 "kmeans · n=600, seed=1"]


def test_monitor_shows_one_evaluation_as_numbers_with_what_they_are_measured_against(runs):
    """k-means evaluates once: numbers, no one-dot chart; Balance with its ceiling and the cluster that sets it,
    Entropy with its maximum ln K; its inertia panel says it holds one segment per restart."""
    at = open_app("pages/monitor.py", query={"run": runs["kmeans"]})
    keys = {c.proto.id for c in at.get("plotly_chart")}
    titles = [json.loads(c.proto.spec)["layout"].get("annotations", [{}])[0].get("text") for c in at.get("plotly_chart")]
    assert not any("metrics_chart" in k for k in keys) and len(at.get("plotly_chart")) == 1
    assert "inertia (2 restarts, one segment each)" in titles
    captions = " ".join(c.value for c in at.caption)
    assert "ceiling 0.36" in captions and "set by cluster" in captions
    assert "maximum ln K = 2.303 (K = 10 clusters)" in captions
    assert "**Final metrics**" in [m.value for m in at.markdown]


def test_compare_starts_on_one_dataset_and_warns_when_a_selection_mixes_two(tmp_path, monkeypatch):
    from tests.conftest import SHARED_DATA

    store = RunStore(tmp_path / "store")
    ids = {}
    for dataset in ("mnist_optdigits", "colored_mnist"):  # the colored one is the newest
        run_id, config = create_run(store, RunConfig(dataset=dataset, method="kmeans", dataset_options={"n": 300},
                                                     hparams={"n_init": 1}, device="cpu", data_dir=str(SHARED_DATA)))
        run = execute_run(store, run_id, config, threading.Event())
        assert run.status == "finished", run.error
        ids[dataset] = run_id
    monkeypatch.setenv("FCLAB_HOME", str(tmp_path))
    at = open_app("pages/compare.py")
    assert at.multiselect(key="compare_runs").value == [ids["colored_mnist"]]
    assert not at.warning
    at.multiselect(key="compare_runs").set_value(list(ids.values())).run()
    assert any("mixes 2 datasets (colored_mnist, mnist_optdigits)" in w.value for w in at.warning)


def test_compare_says_a_failed_runs_metrics_are_not_final(tmp_path, monkeypatch):
    """A run that diverged keeps its last evaluation's numbers; the table says which evaluation (DFC counts iterations) they come from."""
    store = RunStore(tmp_path / "store")
    finished = train_finished(store, "kmeans", n_init=1)
    failed = store.create_run(dataset="mnist_optdigits", method="dfc", config={}, seed=0, device="cpu", environment={})
    store.add_evaluation(failed, 3, {"acc": 0.4, "nmi": 0.3, "balance": 0.1}, {})
    store.finish(failed, "failed", error="L_c became nan at step 457")
    monkeypatch.setenv("FCLAB_HOME", str(tmp_path))
    at = open_app("pages/compare.py")
    table = at.dataframe[0].value.set_index("run")
    assert table.loc[finished, "metrics from"] == "final"
    assert table.loc[failed, "metrics from"] == "iteration 3, not final" and table.loc[failed, "acc"] == 0.4
    assert "kept_from_epoch" not in table.columns
