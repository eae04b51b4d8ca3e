"""The one code path that trains a method, for the app, the CLI, sweeps and the estimators alike.

`train_method(method, data, context)` checks the data, trains and returns the final metrics. The `TrainingContext` is
the RunContext a method trains with (methods/base.py): it buffers logged scalars and reads tensors in batches, detects
a NaN, evaluates with `evaluation_metrics`, checks for a stop and reports progress. What it records goes to a sink: the
run store (`StoreSink`, jobs.py) or memory (`MemorySink`, an estimator's `history_`). Imports no method, no Streamlit.
"""
from __future__ import annotations

import json
import math
import random
import threading
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from . import metrics
from .data import BiasedDataset
from .nn import to_numpy
from .outputs import write_atomic
from .store import private_file

FLUSH_SECONDS = 0.5  # how often logged scalars reach the sink (the Monitor polls the store about once a second)
PROBE_MAX_SAMPLES = 5000  # the group probe subsamples: a few thousand held-out points estimate its accuracy well
GENERIC_ADVICE = "Lower the learning rate or the loss weights"
# The end of every divergence message (the TrainingContext's for a NaN loss, ensure_finite's for a NaN embedding).
DIVERGED = "training diverged. {advice}, and start again; the metrics of the last evaluation before it are kept."
ERR_DIVERGED = "{name} became {value} at step {step}: " + DIVERGED


class RunStopped(Exception):
    """Raised inside a method when the user asked the run to stop (checked at every logged step)."""


class TrainingDiverged(Exception):
    """Raised when a logged scalar (a loss, an accuracy) becomes NaN or infinite."""


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's global generators (the run's seed; methods seed their own from ctx.seed)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


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


class StoreSink:
    """Writes a run's records to the run store, or to anything with its writing methods (a sweep's StreamingStore)."""

    def __init__(self, store, run_id: str):
        self.store, self.run_id = store, run_id

    def progress(self, fraction: float, stage: str) -> None:
        self.store.set_progress(self.run_id, fraction, stage)

    def scalars(self, rows: list[tuple[int, str, float, float]]) -> None:
        self.store.add_scalars(self.run_id, rows)

    def evaluation(self, epoch: int, result: dict, arrays: dict[str, np.ndarray], split: str | None) -> None:
        self.store.add_evaluation(self.run_id, epoch, result, arrays)

    def table(self, name: str, rows: list[dict]) -> Path:
        path = write_atomic(self.store.run_dir(self.run_id) / f"{name}.json", json.dumps(rows, allow_nan=False),
                            flag=f"the run's {name} table", replace=True)
        private_file(path)
        return path

    def weights(self, state_dict: dict, name: str) -> Path:
        path = self.store.run_dir(self.run_id) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({key: value.detach().cpu() for key, value in state_dict.items()}, path)
        private_file(path)
        return path


class MemorySink:
    """Keeps a run's records as plain data (an estimator's `history_`) and passes progress to a callback.

    history: {"scalars": {name: {"step": [...], "value": [...]}}, "evaluations": [{"epoch", "split", "metrics"}],
    "tables": {name: rows}}. Evaluation arrays and weights are not kept: the fitted estimator holds its own.
    """

    def __init__(self, on_progress: Callable[[float, str], Any] | None = None):
        self.on_progress = on_progress
        self.history: dict = {"scalars": {}, "evaluations": [], "tables": {}}

    def progress(self, fraction: float, stage: str) -> None:
        if self.on_progress is not None:
            self.on_progress(fraction, stage)

    def scalars(self, rows: list[tuple[int, str, float, float]]) -> None:
        for step, name, value, _ in rows:
            series = self.history["scalars"].setdefault(name, {"step": [], "value": []})
            series["step"].append(step)
            series["value"].append(value)

    def evaluation(self, epoch: int, result: dict, arrays: dict[str, np.ndarray], split: str | None) -> None:
        self.history["evaluations"].append({"epoch": int(epoch), "split": split, "metrics": result})

    def table(self, name: str, rows: list[dict]) -> None:
        self.history["tables"][name] = json.loads(json.dumps(rows, allow_nan=False))  # plain data, as the store reads it

    def weights(self, state_dict: dict, name: str) -> None:
        return None


class ProgressBar:
    """A tqdm bar (terminal or notebook) as a progress callback: fraction 0..1 as a percentage, the stage beside it."""

    def __init__(self, description: str):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=100, desc=description, unit="%", bar_format="{l_bar}{bar}| {n:.0f}% [{elapsed}{postfix}]")

    def __call__(self, fraction: float, stage: str = "") -> None:
        self.bar.n = round(100 * min(max(fraction, 0.0), 1.0), 1)
        self.bar.set_postfix_str(stage, refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        self.bar.close()


class TrainingContext:
    """The RunContext a method trains with (methods/base.py): buffers scalars and writes them to its sink in batches
    (one device sync per flush), names a NaN, evaluates with evaluation_metrics, stops when stop_event is set."""

    def __init__(self, sink, data: BiasedDataset, device: torch.device, seed: int,
                 stop_event: threading.Event | None = None, advice: str = GENERIC_ADVICE, data_dir: str | None = None,
                 flush_seconds: float = FLUSH_SECONDS):
        self.sink, self.data = sink, data
        self.data_dir = data_dir  # where a method finds files it needs besides the data (DFC's released models)
        self.advice = advice  # what a divergence message tells the user to change (Method.divergence_advice)
        self.device, self.seed = device, seed
        self.flush_seconds = flush_seconds
        self._stop = stop_event if stop_event is not None else threading.Event()
        self._buffer: list[tuple[int, str, object, float]] = []
        self._last_flush = 0.0  # flush the first point at once, so the live view shows it immediately
        self._progress: tuple[float, str] | None = None
        self.last_metrics: dict = {}
        self.last_epoch: int | None = None

    def check_stop(self) -> None:
        if self._stop.is_set():
            raise RunStopped()

    def log(self, step: int, **scalars) -> None:
        now = time.time()
        for name, value in scalars.items():
            # A copy, not a view: a parameter (SENet's threshold b) is updated in place before the buffer is flushed,
            # and the series would then hold whatever it was at flush time. A scalar copy costs no sync.
            self._buffer.append((int(step), name, value.detach().clone() if torch.is_tensor(value) else value, now))
        if now - self._last_flush >= self.flush_seconds:
            self.flush()
        self.check_stop()

    def progress(self, fraction: float, stage: str = "") -> None:
        self._progress = (float(fraction), stage)
        if time.time() - self._last_flush >= self.flush_seconds:
            self.flush()

    def flush(self) -> None:
        """Write buffered scalars (reading all tensors at once: one device sync per flush), then check them."""
        self._last_flush = time.time()
        if self._progress is not None:
            self.sink.progress(*self._progress)
            self._progress = None
        if not self._buffer:
            return
        buffer, self._buffer = self._buffer, []
        tensors = [v for _, _, v, _ in buffer if torch.is_tensor(v)]
        values = iter(torch.stack([t.float().reshape(()) for t in tensors]).cpu().tolist()) if tensors else iter(())
        rows = [(s, n, next(values) if torch.is_tensor(v) else float(v), t) for s, n, v, t in buffer]
        bad = next((r for r in rows if not math.isfinite(r[2])), None)
        good = rows if bad is None else [r for r in rows if math.isfinite(r[2])]
        self.sink.scalars(good)
        if bad is not None:
            raise TrainingDiverged(ERR_DIVERGED.format(name=bad[1], value=bad[2], step=bad[0], advice=self.advice))

    def evaluate(self, epoch: int, embedding, assignment, extra: dict | None = None, split: str | None = None) -> dict:
        """All metrics that apply to assignment (on `split` of the data, or all of it), the group probe on the
        embedding (the raw features when embedding is None), recorded with both arrays for the embedding views."""
        self.flush()
        data = self.data.split(split) if split else self.data
        assignment = to_numpy(assignment).astype(np.int64)
        emb = None if embedding is None else to_numpy(embedding).astype(np.float32)
        result = evaluation_metrics(data, assignment, emb, seed=self.seed)
        for key, value in (extra or {}).items():
            result[key] = float(value)
        arrays = {"assignment": assignment, "g": data.g, "row_id": data.row_id}
        if data.y is not None:
            arrays["y"] = data.y
        if emb is not None:
            arrays["embedding"] = emb
        self.sink.evaluation(epoch, result, arrays, split)
        self.last_metrics, self.last_epoch = result, int(epoch)
        self.check_stop()
        return result

    def save_table(self, name: str, rows: list[dict]) -> Path | None:
        """Keep a small table a method reports (e.g. DFC's per-group models): in the run store as <name>.json in the
        run's folder, where the Monitor reads it (RunStore.run_table), written whole or not at all."""
        return self.sink.table(name, rows)

    def save_weights(self, state_dict: dict, name: str = "weights.pt") -> Path | None:
        """Save a trained model's state_dict in the run's folder (load it with torch.load(path, weights_only=True));
        in memory nothing is saved: the fitted estimator keeps its model."""
        return self.sink.weights(state_dict, name)


def train_method(method, data: BiasedDataset, context: TrainingContext) -> dict:
    """Check that method can run on data, train it with context, and return the final metrics: those of its last
    evaluation (on the split it evaluates, with its own extras), or, for a method that never evaluated, all of them
    computed once here on all the data."""
    method.check_data(data)
    method.train(data, context)
    context.flush()
    return context.last_metrics or evaluation_metrics(data, method.labels_, method.embedding_, seed=context.seed)
