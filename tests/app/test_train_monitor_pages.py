"""The Train and Monitor pages through Streamlit's AppTest, with the real registry, threads and store."""
import threading
import time

import pytest
from dashboard_lib.jobs import RunConfig, create_run, execute_run
from dashboard_lib.methods import REGISTRY as METHODS
from dashboard_lib.store import RunStore
from tests.app.helpers import open_app


@pytest.fixture
def app(fclab_home):
    return open_app("pages/train.py")


def _number_labels(at):
    return [n.label for n in at.number_input]


def test_form_is_built_from_the_method_declaration(app):
    app.selectbox(key="method").select("ae_kmeans").run()
    labels = _number_labels(app) + [s.label for s in app.selectbox]
    for param in METHODS["ae_kmeans"].params:
        assert param.label in labels
    lr = next(n for n in app.number_input if n.label == "η (lr)")
    assert lr.value == pytest.approx(1e-3) and "Adam learning rate" in lr.help and "Range (0, 1]" in lr.help


def test_train_starts_a_background_run_and_monitor_shows_it(app, fclab_home):
    app.selectbox(key="method").select("ae_kmeans").run()
    app.number_input(key="hp.ae_kmeans.epochs").set_value(300)
    app.number_input(key="data.mnist_optdigits.n").set_value(300)
    app.button[0].click().run()  # the form's Train button
    store = RunStore(fclab_home / "store")
    (run,) = store.list_runs()
    assert run.status == "running" and run.method == "ae_kmeans" and run.config["hparams"]["epochs"] == 300
    assert run.config["dataset_options"]["n"] == 300

    deadline = time.time() + 30
    while store.scalars(run.id).empty and time.time() < deadline:
        time.sleep(0.2)
    monitor = open_app("pages/monitor.py", query={"run": run.id})
    assert monitor.title[0].value == "Monitor"
    assert any("points logged" in c.value for c in monitor.caption)
    stop = monitor.button(key="stop")
    stop.click().run()
    # The stop button belongs to the app's registry (the same process here): the run ends as stopped.
    deadline = time.time() + 5
    while store.get_run(run.id).status == "running" and time.time() < deadline:
        time.sleep(0.1)
    assert store.get_run(run.id).status == "stopped"


def test_invalid_setting_is_shown_and_nothing_starts(app, fclab_home):
    app.selectbox(key="method").select("ae_kmeans").run()
    app.number_input(key="hp.ae_kmeans.lr").set_value(0.0)  # in a form: submitted with the click below
    app.button[0].click().run()
    assert any("Could not start" in e.value and "outside its range" in e.value for e in app.error)
    assert RunStore(fclab_home / "store").list_runs() == []


def test_monitor_empty_state(fclab_home):
    at = open_app("pages/monitor.py")
    assert "No runs yet" in at.info[0].value


def test_quick_demo_is_the_starting_schedule_and_paper_is_one_click_away(app):
    app.selectbox(key="method").select("dfc").run()
    assert app.radio(key="preset.dfc").value == "quick"
    assert app.number_input(key="hp.dfc.quick.iterations").value == 300
    assert "paper's default is 20000" in app.number_input(key="hp.dfc.quick.iterations").help
    assert any("Quick demo sets" in c.value and "iterations 300 (paper 20000)" in c.value
               and "batch_per_group 64 (paper 512)" in c.value for c in app.caption)
    app.radio(key="preset.dfc").set_value("paper").run()
    assert any("expect hours on a CPU" in c.value for c in app.caption)
    assert app.number_input(key="hp.dfc.iterations").value == 20000
    assert app.number_input(key="hp.dfc.alpha_f").value == 1.0


def test_a_dataset_whose_files_are_missing_says_so_in_the_picker(app):
    picker = app.selectbox(key="dataset")
    assert "MNIST-USPS (files not on this machine)" in picker.options
    assert "Your own data (upload) (no upload saved yet)" in picker.options
    assert "MNIST sample + UCI optdigits (built-in, offline)" in picker.options  # available: no mark
    picker.select("mnist_usps").run()
    assert any("files are not on this machine" in w.value for w in app.warning)


def test_a_double_click_on_train_starts_one_run(app, fclab_home):
    store = RunStore(fclab_home / "store")
    for _ in range(2):  # the second click comes back to the same form, same settings, within a second
        app.switch_page("pages/train.py").run()
        app.selectbox(key="method").select("kmeans").run()
        app.number_input(key="data.mnist_optdigits.n").set_value(300)
        app.button[0].click().run()
    assert len(store.list_runs()) == 1
    assert app.title[0].value == "Monitor"  # both clicks lead to the one run


def test_the_monitor_picker_says_finished_once_the_run_has(app, fclab_home):
    app.selectbox(key="method").select("kmeans").run()
    app.number_input(key="data.mnist_optdigits.n").set_value(300)
    app.button[0].click().run()
    store = RunStore(fclab_home / "store")
    (run,) = store.list_runs()
    monitor = open_app("pages/monitor.py", query={"run": run.id})
    deadline = time.time() + 60
    while store.get_run(run.id).status == "running" and time.time() < deadline:
        time.sleep(0.2)
    monitor.run()
    picker = next(s for s in monitor.selectbox if s.label == "Run")
    assert picker.options[picker.index] == f"kmeans on mnist_optdigits · finished · {run.id}"


def test_a_quick_demo_that_needs_other_data_offers_it_and_says_how_long(app):
    """ERM's story needs a strongly biased coloured set (the built-in sample's, which ships with the install): the
    Train page says so before the click, one button sets the Data picker and its options, and the measured duration
    is there."""
    app.selectbox(key="method").select("erm").run()
    assert any("tells its story on **Colored MNIST sample (built-in" in i.value for i in app.info)
    assert any("min on a 2-core laptop CPU" in c.value for c in app.caption)
    next(b for b in app.button if b.label == "Use that data").click().run()
    assert app.selectbox(key="dataset").value == "colored_digits"
    assert app.number_input(key="data.colored_digits.color_flip").value == 0.05
    assert app.selectbox(key="data.colored_digits.target").value == "binary"
    assert not any("tells its story" in i.value for i in app.info)  # it is the data now


def test_on_an_uploaded_table_the_quick_demo_gives_the_tables_schedule_and_time(fclab_home):
    """The built-in data's minutes would mislead on a table (FCMI: 2.3 min there, about 15 s on 4,000 rows)."""
    from tests.tabular_data import save_upload

    save_upload(300, seed=1, name="census")
    app = open_app("pages/train.py")
    app.selectbox(key="dataset").select("upload").run()
    app.selectbox(key="method").select("fcmi").run()
    quick = next(c.value for c in app.caption if "Quick demo sets" in c.value)
    assert "On an uploaded table of 4,000 rows" in quick and "2.3 min" not in quick
    app.selectbox(key="method").select("dfc").run()
    quick = next(c.value for c in app.caption if "Quick demo sets" in c.value)
    assert "pretrain_steps 500 (paper" in quick and "On an uploaded table" in quick  # its quick_tables overlay
    app.selectbox(key="method").select("kmeans").run()
    assert not any("min on the built-in data" in c.value for c in app.caption)


def test_monitor_shows_each_groups_own_model_beside_the_shared_start(fclab_home):
    """DFC saves its stage-2 table with the run; the Monitor reads it from the store (group names are data)."""
    store = RunStore(fclab_home / "store")
    run_id = store.create_run(dataset="mnist_usps", method="dfc", config={"hparams": {}}, seed=0, device="cpu",
                              environment={})
    rows = [{"group": "**MNIST**", "samples": 60000, "start_acc": 0.61, "model_acc": 0.89, "start_nmi": 0.5,
             "model_nmi": 0.8, "pretrain_epochs": 200.0, "dec_epochs": 31, "dec_stopped": "settled (0.08% changed)"}]
    (store.run_dir(run_id) / "group_models.json").write_text(__import__("json").dumps(rows))
    store.finish(run_id, "finished", metrics={"acc": 0.8})
    monitor = open_app("pages/monitor.py", query={"run": run_id})
    assert not monitor.exception
    (table,) = [d.value for d in monitor.dataframe]
    assert list(table.columns[:4]) == ["Group", "Samples", "Shared k-means ACC", "Own model ACC"]
    assert table.iloc[0]["Group"] == "**MNIST**" and table.iloc[0]["Own model ACC"] == 0.89
    assert any("the shared encoder's k-means" in c.value for c in monitor.caption)


def test_a_methods_variants_are_offered_above_the_form_with_their_sources(app):
    app.selectbox(key="method").select("inv_senet").run()
    variant = app.radio(key="variant.inv_senet")
    assert variant.options == ["paper text", "public code"] and variant.value == "paper text"
    assert any("Source: Inv-SENnet paper" in c.value and "The declared defaults" in c.value for c in app.caption)
    assert app.selectbox(key="hp.inv_senet.quick.bias_head").value == "separate"
    variant.set_value("public code").run()
    source = next(c.value for c in app.caption if "Source:" in c.value)
    assert "singh17ashu/Inv" in source and "bias_head shared" in source.replace("\\", "")
    prefix = "hp.inv_senet.quick.variant.public code"
    assert app.selectbox(key=f"{prefix}.bias_head").value == "shared"
    assert app.selectbox(key=f"{prefix}.affinity").value == "knn"
    assert app.number_input(key=f"{prefix}.spectral_dim").value == 15
    assert app.number_input(key=f"{prefix}.epochs").value == METHODS["inv_senet"].quick["epochs"]  # the schedule's budget
    assert app.number_input(key=f"{prefix}.dict_size").value == 0  # the variant's, over the quick demo's 500 atoms
    quick = next(c.value for c in app.caption if "Quick demo sets" in c.value)
    assert "dict_size" not in quick and "epochs" in quick and "whole-set dictionary" in quick
    app.selectbox(key="method").select("kmeans").run()
    assert not app.radio or all(r.key != "variant.kmeans" for r in app.radio)  # one reading only: no choice


def test_a_classic_fair_method_says_its_source_and_guarantee_on_the_form(app):
    app.selectbox(key="method").select("fairlets").run()
    captions = [c.value for c in app.caption]
    assert f"Guarantee: {METHODS['fairlets'].guarantee}" in captions
    assert any(c.startswith("Reference: Chierichetti") for c in captions)
    labels = _number_labels(app) + [s.label for s in app.selectbox]
    assert all(param.label in labels for param in METHODS["fairlets"].params)


def test_a_one_pass_run_shows_its_objective_as_numbers_not_charts_of_one_dot(fclab_home):
    store = RunStore(fclab_home / "store")
    run_id, config = create_run(store, RunConfig(dataset="mnist_optdigits", method="fairlets",
                                                 dataset_options={"n": 300}, hparams={"n_clusters": 4}))
    assert execute_run(store, run_id, config, threading.Event()).status == "finished"
    monitor = open_app("pages/monitor.py", query={"run": run_id})
    (table,) = monitor.dataframe
    assert set(table.value["signal"]) == {"cost", "fairlet_cost", "t"}
    assert not monitor.toggle and not [c for c in monitor.get("plotly_chart")]


def test_a_dataset_whose_files_are_missing_cannot_be_started(app, fclab_home, monkeypatch):
    """No data folder: Colored MNIST (mnist_usps.npz, no public download) says how to get its files in the README's
    words and its Train button is disabled; with source=official its files can be downloaded, so it can start, unless
    downloads are switched off."""
    from dashboard_lib.data.download import HOW_TO_GET_FILES

    monkeypatch.delenv("FCLAB_DATA_DIR", raising=False)
    monkeypatch.delenv("FCLAB_OFFLINE", raising=False)
    app = open_app("pages/train.py")
    app.selectbox(key="dataset").select("colored_mnist").run()
    assert any(HOW_TO_GET_FILES in w.value and "cannot be trained here" in w.value for w in app.warning)
    assert app.button[0].disabled  # the form's Train button
    app.selectbox(key="data.colored_mnist.source").select("official").run()
    assert not any("cannot be trained here" in w.value for w in app.warning)
    assert any("downloads them from their official source" in i.value for i in app.info)
    assert not app.button[0].disabled
    monkeypatch.setenv("FCLAB_OFFLINE", "1")
    app.run()
    assert app.button[0].disabled
    app.selectbox(key="dataset").select("colored_digits").run()  # ships with the install
    assert not app.button[0].disabled and not any("cannot be trained here" in w.value for w in app.warning)
    with open(__import__("pathlib").Path(__file__).resolve().parents[2] / "README.md", encoding="utf-8") as f:
        assert HOW_TO_GET_FILES in " ".join(f.read().split())  # the same line as the README's set-up


def test_k_says_what_0_means_and_the_number_when_the_data_is_built(app):
    """K's default 0 means "the dataset's number of classes": said under the field, with the number once this process
    has built the data (the app's warm-up builds the default dataset; the page builds nothing)."""
    from dashboard_lib import data as datasets

    app.selectbox(key="method").select("kmeans").run()
    k = next(n for n in app.number_input if "n_clusters" in n.label)
    assert k.value == 0  # the stored value keeps its meaning
    dataset = app.selectbox(key="dataset").value
    datasets.load_dataset(dataset, {})
    app.run()
    assert "K = 0: the dataset's number of classes (10 here)." in [c.value for c in app.caption]
    app.selectbox(key="method").select("erm").run()  # a classifier has no K: no note
    assert not any(c.value.startswith("K = 0") for c in app.caption)
