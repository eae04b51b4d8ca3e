import json
import os
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest

from dashboard_lib.store import (_SCHEMA, ERR_KEPT_FROM, INTERRUPTED, MIGRATIONS, SCHEMA_VERSION, RunStore, owner_alive,
                                 process_start_time)


def _new_run(store, method="kmeans"):
    return store.create_run(dataset="d", method=method, config={"hparams": {"k": 3}}, seed=7, device="cpu",
                            environment={"versions": {"torch": "x"}})


def test_run_lifecycle_survives_reopening(tmp_path):
    store = RunStore(tmp_path)
    run_id = _new_run(store)
    store.add_scalars(run_id, [(1, "L_rec", 0.5, 1.0), (2, "L_rec", 0.25, 2.0), (1, "acc", 0.1, 1.0)])
    arrays = {"assignment": np.array([0, 1, 1]), "g": np.array([0, 0, 1]), "embedding": np.ones((3, 2), np.float32)}
    store.add_evaluation(run_id, 5, {"acc": 0.5}, arrays)
    store.finish(run_id, "finished", metrics={"acc": 0.75})

    reopened = RunStore(tmp_path)  # a restarted app sees the same history
    run = reopened.get_run(run_id)
    assert (run.status, run.seed, run.device, run.metrics, run.hparams) == ("finished", 7, "cpu", {"acc": 0.75}, {"k": 3})
    assert run.progress == 1.0 and run.seconds >= 0
    series = reopened.scalars(run_id, ["L_rec"])
    assert series["value"].tolist() == [0.5, 0.25]
    assert reopened.evaluations(run_id) == [{"epoch": 5, "time": pytest.approx(reopened.evaluations(run_id)[0]["time"]),
                                             "has_arrays": True, "metrics": {"acc": 0.5}}]
    loaded = reopened.load_arrays(run_id, 5)
    np.testing.assert_array_equal(loaded["assignment"], [0, 1, 1])
    assert reopened.db_path.exists() and reopened.run_dir(run_id).is_dir()


def test_list_filters_and_delete(tmp_path):
    store = RunStore(tmp_path)
    a, b = _new_run(store, "kmeans"), _new_run(store, "ae_kmeans")
    store.finish(a, "failed", error="boom")
    assert [r.id for r in store.list_runs(method="kmeans")] == [a]
    assert [r.id for r in store.list_runs(status="running")] == [b]
    store.delete_run(a)
    assert [r.id for r in store.list_runs()] == [b]
    assert not store.run_dir(a).exists()
    with pytest.raises(KeyError, match="no run"):
        store.get_run(a)


def test_finish_rejects_running_as_an_end(tmp_path):
    store = RunStore(tmp_path)
    with pytest.raises(ValueError, match="a run ends finished"):
        store.finish(_new_run(store), "running")


def test_a_run_that_did_not_finish_says_which_evaluation_its_metrics_come_from(tmp_path):
    store = RunStore(tmp_path)
    done, stopped, bare, running = (_new_run(store) for _ in range(4))
    store.finish(done, "finished", metrics={"acc": 0.75})
    store.finish(stopped, "stopped", metrics={"acc": 0.5}, kept_from_epoch=3)
    store.finish(bare, "failed", error="boom")
    runs = {run_id: RunStore(tmp_path).get_run(run_id) for run_id in (done, stopped, bare, running)}
    assert runs[stopped].metrics == {"acc": 0.5} and runs[stopped].kept_from_epoch == 3
    assert [runs[i].metrics_final for i in (done, stopped, bare, running)] == [True, False, False, False]
    assert [runs[i].metrics_origin("iteration") for i in (done, stopped, bare, running)] == [
        "final", "iteration 3, not final", "none", "none yet"]
    with pytest.raises(ValueError, match=ERR_KEPT_FROM.split("(")[0]):
        store.finish(running, "finished", metrics={"acc": 0.5}, kept_from_epoch=3)


def test_a_store_before_schema_5_moves_the_kept_epoch_out_of_the_metrics(tmp_path):
    with sqlite3.connect(tmp_path / "runs.sqlite") as db:  # a schema-4 store, as the previous version wrote it
        db.executescript(_SCHEMA)
        for version in range(2, 5):
            db.executescript(MIGRATIONS[version])
        db.execute("PRAGMA user_version = 4")
        for run_id, status, metrics in (("kept", "stopped", {"acc": 0.5, "nmi": float("nan"), "kept_from_epoch": 7}),
                                        ("final", "finished", {"acc": 0.75})):
            db.execute("INSERT INTO runs (id, created, dataset, method, status, config, seed, device, environment, "
                       "metrics) VALUES (?, 1, 'd', 'kmeans', ?, '{}', 0, 'cpu', '{}', ?)", (run_id, status, json.dumps(metrics)))
    store = RunStore(tmp_path)
    kept, final = store.get_run("kept"), store.get_run("final")
    assert kept.kept_from_epoch == 7 and set(kept.metrics) == {"acc", "nmi"}
    assert kept.metrics_origin() == "epoch 7, not final"
    assert final.kept_from_epoch is None and final.metrics == {"acc": 0.75} and final.metrics_origin() == "final"
    with sqlite3.connect(tmp_path / "runs.sqlite") as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 5


def test_runs_of_dead_processes_become_interrupted(tmp_path):
    store = RunStore(tmp_path)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    orphan = _new_run(store)
    store._update(orphan, owner_pid=dead.pid)  # as if a process that has since died had started it
    own_live, own_stale = _new_run(store), _new_run(store)
    other_live, reused = _new_run(store), _new_run(store)
    # a live process that is not us (e.g. a CLI run)
    store._update(other_live, owner_pid=os.getppid(), owner_started=process_start_time(os.getppid()))
    # a dead owner whose pid now belongs to another process: it started at another time
    store._update(reused, owner_pid=os.getppid(), owner_started=process_start_time(os.getppid()) - 1)
    marked = store.mark_interrupted(lambda run: run.id == own_live)
    assert set(marked) == {orphan, own_stale, reused}
    assert store.get_run(orphan).status == "interrupted" and "ended before it finished" in store.get_run(orphan).error
    assert store.get_run(own_live).status == "running" and store.get_run(other_live).status == "running"


def test_any_read_finishes_the_runs_of_dead_processes(tmp_path):
    """Not only a registry's start-up: list_runs and get_run, in any process, show a dead owner's run as interrupted;
    this process's own runs are left to its registry (is_live)."""
    store = RunStore(tmp_path)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    listed, fetched, own = _new_run(store), _new_run(store), _new_run(store)
    for run_id in (listed, fetched):
        store._update(run_id, owner_pid=dead.pid, owner_started=None)  # a row from before the start-time column
    assert store.get_run(fetched).status == "interrupted" and store.get_run(fetched).error == INTERRUPTED
    runs = {r.id: r for r in RunStore(tmp_path).list_runs()}
    assert runs[listed].status == "interrupted" and runs[listed].ended is not None
    assert runs[own].status == "running" and runs[own].owner_started == process_start_time()
    assert RunStore(tmp_path).list_runs(status="running") == [runs[own]]


def test_owner_liveness_reads_proc(tmp_path):
    assert owner_alive(os.getpid(), process_start_time()) and owner_alive(os.getpid(), None)
    assert not owner_alive(os.getpid(), process_start_time() + 1) and not owner_alive(None, None)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        started = process_start_time(child.pid)
        assert owner_alive(child.pid, started)
        child.kill()
        time.sleep(0.2)  # killed but not yet reaped by us: a zombie, which is dead
        assert not owner_alive(child.pid, started)
    finally:
        child.kill()
        child.wait()
    assert not owner_alive(child.pid, started)


def test_thinned_series_keep_spacing_and_last_point(tmp_path):
    store = RunStore(tmp_path)
    run_id = _new_run(store)
    store.add_scalars(run_id, [(s, "L_a", float(s), 0.0) for s in range(1, 1001)] + [(s, "L_b", 1.0, 0.0) for s in (1, 2, 3)])
    thinned = store.scalars(run_id, max_points=100)
    a = thinned[thinned["name"] == "L_a"]["step"].tolist()
    assert a[:3] == [10, 20, 30] and a[-1] == 1000 and len(a) == 100  # every 10th step, the last included
    assert thinned[thinned["name"] == "L_b"]["step"].tolist() == [1, 2, 3]  # short series untouched
    assert store.scalar_counts(run_id) == {"L_a": (1000, 1000), "L_b": (3, 3)}


def test_a_sweep_whose_driver_died_reads_as_interrupted(tmp_path):
    store = RunStore(tmp_path)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    orphan, own = store.create_sweep({"method": "kmeans"}, 2, None), store.create_sweep({"method": "kmeans"}, 2, None)
    with store._connect() as db:
        db.execute("UPDATE sweeps SET owner_pid = ? WHERE id = ?", (dead.pid, orphan))
    assert store.get_sweep(own).owner_started == process_start_time()
    assert {s.id: s.status for s in RunStore(tmp_path).list_sweeps()} == {orphan: "interrupted", own: "running"}
    assert "ended before it finished" in store.get_sweep(orphan).error
    assert store.mark_sweeps_interrupted(lambda sweep_id: False) == [own]


def test_runs_created_in_the_same_second_get_distinct_ids(tmp_path):
    store = RunStore(tmp_path)
    ids = [_new_run(store) for _ in range(600)]  # two random bytes: a clash within a second is likely among 600
    assert len(set(ids)) == 600 and len(store.list_runs()) == 600
