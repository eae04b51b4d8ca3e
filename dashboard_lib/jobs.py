"""Running methods into the run store: the CLI (in the foreground), the app (background threads) and sweeps, through
training.train_method, the path the estimators take too. Knows nothing of Streamlit."""
from __future__ import annotations

import os
import platform
import sys
import threading
import traceback
from dataclasses import asdict, dataclass, field
from importlib import metadata

import torch

from .data import BiasedDataset, DownloadError, load_dataset, resolve_options
from .methods import get_method, resolve_device
from .params import resolve_params
from .store import RunRecord, RunStore
from .training import ERR_DIVERGED  # noqa: F401 (a failed run's message, asserted by callers of this module)
from .training import GENERIC_ADVICE, RunStopped, StoreSink, TrainingDiverged, seed_everything, train_method
from .training import TrainingContext

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


class Recorder(TrainingContext):
    """The RunContext of a run in the store: what it logs and evaluates is written to the run store (or anything with
    its writing methods); a stopped or failed run keeps its last evaluation's metrics."""

    def __init__(self, store: RunStore, run_id: str, data: BiasedDataset, device: torch.device, seed: int,
                 stop_event: threading.Event, advice: str = GENERIC_ADVICE, data_dir: str | None = None):
        super().__init__(StoreSink(store, run_id), data, device, seed, stop_event, advice=advice, data_dir=data_dir)
        self.store, self.run_id = store, run_id


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
        recorder = Recorder(store, run_id, data, device, config.seed, stop_event, method.divergence_advice(),
                            data_dir=config.data_dir)
        store.set_progress(run_id, 0.0, "training")
        store.finish(run_id, "finished", metrics=train_method(method, data, recorder))
    except RunStopped:
        _safe_flush(recorder)
        store.finish(run_id, "stopped", **_kept(recorder))
    except TrainingDiverged as exc:
        store.finish(run_id, "failed", **_kept(recorder), error=str(exc))
    except (torch.OutOfMemoryError, MemoryError) as exc:
        store.finish(run_id, "failed", **_kept(recorder),
                     error=ERR_OUT_OF_MEMORY.format(device=config.device), error_detail=repr(exc))
    except ValueError as exc:  # a setting this data cannot take (K > N, batch larger than the data, one group…)
        _safe_flush(recorder)
        store.finish(run_id, "failed", **_kept(recorder), error=str(exc), error_detail=traceback.format_exc())
    except Exception as exc:  # a bug: keep the traceback for the report, tell the user what happened
        _safe_flush(recorder)
        store.finish(run_id, "failed", **_kept(recorder), error=f"{type(exc).__name__}: {exc}",
                     error_detail=traceback.format_exc())
    return store.get_run(run_id)


def _kept(recorder: Recorder | None) -> dict:
    """What a stopped or failed run keeps (store.finish's fields): its last evaluation's metrics and the epoch (or
    iteration) they come from, so no list shows them as final; nothing when it never evaluated."""
    if recorder is None or not recorder.last_metrics:
        return {}
    return {"metrics": recorder.last_metrics, "kept_from_epoch": recorder.last_epoch}


def _safe_flush(recorder: Recorder | None) -> None:
    """Keep what was logged before the run ended, ignoring a second divergence found while flushing."""
    if recorder is None:
        return
    try:
        recorder.flush()
    except TrainingDiverged:
        pass


@dataclass(frozen=True)
class ReadyRun:
    """A run ready to train: its config validated (defaults filled in) and its data built and checked against the
    method's settings. preflight gives it; JobRegistry.start trains it without validating or loading it again."""

    config: RunConfig
    data: BiasedDataset


def create_run(store: RunStore, config: RunConfig | ReadyRun) -> tuple[str, RunConfig]:
    """Record a new run (status running) for a config, validated here unless it comes from preflight."""
    config = config.config if isinstance(config, ReadyRun) else config.resolved()
    device = resolve_device(config.device)
    run_id = store.create_run(dataset=config.dataset, method=config.method, config=asdict(config), seed=config.seed,
                              device=str(device), environment=environment(device))
    return run_id, config


def preflight(config: RunConfig) -> ReadyRun:
    """Refuse, before any run is recorded, a config whose data cannot be built or cannot take its settings (K > N, a
    missing upload, a batch larger than the data): ValueError naming what to change. Returns the validated config with
    its data, for JobRegistry.start."""
    config = config.resolved()
    try:
        data = load_dataset(config.dataset, config.dataset_options, config.data_dir)
    except DownloadError as exc:  # offline without the files, or a failed download
        raise ValueError(str(exc)) from None
    get_method(config.method)(**config.hparams).check_data(data)
    return ReadyRun(config, data)


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
        if threads is not None:
            torch.set_num_threads(threads)
        self.reconcile()

    def reconcile(self) -> list[str]:
        """Mark runs whose process died, or that this process no longer runs, as interrupted (sweeps: SweepRunner)."""
        return self.store.mark_interrupted(lambda run: self.is_running(run.id))

    def start(self, config: RunConfig | ReadyRun, *, after: str | None = None) -> str:
        """Validate config (unless preflight did: a ReadyRun, trained on its data), record the run and train it in a
        background thread; returns the run id at once.
        after: a run of this registry to wait for first (the run is recorded at once, its stage says it waits)."""
        data = config.data if isinstance(config, ReadyRun) else None
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
            execute_run(self.store, run_id, config, stop_event, data)

        thread = threading.Thread(target=train, name=f"run-{run_id}", daemon=True)
        with self._lock:
            self._jobs[run_id] = (thread, stop_event)
        thread.start()
        return run_id

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
