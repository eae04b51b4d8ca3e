"""The headless CLI as a user runs it: a real subprocess, the real run store."""
import json
import os
import signal
import subprocess
import sys
import time

from dashboard_lib.cli import ERR_REPAIR_OPTIONS, main
from dashboard_lib.data import upload
from dashboard_lib.methods import get_method
from dashboard_lib.store import RunStore
from tests.conftest import REPO


def cli(home, *args, timeout=120):
    env = {**os.environ, "FCLAB_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "dashboard_lib", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_listings(tmp_path):
    datasets = json.loads(cli(tmp_path, "datasets", "--json").stdout)
    default = next(d for d in datasets if d["id"] == "mnist_optdigits")
    assert default["available_offline"] is True and {o["name"] for o in default["options"]} >= {"n", "seed"}
    methods = {m["id"]: m for m in json.loads(cli(tmp_path, "methods", "--json").stdout)}
    assert {"kmeans", "ae_kmeans"} <= set(methods)
    lr = next(p for p in methods["ae_kmeans"]["params"] if p["name"] == "lr")
    assert (lr["default"], lr["symbol"], lr["range"]) == (0.001, "η", "(0, 1]")


def test_train_json_on_the_default(tmp_path):
    out = cli(tmp_path, "train", "--data", "n=500", "--set", "n_init=2", "--seed", "4", "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["dataset"] == "mnist_optdigits" and result["method"] == "kmeans" and result["device"] == "cpu"
    assert result["status"] == "finished" and result["seconds"] > 0
    for key in ("acc", "nmi", "ari", "balance", "entropy", "mnce", "f_beta"):
        assert isinstance(result["metrics"][key], float)
    run = RunStore(tmp_path / "store").get_run(result["run_id"])  # the app reads the same store
    assert run.status == "finished" and run.seed == 4 and run.metrics == result["metrics"]


def test_bad_arguments_exit_non_zero_with_one_line(fclab_home, capsys):
    cases = [
        (("train", "--method", "nope"), "error: unknown method 'nope'; valid ids: kmeans, ae_kmeans"),
        (("train", "--dataset", "nope"), "error: unknown dataset 'nope'; valid ids: mnist_optdigits"),
        (("train", "--set", "bogus=1"), "error: unknown hyperparameter 'bogus' for method kmeans; valid names: n_clusters, n_init, max_iter, tol"),
        (("train", "--method", "ae_kmeans", "--set", "lr=-1"), "error: method ae_kmeans: η (lr) = -1 is outside its range (0, 1]"),
        (("train", "--epochs", "3"), "error: method kmeans does not train in epochs"),
        (("train", "--data", "n=-5"), "error: dataset mnist_optdigits: n = -5 is outside its range [0, inf)"),
        (("train", "--set", "n_init"), "error: expected NAME=VALUE, got 'n_init'"),
    ]
    for args, message in cases:
        assert main(list(args)) == 2, args
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(message), lines
    assert RunStore(fclab_home / "store").list_runs() == []


def test_a_killed_run_shows_as_interrupted(tmp_path):
    env = {**os.environ, "FCLAB_HOME": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-m", "dashboard_lib", "train", "--method", "ae_kmeans", "--epochs", "1000",
                             "--data", "n=300"], cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    store = RunStore(tmp_path / "store")
    deadline = time.time() + 60
    while not store.list_runs(status="running") and time.time() < deadline:
        time.sleep(0.2)
    assert store.list_runs(status="running"), "the CLI run never started"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    from dashboard_lib.jobs import JobRegistry

    JobRegistry(store)  # what the app does at start-up
    (run,) = store.list_runs()
    assert run.status == "interrupted" and run.ended is not None


def test_upload_then_train_on_it(fclab_home, tmp_path, capsys):
    table = tmp_path / "survey.csv"
    table.write_text("age,income,site,label\n" + "".join(f"{i % 7},{(i * 37) % 11},{'ab'[i % 2]},{i % 3}\n" for i in range(60)))
    assert main(["upload", str(table), "--features", "age", "income", "--sensitive", "site", "--class", "label",
                 "--name", "survey"]) == 0
    assert "saved upload 'survey': 60 rows, 2 features; groups: a 30, b 30" in capsys.readouterr().out
    assert main(["upload", str(table), "--features", "age", "--sensitive", "site", "--name", "survey"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["train", "--dataset", "upload", "--data", "name=survey", "--set", "n_init=2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["status"] == "finished" and 0 <= result["metrics"]["balance"] <= 1
    assert result["dataset"] == "upload:survey"
    assert main(["runs", "--json"]) == 0
    assert [r["dataset"] for r in json.loads(capsys.readouterr().out)] == ["upload:survey"]


def test_upload_a_table_as_it_comes(fclab_home, tmp_path, capsys):
    """Default features (the id and the constant left out, said on stderr), an ordinal order, missing values dropped."""
    rows = [f"{100 + i};{20 + i % 9};{['low', 'mid', 'high'][i % 3]};{'?' if i % 10 == 3 else 'ab'[i % 2]};{'FM'[i % 2 == 0 and i % 3 == 0]};x"
            for i in range(40)]
    table = tmp_path / "t.csv"
    table.write_text("row_id;age;level;site;sex;batch\n" + "\n".join(rows) + "\n")
    assert main(["upload", str(table), "--sensitive", "sex", "--name", "t", "--missing", "drop",
                 "--encode", "level=ordinal", "--order", "level=low|mid|high"]) == 0
    out, err = capsys.readouterr()
    assert "left out 'row_id': an id: a different value in every row" in err
    assert "left out 'batch': a single value" in err
    assert "saved upload 't': 36 rows, 4 features; groups: F 29, M 7; 4 row(s) with missing values dropped" in out
    meta = upload.upload_meta("t")
    assert meta["feature_names"] == ["age", "level", "site=a", "site=b"] and meta["levels"]["level"] == ["low", "mid", "high"]
    assert main(["upload", str(table), "--sensitive", "sex", "--name", "u", "--encode", "level"]) == 2
    assert "--encode takes COLUMN=VALUE, got 'level'" in capsys.readouterr().err


def test_the_default_preset_is_the_apps_quick_one_and_set_wins(fclab_home, capsys):
    """No --preset: the quick demo, as the Train page starts on."""
    assert main(["train", "--method", "dec", "--data", "n=300", "--set", "pretrain_epochs=1",
                 "--set", "iterations=3", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    hparams = RunStore(fclab_home / "store").get_run(result["run_id"]).config["hparams"]
    # From the quick preset: restarts and evaluation period; from --set: the two schedule lengths; the rest: the paper's.
    quick = get_method("dec").quick
    assert (hparams["n_init"], hparams["eval_every"]) == (quick["n_init"], quick["eval_every"]) == (5, quick["eval_every"])
    assert (hparams["pretrain_epochs"], hparams["iterations"]) == (1, 3)
    assert (hparams["lr"], hparams["update_interval"]) == (0.01, 140)


def test_a_variant_sets_its_settings_over_the_schedule_and_set_wins(fclab_home, capsys):
    assert main(["train", "--method", "senet", "--variant", "public code", "--data", "n=200", "--set", "width=16",
                 "--set", "depth=1", "--set", "pca_dim=10", "--set", "epochs=1", "--set", "batch_size=50",
                 "--set", "top_k=20", "--set", "spectral_dim=4", "--set", "eval_every=0", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["status"] == "finished"
    hparams = RunStore(fclab_home / "store").get_run(result["run_id"]).config["hparams"]
    public = get_method("senet").variant("public code")
    assert (hparams["affinity"], hparams["dict_size"], hparams["lr_schedule"]) == ("knn", 0, "cosine")  # the variant's
    assert public["spectral_dim"] == 15 and hparams["spectral_dim"] == 4  # --set wins
    assert hparams["pca_dim"] == 10 and hparams["gamma"] == 200.0
    assert main(["train", "--method", "senet", "--variant", "repo", "--data", "n=200"]) == 2
    assert "unknown variant 'repo' of method senet; valid: paper text, public code" in capsys.readouterr().err
    assert main(["methods"]) == 0
    assert 'variant "public code": top_k=1000, affinity=knn' in capsys.readouterr().out


def test_output_cut_short_by_its_reader_is_quiet(tmp_path):
    env = {**os.environ, "FCLAB_HOME": str(tmp_path)}
    pipeline = subprocess.run(f"{sys.executable} -m dashboard_lib methods | head -n 2", shell=True, cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=120)
    assert len(pipeline.stdout.splitlines()) == 2
    assert "Traceback" not in pipeline.stderr and "BrokenPipe" not in pipeline.stderr, pipeline.stderr


def test_runs_columns_line_up_whatever_the_lengths():
    from dashboard_lib.cli import aligned_columns

    lines = aligned_columns([["run", "status", "method", "metrics"], ["a1", "finished", "kmeans", "acc=0.5"],
                             ["b22222", "failed", "inv_senet", "acc=0.1"]])
    assert lines == ["run     status    method     metrics",
                     "a1      finished  kmeans     acc=0.5",
                     "b22222  failed    inv_senet  acc=0.1"]


def test_runs_listing_has_a_header_and_aligned_columns(fclab_home, capsys):
    store = RunStore(fclab_home / "store")
    for method, dataset in (("kmeans", "mnist_optdigits"), ("inv_senet", "colored_mnist")):
        store.create_run(dataset=dataset, method=method, config={}, seed=0, device="cpu", environment={})
    assert main(["runs"]) == 0
    header, *rows = capsys.readouterr().out.splitlines()
    assert header.split() == ["run", "status", "method", "dataset", "metrics"] and len(rows) == 2
    starts = {line.index(line.split()[2], len(line.split()[0])) for line in rows}  # run ids hold the method too
    assert starts == {header.index("method")}


def test_a_failed_runs_kept_metrics_never_read_as_final(fclab_home, capsys):
    store = RunStore(fclab_home / "store")
    run_id = store.create_run(dataset="upload", method="dfc", config={"dataset_options": {"name": "adult"}}, seed=0,
                              device="cpu", environment={})
    store.finish(run_id, "failed", metrics={"acc": 0.5, "balance": 0.1}, kept_from_epoch=0, error="L_c became nan")
    assert main(["runs"]) == 0
    assert "upload:adult  (not final: evaluation at epoch 0) acc=0.500 balance=0.100" in capsys.readouterr().out
    assert main(["runs", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["metrics"] == {"acc": 0.5, "balance": 0.1} and row["metrics_final"] is False and row["metrics_epoch"] == 0


def test_train_validates_its_config_once_and_loads_its_data_once(fclab_home, capsys, monkeypatch):
    from dashboard_lib import jobs

    calls = {"resolved": 0, "load_dataset": 0}
    resolved, load_dataset = jobs.RunConfig.resolved, jobs.load_dataset

    def counted_resolved(self):
        calls["resolved"] += 1
        return resolved(self)

    def counted_load(*args, **kwargs):
        calls["load_dataset"] += 1
        return load_dataset(*args, **kwargs)

    monkeypatch.setattr(jobs.RunConfig, "resolved", counted_resolved)
    monkeypatch.setattr(jobs, "load_dataset", counted_load)
    assert main(["train", "--data", "n=200", "--set", "n_init=1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "finished"
    assert calls == {"resolved": 1, "load_dataset": 1}


REPAIR_TABLE = """id,c,s,x,y
r0,0,a,0,p
r1,0,a,1,p
r2,0,a,2,q
r3,0,a,3,q
r4,1,b,10,p
r5,1,b,11,p
r6,1,b,12,q
r7,1,b,13,q
"""  # tests/unit/test_repairing.py: with δ = 0, r2, r3 (a) and r4, r5 (b) must swap; Σ distance 8 → 40


def test_audit_repair_end_to_end_writes_both_clusterings(fclab_home, tmp_path, capsys):
    from dashboard_lib import repairing

    table = tmp_path / "people.csv"
    table.write_text(REPAIR_TABLE)
    out = tmp_path / "out"
    assert main(["audit", str(table), "--clusters", "c", "--sensitive", "s", "--class", "y", "--embedding", "x",
                 "--id", "id", "--resamples", "20", "--repair", "--bounds", "0", "--repair-cost", "distance",
                 "--out-dir", str(out)]) == 0
    printed = capsys.readouterr().out
    store = RunStore(fclab_home / "store")
    repaired, original = store.list_runs()  # newest first
    assert repaired.config["repair"]["repaired_run"] == original.id and "repair" not in original.config
    assert f"recorded as run {original.id}" in printed and f"repaired clustering recorded as run {repaired.id}" in printed
    assert "  points moved: 4 of 8 (50.0%)" in printed
    assert "  cost (Σ distance to the centres): 8 before, 40 after, ratio 5.000" in printed
    page = (out / "audit.html").read_text()
    assert f"Original clustering (run {original.id})" in page and f"Repaired clustering (run {repaired.id})" in page
    assert "<b>4</b> of 8 points moved" in page and repairing.GUARANTEE in page
    payload = json.loads((out / "audit.json").read_text())
    assert payload["repaired_run"] == repaired.id and payload["repair"]["n_moved"] == 4
    rows = (out / "assignments.csv").read_text().splitlines()
    assert rows[0] == "row_id,s,cluster,repaired_cluster,moved" and rows[3] == "r2,a,0,1,True"
    # --run: the stored original repaired again, a third run; its files are not the user's to overwrite.
    assert main(["audit", "--run", original.id, "--resamples", "0", "--repair", "--bounds", "a=0.5:0.5",
                 "--report", str(out / "audit.html")]) == 2
    assert "already exists" in capsys.readouterr().err and len(store.list_runs()) == 2
    assert main(["audit", "--run", original.id, "--resamples", "0", "--repair", "--bounds", "a=0.5:0.5"]) == 0
    assert len(store.list_runs()) == 3 and store.list_runs()[0].config["repair"]["repaired_run"] == original.id


def test_audit_repair_refusals_record_nothing(fclab_home, tmp_path, capsys):
    from dashboard_lib import repairing

    table = tmp_path / "people.csv"
    table.write_text(REPAIR_TABLE)
    base = ["audit", str(table), "--clusters", "c", "--sensitive", "s", "--resamples", "0"]
    cases = [
        (["--bounds", "0.1"], "error: " + ERR_REPAIR_OPTIONS),
        (["--repair", "--repair-cost", "distance"], "error: " + repairing.ERR_DISTANCE_NO_FEATURES),
        (["--repair", "--bounds", "x=0:1"], "error: " + repairing.ERR_UNKNOWN_GROUP.format(group="x", attribute="s", have=["a", "b"])),
        (["--repair", "--bounds", "a=0.6:0.7"], "error: infeasible bounds: cluster 0 has 4 points, and group a's share"),
    ]
    for args, message in cases:
        assert main(base + args) == 2, args
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(message), err
    assert RunStore(fclab_home / "store").list_runs() == []
