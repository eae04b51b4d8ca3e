"""Sweeps on real Ray: a two-node cluster on 127.0.0.1 (a worker killed mid-sweep), and the default local Ray.

The driver is the CLI in a subprocess, as a researcher runs it; the test reads the driver's run store as the app would.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from dashboard_lib.store import RunStore
from tests.conftest import REPO
from tests.e2e.helpers import free_port

RAY = Path(sys.executable).with_name("ray")
START_TIMEOUT = 60


def _ray_start(args: list[str], log: Path) -> subprocess.Popen:
    """`ray start … --block` in its own process group, so stopping it stops every process of that node."""
    return subprocess.Popen([str(RAY), "start", "--block", "--node-ip-address=127.0.0.1", "--disable-usage-stats", *args],
                            stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


@contextmanager
def two_node_cluster():
    """A Ray head and one more worker node on this machine, one CPU each; both stopped at the end."""
    port = free_port()
    temp = Path(tempfile.mkdtemp(prefix="rt", dir="/tmp"))  # short: Ray's socket paths have a length limit
    head = _ray_start(["--head", f"--port={port}", "--num-cpus=1", "--include-dashboard=false", f"--temp-dir={temp}"],
                      temp / "head.log")
    worker = None
    try:
        _wait_for_port(port, head, temp / "head.log")
        worker = _ray_start([f"--address=127.0.0.1:{port}", "--num-cpus=1"], temp / "worker.log")
        yield f"127.0.0.1:{port}", worker
    finally:
        for process in (worker, head):
            if process is not None:
                _stop(process)
        shutil.rmtree(temp, ignore_errors=True)


def _wait_for_port(port: int, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()[-2000:]
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.5)
    raise AssertionError(f"Ray head did not listen on {port} within {START_TIMEOUT} s")


def _ancestors(pid: int) -> set[int]:
    """The process ids above pid, read from /proc (Linux)."""
    out = set()
    while pid > 1:
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            break
        out.add(pid)
    return out


def _sweep(home: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "FCLAB_HOME": str(home)}
    return subprocess.Popen([sys.executable, "-m", "dashboard_lib", "sweep", "--json", *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


SMALL = ["--method", "ae_kmeans", "--schedule", "paper", "--set", "n_init=2", "--set", "eval_every=0", "--data", "n=600"]


def test_a_sweep_on_a_two_node_cluster_lands_in_the_drivers_store_and_survives_a_killed_worker(tmp_path):
    with two_node_cluster() as (address, worker_node):
        driver = _sweep(tmp_path, *SMALL, "--axis", "n_clusters=5,10", "--axis", "epochs=20,30", "--seeds", "2",
                        "--address", address)
        store_path = tmp_path / "store"
        killed, deadline = None, time.monotonic() + 240
        while killed is None and time.monotonic() < deadline and driver.poll() is None:
            time.sleep(0.5)
            if not (store_path / "runs.sqlite").exists():
                continue
            for run in RunStore(store_path).list_runs(status="running"):
                pid = run.environment.get("pid")
                # a trial training on the second node, past its start (it has logged), so it dies mid-run
                if pid and worker_node.pid in _ancestors(pid) and RunStore(store_path).scalar_counts(run.id):
                    os.kill(pid, signal.SIGKILL)
                    killed = run.id
                    break
        out, err = driver.communicate(timeout=300)
    assert killed, f"no trial ran on the second node; driver said: {err[-3000:]}"
    result = json.loads(out.strip().splitlines()[-1])
    store = RunStore(store_path)
    runs = store.list_runs(sweep_id=result["sweep_id"])
    assert result["status"] == "finished" and result["n_trials"] == 8 and len(runs) == 8
    by_id = {r.id: r for r in runs}
    assert by_id[killed].status == "interrupted" and "Ray worker" in by_id[killed].error
    finished = [r for r in runs if r.status == "finished"]
    assert len(finished) == 7
    nodes = {r.environment["ray_node"] for r in finished}
    assert len(nodes) == 2  # both nodes trained trials
    for run in finished:
        assert store.scalar_counts(run.id)["L_rec"][0] > 0  # its series came back to the driver
        assert store.evaluations(run.id) and "acc" in run.metrics
        assert "assignment" in store.load_arrays(run.id, store.evaluations(run.id)[-1]["epoch"])
    assert _max_overlap(finished) <= 2  # one CPU per node, one CPU per trial
    points = {(r.hparams["n_clusters"], r.hparams["epochs"], r.seed) for r in runs}
    assert points == {(k, e, s) for k in (5, 10) for e in (20, 30) for s in (0, 1)}


def _max_overlap(runs, lag: float = 1.0) -> int:
    """The most runs that were training at the same moment. The driver stamps a run's start and end when their messages
    arrive (up to POLL_SECONDS late, from different threads), so each end is taken `lag` seconds earlier."""
    edges = sorted([(r.created, 1) for r in runs] + [(max(r.created, r.ended - lag), -1) for r in runs])
    count = best = 0
    for _, step in edges:
        count += step
        best = max(best, count)
    return best


def test_a_sweep_without_an_address_runs_on_a_local_ray_and_stops_at_once(tmp_path):
    """The default: a local Ray on this machine's cores. Ctrl-C stops every running trial within seconds and starts
    no more; the stopped runs keep what they logged."""
    cpus = os.cpu_count() or 1
    trials = cpus + 2
    driver = _sweep(tmp_path, *SMALL, "--axis", f"n_clusters={','.join(str(3 + i) for i in range(trials))}",
                    "--set", "epochs=2000")
    store_path = tmp_path / "store"
    deadline = time.monotonic() + 240
    running = []
    while time.monotonic() < deadline and driver.poll() is None:
        time.sleep(0.5)
        if (store_path / "runs.sqlite").exists():
            store = RunStore(store_path)
            running = [r for r in store.list_runs(status="running") if store.scalar_counts(r.id)]
            if len(running) == cpus:
                break
    assert len(running) == cpus, f"expected {cpus} trials training at once; driver said: {driver.stderr.read()[-3000:]}"
    asked = time.time()
    driver.send_signal(signal.SIGINT)
    out, err = driver.communicate(timeout=60)
    result = json.loads(out.strip().splitlines()[-1])
    store = RunStore(store_path)
    sweep = store.get_sweep(result["sweep_id"])
    assert sweep.status == "stopped" and sweep.address is None
    runs = store.list_runs(sweep_id=sweep.id)
    assert len(runs) == cpus  # the queued trials never started
    for run in runs:
        assert run.status == "stopped" and run.ended - asked < 5, (run.status, run.ended - asked)
        assert store.scalar_counts(run.id)["L_rec"][0] > 0 and run.environment.get("ray_node")
        assert run.owner_pid == driver.pid  # the driver recorded them


def test_the_weights_a_trial_saves_reach_the_drivers_store(tmp_path):
    """ERM saves its classifier for the Explain page: from a Ray worker, the file comes back into the run's folder."""
    import stat

    import torch

    driver = _sweep(tmp_path, "--method", "erm", "--schedule", "paper", "--set", "epochs=1", "--set", "eval_every=0",
                    "--data", "n=300", "--axis", "lr=0.001,0.002")
    out, err = driver.communicate(timeout=300)
    assert driver.returncode == 0, err[-3000:]
    store = RunStore(tmp_path / "store")
    runs = store.list_runs(sweep_id=json.loads(out.strip().splitlines()[-1])["sweep_id"])
    assert len(runs) == 2
    for run in runs:
        path = store.run_dir(run.id) / "weights.pt"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert any(key.endswith("weight") for key in torch.load(path, weights_only=True))
