"""Reproduction records (dashboard_lib.reproductions) and bench/reproduce.py: write/read, refusals, the rendered
document, the notes on what cannot be matched, the recipes, and one tiny run through the app's path."""
from __future__ import annotations

import json

import pytest
# bench/reproduce.py and its bench/reproduction package: pytest.ini puts bench/ on the path, as running the script does
import reproduce
from reproduction import recipes
from reproduction.render import render

from dashboard_lib import reproductions as rp
from dashboard_lib.methods import REGISTRY
from tests.conftest import SHARED_DATA
from tests.reproduction_data import fake_record

HAVE_NPZ = (SHARED_DATA / "mnist_usps.npz").is_file()


def test_a_record_round_trips_and_a_rerun_replaces_it_saying_what_it_was(tmp_path):
    record = fake_record()
    path, previous = rp.write_record(record, tmp_path)
    assert path == tmp_path / "dfc__mnist_usps__reduced__seed0.json" and previous is None
    assert rp.read_record(path) == record
    assert rp.load_records(tmp_path) == ([record], [])
    rerun = fake_record(metrics={"acc": 0.8}, date="2025-02-01T00:00:00+00:00")
    path2, previous = rp.write_record(rerun, tmp_path)
    assert path2 == path and previous == record and rp.read_record(path) == rerun
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no temporary file left behind


def test_a_file_that_is_not_the_same_key_s_record_is_never_replaced(tmp_path):
    path = tmp_path / "dfc__mnist_usps__reduced__seed0.json"
    other = fake_record(seed=1)
    path.write_text(json.dumps(other))  # seed 1's record under seed 0's name
    with pytest.raises(rp.RecordError, match="holds another run's record") as info:
        rp.write_record(fake_record(), tmp_path)
    assert "refusing to replace it" in str(info.value)
    assert json.loads(path.read_text()) == other


@pytest.mark.parametrize("change, problem", [
    (lambda r: r.pop("curve"), "field 'curve' is missing"),
    (lambda r: r.update(schema=2), "schema 2 (this version reads schema 1)"),
    (lambda r: r["metrics"].update(acc="high"), "metric 'acc' is not a finite number"),
    (lambda r: r["paper"].update(metrics={"acc": "82.5"}), "a paper metric is neither a number nor null"),
    (lambda r: r.update(method="../dfc"), "method '../dfc' cannot name a record: use lower-case letters, digits and single underscores"),
    (lambda r: r["curve"].append({"acc": 0.5}), "a curve point has no whole-number step"),
    (lambda r: r.update(git={"commit": "abc"}), "git needs commit (text) and dirty (true or false)"),
])
def test_a_malformed_record_is_refused_with_what_is_wrong(tmp_path, change, problem):
    record = fake_record()
    change(record)
    path = tmp_path / "dfc__mnist_usps__reduced__seed0.json"
    path.write_text(json.dumps(record))
    with pytest.raises(rp.RecordError) as info:
        rp.read_record(path)
    assert str(info.value) == rp.ERR_MALFORMED.format(path=path, problem=problem)
    with pytest.raises(rp.RecordError):
        rp.write_record(record, tmp_path / "new")
    records, problems = rp.load_records(tmp_path)
    assert records == [] and problems == [str(info.value)]


def test_unreadable_json_and_a_misnamed_record_are_refused(tmp_path):
    broken = tmp_path / "dfc__mnist_usps__reduced__seed0.json"
    broken.write_text("{not json")
    with pytest.raises(rp.RecordError, match="unreadable JSON"):
        rp.read_record(broken)
    renamed = tmp_path / "fcmi__mnist_usps__reduced__seed0.json"
    renamed.write_text(json.dumps(fake_record()))
    with pytest.raises(rp.RecordError, match="its content is dfc__mnist_usps__reduced__seed0's record"):
        rp.read_record(renamed)


def test_render_refuses_a_folder_with_a_malformed_record(tmp_path, capsys):
    rp.write_record(fake_record(), tmp_path)
    (tmp_path / "dfc__mnist_usps__reduced__seed1.json").write_text("[]")
    assert reproduce.main(["--render", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "not rendered" in err and "dfc__mnist_usps__reduced__seed1.json: not a reproduction record" in err
    assert not (tmp_path / "REPRODUCTIONS.md").exists()


def test_rendered_document_shows_paper_beside_ours_with_mean_and_sd_over_seeds(tmp_path):
    records = [fake_record(seed=0, metrics={"acc": 0.70, "nmi": 0.60, "balance": 0.05}),
               fake_record(seed=1, metrics={"acc": 0.74, "nmi": 0.62, "balance": 0.05}, wall_s=170.0)]
    for r in records:
        rp.write_record(r, tmp_path)
    doc = render(rp.load_records(tmp_path)[0], "docs/reproductions")
    lines = doc.splitlines()
    assert "| [dfc](#dfc) | 2 | mnist_usps (reduced) |" in lines
    section = doc[doc.index("\n## dfc\n"):doc.index("\n## fcmi\n")]
    assert "### mnist_usps, reduced schedule" in section
    assert "| ACC | 82.5 | 72.0 ± 2.8 (2 seeds) |" in section
    assert "| NMI (arithmetic) | 78.9 | 61.0 ± 1.4 (2 seeds) |" in section
    assert "| Balance | 6.7 | 5.0 ± 0.0 (2 seeds) |" in section
    assert "| MNCE | – | – |" in section  # neither the paper nor these runs report it
    assert ("Paper: DFC Table 2. Budget: n = 10,000 samples; iterations 300, batch_per_group 256; fp32; seeds 0, 1. "
            "The paper's: all the data, iterations 20000, batch_per_group 512. "
            "Device: cpu: test, 1 thread; wall time 2.7 min per run; commit 0123456789; 2025-01-02.") in section
    assert "| iteration | ACC | Balance | MNCE |" in section and "| 100 | 50.0 | 1.0 | 30.0 |" in section
    # A method without records says so and gives the command that makes one.
    kmeans = doc[doc.index("\n## kmeans\n"):doc.index("\n## ae_kmeans\n")]
    assert "No record yet. Make one with `python bench/reproduce.py --method kmeans --schedule reduced`" in kmeans


def test_runs_with_other_budgets_are_not_averaged_and_a_paper_run_shows_no_curve():
    small = fake_record(seed=1, budget={**fake_record()["budget"], "n": 500, "n_samples": 500})
    paper = fake_record(schedule="paper")
    summaries = rp.summarize([fake_record(), small, paper], "dfc")
    assert [(s.schedule, s.seeds, s.first["budget"]["n_samples"]) for s in summaries] == [
        ("paper", [0], 10000), ("reduced", [1], 500), ("reduced", [0], 10000)]
    doc = render([paper], "docs/reproductions")
    assert "### mnist_usps, paper schedule" in doc and "| iteration |" not in doc


def test_the_why_notes_are_in_one_place_and_reach_every_record_and_section():
    for method, words in (("inv_senet", ("wrong order", "training set", "+42")),
                          ("statdec", ("no public code", "long-tailed")),
                          ("clusterfix", ("Colored MNIST", "CelebA", "Waterbirds", "not available here"))):
        note = recipes.WHY[method]
        assert all(w in note for w in words), (method, note)
        assert recipes.paper_reference(method, recipes.DEFAULT_DATASET[method])["note"] == note
        doc = render([], "docs/reproductions")
        section = doc[doc.index(f"\n## {method}\n"):]
        assert f"*Why it cannot be matched:* {note}" in section.split("\n## ")[1]


def test_paper_numbers_come_with_their_source():
    assert recipes.paper_reference("fcmi", "mnist_usps")["metrics"] == {"acc": 0.967, "nmi": 0.918, "balance": 0.107,
                                                                        "mnce": 0.945}
    assert recipes.paper_reference("dfc", "reverse_mnist")["source"] == "DFC Table 2"
    # Inv-SENnet's Table 1: the row whose N_i is nearest the run's training rows
    assert recipes.paper_reference("inv_senet", "colored_mnist", 9000)["metrics"]["acc"] == pytest.approx(0.6844)
    assert recipes.paper_reference("inv_senet", "colored_mnist", 50000)["metrics"]["acc"] == pytest.approx(0.7804)
    assert recipes.paper_reference("statdec", "mnist_lt10") == {"metrics": {}, "source": recipes.NO_PAPER,
                                                               "note": recipes.WHY["statdec"]}
    for method in REGISTRY:
        assert recipes.DEFAULT_DATASET[method] in recipes.datasets_for(method)


def test_plans_overlay_the_schedule_on_the_declared_defaults():
    p = recipes.plan("dfc", "mnist_usps", "reduced")
    assert p.options == {"n": 10000} and p.hparams["iterations"] == 300 and p.hparams["batch_per_group"] == 256
    assert recipes.plan("dfc", "mnist_usps", "paper", n=500).hparams == {} and recipes.plan(
        "dfc", "mnist_usps", "paper", n=500).options == {"n": 500}
    assert recipes.plan("dec", "mnist_usps", "quick").hparams == {"pretrain_epochs": 3, "iterations": 240,
                                                                  "eval_every": 120, "n_init": 5}
    # The imbalance suite's common budget reaches only the settings a method declares (k-means has no epochs).
    assert recipes.plan("kmeans", "mnist_lt10", "reduced").hparams == {"n_init": 5}
    assert recipes.plan("dec", "mnist_lt10", "reduced", overrides={"iterations": 9}).hparams["encoder"] == "mlp"
    assert recipes.plan("dec", "mnist_lt10", "reduced", overrides={"iterations": 9}).hparams["iterations"] == 9
    senet = recipes.plan("inv_senet", "colored_mnist_mixed", "medium")
    assert senet.hparams["protocol"] == "mixed" and senet.n_train == 10000
    with pytest.raises(ValueError, match="no schedule 'medium' for mnist_usps"):
        recipes.plan("dfc", "mnist_usps", "medium")
    with pytest.raises(ValueError, match="dfc is not compared on cmnist_binary99"):
        recipes.plan("dfc", "cmnist_binary99", "reduced")


@pytest.mark.skipif(not HAVE_NPZ, reason="needs ../shared/data/mnist_usps.npz")
def test_a_tiny_run_goes_through_the_app_path_and_writes_its_record_and_the_document(tmp_path):
    out = tmp_path / "records"
    assert reproduce.main(["--method", "kmeans", "--schedule", "quick", "--n", "300", "--out", str(out),
                           "--data-dir", str(SHARED_DATA)]) == 0
    record = rp.read_record(out / "kmeans__mnist_usps__quick__seed0.json")
    assert record["budget"]["n"] == 300 and 290 <= record["budget"]["n_samples"] <= 300 and record["device"]["type"] == "cpu"
    assert len(record["git"]["commit"]) == 40 and record["curve"][0]["step"] == 0
    assert 0 < record["metrics"]["acc"] <= 1 and record["paper"]["note"] == recipes.WHY["kmeans"]
    doc = (out / "REPRODUCTIONS.md").read_text()
    assert "### mnist_usps, quick schedule" in doc


def test_set_reaches_the_methods_that_declare_the_setting_or_the_one_named():
    per = reproduce.split_overrides({"iterations": "50", "fcmi.epochs": "3", "n_init": "2"}, ["dec", "fcmi", "kmeans"])
    assert per == {"dec": {"iterations": "50", "n_init": "2"}, "fcmi": {"epochs": "3"}, "kmeans": {"n_init": "2"}}
    with pytest.raises(ValueError, match="no method named \\(kmeans\\) has a setting 'epochs'"):
        reproduce.split_overrides({"epochs": "3"}, ["kmeans"])
    with pytest.raises(ValueError, match="dfc is not one of the methods named"):
        reproduce.split_overrides({"dfc.iterations": "3"}, ["kmeans"])


def test_a_released_dfc_budget_lists_only_what_ran():
    from dashboard_lib.reproductions import Summary

    record = {"budget": {"n_samples": 67291, "schedule": {"init": "released", "pretrain_steps": 10000, "iterations": 600,
                                                          "group_dec_epochs": 600, "batch_per_group": 512, "n_init": 10}}}
    text = Summary.budget_text(type("S", (), {"first": record, "seeds": [0]})())
    assert "iterations 600" in text and "batch_per_group 512" in text
    assert "pretrain_steps" not in text and "group_dec_epochs" not in text and "n_init" not in text
