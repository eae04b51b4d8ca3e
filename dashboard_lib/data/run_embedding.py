"""The embedding another run saved, as a dataset: dataset `run_embedding` with option run=<run id>.

A run of a method that learns an embedding (AE + k-means, DEC, FCMI, DFC…) saves it with each evaluation's arrays in
the run store. This family trains any method on the embedding that run saved at the evaluation its metrics come from
(the last one; for a stopped run the one it kept), instead of on the raw features: the same rows in the same order,
with the classes, groups, splits and row ids of the run's own dataset, rebuilt from the run's recorded configuration.
Runs on it are named run_embedding:<run id> everywhere, and their dataset record keeps the provenance (the source run,
its method and dataset, the epoch, the embedding file's SHA-256). Every refusal is a ValueError with an ERR_* message.

The embedding is read from this machine's run store (settings.store_dir()): a sweep sends the built dataset to its Ray
workers, as it sends an upload.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from .. import settings
from ..params import Param
from ..store import RunRecord, RunStore
from .base import BiasedDataset, DatasetInfo, DatasetSpec
from .download import DownloadError
from .transforms import stratified_subset

DATASET_ID = "run_embedding"
ENDED = ("finished", "stopped")  # a run whose embedding no longer changes
ERR_NO_RUN = "choose the run whose embedding to train on (option run); runs with a saved embedding: {have}"
ERR_UNKNOWN_RUN = "no run {run!r} in the run store at {root}; runs with a saved embedding: {have}"
ERR_NOT_ENDED = ("run {run} is {status}: only a finished or stopped run's embedding can be trained on (its last "
                 "evaluation is then the one its metrics come from)")
ERR_NO_EMBEDDING = ("run {run} ({method}) saved no embedding at evaluation {epoch}: its method clusters the input features "
                    "themselves. Pick a run of a method that learns an embedding (AE + k-means, DEC, FCMI, DFC…); runs "
                    "with one: {have}")
ERR_NO_EVALUATION = "run {run} ({method}) saved no evaluation's arrays, so it has no embedding to train on"
ERR_SOURCE_DATA = ("the dataset of run {run} ({dataset}) cannot be built on this machine, so the classes, groups and "
                   "splits of the embedding's rows are unknown: {reason}")
ERR_ROWS = ("the embedding run {run} saved at evaluation {epoch} has {got:,} rows, but its dataset {dataset} has {n:,}: "
            "the run evaluated only part of its data (a split), or its dataset changed since. Pick a run that "
            "evaluates all of its data")
ERR_ROW_IDS = ("the embedding run {run} saved at evaluation {epoch} holds other rows than its dataset {dataset} now builds "
               "(the rows' ids differ): the dataset changed since the run. Train a new run on it first")
ERR_NOT_FINITE = "the embedding run {run} saved at evaluation {epoch} holds {count:,} NaN or infinite value(s)"


def label(run_id: str) -> str:
    """How the dataset is named wherever runs are listed: run_embedding:<run id>."""
    return f"{DATASET_ID}:{run_id}"


def _store() -> RunStore:
    return RunStore(settings.store_dir())


def _source_epoch(store: RunStore, run: RunRecord) -> int | None:
    """The evaluation the run's metrics come from: the one a stopped run kept, else its last (by time); None: none."""
    if run.kept_from_epoch is not None:
        return run.kept_from_epoch
    evaluations = store.evaluations(run.id)
    if not evaluations:
        return None
    return max(evaluations, key=lambda e: (e["time"], e["epoch"]))["epoch"]


def _embedding_file(store: RunStore, run: RunRecord) -> tuple[int | None, Path | None]:
    """(epoch, file) of the run's source evaluation; file None when that evaluation saved no embedding."""
    epoch = _source_epoch(store, run)
    if epoch is None:
        return None, None
    path = store.run_dir(run.id) / f"epoch_{epoch:06d}.npz"
    try:
        with np.load(path) as npz:
            return epoch, path if "embedding" in npz.files else None
    except (OSError, ValueError):
        return epoch, None


def embedding_runs(store: RunStore | None = None) -> list[RunRecord]:
    """The finished or stopped runs whose source evaluation saved an embedding, newest first: the runs this family can
    train on."""
    store = store or _store()
    return [run for run in store.list_runs() if run.status in ENDED and _embedding_file(store, run)[1] is not None]


def _have(store: RunStore) -> str:
    runs = embedding_runs(store)
    shown = ", ".join(f"{r.id} ({r.method} on {r.dataset_label})" for r in runs[:5])
    return (shown + (f" and {len(runs) - 5} more" if len(runs) > 5 else "")) if runs else "none yet"


def load(options: dict, data_dir: Path | None, load_source: Callable[..., BiasedDataset]) -> BiasedDataset:
    """The embedding of run options["run"] with its dataset's labels, groups, splits and row ids (ValueError ERR_*);
    load_source(dataset id, options, data_dir) rebuilds the run's dataset (the registry's load_dataset)."""
    store = _store()
    run_id = options["run"]
    if not run_id:
        raise ValueError(ERR_NO_RUN.format(have=_have(store)))
    try:
        run = store.get_run(run_id)
    except KeyError:
        raise ValueError(ERR_UNKNOWN_RUN.format(run=run_id, root=store.root, have=_have(store))) from None
    if run.status not in ENDED:
        raise ValueError(ERR_NOT_ENDED.format(run=run.id, status=run.status))
    epoch, path = _embedding_file(store, run)
    if epoch is None:
        raise ValueError(ERR_NO_EVALUATION.format(run=run.id, method=run.method))
    if path is None:
        raise ValueError(ERR_NO_EMBEDDING.format(run=run.id, method=run.method, epoch=epoch, have=_have(store)))
    source_dir = run.config.get("data_dir") or data_dir
    try:
        source = load_source(run.dataset, run.config.get("dataset_options") or {}, source_dir)
    except (ValueError, DownloadError, OSError) as exc:
        raise ValueError(ERR_SOURCE_DATA.format(run=run.id, dataset=run.dataset_label, reason=exc)) from None
    raw = path.read_bytes()
    with np.load(path) as npz:
        embedding = npz["embedding"]
        row_id = npz["row_id"] if "row_id" in npz.files else None
    embedding = embedding.reshape(len(embedding), -1).astype(np.float32)
    where = dict(run=run.id, epoch=epoch, dataset=run.dataset_label)
    if len(embedding) != len(source):
        raise ValueError(ERR_ROWS.format(**where, got=len(embedding), n=len(source)))
    if row_id is not None and not np.array_equal(row_id, source.row_id):
        raise ValueError(ERR_ROW_IDS.format(**where))
    bad = int((~np.isfinite(embedding)).sum())
    if bad:
        raise ValueError(ERR_NOT_FINITE.format(**where, count=bad))
    sha = hashlib.sha256(raw).hexdigest()
    d = embedding.shape[1]
    index = stratified_subset(options["n"], source.g if source.y is None else source.y * source.n_groups + source.g,
                              options["seed"])
    subset = f"; stratified subset of {len(index):,} (seed {options['seed']})" if options["n"] else ""
    provenance = {"input_run": run.id, "input_method": run.method, "input_dataset": run.dataset_label,
                  "input_epoch": int(epoch), "embedding_file": path.name,
                  "embedding_sha256": sha}
    data = BiasedDataset(
        id=DATASET_ID, X=torch.from_numpy(np.ascontiguousarray(embedding)), y=source.y, g=source.g,
        group_names=source.group_names, class_names=source.class_names, n_clusters=source.n_clusters,
        options=dict(options), splits=dict(source.splits), attributes=dict(source.attributes), row_id=source.row_id,
        feature_names=[f"z{j + 1}" for j in range(d)],
        info=DatasetInfo(
            name=f"Embedding of run {run.id}", licence=source.info.licence, citation=source.info.citation,
            source=f"the embedding run {run.id} ({run.method} on {run.dataset_label}) saved at evaluation {epoch}, read from "
                   f"the run store {store.root}",
            built=(f"{d}-dimensional embedding from {path.name} (SHA-256 {sha}); its {len(embedding):,} rows are those "
                   f"of {source.info.name} in the same order, with their classes, groups and splits{subset}"),
            provenance=provenance,
        ),
    )
    return data if len(index) == len(data) else data.subset(index, keep_splits=True)


class RunParam(Param):
    """A text option: the id of a run in the store."""

    def coerce(self, value: Any, owner: str = "") -> str:
        return "" if value is None else str(value).strip()

    def range_text(self) -> str:
        return "run ids of the store (`runs`)"


def _needs(data_dir: Path | None) -> str:
    return "" if embedding_runs() else ("no finished run with a saved embedding yet: train a method that learns one "
                                        "(AE + k-means, DEC, FCMI, DFC…) first")


def spec(load_source: Callable[..., BiasedDataset]) -> DatasetSpec:
    """The family's declaration; load_source(dataset id, options, data_dir) is the registry's load_dataset, passed in
    so that this module does not import the registry that registers it."""
    return DatasetSpec(
        id=DATASET_ID, name="Embedding of a run",
        summary="Another run's embedding in place of the raw features: any finished or stopped run whose method learns "
                "one (on the CLI: --dataset run_embedding --data run=RUN_ID).",
        load=lambda options, data_dir: load(options, data_dir, load_source),
        options=(RunParam("run", "", kind="text", help="The id of a finished or stopped run that saved an embedding."),
                 Param("n", 0, kind="int", low=0, help="Stratified subset size (by class and group); 0 = all rows."),
                 Param("seed", 0, kind="int", low=0, help="Seed of the subset draw.")),
        available=lambda data_dir: bool(embedding_runs()),
        needs=_needs,
        size="the source run's rows × its embedding's dimensions",
        local=True,
    )
