"""Running a sweep: every trial a run trained on Ray, recorded in the driver's run store.

The driver (the app's process, or the CLI's) owns the run store, the one source of truth. Each trial runs as a Ray task
that trains with the same code as a run started from the Train page (jobs.execute_run) but writes into a StreamingStore:
its series, evaluations and files come back to the driver as messages, and the driver writes them into its store. A
worker on another node therefore needs nothing of the driver's filesystem: it gets the code through Ray (py_modules)
and loads the dataset from its own node's data folder or download cache (an upload or a run's embedding, which live in
the driver's app home, are sent through Ray's object store). Knows nothing of Streamlit; Ray is imported only when a
sweep starts.
"""
from __future__ import annotations

import logging
import math
import os
import shutil
import socket
import tempfile
import threading
from dataclasses import asdict
from pathlib import Path

from .. import data as datasets
from ..jobs import JobRegistry, ReadyRun, RunConfig, environment, execute_run, preflight
from ..methods import resolve_device
from ..store import private_file
from .spec import SweepSpec

POLL_SECONDS = 0.5  # a trial's worker sends what it has this often (so the driver acts on a stop within it)
ERR_WORKER_DIED = ("The Ray worker training this trial ended before the trial did ({reason}). What it sent before is "
                   "kept; the sweep went on with its other trials.")

log = logging.getLogger(__name__)


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
        package = Path(__file__).resolve().parents[1]  # dashboard_lib
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
        self.reconcile()

    def reconcile(self) -> list[str]:
        """Mark sweeps whose driver died, or that this process no longer drives, as interrupted."""
        return self.store.mark_sweeps_interrupted(self.is_running)

    def start(self, spec: SweepSpec, address: str | None = None) -> str:
        """Validate the spec (every trial's settings, and the first trial against its data), record the sweep and drive
        it in a background thread; returns the sweep id at once."""
        configs = spec.trials()
        if address:
            check_address(address)
        # The first trial against its data (K > N, a batch larger than the data…), where this machine has the data; on
        # a cluster the workers may be the only ones that do.
        ready = None
        if not address or datasets.get_spec(spec.dataset).available(datasets.resolve_data_dir(spec.data_dir)):
            ready = preflight(configs[0])
        sweep_id = self.store.create_sweep(spec.to_dict(), len(configs), address or None)
        live = _LiveSweep(sweep_id)
        live.thread = threading.Thread(target=self._drive, args=(live, spec, configs, address, ready),
                                       name=f"sweep-{sweep_id}", daemon=True)
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
    def _drive(self, live: _LiveSweep, spec: SweepSpec, configs: list[RunConfig], address: str | None,
               ready: ReadyRun | None) -> None:
        try:
            import ray

            connect(address, may_switch=not any(self.is_running(i) for i in list(self._live) if i != live.sweep_id))
            data = None
            # On the local Ray, the dataset this process built (preflight did) goes through Ray's shared memory rather
            # than being built again by every worker; a dataset of this machine's app home (an upload, a run's
            # embedding: DatasetSpec.local) travels the same way to a cluster, whose nodes cannot read it.
            # On a cluster each node builds its own from its data folder or download cache.
            if not address or datasets.get_spec(spec.dataset).local:
                built = ready.data if ready else datasets.load_dataset(spec.dataset, configs[0].dataset_options, spec.data_dir)
                data = ray.put(built)
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

        run_id, open_run, stop_event, cancelled = None, False, None, False
        kept: dict = {}  # the last evaluation's metrics and epoch, kept if the trial ends early
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
                        kept = {"metrics": message[2], "kept_from_epoch": int(message[1])}
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
                self.store.finish(run_id, "stopped" if stopped else "interrupted", **kept,
                                  error=None if stopped else ERR_WORKER_DIED.format(reason=type(exc).__name__))
                open_run = False
        finally:
            if open_run:  # the stream ended without the run's end (a bug): never leave it "running"
                self.store.finish(run_id, "interrupted", **kept,
                                  error=ERR_WORKER_DIED.format(reason="the trial's stream ended early"))
            if run_id is not None:
                self.registry.release(run_id)

    def _create(self, live: _LiveSweep, config: RunConfig, *, device: str, environment: dict) -> str:
        return self.store.create_run(dataset=config.dataset, method=config.method, config=asdict(config), seed=config.seed,
                                     device=device, environment=environment, sweep_id=live.sweep_id)
