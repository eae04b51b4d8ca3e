"""The run store: one SQLite file (WAL) for runs, their scalar series and evaluations, plus a folder per run for arrays."""
from __future__ import annotations

import fcntl
import json
import os
import secrets
import shutil
import socket
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
import pandas as pd

STATUSES = ("running", "finished", "stopped", "failed", "interrupted")
ERR_UNKNOWN_RUN = "no run '{id}' in the run store at {root}"
ERR_DAMAGED = ("The run store {path} is damaged ({reason}). Nothing was changed. To keep your runs, stop the app and run "
               "`python -m dashboard_lib store recover`: it copies every readable run into a new store and keeps the "
               "damaged file beside it. `python -m dashboard_lib store check` tells what is readable.")
ERR_NEWER = ("The run store {path} was written by a newer version of Fair Clustering Lab (store schema {found}, this version "
             "reads up to {known}). Update the app, or point FCLAB_HOME at another folder.")
ERR_KEPT_FROM = "only a run that did not finish keeps metrics from an earlier evaluation (kept_from_epoch)"
SCHEMA_VERSION = 5
# The datasets that are one of many, and the option that names which: an upload's name, the run whose embedding it is.
NAMED_BY_OPTION = {"upload": "name", "run_embedding": "run"}
PRIVATE_DIR, PRIVATE_FILE = 0o700, 0o600  # runs keep every sample's sensitive attribute: owner-only


class StoreDamaged(RuntimeError):
    """The SQLite file cannot be read as a run store: the message says where it is and what to do."""


def private_dir(path: Path) -> Path:
    """Make (if needed) a folder only its owner can enter."""
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, PRIVATE_DIR)
    return path


def private_file(path: Path) -> Path:
    os.chmod(path, PRIVATE_FILE)
    return path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    created REAL NOT NULL,
    ended REAL,
    dataset TEXT NOT NULL,
    method TEXT NOT NULL,
    status TEXT NOT NULL,
    config TEXT NOT NULL,          -- JSON: dataset options, hyperparameters, seed, device asked for
    seed INTEGER NOT NULL,
    device TEXT NOT NULL,          -- the device actually used
    environment TEXT NOT NULL,     -- JSON: library versions, threads, host
    dataset_info TEXT,             -- JSON: provenance and size of the data trained on
    metrics TEXT,                  -- JSON: final metrics
    error TEXT,                    -- the message shown to the user when status = failed
    error_detail TEXT,             -- the traceback, for a bug report
    progress REAL NOT NULL DEFAULT 0,
    stage TEXT NOT NULL DEFAULT '',
    owner_pid INTEGER,
    owner_host TEXT
);
CREATE TABLE IF NOT EXISTS scalars (
    run_id TEXT NOT NULL,
    step INTEGER NOT NULL,
    name TEXT NOT NULL,
    value REAL NOT NULL,
    time REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS scalars_by_run ON scalars (run_id, name, step);
CREATE TABLE IF NOT EXISTS evaluations (
    run_id TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    time REAL NOT NULL,
    metrics TEXT NOT NULL,         -- JSON
    has_arrays INTEGER NOT NULL,
    PRIMARY KEY (run_id, epoch)
);
"""
KEPT_FROM_KEY = "kept_from_epoch"  # where stores before schema 5 kept it: inside a run's metrics


def _move_kept_from_epoch(db: sqlite3.Connection) -> None:
    """A run's metrics that held the epoch they were kept from (schema < 5): the epoch goes to its column, out of the
    metrics. In Python, not SQL: metrics may hold NaN, which Python's json writes and SQLite's json functions refuse."""
    rows = db.execute("SELECT id, metrics FROM runs WHERE metrics LIKE ?", (f'%"{KEPT_FROM_KEY}"%',)).fetchall()
    for run_id, text in rows:
        metrics = json.loads(text)
        if isinstance(metrics, dict) and KEPT_FROM_KEY in metrics:
            epoch = metrics.pop(KEPT_FROM_KEY)
            db.execute("UPDATE runs SET kept_from_epoch = ?, metrics = ? WHERE id = ?",
                       (epoch, json.dumps(metrics), run_id))


def _add_kept_from_epoch(db: sqlite3.Connection) -> None:
    db.execute("ALTER TABLE runs ADD COLUMN kept_from_epoch INTEGER")
    _move_kept_from_epoch(db)


# Schema version n+1 from version n (PRAGMA user_version): an SQL script, or a function of the connection. Version 1 is
# the schema above, from before versioning.
MIGRATIONS = {
    2: "ALTER TABLE runs ADD COLUMN threads INTEGER;"  # torch threads the run trained with (reproducibility)
       " UPDATE runs SET threads = json_extract(environment, '$.torch_threads');",
    3: "ALTER TABLE runs ADD COLUMN sweep_id TEXT;"  # the sweep a run is a trial of (NULL: started on its own)
       " CREATE INDEX runs_by_sweep ON runs (sweep_id);"
       " CREATE TABLE sweeps (id TEXT PRIMARY KEY, created REAL NOT NULL, ended REAL, status TEXT NOT NULL,"
       " spec TEXT NOT NULL, n_trials INTEGER NOT NULL, address TEXT, error TEXT, owner_pid INTEGER, owner_host TEXT);",
    # When the owner process started (Linux: field 22 of /proc/<pid>/stat), so a reader can tell a live owner from a
    # dead one whose pid was reused. NULL: recorded before this column, or on a system without /proc (pid only).
    4: "ALTER TABLE runs ADD COLUMN owner_started INTEGER;"
       " ALTER TABLE sweeps ADD COLUMN owner_started INTEGER;",
    # A run that did not finish keeps its last evaluation's metrics: the epoch (or iteration) they come from.
    5: _add_kept_from_epoch,
}
INTERRUPTED = ("The process running this run ended before it finished (app restarted or killed). Its logged series and "
               "evaluations are kept; start it again to finish.")
SWEEP_INTERRUPTED = "The process driving this sweep ended before it finished; its finished runs are kept."
TEMP_PATTERNS = ("*.tmp.npz",)  # what the store's atomic writes leave in a run's folder when killed mid-write
RECOVERING_PATTERN = "runs.sqlite.recovering-*"  # recover_store's new file, left behind by a killed recovery


@dataclass
class RunRecord:
    id: str
    created: float
    ended: float | None
    dataset: str
    method: str
    status: str
    config: dict
    seed: int
    device: str
    environment: dict
    dataset_info: dict
    metrics: dict
    error: str | None
    error_detail: str | None
    progress: float
    stage: str
    owner_pid: int | None
    owner_host: str | None
    threads: int | None = None  # torch threads it trained with
    sweep_id: str | None = None  # the sweep this run is a trial of
    owner_started: int | None = None  # when the owner process started (see process_start_time)
    kept_from_epoch: int | None = None  # a run that did not finish: the evaluation its metrics were kept from

    @property
    def hparams(self) -> dict:
        return self.config.get("hparams", {})

    @property
    def seconds(self) -> float | None:
        return None if self.ended is None else self.ended - self.created

    @property
    def dataset_label(self) -> str:
        """The dataset as lists show it: its id, and for a family of many which one (upload:<name>,
        run_embedding:<run id>), so two uploaded tables, or two runs' embeddings, can be told apart."""
        option = NAMED_BY_OPTION.get(self.dataset)
        name = (self.config.get("dataset_options") or {}).get(option) if option else None
        return f"{self.dataset}:{name}" if name else self.dataset

    def label(self) -> str:
        """A short human label for pickers: method on dataset (a repaired clustering: of which run), status, id."""
        repaired = (self.config.get("repair") or {}).get("repaired_run")
        of = f" (repair of {repaired})" if repaired else ""
        return f"{self.method} on {self.dataset_label}{of} · {self.status} · {self.id}"

    @property
    def metrics_final(self) -> bool:
        """Whether the run's metrics are those of the end of its training; a run that stopped, failed or was
        interrupted keeps its last evaluation's instead (kept_from_epoch), which no list may show as final."""
        return self.status == "finished" and bool(self.metrics)

    def metrics_origin(self, unit: str = "epoch") -> str:
        """Where the run's metrics come from, as the lists say it: "final", "<unit> E, not final" (kept from the
        evaluation at E; unit: the method's eval_unit), "not final" (E unknown), or "none yet" / "none"."""
        if not self.metrics:
            return "none yet" if self.status == "running" else "none"
        if self.metrics_final:
            return "final"
        return f"{unit} {self.kept_from_epoch}, not final" if self.kept_from_epoch is not None else "not final"


@dataclass
class SweepRecord:
    id: str
    created: float
    ended: float | None
    status: str
    spec: dict  # JSON: dataset, method, preset, axes, seeds, fixed values, resources
    n_trials: int
    address: str | None  # the Ray cluster's address; None: a local Ray
    error: str | None
    owner_pid: int | None
    owner_host: str | None
    owner_started: int | None = None


def _record(row: sqlite3.Row) -> RunRecord:
    d = dict(row)
    for key in ("config", "environment", "dataset_info", "metrics"):
        d[key] = json.loads(d[key]) if d[key] else {}
    return RunRecord(**d)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


_PROC = Path("/proc")


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state, start time in clock ticks after boot) of a process from /proc/<pid>/stat; None when it does not exist.
    The command name (field 2) may hold spaces and parentheses, so fields are counted after its last ')'."""
    try:
        text = (_PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError, NotADirectoryError):
        return None
    fields = text[text.rindex(")") + 2:].split()
    return fields[0], int(fields[19])  # fields 3 (state) and 22 (starttime)


_own_start: dict[int, int | None] = {}  # pid -> start time: a forked child has its own pid, so its own entry


def process_start_time(pid: int | None = None) -> int | None:
    """When a process (this one by default) started, as /proc gives it; None without /proc (then only the pid is kept)."""
    pid = os.getpid() if pid is None else pid
    if pid == os.getpid() and pid in _own_start:
        return _own_start[pid]
    stat = _proc_stat(pid) if _PROC.joinpath("self", "stat").exists() else None
    started = None if stat is None else stat[1]
    if pid == os.getpid():
        _own_start[pid] = started
    return started


def owner_alive(pid: int | None, started: int | None) -> bool:
    """Whether the process that recorded a run (on this host) still runs: its pid exists, is not a zombie, and, where
    its start time was recorded, started then (else the pid was reused by another process). One /proc read."""
    if pid is None:
        return False
    if not _PROC.joinpath("self", "stat").exists():  # no /proc (macOS): the pid alone
        return _pid_alive(pid)
    try:
        stat = _proc_stat(pid)
    except PermissionError:  # /proc mounted hidepid: the pid alone
        return _pid_alive(pid)
    if stat is None or stat[0] in ("Z", "X"):  # gone, or killed and not yet reaped by its parent
        return False
    return started is None or stat[1] == started


def _owner_gone(run: dict | RunRecord, host: str, pid: int) -> bool:
    """A running run recorded by another process on this host that has died (runs of this process: is_live's to say;
    another host's: we cannot tell)."""
    get = run.get if isinstance(run, dict) else lambda key: getattr(run, key, None)
    return (get("status") == "running" and get("owner_host") == host and get("owner_pid") != pid
            and not owner_alive(get("owner_pid"), get("owner_started")))


@contextmanager
def _schema_lock(root: Path) -> Iterator[None]:
    """One process at a time creates, migrates or recovers a store's file."""
    with open(root / ".schema.lock", "w") as lock:
        private_file(Path(lock.name))
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


class RunStore:
    """Runs on disk: `root/runs.sqlite` and `root/runs/<run id>/` (epoch arrays as .npz, weights as .pt)."""

    def __init__(self, root: str | Path):
        """Open (or create) the store: a cheap integrity check first (PRAGMA quick_check), then the schema migrated
        forward. StoreDamaged says what is wrong and what to do."""
        self.root = private_dir(Path(root))
        self.db_path = self.root / "runs.sqlite"
        # One process at a time creates or migrates the schema: two opening a new store together (the app and a CLI
        # sweep) would otherwise both add the same columns.
        with _schema_lock(self.root):
            existed = self.db_path.exists()
            with self._connect() as db:
                if existed:
                    problems = [row[0] for row in db.execute("PRAGMA quick_check")]
                    if problems != ["ok"]:
                        raise StoreDamaged(ERR_DAMAGED.format(path=self.db_path, reason="; ".join(problems[:3])))
                db.execute("PRAGMA journal_mode=WAL")
                _create_or_migrate(db, self.db_path)
        private_file(self.db_path)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        # A connection per operation: safe across the app's threads and processes (CLI runs write too).
        try:
            db = sqlite3.connect(self.db_path, timeout=30)
        except sqlite3.DatabaseError as exc:
            raise StoreDamaged(ERR_DAMAGED.format(path=self.db_path, reason=exc)) from None
        db.row_factory = sqlite3.Row
        try:
            with db:
                yield db
        except sqlite3.IntegrityError:  # a constraint (a duplicate id), not damage: the caller's to handle
            raise
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise
            raise StoreDamaged(ERR_DAMAGED.format(path=self.db_path, reason=exc)) from None
        except sqlite3.DatabaseError as exc:  # malformed image, not a database, corrupt index…
            raise StoreDamaged(ERR_DAMAGED.format(path=self.db_path, reason=exc)) from None
        finally:
            db.close()

    def run_dir(self, run_id: str) -> Path:
        return self.root / "runs" / run_id

    def run_table(self, run_id: str, name: str) -> list[dict] | None:
        """A table a method saved with its run (Recorder.save_table), or None when it saved none or it is unreadable."""
        try:
            rows = json.loads((self.run_dir(run_id) / f"{name}.json").read_text())
        except (OSError, ValueError):
            return None
        return rows if isinstance(rows, list) and all(isinstance(r, dict) for r in rows) else None

    # --- writing -------------------------------------------------------------------------------------------------
    def create_run(self, *, dataset: str, method: str, config: dict, seed: int, device: str, environment: dict,
                   sweep_id: str | None = None) -> str:
        """Record a new run as running, owned by this process (a sweep's trials too: this process writes them), and
        make its folder."""
        now = time.time()
        for attempt in range(8):  # two random bytes: runs started in the same second (a sweep's) may draw the same id
            run_id = f"{time.strftime('%Y%m%d-%H%M%S', time.localtime(now))}-{method}-{secrets.token_hex(2 + attempt // 4)}"
            try:
                with self._connect() as db:
                    db.execute(
                        "INSERT INTO runs (id, created, dataset, method, status, config, seed, device, environment, "
                        "owner_pid, owner_host, owner_started, threads, sweep_id) "
                        "VALUES (?, ?, ?, ?, 'running', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (run_id, now, dataset, method, json.dumps(config), seed, device, json.dumps(environment),
                         os.getpid(), socket.gethostname(), process_start_time(), environment.get("torch_threads"),
                         sweep_id),
                    )
                break
            except sqlite3.IntegrityError:
                continue
        else:
            raise RuntimeError(f"no free run id for {method} at {now}")
        private_dir(self.root / "runs")
        private_dir(self.run_dir(run_id))
        return run_id

    def _update(self, run_id: str, **fields) -> None:
        columns = ", ".join(f"{name} = ?" for name in fields)
        with self._connect() as db:
            db.execute(f"UPDATE runs SET {columns} WHERE id = ?", (*fields.values(), run_id))

    def set_dataset_info(self, run_id: str, info: dict) -> None:
        self._update(run_id, dataset_info=json.dumps(info))

    def set_progress(self, run_id: str, fraction: float, stage: str) -> None:
        self._update(run_id, progress=float(fraction), stage=stage)

    def finish(self, run_id: str, status: str, *, metrics: dict | None = None, kept_from_epoch: int | None = None,
               error: str | None = None, error_detail: str | None = None) -> None:
        """Close a run with its final status (and metrics or error). A run that did not finish may keep the metrics
        of its last evaluation: kept_from_epoch says which."""
        if status not in STATUSES or status == "running":
            raise ValueError(f"a run ends finished, stopped, failed or interrupted, not {status!r}")
        if kept_from_epoch is not None and (status == "finished" or metrics is None):
            raise ValueError(ERR_KEPT_FROM)
        fields = {"status": status, "ended": time.time(), "error": error, "error_detail": error_detail,
                  "kept_from_epoch": kept_from_epoch}
        if metrics is not None:
            fields["metrics"] = json.dumps(metrics)
        if status == "finished":
            fields["progress"] = 1.0
        self._update(run_id, **fields)

    def add_scalars(self, run_id: str, rows: Iterable[tuple[int, str, float, float]]) -> None:
        """Append (step, name, value, time) rows."""
        with self._connect() as db:
            db.executemany("INSERT INTO scalars (run_id, step, name, value, time) VALUES (?, ?, ?, ?, ?)",
                           ((run_id, s, n, v, t) for s, n, v, t in rows))

    def add_evaluation(self, run_id: str, epoch: int, metrics: dict, arrays: dict[str, np.ndarray] | None = None) -> None:
        """Record one evaluation's metrics, and its arrays (assignment, embedding, labels) in the run's folder."""
        if arrays:
            path = self.run_dir(run_id) / f"epoch_{epoch:06d}.npz"
            tmp = path.with_suffix(".tmp.npz")
            np.savez_compressed(tmp, **arrays)
            private_file(tmp).replace(path)
        with self._connect() as db:
            db.execute("INSERT OR REPLACE INTO evaluations (run_id, epoch, time, metrics, has_arrays) VALUES (?, ?, ?, ?, ?)",
                       (run_id, epoch, time.time(), json.dumps(metrics), int(bool(arrays))))

    def delete_run(self, run_id: str) -> None:
        """Remove a run, its series, evaluations and files."""
        with self._connect() as db:
            for table, column in (("scalars", "run_id"), ("evaluations", "run_id"), ("runs", "id")):
                db.execute(f"DELETE FROM {table} WHERE {column} = ?", (run_id,))
        shutil.rmtree(self.run_dir(run_id), ignore_errors=True)

    def mark_interrupted(self, is_live: Callable[[RunRecord], bool]) -> list[str]:
        """Runs recorded as running whose owner no longer runs them become interrupted; returns their ids.

        A run owned by another live process on this host (a CLI run, say) is left alone; is_live(record)
        answers for runs owned by this process.
        """
        host, pid = socket.gethostname(), os.getpid()
        stale = self.sweep_dead_owners()  # other processes' (another machine's runs: we cannot tell)
        own = [run.id for run in self.list_runs(status="running") if run.owner_host == host and run.owner_pid == pid
               and not is_live(run)]
        return stale + [run_id for run_id in own if self._interrupt(run_id)]

    def _interrupt(self, run_id: str) -> bool:
        """Finish a run left running as interrupted, unless something finished it meanwhile; whether this did."""
        with self._connect() as db:
            changed = db.execute("UPDATE runs SET status = 'interrupted', ended = ?, error = ?, error_detail = NULL "
                                 "WHERE id = ? AND status = 'running'", (time.time(), INTERRUPTED, run_id)).rowcount
        return bool(changed)

    def sweep_dead_owners(self) -> list[str]:
        """Runs recorded as running by another process of this host that has since died become interrupted, so every
        reader (another CLI process, the app) sees them so at once; returns their ids. Cheap enough for every list:
        one query, and one /proc read per running run."""
        host, pid = socket.gethostname(), os.getpid()
        with self._connect() as db:
            rows = db.execute("SELECT id, status, owner_pid, owner_host, owner_started FROM runs "
                              "WHERE status = 'running'").fetchall()
        return [row["id"] for row in rows if _owner_gone(dict(row), host, pid) and self._interrupt(row["id"])]

    # --- sweeps: a grid of runs, each run tagged with its sweep's id --------------------------------------------------
    def create_sweep(self, spec: dict, n_trials: int, address: str | None) -> str:
        """Record a sweep as running, owned by this process (its runs appear as their trials start)."""
        now = time.time()
        sweep_id = f"{time.strftime('%Y%m%d-%H%M%S', time.localtime(now))}-sweep-{secrets.token_hex(2)}"
        with self._connect() as db:
            db.execute("INSERT INTO sweeps (id, created, status, spec, n_trials, address, owner_pid, owner_host,"
                       " owner_started) VALUES (?, ?, 'running', ?, ?, ?, ?, ?, ?)",
                       (sweep_id, now, json.dumps(spec), n_trials, address, os.getpid(), socket.gethostname(),
                        process_start_time()))
        return sweep_id

    def finish_sweep(self, sweep_id: str, status: str, error: str | None = None) -> None:
        if status not in STATUSES or status == "running":
            raise ValueError(f"a sweep ends finished, stopped, failed or interrupted, not {status!r}")
        with self._connect() as db:
            db.execute("UPDATE sweeps SET status = ?, ended = ?, error = ? WHERE id = ?", (status, time.time(), error, sweep_id))

    def get_sweep(self, sweep_id: str) -> SweepRecord:
        self._sweep_dead_drivers()
        with self._connect() as db:
            row = db.execute("SELECT * FROM sweeps WHERE id = ?", (sweep_id,)).fetchone()
        if row is None:
            raise KeyError(f"no sweep '{sweep_id}' in the run store at {self.root}")
        return SweepRecord(**{**dict(row), "spec": json.loads(row["spec"])})

    def list_sweeps(self) -> list[SweepRecord]:
        """Sweeps, newest first; those whose driver process died are first finished as interrupted."""
        self._sweep_dead_drivers()
        with self._connect() as db:
            rows = db.execute("SELECT * FROM sweeps ORDER BY created DESC").fetchall()
        return [SweepRecord(**{**dict(r), "spec": json.loads(r["spec"])}) for r in rows]

    def _interrupt_sweep(self, sweep_id: str) -> bool:
        with self._connect() as db:
            return bool(db.execute("UPDATE sweeps SET status = 'interrupted', ended = ?, error = ? WHERE id = ? AND "
                                   "status = 'running'", (time.time(), SWEEP_INTERRUPTED, sweep_id)).rowcount)

    def _sweep_dead_drivers(self) -> list[str]:
        """As sweep_dead_owners, for sweeps: those driven by a dead process of this host become interrupted."""
        host, pid = socket.gethostname(), os.getpid()
        with self._connect() as db:
            rows = db.execute("SELECT id, status, owner_pid, owner_host, owner_started FROM sweeps "
                              "WHERE status = 'running'").fetchall()
        return [row["id"] for row in rows if _owner_gone(dict(row), host, pid) and self._interrupt_sweep(row["id"])]

    def mark_sweeps_interrupted(self, is_live: Callable[[str], bool]) -> list[str]:
        """Sweeps recorded as running whose driver process ended (or that this process no longer drives)."""
        host, pid = socket.gethostname(), os.getpid()
        stale = self._sweep_dead_drivers()
        own = [s.id for s in self.list_sweeps() if s.status == "running" and s.owner_host == host
               and s.owner_pid == pid and not is_live(s.id)]
        return stale + [sweep_id for sweep_id in own if self._interrupt_sweep(sweep_id)]

    # --- reading -------------------------------------------------------------------------------------------------
    def get_run(self, run_id: str) -> RunRecord:
        """One run; a run left running by a process of this host that has died is first finished as interrupted."""
        with self._connect() as db:
            row = db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise KeyError(ERR_UNKNOWN_RUN.format(id=run_id, root=self.root))
        if _owner_gone(dict(row), socket.gethostname(), os.getpid()) and self._interrupt(run_id):
            with self._connect() as db:
                row = db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        return _record(row)

    def list_runs(self, *, dataset: str | None = None, method: str | None = None, status: str | None = None,
                  sweep_id: str | None = None) -> list[RunRecord]:
        """Runs, newest first, optionally filtered; runs whose process died are first finished as interrupted
        (sweep_dead_owners)."""
        self.sweep_dead_owners()
        where, args = [], []
        for column, value in (("dataset", dataset), ("method", method), ("status", status), ("sweep_id", sweep_id)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        sql = "SELECT * FROM runs" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY created DESC"
        with self._connect() as db:
            return [_record(row) for row in db.execute(sql, args)]

    def scalars(self, run_id: str, names: Iterable[str] | None = None, *, max_points: int | None = None) -> pd.DataFrame:
        """The run's logged series as a long table: step, name, value, time.

        max_points thins each longer series to about that many points, evenly spaced in steps, keeping its last
        one; SQLite filters on the (run, name, step) index, so a 20,000-step run redraws quickly.
        """
        if max_points:
            counts = self.scalar_counts(run_id)
            wanted = [n for n in (counts if names is None else names) if n in counts]
            strides = {n: max(1, -(-counts[n][1] // max_points)) if counts[n][0] > max_points else 1 for n in wanted}
            sql = " UNION ALL ".join(["SELECT step, name, value, time FROM scalars WHERE run_id = ? AND name = ? "
                                      "AND (step % ? = 0 OR step = ?)"] * len(wanted)) + " ORDER BY name, step"
            args = [a for n in wanted for a in (run_id, n, strides[n], counts[n][1])]
        else:
            sql, args = "SELECT step, name, value, time FROM scalars WHERE run_id = ?", [run_id]
            if names is not None:
                names = list(names)
                sql += f" AND name IN ({', '.join('?' * len(names))})"
                args += names
            sql += " ORDER BY name, step"
        rows = []
        if args:
            with self._connect() as db:
                db.row_factory = None  # plain tuples: no Row object built per point of a long series
                rows = db.execute(sql, args).fetchall()
        return pd.DataFrame(rows, columns=["step", "name", "value", "time"])

    def last_epochs(self, sweep_id: str) -> dict[str, int]:
        """For each run of the sweep that evaluated: the epoch of its last evaluation (one query, not one per run)."""
        with self._connect() as db:
            rows = db.execute("SELECT e.run_id, MAX(e.epoch) FROM evaluations e JOIN runs r ON r.id = e.run_id "
                              "WHERE r.sweep_id = ? GROUP BY e.run_id", (sweep_id,))
            return dict(rows.fetchall())

    def last_scalars(self, run_id: str, names: Iterable[str]) -> dict[str, float]:
        """Each named series' last logged value (by step), for the series the run has."""
        with self._connect() as db:
            rows = [db.execute("SELECT value FROM scalars WHERE run_id = ? AND name = ? ORDER BY step DESC LIMIT 1",
                               (run_id, name)).fetchone() for name in names]
        return {name: row[0] for name, row in zip(names, rows) if row is not None}

    def scalar_counts(self, run_id: str) -> dict[str, tuple[int, int]]:
        """For each logged series: (number of points, last step)."""
        with self._connect() as db:
            rows = db.execute("SELECT name, COUNT(*), MAX(step) FROM scalars WHERE run_id = ? GROUP BY name", (run_id,))
            return {name: (count, last) for name, count, last in rows}

    def evaluations(self, run_id: str) -> list[dict]:
        """Each evaluation: {'epoch', 'time', 'has_arrays', 'metrics'}, in epoch order."""
        with self._connect() as db:
            rows = db.execute("SELECT epoch, time, has_arrays, metrics FROM evaluations WHERE run_id = ? ORDER BY epoch", (run_id,))
            return [{"epoch": r["epoch"], "time": r["time"], "has_arrays": bool(r["has_arrays"]), "metrics": json.loads(r["metrics"])}
                    for r in rows]

    def load_arrays(self, run_id: str, epoch: int) -> dict[str, np.ndarray]:
        with np.load(self.run_dir(run_id) / f"epoch_{epoch:06d}.npz") as f:
            return {key: f[key] for key in f.files}


# --- a damaged store: what is readable, and a copy of it ---------------------------------------------------------------
_TABLES = {"runs": "id", "scalars": "run_id", "evaluations": "run_id"}  # what recovery copies run by run


def _create_or_migrate(db: sqlite3.Connection, db_path: Path) -> None:
    """Bring a store's schema to SCHEMA_VERSION: create it (version 0: new, or from before versioning, which is
    version 1), then apply each migration in turn; a store from a newer version is refused."""
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise StoreDamaged(ERR_NEWER.format(path=db_path, found=version, known=SCHEMA_VERSION))
    if version == 0:
        db.executescript(_SCHEMA)
        version = 1
    for target in range(version + 1, SCHEMA_VERSION + 1):
        step = MIGRATIONS[target]
        step(db) if callable(step) else db.executescript(step)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def _read_only(db_path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30)
    db.row_factory = sqlite3.Row
    return db


def _readable_runs(db: sqlite3.Connection) -> tuple[list[dict], list[str]]:
    """Every run row that can be read (row by row when a whole scan fails), and what could not be."""
    problems = []
    try:
        return [dict(r) for r in db.execute("SELECT * FROM runs")], problems
    except sqlite3.DatabaseError as exc:
        problems.append(f"runs table: {exc}; reading it row by row")
    rows = []
    try:
        last = db.execute("SELECT max(rowid) FROM runs").fetchone()[0] or 0
    except sqlite3.DatabaseError:
        last = 100_000
    for rowid in range(1, last + 1):
        try:
            row = db.execute("SELECT * FROM runs WHERE rowid = ?", (rowid,)).fetchone()
        except sqlite3.DatabaseError:
            problems.append(f"run row {rowid} unreadable")
            continue
        if row is not None:
            rows.append(dict(row))
    return rows, problems


TEMP_GRACE_SECONDS = 600.0  # a view's cache file (projections/) younger than this may still be being written


def _stray_temp_files(root: Path, runs: list[dict]) -> list[Path]:
    """Temporary files no write will finish: in a run's folder, those of a run that no live process records (ended,
    owner dead, or no longer in the store); in its projections/ cache, which any app process writes for any run,
    those older than TEMP_GRACE_SECONDS; and a killed recovery's new file."""
    host, pid = socket.gethostname(), os.getpid()
    by_id = {run["id"]: run for run in runs}
    stray = sorted(root.glob(RECOVERING_PATTERN))
    runs_dir = root / "runs"
    for folder in sorted(runs_dir.iterdir()) if runs_dir.is_dir() else []:
        run = by_id.get(folder.name)
        recorded = run is not None and run.get("status") == "running" and not _owner_gone(run, host, pid)
        for pattern in TEMP_PATTERNS:
            stray += [] if recorded else sorted(folder.glob(pattern))
            stray += [f for f in sorted(folder.glob(f"projections/{pattern}"))
                      if time.time() - f.stat().st_mtime > TEMP_GRACE_SECONDS]
    return stray


def check_store(root: str | Path) -> dict:
    """What a store's file holds and whether SQLite finds it sound, without changing it; also the runs left running by
    a process of this host that has died, and the stray temporary files (both cleaned by `store recover`)."""
    db_path = Path(root) / "runs.sqlite"
    report = {"path": str(db_path), "exists": db_path.exists(), "integrity": [], "schema_version": None,
              "runs_readable": 0, "runs_with_unreadable_series": [], "problems": [],
              "runs_of_dead_processes": [], "stray_temp_files": []}
    if not db_path.exists():
        return report
    try:
        db = _read_only(db_path)
        report["integrity"] = [r[0] for r in db.execute("PRAGMA integrity_check")]
        report["schema_version"] = db.execute("PRAGMA user_version").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        report["problems"].append(f"not readable as SQLite: {exc}")
        return report
    runs, problems = _readable_runs(db)
    report["problems"] += problems
    report["runs_readable"] = len(runs)
    for run in runs:
        for table, column in list(_TABLES.items())[1:]:
            try:
                db.execute(f"SELECT count(*), sum(length(CAST({'value' if table == 'scalars' else 'metrics'} AS TEXT)))"
                           f" FROM {table} WHERE {column} = ?", (run["id"],)).fetchone()
            except sqlite3.DatabaseError:
                report["runs_with_unreadable_series"].append(run["id"])
                break
    db.close()
    host, pid = socket.gethostname(), os.getpid()
    report["runs_of_dead_processes"] = [{"id": run["id"], "pid": run.get("owner_pid")} for run in runs
                                        if _owner_gone(run, host, pid)]
    report["stray_temp_files"] = [str(f) for f in _stray_temp_files(Path(root), runs)]
    report["ok"] = report["integrity"] == ["ok"] and not report["problems"]
    return report


def clean_store(root: str | Path) -> dict:
    """On a sound store: finish the runs of dead processes as interrupted, then delete the stray temporary files."""
    root = Path(root)
    store = RunStore(root)
    interrupted = store.sweep_dead_owners()
    with store._connect() as db:
        runs = [dict(r) for r in db.execute("SELECT id, status, owner_pid, owner_host, owner_started FROM runs")]
    removed = []
    with _schema_lock(root):  # not a recovery's file while it is being written
        for path in _stray_temp_files(root, runs):
            path.unlink(missing_ok=True)
            removed.append(str(path))
    return {"runs_marked_interrupted": interrupted, "stray_temp_files_removed": removed}


def recover_store(root: str | Path) -> dict:
    """A damaged store: copy every readable run (with whatever of its series and evaluations reads) into a new store
    file, keep the damaged file beside it as runs.sqlite.damaged-<time>, and put the new one in its place. Then, on a
    damaged or a sound store, clean_store. 'sound' says which it was ('copied' is None for a sound one)."""
    root = Path(root)
    db_path = root / "runs.sqlite"
    if not db_path.exists():
        raise FileNotFoundError(f"no run store at {db_path}")
    sound = bool(check_store(root).get("ok"))
    result = {"sound": sound, "copied": None, "damaged_file": None, "runs_with_lost_series": [], "problems": []}
    if not sound:
        with _schema_lock(root):
            result.update(_copy_readable(root, db_path))
    return {**result, **clean_store(root)}


def _copy_readable(root: Path, db_path: Path) -> dict:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    fresh_path = root / f"runs.sqlite.recovering-{stamp}"
    old = _read_only(db_path)
    runs, problems = _readable_runs(old)
    fresh = sqlite3.connect(fresh_path)
    _create_or_migrate(fresh, fresh_path)
    columns = [r[1] for r in fresh.execute("PRAGMA table_info(runs)")]
    copied = {"runs": 0, "scalars": 0, "evaluations": 0}
    partial = []
    for run in runs:
        values = [run.get(c) for c in columns]
        fresh.execute(f"INSERT OR REPLACE INTO runs ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})", values)
        copied["runs"] += 1
        for table, column in list(_TABLES.items())[1:]:
            try:
                rows = [tuple(r) for r in old.execute(f"SELECT * FROM {table} WHERE {column} = ?", (run["id"],))]
            except sqlite3.DatabaseError:
                partial.append(run["id"])
                continue
            if rows:
                fresh.executemany(f"INSERT OR REPLACE INTO {table} VALUES ({', '.join('?' * len(rows[0]))})", rows)
                copied[table] += len(rows)
    try:  # sweeps are small: copied whole, when the table reads (a store from before sweeps has none)
        sweeps = [tuple(r) for r in old.execute("SELECT * FROM sweeps")]
    except sqlite3.DatabaseError:
        sweeps = []
    if sweeps:
        fresh.executemany(f"INSERT OR REPLACE INTO sweeps VALUES ({', '.join('?' * len(sweeps[0]))})", sweeps)
    _move_kept_from_epoch(fresh)  # runs copied from a store before schema 5
    fresh.commit()
    fresh.close()
    old.close()
    kept = root / f"runs.sqlite.damaged-{stamp}"
    for suffix in ("", "-wal", "-shm"):
        side = Path(str(db_path) + suffix)
        if side.exists():
            side.replace(Path(str(kept) + suffix))
    fresh_path.replace(db_path)
    private_file(db_path)
    return {"copied": copied, "damaged_file": str(kept), "runs_with_lost_series": sorted(set(partial)), "problems": problems}
