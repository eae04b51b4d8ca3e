"""Sweeps: one or two of a method's hyperparameters on a grid, times seeds; every trial a run trained on Ray.

The driver (the app's process, or the CLI's) owns the run store, the one source of truth. Each trial runs as a Ray task
that trains with the same code as a run started from the Train page (jobs.execute_run) but writes into a StreamingStore:
its series, evaluations and files come back to the driver as messages, and the driver writes them into its store. A
worker on another node therefore needs nothing of the driver's filesystem: it gets the code through Ray (py_modules)
and loads the dataset from its own node's data folder or download cache (an upload, which lives in the driver's store
folder, is sent through Ray's object store). Knows nothing of Streamlit; Ray is imported only when a sweep starts.
"""
from __future__ import annotations

import itertools
import json
import logging
import math
import os
import shutil
import socket
import tempfile
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import data as datasets
from . import methods
from .data import upload
from .jobs import KEPT_FROM, JobRegistry, RunConfig, environment, execute_run, preflight
from .params import Param
from .store import private_file

GRIDS = ("values", "linear", "log", "random")
MAX_TRIALS = 2000
MAX_AXES = 2
POLL_SECONDS = 0.5  # a trial's worker sends what it has this often (so the driver acts on a stop within it)
BANDS = {"minmax": "min–max over seeds", "std": "mean ± one standard deviation over seeds"}
ERR_WORKER_DIED = ("The Ray worker training this trial ended before the trial did ({reason}). What it sent before is "
                   "kept; the sweep went on with its other trials.")
ERR_AXIS_KIND = "{name} is a {kind} hyperparameter of {method}: only numbers (int or float) can be swept"
ERR_NO_VALUES = "give {name} at least one value"
ERR_BOUNDS = "{name}: a {grid} grid needs low ≤ high and a count of at least 1 (got low={low}, high={high}, count={count})"
ERR_LOG_BOUNDS = "{name}: a log grid needs low > 0 (got {low})"
ERR_TOO_MANY = "this sweep has {n:,} trials; at most {max:,} can be started at once: fewer values or seeds"

log = logging.getLogger(__name__)


@dataclass
class Axis:
    """One swept hyperparameter and how its values are made: a list, a linear or log grid, or random samples."""

    name: str
    grid: str = "values"  # one of GRIDS
    values: list = field(default_factory=list)  # grid "values"
    low: float | None = None  # the other grids
    high: float | None = None
    count: int = 5
    seed: int = 0  # random samples only

    def resolve(self, param: Param, method: str) -> list:
        """The axis's values, converted and range-checked against the parameter's declaration, in order, without repeats."""
        if param.kind not in ("int", "float"):
            raise ValueError(ERR_AXIS_KIND.format(name=self.name, kind=param.kind, method=method))
        if self.grid not in GRIDS:
            raise ValueError(f"{self.name}: grid must be one of {', '.join(GRIDS)}, not {self.grid!r}")
        if self.grid == "values":
            raw = list(self.values)
            if not raw:
                raise ValueError(ERR_NO_VALUES.format(name=self.name))
        else:
            low, high, count = self.low, self.high, int(self.count)
            if low is None or high is None or count < 1 or low > high:
                raise ValueError(ERR_BOUNDS.format(name=self.name, grid=self.grid, low=low, high=high, count=count))
            if self.grid == "log" and low <= 0:
                raise ValueError(ERR_LOG_BOUNDS.format(name=self.name, low=low))
            if self.grid == "linear":
                raw = np.linspace(low, high, count)
            elif self.grid == "log":
                raw = np.geomspace(low, high, count)
            else:  # random: log-uniform for a log-scale parameter with positive bounds, else uniform; shown sorted
                rng = np.random.default_rng(self.seed)
                raw = (np.exp(rng.uniform(math.log(low), math.log(high), count)) if param.log and low > 0
                       else rng.uniform(low, high, count))
                raw = np.sort(raw)
            raw = [float(f"{v:.6g}") for v in raw]  # 0.3, not 0.30000000000000004
        out = []
        for value in raw:
            if param.kind == "int" and isinstance(value, float):
                value = round(value)
            value = param.coerce(value, owner=f"sweep of {method}")
            if value not in out:
                out.append(value)
        return out


@dataclass
class SweepSpec:
    """Everything that defines a sweep; stored with it."""

    dataset: str
    method: str
    axes: list[Axis]
    seeds: int = 1  # seeds first_seed … first_seed + seeds − 1
    first_seed: int = 0
    preset: str = "quick"  # the schedule preset every trial starts from
    variant: str | None = None  # the method's variant (its settings over the schedule's budget); None: its first
    fixed: dict = field(default_factory=dict)  # the other hyperparameters' values (the preset's and defaults otherwise)
    dataset_options: dict = field(default_factory=dict)
    device: str = "auto"
    data_dir: str | None = None
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0  # a fraction shares one GPU between trials (0.5: two at a time)
    title: str = ""  # the preset's name, when it came from one

    @classmethod
    def from_dict(cls, d: dict) -> "SweepSpec":
        return cls(**{**d, "axes": [Axis(**a) for a in d["axes"]]})

    def to_dict(self) -> dict:
        return asdict(self)

    def axis_values(self) -> dict[str, list]:
        cls = methods.get_method(self.method)
        params = {p.name: p for p in cls.params}
        if not 1 <= len(self.axes) <= MAX_AXES:
            raise ValueError(f"a sweep varies one or two hyperparameters, not {len(self.axes)}")
        names = [a.name for a in self.axes]
        if len(set(names)) != len(names):
            raise ValueError(f"{names[0]} is swept twice: pick two different hyperparameters")
        out = {}
        for axis in self.axes:
            if axis.name not in params:
                raise ValueError(f"{self.method} has no hyperparameter '{axis.name}'; its hyperparameters: "
                                 + ", ".join(params))
            out[axis.name] = axis.resolve(params[axis.name], self.method)
        return out

    def trials(self) -> list[RunConfig]:
        """One validated RunConfig per grid point and seed, the seeds innermost (ValueError naming what is wrong)."""
        if not isinstance(self.seeds, int) or self.seeds < 1:
            raise ValueError(f"a sweep needs at least one seed, got {self.seeds!r}")
        if not 0 <= self.cpus_per_trial <= 1024 or not 0 <= self.gpus_per_trial <= 64:
            raise ValueError("CPUs per trial must be in [0, 1024] and GPUs per trial in [0, 64]")
        grid = self.axis_values()
        n = math.prod(len(v) for v in grid.values()) * self.seeds
        if n > MAX_TRIALS:
            raise ValueError(ERR_TOO_MANY.format(n=n, max=MAX_TRIALS))
        cls = methods.get_method(self.method)
        base = {**cls.settings(self.variant, self.preset, self.dataset), **{k: v for k, v in self.fixed.items() if k not in grid}}
        configs = []
        for point in itertools.product(*grid.values()):
            for seed in range(self.first_seed, self.first_seed + self.seeds):
                hparams = {**base, **dict(zip(grid, point))}
                configs.append(RunConfig(dataset=self.dataset, method=self.method, dataset_options=dict(self.dataset_options),
                                         hparams=hparams, seed=seed, device=self.device, data_dir=self.data_dir).resolved())
        return configs


# --- the papers' analyses, ready to run ----------------------------------------------------------------------------
@dataclass(frozen=True)
class SweepPreset:
    title: str
    description: str
    spec: SweepSpec


def _preset(title: str, description: str, method: str, axes: list[Axis], fixed: dict | None = None, seeds: int = 2) -> SweepPreset:
    from .data import DEFAULT_DATASET

    return SweepPreset(title, description, SweepSpec(dataset=DEFAULT_DATASET, method=method, axes=axes, seeds=seeds,
                                                     preset="quick", fixed=fixed or {}, title=title))


# The papers print these grids in their figures, not their text; the values are read off those figures' axes or, where
# a figure is not legible, a log-spaced grid around the paper's default (said in each description).
SWEEP_PRESETS: dict[str, SweepPreset] = {p.title: p for p in (
    _preset("DFC Figure 6 (a)", "DFC's parameter analysis (a): the adversarial weight α_f varied with the structural "
            "term off (α_s = 0); the paper plots Balance against α_f (larger α_f, more balanced clusters).",
            "dfc", [Axis("alpha_f", values=[0.0, 0.1, 0.5, 1.0, 2.0])], {"alpha_s": 0.0}, seeds=1),
    _preset("DFC Figure 6 (b)", "DFC's parameter analysis (b): the structural weight α_s varied with α_f = 1; the "
            "paper plots NMI against α_s (larger α_s, better clusters).",
            "dfc", [Axis("alpha_s", values=[0.0, 0.1, 0.5, 1.0, 2.0])], {"alpha_f": 1.0}, seeds=1),
    _preset("FCMI α / β", "FCMI's parameter analysis: the weight α of L_clu (maximise I(X; C)) against the weight β of "
            "L_fair (minimise I(C; G)), on a log grid around the public defaults α = 0.04, β = 0.2: a heatmap per metric.",
            "fcmi", [Axis("alpha", values=[0.01, 0.04, 0.16]), Axis("beta", values=[0.05, 0.2, 0.8])], seeds=1),
    _preset("Inv-SENnet λ", "Inv-SENnet's bias-mitigation weight λ (the gradient reversal from the bias classifiers): "
            "λ = 0 is SENet with bias classifiers that only watch; larger λ hides the group from the coefficients.",
            "inv_senet", [Axis("lambda_adv", values=[0.0, 1.0, 10.0, 100.0])]),
    _preset("ClusterFix γ", "ClusterFix's trade-off γ between the task loss and the cluster loss (Eq. 9), which also "
            "weights the cluster errors in the sample weights (Eq. 8); γ = 0 leaves the cluster heads out.",
            "clusterfix", [Axis("gamma", values=[0.0, 0.25, 0.5, 1.0, 2.0])]),
)}


# --- estimates, tables, aggregates -----------------------------------------------------------------------------------
def schedule_keys(method: str) -> list[str]:
    """The hyperparameters that set how long a run takes (its quick preset's keys; else its whole-number settings)."""
    cls = methods.get_method(method)
    return sorted(cls.quick) if cls.quick else sorted(p.name for p in cls.params if p.kind == "int")


@dataclass
class Estimate:
    seconds_per_trial: float  # mean over the trials
    total_seconds: float  # wall time with `slots` trials at once
    slots: int
    basis: str  # what the figure comes from, to show beside it


def estimate(store, configs: list[RunConfig], slots: int) -> Estimate | None:
    """The sweep's wall time from this store's finished runs of the same method and dataset with the same schedule on
    the same kind of device (median seconds per run), spread over `slots` trials at once. None when nothing matches."""
    if not configs:
        return None
    from .methods import resolve_device

    first = configs[0]
    keys = schedule_keys(first.method)
    kind = resolve_device(first.device).type  # "auto": the device this machine would pick
    history = [r for r in store.list_runs(dataset=first.dataset, method=first.method, status="finished")
               if r.seconds and r.device.split(":")[0] == kind]
    if not history:
        return None

    def schedule(hparams: dict, options: dict) -> tuple:  # what sets a run's length: its schedule and its data's size
        return (*(hparams.get(k) for k in keys), json.dumps(options, sort_keys=True))

    by_schedule: dict[tuple, list[float]] = {}
    for r in history:
        by_schedule.setdefault(schedule(r.hparams, r.config.get("dataset_options", {})), []).append(r.seconds)
    per_trial, used = [], set()
    for config in configs:
        key = schedule(config.hparams, config.dataset_options)
        if key in by_schedule:
            used.add(key)
            per_trial.append(float(np.median(by_schedule[key])))
    matched = len(per_trial)
    if not matched:
        return None
    fill = float(np.median(per_trial))
    per_trial += [fill] * (len(configs) - matched)
    slots = max(1, min(slots, len(configs)))
    waves = math.ceil(len(configs) / slots)
    total = waves * float(np.mean(per_trial))
    basis = (f"median time of {sum(len(by_schedule[k]) for k in used)} finished {first.method} run(s) on {first.dataset} in this store with the "
             f"same schedule ({', '.join(keys)}) and dataset options")
    return Estimate(float(np.mean(per_trial)), total, slots, basis)


# Signals a method logs as series rather than as evaluation metrics, read at their last step for a sweep: the bias
# classifiers Inv-SENnet trains against (the paper's observation: high early, decaying as the coefficients become
# invariant) and SENet's watching ones.
FINAL_SERIES = {"inv_senet": ("acc_bias_key", "acc_bias_query"), "senet": ("acc_bias_key", "acc_bias_query")}


def sweep_frame(store, sweep_id: str) -> pd.DataFrame:
    """One row per run of the sweep: run id, status, seed, each swept value, the final (or, for a run that did not
    finish, last kept) numeric metrics with the epoch of the evaluation they come from, the method's FINAL_SERIES at
    their last step, and seconds."""
    sweep = store.get_sweep(sweep_id)
    names = [a["name"] for a in sweep.spec["axes"]]
    rows = []
    last_epochs = store.last_epochs(sweep_id)
    for run in store.list_runs(sweep_id=sweep_id):
        row = {"run_id": run.id, "status": run.status, "seed": run.seed, "seconds": run.seconds}
        row.update({name: run.hparams.get(name) for name in names})
        row["metrics_epoch"] = last_epochs.get(run.id)
        row.update({k: v for k, v in (run.metrics or {}).items() if isinstance(v, (int, float)) and not isinstance(v, bool)
                    and k != KEPT_FROM})  # metrics_epoch says it already
        row.update(store.last_scalars(run.id, FINAL_SERIES.get(run.method, ())))
        rows.append(row)
    frame = pd.DataFrame(rows, columns=["run_id", "status", "seed", "seconds", *names] if not rows else None)
    return frame.sort_values([*names, "seed"], kind="stable").reset_index(drop=True) if rows else frame


def aggregate(frame: pd.DataFrame, axes: list[str], metric: str, band: str = "minmax") -> pd.DataFrame:
    """Over the finished runs: per grid point, the metric's mean over seeds and its band (BANDS), and n seeds."""
    if band not in BANDS:
        raise ValueError(f"band must be one of {', '.join(BANDS)}")
    columns = [*axes, "mean", "low", "high", "n"]
    if frame.empty or metric not in frame:
        return pd.DataFrame(columns=columns)
    done = frame[(frame["status"] == "finished") & frame[metric].notna()]
    if done.empty:
        return pd.DataFrame(columns=columns)
    grouped = done.groupby(axes, sort=True)[metric]
    out = grouped.agg(mean="mean", n="count", lo="min", hi="max", sd=lambda v: float(np.std(v, ddof=1)) if len(v) > 1 else 0.0)
    if band == "minmax":
        out["low"], out["high"] = out["lo"], out["hi"]
    else:
        out["low"], out["high"] = out["mean"] - out["sd"], out["mean"] + out["sd"]
    return out.reset_index()[columns]


def is_classifier(method: str) -> bool:
    """ERM and the methods built on it (ClusterFix) classify: they are read by group accuracies, not clustering metrics."""
    from .methods.clusterfix import ERM

    cls = methods.REGISTRY.get(method)  # None: a clustering made elsewhere (the Audit page's runs)
    return cls is not None and issubclass(cls, ERM)


def sweep_metrics(method: str) -> list[str]:
    """The metrics a sweep of this method is read by: quality, fairness, and the method's own signal."""
    if is_classifier(method):
        return ["worst_group_acc", "unbiased_acc", "avg_acc", "probe_acc"]
    own = {"dfc": ["disc_acc"], "inv_senet": ["acc_bias_key", "acc_bias_query", "same_group_share"],
           "senet": ["acc_bias_key", "acc_bias_query", "same_group_share"],
           "statdec": ["tail_recall", "min_class_recall"], "idec": ["tail_recall", "min_class_recall"]}.get(method, [])
    return ["acc", "nmi", "balance", "mnce", "entropy", "f_beta", *own, "probe_acc"]


# --- running on Ray ------------------------------------------------------------------------------------------------
class StreamingStore:
    """The writing side of the run store, on a Ray worker: every call becomes a message the driver writes into its store."""

    def __init__(self, folder: Path):
        self.folder = folder
        self._messages: list[tuple] = []
        self._progress: tuple | None = None
        self._lock = threading.Lock()

    def run_dir(self, run_id: str) -> Path:
        return self.folder

    def _put(self, *message) -> None:
        with self._lock:
            self._messages.append(message)

    def set_progress(self, run_id: str, fraction: float, stage: str) -> None:
        with self._lock:
            self._progress = ("progress", fraction, stage)  # only the latest matters

    def set_dataset_info(self, run_id: str, info: dict) -> None:
        self._put("dataset_info", info)

    def add_scalars(self, run_id: str, rows) -> None:
        self._put("scalars", list(rows))

    def add_evaluation(self, run_id: str, epoch: int, metrics: dict, arrays=None) -> None:
        self._put("evaluation", epoch, metrics, arrays)

    def finish(self, run_id: str, status: str, **fields) -> None:
        for path in sorted(self.folder.iterdir()):  # weights the method saved
            if path.is_file():
                self._put("file", path.name, path.read_bytes())
        self._put("finish", status, fields)

    def get_run(self, run_id: str):
        return None

    def drain(self) -> list[tuple]:
        with self._lock:
            messages, self._messages = self._messages, []
            if self._progress is not None:
                messages.insert(0, self._progress)
                self._progress = None
        return messages


def run_trial(config: dict, data=None):
    """A Ray task (a generator): train one trial, yielding batches of messages for the driver every POLL_SECONDS.

    The driver stops a trial with ray.cancel, which raises KeyboardInterrupt here: the training thread is then stopped
    and joined, so the (reused) worker process is idle again. The task never calls ray.get: a task blocked in it lends
    its CPUs to the next queued trial, and more trials than the cluster's CPUs would then train at once.
    """
    import ray
    import torch

    from .methods import resolve_device

    cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1.0)
    torch.set_num_threads(max(1, int(cpus)))
    config = RunConfig(**config)
    if config.data_dir and not Path(config.data_dir).is_dir():
        config.data_dir = None  # the driver's folder is not on this node: this node's data folder or cache instead
    device = resolve_device(config.device)
    env = {**environment(device), "ray_node": ray.get_runtime_context().get_node_id(), "pid": os.getpid(),
           "cpus_per_trial": cpus}
    yield [("started", str(device), env)]
    folder = Path(tempfile.mkdtemp(prefix="fclab-trial-"))
    stream, stop = StreamingStore(folder), threading.Event()
    worker = threading.Thread(target=execute_run, args=(stream, "trial", config, stop, data), daemon=True)
    try:
        worker.start()
        while worker.is_alive():
            worker.join(POLL_SECONDS)
            yield stream.drain()  # empty batches too: they let the driver act on a stop within POLL_SECONDS
        yield stream.drain()
    except KeyboardInterrupt:  # cancelled by the driver
        stop.set()
        worker.join()
        raise
    finally:
        shutil.rmtree(folder, ignore_errors=True)


_ray_lock = threading.Lock()
_ray_address: list = []  # the address this process's Ray connection was made with ([None] for the local Ray)


def connect(address: str | None = None, may_switch: bool = True) -> dict:
    """Connect this process to Ray: the cluster at `address`, or a local Ray on this machine's cores, listening on
    127.0.0.1 only. A connection to another address is closed first when may_switch (no sweep of this process uses it).
    Returns the cluster's resources (CPU, GPU counts)."""
    import ray

    with _ray_lock:
        if ray.is_initialized():
            if not _ray_address or _ray_address[0] == (address or None):
                return ray.cluster_resources()
            if not may_switch:
                raise ValueError(f"a sweep of this process still runs on Ray at {_ray_address[0] or 'the local machine'}: "
                                 "stop it, or wait for it to end, before using another cluster")
            ray.shutdown()
        package = Path(__file__).resolve().parent
        options = dict(log_to_driver=False, logging_level=logging.WARNING)
        if address:  # the code travels with the job: the cluster's nodes need only the requirements installed
            ray.init(address=address, runtime_env={"py_modules": [str(package)], "excludes": ["__pycache__"]}, **options)
        else:
            # The local Ray's workers are this machine's processes: they import the package from where it is (its
            # workers inherit this environment), so the workers Ray starts with it serve the first trials at once.
            paths = [str(package.parent), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
            os.environ["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
            ray.init(num_cpus=os.cpu_count(), include_dashboard=False, _node_ip_address="127.0.0.1", **options)
        _ray_address[:] = [address or None]
        return ray.cluster_resources()


ERR_UNREACHABLE = ("cannot reach a Ray cluster at {address} ({reason}): is `ray start --head` running there, and is "
                   "its port open to this machine? Leave the address empty to use a local Ray.")


def check_address(address: str, timeout: float = 3.0) -> None:
    """Refuse at once an address nothing listens on (ray.init would wait minutes): HOST:PORT or ray://HOST:PORT."""
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"a Ray address is HOST:PORT (or ray://HOST:PORT), not {address!r}")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as exc:
        raise ValueError(ERR_UNREACHABLE.format(address=address, reason=exc.strerror or exc)) from None


def disconnect() -> None:
    """Close this process's Ray connection (and the local Ray it started, if any)."""
    import ray

    with _ray_lock:
        ray.shutdown()
        _ray_address.clear()


def slots(resources: dict, spec: SweepSpec) -> int:
    """How many of the sweep's trials the cluster can train at once."""
    counts = [resources.get("CPU", 0) / spec.cpus_per_trial if spec.cpus_per_trial else math.inf,
              resources.get("GPU", 0) / spec.gpus_per_trial if spec.gpus_per_trial else math.inf]
    n = min(counts)
    return max(1, int(n)) if math.isfinite(n) else 1


class _LiveSweep:
    def __init__(self, sweep_id: str):
        self.sweep_id = sweep_id
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None
        self.done = threading.Event()  # set when the sweep has ended (an Event: a wait on it may be interrupted safely)
        self.generators: list = []  # one per submitted trial
        self.lock = threading.Lock()

    def cancel_all(self) -> None:
        import ray

        with self.lock:
            generators = list(self.generators)
        for generator in generators:
            ray.cancel(generator)


class SweepRunner:
    """This process's sweeps: start (trials submitted to Ray), stop, wait. Its runs are recorded through the job
    registry's store and count as running there, so Monitor shows and stops them like any run."""

    def __init__(self, registry: JobRegistry):
        self.registry, self.store = registry, registry.store
        self._live: dict[str, _LiveSweep] = {}
        self._lock = threading.Lock()
        self.store.mark_sweeps_interrupted(self.is_running)

    def start(self, spec: SweepSpec, address: str | None = None) -> str:
        """Validate the spec (every trial's settings, and the first trial against its data), record the sweep and drive
        it in a background thread; returns the sweep id at once."""
        configs = spec.trials()
        if address:
            check_address(address)
        # The first trial against its data (K > N, a batch larger than the data…), where this machine has the data; on
        # a cluster the workers may be the only ones that do.
        if not address or datasets.get_spec(spec.dataset).available(datasets.resolve_data_dir(spec.data_dir)):
            preflight(configs[0])
        sweep_id = self.store.create_sweep(spec.to_dict(), len(configs), address or None)
        live = _LiveSweep(sweep_id)
        live.thread = threading.Thread(target=self._drive, args=(live, spec, configs, address), name=f"sweep-{sweep_id}",
                                       daemon=True)
        with self._lock:
            self._live[sweep_id] = live
        live.thread.start()
        return sweep_id

    def stop(self, sweep_id: str) -> bool:
        with self._lock:
            live = self._live.get(sweep_id)
        if live is None or live.done.is_set():
            return False
        live.stop.set()  # trials not yet submitted are not; the submitted ones are cancelled
        live.cancel_all()
        return True

    def is_running(self, sweep_id: str) -> bool:
        with self._lock:
            live = self._live.get(sweep_id)
        return live is not None and not live.done.is_set()

    def wait(self, sweep_id: str, timeout: float | None = None) -> bool:
        """Block until the sweep ends; True if it ended within timeout."""
        with self._lock:
            live = self._live.get(sweep_id)
        return live is None or live.done.wait(timeout)

    # --- the driver's side ------------------------------------------------------------------------------------------
    def _drive(self, live: _LiveSweep, spec: SweepSpec, configs: list[RunConfig], address: str | None) -> None:
        try:
            import ray

            connect(address, may_switch=not any(self.is_running(i) for i in list(self._live) if i != live.sweep_id))
            data = None
            # On the local Ray, the dataset this process built (preflight did) goes through Ray's shared memory rather
            # than being built again by every worker; an upload lives in this store's folder and travels the same way.
            # On a cluster each node builds its own from its data folder or download cache.
            if not address or spec.dataset == upload.SPEC.id:
                data = ray.put(datasets.load_dataset(spec.dataset, configs[0].dataset_options, spec.data_dir))
            task = ray.remote(max_retries=0)(run_trial)
            consumers = []
            for trial, config in enumerate(configs):
                with live.lock:
                    if live.stop.is_set():
                        break
                    generator = task.options(num_cpus=spec.cpus_per_trial, num_gpus=spec.gpus_per_trial).remote(
                        asdict(config), data)
                    live.generators.append(generator)
                thread = threading.Thread(target=self._consume, args=(live, trial, config, generator), daemon=True,
                                          name=f"sweep-{live.sweep_id}-trial-{trial}")
                thread.start()
                consumers.append(thread)
            for thread in consumers:
                thread.join()
            self.store.finish_sweep(live.sweep_id, "stopped" if live.stop.is_set() else "finished")
        except Exception as exc:  # Ray would not start or connect, or a bug: the sweep fails, its runs are kept
            log.exception("sweep %s failed", live.sweep_id)
            self.store.finish_sweep(live.sweep_id, "failed", error=f"{type(exc).__name__}: {exc}")
        finally:
            live.done.set()

    def _consume(self, live: _LiveSweep, trial: int, config: RunConfig, generator) -> None:
        """Write one trial's messages into the store as they come. A stopped trial ends "stopped" with its last
        evaluation's metrics; one whose worker died ends "interrupted"; the sweep goes on either way."""
        import ray

        run_id, open_run, stop_event, cancelled, last_metrics = None, False, None, False, None
        try:
            for ref in generator:
                for message in ray.get(ref):
                    kind = message[0]
                    if kind == "started":
                        run_id = self._create(live, config, device=message[1], environment=message[2])
                        open_run, stop_event = True, self.registry.adopt(run_id)
                    elif kind == "progress":
                        self.store.set_progress(run_id, message[1], message[2])
                    elif kind == "dataset_info":
                        self.store.set_dataset_info(run_id, message[1])
                    elif kind == "scalars":
                        self.store.add_scalars(run_id, message[1])
                    elif kind == "evaluation":
                        self.store.add_evaluation(run_id, message[1], message[2], message[3])
                        last_metrics = {**message[2], KEPT_FROM: int(message[1])}  # kept only if the trial ends early
                    elif kind == "file":  # weights the method saved (the Explain page reads them)
                        path = self.store.run_dir(run_id) / Path(message[1]).name
                        path.write_bytes(message[2])
                        private_file(path)
                    elif kind == "finish":
                        self.store.finish(run_id, message[1], **message[2])
                        open_run = False
                if stop_event is not None and stop_event.is_set() and not cancelled:  # Monitor's Stop, for this trial
                    cancelled = True
                    ray.cancel(generator)
        except ray.exceptions.RayError as exc:
            stopped = cancelled or live.stop.is_set()
            if not stopped:  # the worker (or its node) died
                log.warning("trial %s of sweep %s: %s", trial, live.sweep_id, exc)
                if run_id is None:
                    run_id, open_run = self._create(live, config, device="unknown", environment={}), True
            if open_run:
                self.store.finish(run_id, "stopped" if stopped else "interrupted", metrics=last_metrics,
                                  error=None if stopped else ERR_WORKER_DIED.format(reason=type(exc).__name__))
                open_run = False
        finally:
            if open_run:  # the stream ended without the run's end (a bug): never leave it "running"
                self.store.finish(run_id, "interrupted", metrics=last_metrics,
                                  error=ERR_WORKER_DIED.format(reason="the trial's stream ended early"))
            if run_id is not None:
                self.registry.release(run_id)

    def _create(self, live: _LiveSweep, config: RunConfig, *, device: str, environment: dict) -> str:
        return self.store.create_run(dataset=config.dataset, method=config.method, config=asdict(config), seed=config.seed,
                                     device=device, environment=environment, sweep_id=live.sweep_id)


# --- figures, shared by the Sweep page and the CLI's report ----------------------------------------------------------
PARETO_AXES = {"classifier": ("avg_acc", "worst_group_acc"), "clustering": ("acc", "balance")}
# What a metric is read against, where the runs record it: the chance rate of a group predictor, the group-blind value.
REFERENCES = {"probe_acc": ("probe_majority", "chance (majority group)"), "disc_acc": ("disc_chance", "chance (1/M)"),
              "same_group_share": ("same_group_chance", "group-blind value")}


def pareto_axes(method: str) -> tuple[str, str]:
    """Quality (x) and fairness (y) of the sweep's scatter: classifiers by accuracy and worst-group accuracy."""
    return PARETO_AXES["classifier" if is_classifier(method) else "clustering"]


def sweep_figures(sweep, frame: pd.DataFrame, metrics_shown: list[str] | None = None, band: str = "minmax",
                  pareto: tuple[str, str] | None = None) -> dict:
    """The sweep's figures: per metric, a curve against the parameter (one axis) or a heatmap (two), then the
    fairness-versus-quality scatter of all its finished runs with their Pareto front (each point's customdata[1]
    is its run id)."""
    from . import plots

    spec = SweepSpec.from_dict(sweep.spec)
    names = [a.name for a in spec.axes]
    params = {p.name: p for p in methods.get_method(spec.method).params}
    symbols = {n: params[n].symbol for n in names if n in params}
    figures = {}
    for metric in metrics_shown or sweep_metrics(spec.method):
        agg = aggregate(frame, names, metric, band)
        if agg.empty:
            continue
        if len(names) == 1:
            values = agg[names[0]].to_numpy(float)
            log_x = bool(len(values) > 2 and (values > 0).all() and values.max() / values.min() >= 20)
            column, text = REFERENCES.get(metric, (None, ""))
            reference = None
            if column in frame and frame[column].notna().any():
                reference = (float(frame[column].mean()), f"{text}: {frame[column].mean():.3f}")
            figures[metric] = plots.sweep_curve(agg, names[0], metric, band_label=BANDS[band], symbols=symbols, log_x=log_x,
                                                reference=reference)
        else:
            figures[metric] = plots.sweep_heatmap(agg, names, metric, symbols=symbols)
    x_key, y_key = pareto or pareto_axes(spec.method)
    done = frame[(frame["status"] == "finished")] if not frame.empty else frame
    if not done.empty and x_key in done and y_key in done:
        done = done[done[x_key].notna() & done[y_key].notna()]
        labels = [", ".join(f"{symbols.get(n) or n}={r[n]:g}" for n in names) for _, r in done.iterrows()]
        figures["pareto"] = plots.pareto_scatter(
            done[x_key], done[y_key], labels, x_key=x_key, y_key=y_key, ids=done["run_id"].tolist(),
            hover=[f"{r.run_id} · seed {r.seed}" for r in done.itertuples()],
            title="Fairness versus quality: every finished run of the sweep (click a point to open its run)")
    return figures
