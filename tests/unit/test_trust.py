"""Trust: a damaged store says so and what to do (never a traceback), recovery keeps what is readable, the schema
migrates forward, files are owner-only, the password and folder rules hold, and bad CLI arguments create no run."""
import json
import os
import sqlite3
import stat
import subprocess
import sys

import numpy as np
import pytest

from dashboard_lib import security
from dashboard_lib.cli import main
from dashboard_lib.store import SCHEMA_VERSION, RunStore, StoreDamaged, check_store, recover_store
from tests.conftest import REPO


def _filled_store(root, runs=3, points=4000):
    store = RunStore(root)
    ids = []
    for i in range(runs):
        run_id = store.create_run(dataset="mnist_optdigits", method="kmeans", config={"i": i}, seed=i, device="cpu",
                                  environment={"torch_threads": 1})
        store.add_scalars(run_id, [(s, "L_total", float(s), 0.0) for s in range(points)])
        store.add_evaluation(run_id, 0, {"acc": 0.5}, {"assignment": np.zeros(10, np.int64), "g": np.arange(10) % 2})
        store.finish(run_id, "finished", metrics={"acc": 0.5})
        ids.append(run_id)
    with sqlite3.connect(store.db_path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # everything in the main file, as after a clean shutdown
    return store, ids


def _truncate(path, fraction=0.5):
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.truncate(int(size * fraction))


def _overwrite_tail(path, n=8192):
    with open(path, "r+b") as f:
        f.seek(-n, os.SEEK_END)
        f.write(b"\xde\xad\xbe\xef" * (n // 4))


@pytest.mark.parametrize("damage", [_truncate, _overwrite_tail], ids=["truncated", "tail overwritten"])
def test_a_damaged_store_is_refused_with_what_to_do(tmp_path, damage):
    store, _ = _filled_store(tmp_path / "store")
    damage(store.db_path)
    with pytest.raises(StoreDamaged) as info:
        RunStore(tmp_path / "store")
    message = str(info.value)
    assert str(store.db_path) in message and "store recover" in message and "Nothing was changed" in message
    report = check_store(tmp_path / "store")
    assert report["exists"] and not report.get("ok")


def test_recover_copies_every_readable_run_and_keeps_the_damaged_file(tmp_path):
    store, ids = _filled_store(tmp_path / "store", runs=4, points=200)
    _overwrite_tail(store.db_path, 4096)
    result = recover_store(tmp_path / "store")
    assert os.path.exists(result["damaged_file"])
    recovered = RunStore(tmp_path / "store")  # sound again
    assert check_store(tmp_path / "store")["ok"]
    kept = {r.id for r in recovered.list_runs()}
    assert kept and kept <= set(ids)
    assert result["copied"]["runs"] == len(kept)


def test_an_old_store_migrates_forward(tmp_path):
    root = tmp_path / "store"
    root.mkdir()
    from dashboard_lib.store import _SCHEMA

    with sqlite3.connect(root / "runs.sqlite") as db:  # a store from before versioning (user_version 0)
        db.executescript(_SCHEMA)
        db.execute("INSERT INTO runs (id, created, dataset, method, status, config, seed, device, environment) VALUES "
                   "('old', 1, 'mnist_optdigits', 'kmeans', 'finished', '{}', 0, 'cpu', '{\"torch_threads\": 3}')")
    store = RunStore(root)
    with sqlite3.connect(root / "runs.sqlite") as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert store.get_run("old").threads == 3
    with sqlite3.connect(root / "runs.sqlite") as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StoreDamaged, match="newer version"):
        RunStore(root)


def test_runs_and_their_files_are_owner_only(tmp_path):
    store, ids = _filled_store(tmp_path / "store", runs=1, points=10)
    for path in (store.root, store.root / "runs", store.run_dir(ids[0])):
        assert stat.S_IMODE(path.stat().st_mode) == 0o700, path
    for path in (store.db_path, store.run_dir(ids[0]) / "epoch_000000.npz"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_the_cli_says_the_store_is_damaged_without_a_traceback(tmp_path):
    _filled_store(tmp_path / "store")
    _truncate(tmp_path / "store" / "runs.sqlite")
    env = {**os.environ, "FCLAB_HOME": str(tmp_path)}
    for args in (["runs"], ["store", "check"]):
        out = subprocess.run([sys.executable, "-m", "dashboard_lib", *args], cwd=REPO, env=env, capture_output=True,
                             text=True, timeout=120)
        assert out.returncode == 1 and "Traceback" not in out.stderr + out.stdout, out.stderr
    assert "DAMAGED" in out.stdout and "store recover" in out.stdout
    out = subprocess.run([sys.executable, "-m", "dashboard_lib", "store", "recover"], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "recovered" in out.stdout and "damaged file is kept" in out.stdout


def test_bad_cli_arguments_exit_2_before_any_run_is_recorded(fclab_home, capsys):
    cases = [
        (["train", "--set", "n_clusters=50000"], "K = 50000 clusters is more than the 6797 samples"),
        (["train", "--dataset", "upload", "--data", "name=nothing"], "no uploaded dataset named 'nothing'"),
        (["train", "--dataset", "upload"], "choose which uploaded dataset to use"),
    ]
    for args, message in cases:
        assert main(args) == 2, args
        assert message in capsys.readouterr().err
    assert RunStore(fclab_home / "store").list_runs() == []


def test_password_rules():
    assert security.is_loopback("127.0.0.1") and security.is_loopback("::1") and security.is_loopback("localhost")
    assert not security.is_loopback("0.0.0.0") and not security.is_loopback("") and not security.is_loopback("192.0.2.7")
    assert security.password_matches("s3cret", "s3cret") and not security.password_matches("s3cre", "s3cret")
    assert not security.password_matches("", "s3cret")


def test_data_folders_are_limited_to_those_configured_at_start(tmp_path, monkeypatch):
    allowed, other = tmp_path / "allowed", tmp_path / "other"
    (allowed / "sub").mkdir(parents=True)
    other.mkdir()
    monkeypatch.setenv("FCLAB_DATA_ROOTS", str(allowed))
    monkeypatch.setenv("FCLAB_HOME", str(tmp_path / "home"))
    assert security.check_data_folder(str(allowed / "sub")) == (allowed / "sub").resolve()
    assert security.check_data_folder("") is None
    with pytest.raises(ValueError, match="not one this server was started with"):
        security.check_data_folder(str(other))
    with pytest.raises(ValueError, match="not one this server was started with"):
        security.check_data_folder(str(allowed / ".." / "other"))  # no way out through ..
    with pytest.raises(ValueError, match="does not exist"):
        security.check_data_folder(str(allowed / "missing"))


def test_an_upload_and_its_runs_can_be_deleted(fclab_home, tmp_path, capsys):
    table = tmp_path / "t.csv"
    table.write_text("a,site\n" + "".join(f"{i},{'xy'[i % 2]}\n" for i in range(40)))
    assert main(["upload", str(table), "--features", "a", "--sensitive", "site", "--name", "t"]) == 0
    assert stat.S_IMODE((fclab_home / "uploads").stat().st_mode) == 0o700
    assert stat.S_IMODE((fclab_home / "uploads" / "t").stat().st_mode) == 0o700
    assert main(["train", "--dataset", "upload", "--data", "name=t", "--set", "n_init=1", "--json"]) == 0
    capsys.readouterr()
    assert main(["upload", "--delete", "t"]) == 0
    assert "its 1 run(s) kept" in capsys.readouterr().out
    assert len(RunStore(fclab_home / "store").list_runs()) == 1 and not (fclab_home / "uploads" / "t").exists()
    assert main(["upload", str(table), "--features", "a", "--sensitive", "site", "--name", "t"]) == 0
    assert main(["upload", "--delete", "t", "--with-runs"]) == 0
    assert "deleted too" in capsys.readouterr().out
    assert main(["upload", "--delete", "t"]) == 2  # gone
    capsys.readouterr()
    assert main(["upload", str(table)]) == 2 and "upload needs --sensitive, --name" in capsys.readouterr().err


def test_processes_opening_a_new_store_together_create_its_schema_once(tmp_path):
    """The app and a CLI sweep may open a fresh store at the same moment: neither finds it damaged."""
    code = "import sys; from dashboard_lib.store import RunStore; RunStore(sys.argv[1]).list_runs()"
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "store")], cwd=REPO,
                              stderr=subprocess.PIPE, text=True) for _ in range(6)]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), [e[-500:] for e in errors if e]
    assert check_store(tmp_path / "store")["ok"]
