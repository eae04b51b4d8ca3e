"""Running methods: one code path for the CLI (in the foreground) and the app (background threads). Knows nothing of Streamlit."""
from __future__ import annotations

import json
import math
import os
import platform
import random
import sys
import threading
import time
import traceback
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path

import numpy as np
import torch

from . import metrics
from .data import BiasedDataset, DownloadError, load_dataset, resolve_options
from .methods import RunStopped, TrainingDiverged, get_method, resolve_device
from .methods.base import DIVERGED, GENERIC_ADVICE
from .nn import to_numpy as _numpy
from .params import resolve_params
from .outputs import write_atomic
from .store import RunRecord, RunStore, private_file

FLUSH_SECONDS = 0.5  # how often logged scalars reach the store (the Monitor polls it about once a second)
PROBE_MAX_SAMPLES = 5000  # the group probe subsamples: a few thousand held-out points estimate its accuracy well
ERR_DIVERGED = "{name} became {value} at step {step}: " + DIVERGED
KEPT_FROM = "kept_from_epoch"  # in a stopped or failed run's metrics: the evaluation they come from
ERR_OUT_OF_MEMORY = "out of memory on {device}: lower the batch size or use a smaller subset (dataset option n), then start again."


@dataclass
class RunConfig:
    """Everything that defines a run; stored with it, so the same config and seed on the same device gives the same numbers."""

    dataset: str
    method: str
    dataset_options: dict = field(default_factory=dict)
    hparams: dict = field(default_factory=dict)
    seed: int = 0
    device: str = "auto"
    data_dir: str | None = None

    def resolved(self) -> "RunConfig":
        """A copy with options and hyperparameters validated and defaults filled in (ValueError naming what is wrong)."""
        cls = get_method(self.method)
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be a whole number ≥ 0, got {self.seed!r}")
        resolve_device(self.device)
        return RunConfig(
            dataset=self.dataset, method=self.method, dataset_options=resolve_options(self.dataset, self.dataset_options),
            hparams=resolve_params(cls.params, self.hparams, owner=f"method {self.method}"),
            seed=self.seed, device=self.device, data_dir=self.data_dir,
        )


def library_versions() -> dict:
    versions = {}
    for package in ("torch", "numpy", "scipy", "scikit-learn", "pandas"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return versions


def environment(device: torch.device) -> dict:
    """Library versions, threads and machine: recorded with every run for reproducibility."""
    env = {"python": sys.version.split()[0], "platform": platform.platform(), "host": platform.node(),
           "torch_threads": torch.get_num_threads(), "versions": library_versions()}
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
    return env


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class Recorder:
    """The RunContext a method trains with: buffers scalars, writes them to the store in batches, evaluates, stops."""

    def __init__(self, store: RunStore, run_id: str, data: BiasedDataset, device: torch.device, seed: int,
                 stop_event: threading.Event, advice: str = GENERIC_ADVICE, data_dir: str | None = None):
        self.store, self.run_id, self.data = store, run_id, data
        self.data_dir = data_dir  # where a method finds files it needs besides the data (DFC's released models)
        self.advice = advice  # what a divergence message tells the user to change (Method.divergence_advice)
        self.device, self.seed = device, seed
        self._stop = stop_event
        self._buffer: list[tuple[int, str, object, float]] = []
        self._last_flush = 0.0  # flush the first point at once, so the live view shows it immediately
        self._progress: tuple[float, str] | None = None
        self.last_metrics: dict = {}
        self.last_epoch: int | None = None

    def kept_metrics(self) -> dict | None:
        """What a stopped or failed run keeps: its last evaluation's metrics, marked with the epoch (or iteration)
        they come from, so no list shows them as final."""
        if not self.last_metrics:
            return None
        return {**self.last_metrics, KEPT_FROM: self.last_epoch}

    def check_stop(self) -> None:
        if self._stop.is_set():
            raise RunStopped()

    def log(self, step: int, **scalars) -> None:
        now = time.time()
        for name, value in scalars.items():
            # A copy, not a view: a parameter (SENet's threshold b) is updated in place before the buffer is flushed,
            # and the series would then hold whatever it was at flush time. A scalar copy costs no sync.
            self._buffer.append((int(step), name, value.detach().clone() if torch.is_tensor(value) else value, now))
        if now - self._last_flush >= FLUSH_SECONDS:
            self.flush()
        self.check_stop()

    def progress(self, fraction: float, stage: str = "") -> None:
        self._progress = (float(fraction), stage)
        if time.time() - self._last_flush >= FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        """Write buffered scalars (reading all tensors at once: one device sync per flush), then check them."""
        self._last_flush = time.time()
        if self._progress is not None:
            self.store.set_progress(self.run_id, *self._progress)
            self._progress = None
        if not self._buffer:
            return
        buffer, self._buffer = self._buffer, []
        tensors = [v for _, _, v, _ in buffer if torch.is_tensor(v)]
        values = iter(torch.stack([t.float().reshape(()) for t in tensors]).cpu().tolist()) if tensors else iter(())
        rows = [(s, n, next(values) if torch.is_tensor(v) else float(v), t) for s, n, v, t in buffer]
        bad = next((r for r in rows if not math.isfinite(r[2])), None)
        good = rows if bad is None else [r for r in rows if math.isfinite(r[2])]
        self.store.add_scalars(self.run_id, good)
        if bad is not None:
            raise TrainingDiverged(ERR_DIVERGED.format(name=bad[1], value=bad[2], step=bad[0], advice=self.advice))

    def evaluate(self, epoch: int, embedding, assignment, extra: dict | None = None, split: str | None = None) -> dict:
        """All metrics that apply to assignment (on `split` of the data, or all of it), the group probe on the
        embedding (the raw features when embedding is None), stored with both arrays for the embedding views."""
        self.flush()
        data = self.data.split(split) if split else self.data
        assignment = _numpy(assignment).astype(np.int64)
        emb = None if embedding is None else _numpy(embedding).astype(np.float32)
        result = evaluation_metrics(data, assignment, emb, seed=self.seed)
        for key, value in (extra or {}).items():
            result[key] = float(value)
        arrays = {"assignment": assignment, "g": data.g, "row_id": data.row_id}
        if data.y is not None:
            arrays["y"] = data.y
        if emb is not None:
            arrays["embedding"] = emb
        self.store.add_evaluation(self.run_id, epoch, result, arrays)
        self.last_metrics, self.last_epoch = result, int(epoch)
        self.check_stop()
        return result

    def save_table(self, name: str, rows: list[dict]) -> Path:
        """Save a small table a method reports (e.g. DFC's per-group models) as <name>.json in the run's folder, where
        the Monitor reads it (RunStore.run_table); written whole or not at all."""
        path = write_atomic(self.store.run_dir(self.run_id) / f"{name}.json", json.dumps(rows, allow_nan=False),
                            flag=f"the run's {name} table", replace=True)
        private_file(path)
        return path

    def save_weights(self, state_dict: dict, name: str = "weights.pt") -> Path:
        """Save a trained model's state_dict in the run's folder; load it with torch.load(path, weights_only=True)."""
        path = self.store.run_dir(self.run_id) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({key: value.detach().cpu() for key, value in state_dict.items()}, path)
        private_file(path)
        return path


def evaluation_metrics(data: BiasedDataset, assignment: np.ndarray, embedding: np.ndarray | None, seed: int = 0) -> dict:
    """Every clustering and fairness metric that applies, plus the group probe (held-out accuracy and majority rate)."""
    two_groups = data.n_groups >= 2 and len(np.unique(data.g)) >= 2
    result = metrics.evaluate(assignment, y_true=data.y, groups=data.g if two_groups else None)
    if data.y is not None:
        result["nmi_geometric"] = metrics.nmi(data.y, assignment, average="geometric")
    if two_groups:
        result["balance_ceiling"] = metrics.balance_ceiling(data.g)
        result["entropy_per_group"] = [float(v) for v in metrics.entropy(assignment, data.g).per_group]
        features = embedding if embedding is not None else data.X.flatten(1).numpy()
        try:
            probe = metrics.probe_accuracy(features, data.g, random_state=seed, max_samples=PROBE_MAX_SAMPLES)
        except ValueError:  # too few samples in some group for a held-out split: no probe, the metrics still stand
            pass
        else:
            result["probe_acc"], result["probe_majority"] = probe.accuracy, probe.majority_rate
    return {k: (float(v) if isinstance(v, (float, np.floating, int, np.integer)) else v) for k, v in result.items()}


def execute_run(store: RunStore, run_id: str, config: RunConfig, stop_event: threading.Event,
                data: BiasedDataset | None = None) -> RunRecord:
    """Train one run to its end, recording everything in the store (or anything with the store's writing methods: a
    sweep's worker streams them to the driver); data, when given, is used instead of loading the config's dataset.
    Returns the run's final record. Never raises for a run's own failure."""
    recorder = None
    try:
        device = resolve_device(config.device)
        seed_everything(config.seed)
        store.set_progress(run_id, 0.0, "loading data")
        if data is None:
            data = load_dataset(config.dataset, config.dataset_options, config.data_dir)
        store.set_dataset_info(run_id, {**data.info.as_dict(), **data.summary()})
        method = get_method(config.method)(**config.hparams)
        method.check_data(data)
        recorder = Recorder(store, run_id, data, device, config.seed, stop_event, method.divergence_advice(),
                            data_dir=config.data_dir)
        store.set_progress(run_id, 0.0, "training")
        method.fit(data, recorder)
        recorder.flush()
        # The final metrics are those of the method's last evaluation (on the split it evaluates, with its own extras);
        # a method that never evaluated is evaluated once here on all the data.
        final = recorder.last_metrics or evaluation_metrics(data, method.labels_, method.embedding_, seed=config.seed)
        store.finish(run_id, "finished", metrics=final)
    except RunStopped:
        _safe_flush(recorder)
        store.finish(run_id, "stopped", metrics=recorder.kept_metrics() if recorder else None)
    except TrainingDiverged as exc:
        store.finish(run_id, "failed", metrics=recorder.kept_metrics() if recorder else None, error=str(exc))
    except (torch.OutOfMemoryError, MemoryError) as exc:
        store.finish(run_id, "failed", metrics=recorder.kept_metrics() if recorder else None,
                     error=ERR_OUT_OF_MEMORY.format(device=config.device), error_detail=repr(exc))
    except ValueError as exc:  # a setting this data cannot take (K > N, batch larger than the data, one group…)
        _safe_flush(recorder)
        store.finish(run_id, "failed", metrics=recorder.kept_metrics() if recorder else None, error=str(exc),
                     error_detail=traceback.format_exc())
    except Exception as exc:  # a bug: keep the traceback for the report, tell the user what happened
        _safe_flush(recorder)
        store.finish(run_id, "failed", metrics=recorder.kept_metrics() if recorder else None,
                     error=f"{type(exc).__name__}: {exc}", error_detail=traceback.format_exc())
    return store.get_run(run_id)


def _safe_flush(recorder: Recorder | None) -> None:
    """Keep what was logged before the run ended, ignoring a second divergence found while flushing."""
    if recorder is None:
        return
    try:
        recorder.flush()
    except TrainingDiverged:
        pass


def create_run(store: RunStore, config: RunConfig) -> tuple[str, RunConfig]:
    """Validate config and record a new run for it (status running)."""
    config = config.resolved()
    device = resolve_device(config.device)
    run_id = store.create_run(dataset=config.dataset, method=config.method, config=asdict(config), seed=config.seed,
                              device=str(device), environment=environment(device))
    return run_id, config


def preflight(config: RunConfig) -> None:
    """Refuse, before any run is recorded, a config whose data cannot be built or cannot take its settings (K > N, a
    missing upload, a batch larger than the data): ValueError naming what to change."""
    config = config.resolved()
    try:
        data = load_dataset(config.dataset, config.dataset_options, config.data_dir)
    except DownloadError as exc:  # offline without the files, or a failed download
        raise ValueError(str(exc)) from None
    get_method(config.method)(**config.hparams).check_data(data)


def training_threads() -> int:
    """Torch threads for background training: all cores but one, so the UI stays responsive on a small CPU."""
    return max(1, (os.cpu_count() or 2) - 1)


class JobRegistry:
    """Background runs of this process: start, stop, status. Stop is cooperative (checked at every logged step)."""

    def __init__(self, store: RunStore, threads: int | None = None):
        self.store = store
        self._jobs: dict[str, tuple[threading.Thread, threading.Event]] = {}
        self._remote: dict[str, threading.Event] = {}  # runs this process records while another process trains them
        self._lock = threading.Lock()
        self._sweeps = None
        if threads is not None:
            torch.set_num_threads(threads)
        self.reconcile()

    def reconcile(self) -> list[str]:
        """Mark runs (and sweeps) whose process died, or that this process no longer runs, as interrupted."""
        stale = self.store.mark_interrupted(lambda run: self.is_running(run.id))
        self.store.mark_sweeps_interrupted(lambda sweep_id: self._sweeps is not None and self._sweeps.is_running(sweep_id))
        return stale

    def start(self, config: RunConfig, *, after: str | None = None) -> str:
        """Validate config, record the run and train it in a background thread; returns the run id at once.
        after: a run of this registry to wait for first (the run is recorded at once, its stage says it waits)."""
        run_id, config = create_run(self.store, config)
        stop_event = threading.Event()

        def train() -> None:
            if after is not None:
                self.store.set_progress(run_id, 0.0, "waiting for the run before it to end")
                while not self.wait(after, timeout=0.5):
                    if stop_event.is_set():
                        break
            if stop_event.is_set():
                self.store.finish(run_id, "stopped")
                return
            execute_run(self.store, run_id, config, stop_event)

        thread = threading.Thread(target=train, name=f"run-{run_id}", daemon=True)
        with self._lock:
            self._jobs[run_id] = (thread, stop_event)
        thread.start()
        return run_id

    @property
    def sweeps(self):
        """This process's sweeps (their trials train on Ray; their runs are recorded here)."""
        from .sweeps import SweepRunner  # Ray is imported only when a sweep is used

        with self._lock:
            if self._sweeps is None:
                self._sweeps = SweepRunner(self)
            return self._sweeps

    def adopt(self, run_id: str) -> threading.Event:
        """Count a run trained elsewhere (a sweep's trial on a Ray worker) as running here; its stop event is returned,
        to be forwarded to the worker."""
        event = threading.Event()
        with self._lock:
            self._remote[run_id] = event
        return event

    def release(self, run_id: str) -> None:
        with self._lock:
            self._remote.pop(run_id, None)

    def stop(self, run_id: str) -> bool:
        """Ask a run of this process to stop; False when this process is not running it."""
        with self._lock:
            job, remote = self._jobs.get(run_id), self._remote.get(run_id)
        if remote is not None:
            remote.set()
            return True
        if job is None or not job[0].is_alive():
            return False
        job[1].set()
        return True

    def is_running(self, run_id: str) -> bool:
        with self._lock:
            job = self._jobs.get(run_id)
            return run_id in self._remote or (job is not None and job[0].is_alive())

    def running_ids(self) -> list[str]:
        with self._lock:
            return [run_id for run_id, (thread, _) in self._jobs.items() if thread.is_alive()] + list(self._remote)

    def wait(self, run_id: str, timeout: float | None = None) -> bool:
        """Block until the run's thread ends; True if it ended within timeout."""
        with self._lock:
            job = self._jobs.get(run_id)
        if job is not None:
            job[0].join(timeout)
        return not self.is_running(run_id)
