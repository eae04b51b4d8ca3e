"""No zombie runs: a training process killed with SIGKILL leaves its run "running" and maybe a half-written .tmp.npz;
every other process then sees the run interrupted, `store check` lists both without changing anything, and
`store recover` cleans them. Real processes throughout."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np

from dashboard_lib.store import INTERRUPTED, RunStore, check_store, recover_store
from tests.conftest import REPO


def cli(home, *args, timeout=120):
    env = {**os.environ, "FCLAB_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "dashboard_lib", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_a_run_killed_during_recording_is_listed_shown_interrupted_and_cleaned(tmp_path):
    env = {**os.environ, "FCLAB_HOME": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-m", "dashboard_lib", "train", "--method", "ae_kmeans", "--epochs", "1000",
                             "--data", "n=300"], cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        store = RunStore(tmp_path / "store")
        deadline = time.time() + 90
        while not store.list_runs(status="running") and time.time() < deadline:
            time.sleep(0.2)
        (run,) = store.list_runs(status="running")
        assert run.owner_pid == proc.pid and run.owner_started is not None
        # What a kill inside add_evaluation leaves: the arrays half written to the temporary name, never renamed.
        tmp = store.run_dir(run.id) / "epoch_000007.tmp.npz"
        tmp.write_bytes(b"PK\x03\x04" + bytes(100))
        live = check_store(tmp_path / "store")  # while its owner runs, the file is a write in progress, not stray
        assert live["ok"] and live["runs_of_dead_processes"] == [] and live["stray_temp_files"] == []
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)

    out = cli(tmp_path, "store", "check")
    assert out.returncode == 0, out.stderr  # the file is sound, as before: check's exit status says so
    assert f"run {run.id}: recorded as running, but its process (pid {proc.pid}) has died" in out.stdout
    assert f"stray temporary file: {tmp}" in out.stdout and "python -m dashboard_lib store recover" in out.stdout
    report = json.loads(cli(tmp_path, "store", "check", "--json").stdout)
    assert report["runs_of_dead_processes"] == [{"id": run.id, "pid": proc.pid}]
    assert report["stray_temp_files"] == [str(tmp)]
    assert tmp.exists()  # check changed nothing ...
    again = json.loads(cli(tmp_path, "store", "check", "--json").stdout)
    assert again["runs_of_dead_processes"] == report["runs_of_dead_processes"]  # ... not even the run's status

    out = cli(tmp_path, "runs", "--json")  # any reader, in another process, sees it interrupted at once
    assert out.returncode == 0, out.stderr
    (listed,) = json.loads(out.stdout)
    assert (listed["run_id"], listed["status"], listed["error"]) == (run.id, "interrupted", INTERRUPTED)

    out = cli(tmp_path, "store", "recover")
    assert out.returncode == 0, out.stderr
    assert "sound, nothing to copy" in out.stdout and f"deleted stray temporary file {tmp}" in out.stdout
    assert not tmp.exists() and not list((tmp_path / "store").glob("runs.sqlite.damaged-*"))
    after = check_store(tmp_path / "store")
    assert after["ok"] and after["runs_of_dead_processes"] == [] and after["stray_temp_files"] == []


def test_recover_on_a_sound_store_marks_dead_runs_and_deletes_stray_files(tmp_path):
    store = RunStore(tmp_path)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    kept, zombie, done = (store.create_run(dataset="d", method="kmeans", config={}, seed=0, device="cpu", environment={})
                          for _ in range(3))
    store.add_evaluation(done, 0, {"acc": 1.0}, {"assignment": np.zeros(3, np.int64)})
    store.finish(done, "finished", metrics={})
    with store._connect() as db:  # bypassing the readers, which would already mark it
        db.execute("UPDATE runs SET owner_pid = ?, owner_started = NULL WHERE id = ?", (dead.pid, zombie))
    in_flight = store.run_dir(kept) / "epoch_000001.tmp.npz"  # this process still records `kept`: not stray
    left = [store.run_dir(zombie) / "epoch_000001.tmp.npz", store.run_dir(done) / "epoch_000002.tmp.npz",
            tmp_path / "runs.sqlite.recovering-20260101-000000"]
    fresh_cache = store.run_dir(done) / "projections" / "umap_e000000_x.123.tmp.npz"  # a view's write under way
    old_cache = store.run_dir(done) / "projections" / "pca_e000000_x.456.tmp.npz"
    fresh_cache.parent.mkdir()
    for path in (in_flight, *left, fresh_cache, old_cache):
        path.write_bytes(b"partial")
    os.utime(old_cache, (time.time() - 3600, time.time() - 3600))
    left.append(old_cache)

    report = check_store(tmp_path)
    assert report["runs_of_dead_processes"] == [{"id": zombie, "pid": dead.pid}]
    assert sorted(report["stray_temp_files"]) == sorted(map(str, left))
    assert all(p.exists() for p in left)  # check only lists

    result = recover_store(tmp_path)
    assert result["sound"] and result["copied"] is None
    assert result["runs_marked_interrupted"] == [zombie]
    assert sorted(result["stray_temp_files_removed"]) == sorted(map(str, left))
    assert not any(p.exists() for p in left) and in_flight.exists() and fresh_cache.exists()
    assert store.get_run(zombie).status == "interrupted" and store.get_run(kept).status == "running"


class _FullDisk(RunStore):
    """A run store on a disk that fills up while an evaluation's arrays are written (a disk cannot be filled here)."""

    def add_evaluation(self, *args, **kwargs):
        raise OSError(28, "No space left on device")


def test_an_audit_that_fails_while_recording_leaves_no_running_run(tmp_path):
    """The app process lives on after a failed page audit, so no dead-owner rule would ever end its half-recorded run."""
    import pandas as pd

    from dashboard_lib import external

    rng = np.random.default_rng(0)
    table = pd.DataFrame({"c": rng.integers(0, 3, 200), "g": rng.choice(["a", "b"], 200)})
    prepared = external.prepare(table, clusters="c", sensitive=["g"], provenance={"file": "t.csv"})
    result = external.audit_table(prepared, resamples=20)
    store = _FullDisk(tmp_path)
    try:
        external.record_external(store, prepared, result, "t")
    except OSError as exc:
        assert exc.errno == 28
    else:
        raise AssertionError("the full disk went unnoticed")
    # The record stays (DESIGN: a failed run keeps its record), finished as failed with what went wrong, never running.
    [run] = store.list_runs()
    assert run.status == "failed" and "No space left on device" in run.error
