"""Another run's embedding as the input on the Train page, and deep and classic runs on one Pareto chart in Compare
(Streamlit AppTest, with real runs in a real store)."""
import time

from dashboard_lib.store import RunStore
from tests.app.helpers import charts, open_app
from tests.conftest import train_finished


def test_train_on_the_embedding_of_a_run_picked_from_the_runs_that_saved_one(fclab_home):
    store = RunStore(fclab_home / "store")
    source = train_finished(store, "ae_kmeans", epochs=2, eval_every=1, n_init=1)
    train_finished(store, "kmeans", n_init=1)  # saves no embedding: not offered
    at = open_app("pages/train.py")
    at.selectbox(key="dataset").select("run_embedding").run()
    picker = at.selectbox(key="data.run_embedding.run")
    assert picker.options == [store.get_run(source).label()] and picker.value == source
    assert any("instead of the raw features: the same rows, classes, groups and splits" in c.value for c in at.caption)
    at.selectbox(key="method").select("kmeans").run()
    at.button[0].click().run()  # the form's Train button
    assert not at.error, [e.value for e in at.error]
    run = next(r for r in store.list_runs() if r.config["dataset"] == "run_embedding")
    assert run.config["dataset_options"]["run"] == source
    deadline = time.time() + 60
    while store.get_run(run.id).status == "running" and time.time() < deadline:
        time.sleep(0.2)
    run = store.get_run(run.id)
    assert run.status == "finished", run.error
    assert run.dataset_info["provenance"]["input_run"] == source
    monitor = open_app("pages/monitor.py", query={"run": run.id})
    assert monitor.subheader[0].value.replace("\\", "") == f"k-means on run_embedding:{source}"  # md-escaped


def test_the_embedding_choice_says_what_to_do_when_no_run_saved_one(fclab_home):
    train_finished(RunStore(fclab_home / "store"), "kmeans", n_init=1)
    at = open_app("pages/train.py")
    at.selectbox(key="dataset").select("run_embedding").run()
    assert any("no finished run with a saved embedding yet" in w.value.lower() for w in at.warning)
    at.button[0].click().run()  # the run starts and fails at once, saying what to choose (Monitor shows it)
    store = RunStore(fclab_home / "store")
    run = next(r for r in store.list_runs() if r.dataset == "run_embedding")
    deadline = time.time() + 30
    while store.get_run(run.id).status == "running" and time.time() < deadline:
        time.sleep(0.1)
    run = store.get_run(run.id)
    assert run.status == "failed" and run.error.startswith("choose the run whose embedding to train on")


def test_compare_puts_classic_and_deep_runs_of_one_dataset_on_one_pareto_chart(fclab_home):
    store = RunStore(fclab_home / "store")
    runs = {"ae_kmeans": train_finished(store, "ae_kmeans", epochs=2, eval_every=1, n_init=1),
            "kmeans": train_finished(store, "kmeans", n_init=1),
            "fair_assignment": train_finished(store, "fair_assignment"),
            "fairlets": train_finished(store, "fairlets")}
    at = open_app("pages/compare.py")
    assert not at.warning  # one dataset, one kind of task: nothing mixed
    assert set(at.multiselect(key="compare_runs").value) == set(runs.values())
    pareto = next(c for c in charts(at) if "Fairness versus quality" in str(c["layout"].get("title")))
    traces = {t["name"]: t for t in pareto["data"] if t["name"] in runs}
    assert set(traces) == set(runs)  # a legend entry (and colour) per method, deep and classic alike
    for method, run_id in runs.items():
        metrics = store.get_run(run_id).metrics
        assert traces[method]["x"] == [metrics["acc"]] and traces[method]["y"] == [metrics["balance"]]
        assert traces[method]["customdata"][0][0].startswith(run_id)  # the hover names the run
