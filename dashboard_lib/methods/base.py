"""The interface every method implements, and the context a running method talks to."""
from __future__ import annotations

import inspect
import secrets
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Mapping, Protocol

import numpy as np
import torch

from ..data import BiasedDataset, DatasetInfo
from ..params import Param, resolve_params
from ..training import DIVERGED, GENERIC_ADVICE, RunStopped, TrainingDiverged  # noqa: F401 (the methods' names for them)
from ..training import MemorySink, ProgressBar, TrainingContext, seed_everything, train_method


PRESETS = ("paper", "quick")
TABLE_DATASET = "upload"  # the dataset id of uploaded tables, which get a method's quick_tables overlay


ESTIMATOR_KEYWORDS = ("schedule", "random_state", "device", "progress")  # the constructor's keywords besides hparams
ARRAYS_ID = "the data passed to fit"  # the dataset id of arrays given to fit(X), as error messages name it
ERR_RANDOM_STATE = "random_state must be a whole number ≥ 0 or None, got {value!r}"
ERR_PROGRESS = "progress must be None, True (a tqdm bar) or a callable(fraction, stage), got {value!r}"
ERR_X_DIMENSIONS = ("X must be 2-D (N samples × d features) or 4-D (N images × C × H × W); got {ndim}-D, "
                    "shape {shape}")
ERR_X_NOT_FINITE = "X holds {count} NaN or infinite value(s): drop or impute them before fitting"
ERR_LENGTH = "{name} has {length} values but X has {n} samples: give one per sample"
ERR_DATASET_WITH_LABELS = "fit got a BiasedDataset, which carries its own labels and groups: pass neither y nor sensitive"
ERR_NEEDS_GROUPS = "{name} needs at least two groups in the sensitive attribute; {dataset} has {n_groups}"
ERR_NO_K = "{name}: the number of clusters is unknown: set n_clusters (0 means the number of classes, and {dataset} has none)"
ERR_TOO_MANY_CLUSTERS = "{name}: K = {k} clusters is more than the {n} samples"
ERR_NOT_FITTED = "this {name} is not fitted yet: call fit before predict"
ERR_PREDICT_SHAPE = "X has samples of shape {got}, but this {name} was fitted on samples of shape {expected}"
ERR_CANNOT_PREDICT = ("{name} cannot assign new points: its clusters come from the fitted data as a whole; use "
                      "fit_predict on all the points, or labels_ after fit")
ERR_UNKNOWN_VARIANT = "unknown variant '{name}' of method {method}; valid: {valid}"
ERR_NO_VARIANTS = "method {method} has no named variants (only its declared defaults); drop the variant"


@dataclass(frozen=True)
class Variant:
    """A named reading of a method: the hyperparameter values that reproduce it (on top of the declared defaults)
    and where they come from (a paper's text, a public repository's file), shown beside the choice."""

    values: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""


class RunContext(Protocol):
    """What a method may use while it trains: the one contract, implemented by training.TrainingContext (which writes
    to the run store for the app, the CLI and sweeps, or to memory for the estimators).

    device: torch.device to train on. seed: the run's seed (the runner already seeded torch and numpy).
    advice: what a divergence message tells the user to change. data_dir: where a method finds files it needs besides
      the data (DFC's released models), or None.
    log(step, **scalars): record scalars (floats or 0-d tensors; tensors are read in batches, so logging
      every step costs no host-device sync). Raises RunStopped once stop was asked for.
    flush(): read and write the logged scalars now (TrainingDiverged names a NaN among them).
    evaluate(epoch, embedding, assignment, extra=None, split=None): compute every metric that applies on the
      assignment (of the samples of `split`, or of all the data when None), probe the group from the embedding,
      record both arrays for the embedding views; returns the metrics.
    check_stop(): raise RunStopped if the user asked to stop (for long steps that log rarely).
    progress(fraction, stage=""): how far the run is (0..1) and what it is doing now.
    save_table(name, rows): keep a small table the method reports (a list of dicts of plain values).
    save_weights(state_dict, name="weights.pt"): keep the trained model's weights with the run (in memory: nothing).
    """

    device: torch.device
    seed: int
    advice: str
    data_dir: str | None

    def log(self, step: int, **scalars: Any) -> None: ...
    def flush(self) -> None: ...
    def evaluate(self, epoch: int, embedding: np.ndarray | torch.Tensor | None, assignment: np.ndarray | torch.Tensor,
                 extra: dict | None = None, split: str | None = None) -> dict: ...
    def check_stop(self) -> None: ...
    def progress(self, fraction: float, stage: str = "") -> None: ...
    def save_table(self, name: str, rows: list[dict]) -> Any: ...
    def save_weights(self, state_dict: dict, name: str = "weights.pt") -> Any: ...


def ensure_finite(ctx: RunContext, embedding: torch.Tensor, step: int) -> None:
    """Before k-means or an evaluation: write the logged losses (the Recorder names a NaN loss there), then make sure
    the embedding itself is finite, so a divergence reads as one and not as a k-means error. One sync, per evaluation."""
    flush = getattr(ctx, "flush", None)
    if flush is not None:
        flush()
    if not bool(torch.isfinite(embedding).all()):
        advice = getattr(ctx, "advice", GENERIC_ADVICE)
        raise TrainingDiverged(f"the embedding became NaN or infinite by step {step}: " + DIVERGED.format(advice=advice))


class Steps:
    """A run's count of logged training steps against the steps it plans: each tick logs its scalars at the next step
    and reports progress done / planned with what the run is doing."""

    def __init__(self, ctx: RunContext, planned: int):
        self.ctx, self.done, self.planned = ctx, 0, planned

    def tick(self, stage: str, **scalars: Any) -> None:
        self.done += 1
        self.ctx.log(self.done, **scalars)
        self.report(stage)

    def report(self, stage: str) -> None:
        self.ctx.progress(self.done / max(self.planned, 1), stage)


class Method:
    """A clustering (or debiasing) method with declared hyperparameters.

    Subclasses set the class attributes and implement train(data, ctx) (and assign(X) where they can assign new
    points). Every method is a scikit-learn style estimator: fit(X, y, sensitive=g) trains through
    training.train_method, the path of the app's runs. After fit, `labels_` holds the final assignment (one int per
    sample of the data fitted) and `embedding_` the final embedding (or None).
    """

    id: ClassVar[str]
    name: ClassVar[str]
    summary: ClassVar[str]
    paper: ClassVar[str] = ""
    params: ClassVar[tuple[Param, ...]] = ()
    needs_groups: ClassVar[bool] = False  # a fairness method that cannot run with one group
    # What the method promises about fairness by construction (a classic algorithm's guarantee), said on the form.
    guarantee: ClassVar[str] = ""
    # The "quick" schedule: values overlaid on the declared (paper) defaults so that a demo on the built-in dataset
    # ends in minutes on a laptop CPU. Only schedule sizes belong here (epochs, iterations, restarts, widths);
    # every weight of the method stays the paper's. Empty: the paper's schedule is already short.
    quick: ClassVar[dict[str, Any]] = {}
    # Schedule sizes overlaid on `quick` when the data is an uploaded table (dataset "upload"): an epoch of a table of
    # a few thousand rows costs a fraction of an image epoch, and some methods need more of their schedule there to
    # find the table's structure (measured in bench/bench_tabular.py; the weights stay the paper's there too).
    quick_tables: ClassVar[dict[str, Any]] = {}
    # The dataset (id, options) the quick demo tells its story on, when it is not the built-in one (the Train page
    # offers it; bench/bench_quick_presets.py times it). None: the built-in dataset.
    quick_data: ClassVar[tuple[str, dict] | None] = None
    # The quick demo's measured minutes on 2 CPU cores (bench/bench_quick_presets.py), said before the click.
    quick_minutes: ClassVar[float] = 0.0
    # What the index of an evaluation counts (the x axis of the metric charts): "epoch" or "iteration".
    eval_unit: ClassVar[str] = "epoch"
    # What the method makes: "clustering" (an assignment, read by clustering and fairness metrics) or "classifier"
    # (class predictions, read by group accuracies).
    kind: ClassVar[str] = "clustering"
    # The metrics that say how the run did, in the order the Monitor and Compare pages show them.
    headline_metrics: ClassVar[tuple[str, ...]] = ("acc", "nmi", "ari", "balance", "entropy", "mnce", "f_beta", "probe_acc")
    # The method's own signal of its fairness mechanism, which a sweep reports beside its kind's metrics: evaluation
    # metrics it adds (signal_metrics), and series it logs whose last value counts (signal_series).
    signal_metrics: ClassVar[tuple[str, ...]] = ()
    signal_series: ClassVar[tuple[str, ...]] = ()
    # Whether a finished run saves a convolutional classifier (weights.pt) that the Explain page's Grad-CAM reads, and
    # whether that classifier debiases with cluster heads (the Explain page sets one against a plain classifier).
    explainable: ClassVar[bool] = False
    debiases_with_clusters: ClassVar[bool] = False
    curve_metrics: ClassVar[tuple[str, ...]] = ("acc", "nmi", "balance", "mnce", "f_beta")
    # What the live accuracy chart shows for this method and what a good run looks like there (Monitor's caption).
    accuracy_caption: ClassVar[str] = ""
    # The settings to lower when training diverges, the likeliest cause first (a learning rate, then loss weights).
    divergence_settings: ClassVar[tuple[str, ...]] = ("lr",)
    # Named readings of the method where its paper's text and its public code differ: {name: Variant}. The first one
    # sets nothing (the declared defaults); the others set what their source does. A variant sets settings, a schedule
    # preset (quick/paper) sets the budget: settings() composes them. Empty: one reading only.
    variants: ClassVar[dict[str, Variant]] = {}

    def __init__(self, *, schedule: str = "paper", random_state: int | None = None,
                 device: str | torch.device | None = None, progress: bool | Callable[[float, str], Any] | None = None,
                 **hparams: Any):
        """Every declared hyperparameter as a keyword (validated here), over the values of the schedule preset
        ("paper": the declared defaults; "quick": the quick overlay). The other keywords only matter to fit(X):
        random_state (int ≥ 0, or None for a fresh seed), device (None or "auto": CUDA, else MPS, else CPU) and
        progress (None, True for a tqdm bar, or a callable(fraction, stage))."""
        self._given = dict(hparams)  # as given, so that get_params returns the very objects (sklearn.base.clone)
        self.schedule, self.random_state, self.device, self.progress = schedule, random_state, device, progress
        self._resolve()
        self.labels_: np.ndarray | None = None
        self.embedding_: np.ndarray | None = None

    def _resolve(self) -> None:
        """Validate the estimator's keywords and resolve the hyperparameters (ValueError naming what is wrong)."""
        rs = self.random_state
        if rs is not None and (isinstance(rs, bool) or not isinstance(rs, (int, np.integer)) or rs < 0):
            raise ValueError(ERR_RANDOM_STATE.format(value=rs))
        if self.progress is not None and not isinstance(self.progress, bool) and not callable(self.progress):
            raise ValueError(ERR_PROGRESS.format(value=self.progress))
        self.hparams = resolve_params(self.params, {**self.preset(self.schedule), **self._given}, owner=f"method {self.id}")

    def divergence_advice(self) -> str:
        """What to change after a divergence, with this run's values: 'Lower lr (now 0.01), e.g. to 0.001, or …'."""
        names = [n for n in self.divergence_settings if isinstance(self.hparams.get(n), (int, float))]
        if not names:
            return GENERIC_ADVICE
        first, *rest = names
        value = self.hparams[first]
        others = "".join(f", or {n} (now {self.hparams[n]:g})" for n in rest)
        return f"Lower {first} (now {value:g}), e.g. to {value / 10:g}{others}"

    @classmethod
    def shown_metrics(cls, metrics: dict) -> dict:
        """A run's recorded metrics as every page, sweep and export shows them. A classifier's evaluation also records
        the clustering metrics of its predictions (training.evaluation_metrics), other quantities under names a reader
        takes for the classifier's: ACC maps predictions to classes by the best one-to-one matching, so a binary
        classifier right on 49.8 % of the samples has ACC 0.502. A classifier shows its own metrics only."""
        if cls.kind != "classifier":
            return dict(metrics)
        clustering = {*Method.headline_metrics, *Method.curve_metrics, "nmi_geometric"} - set(cls.headline_metrics)
        return {k: v for k, v in metrics.items() if k not in clustering}

    @classmethod
    def describe(cls) -> dict:
        return {"id": cls.id, "name": cls.name, "summary": cls.summary, "paper": cls.paper,
                "needs_groups": cls.needs_groups, "params": [p.describe() for p in cls.params], "quick": dict(cls.quick),
                "quick_tables": dict(cls.quick_tables),
                "variants": {name: {"values": dict(v.values), "source": v.source} for name, v in cls.variants.items()}}

    @classmethod
    def variant(cls, name: str | None = None) -> dict[str, Any]:
        """The values a named variant sets, each coerced by its declaration (ValueError for an unknown name or a value
        outside its range). None: the first variant, i.e. the declared defaults ({})."""
        if name is None:
            return {}
        if not cls.variants:
            raise ValueError(ERR_NO_VARIANTS.format(method=cls.id))
        if name not in cls.variants:
            raise ValueError(ERR_UNKNOWN_VARIANT.format(name=name, method=cls.id, valid=", ".join(cls.variants)))
        params = {p.name: p for p in cls.params}
        owner = f"method {cls.id}, variant '{name}'"
        out = {}
        for key, value in cls.variants[name].values.items():
            if key not in params:
                raise ValueError(f"{owner}: '{key}' is not a declared hyperparameter; valid names: {', '.join(params)}")
            out[key] = params[key].coerce(value, owner)
        return out

    @classmethod
    def check_variants(cls) -> None:
        """Raise ValueError unless every variant sets declared hyperparameters within their ranges and the first one
        sets nothing (no variant named = the first variant = the declared defaults)."""
        names = list(cls.variants)
        if names and cls.variants[names[0]].values:
            raise ValueError(f"method {cls.id}: its first variant '{names[0]}' must set nothing (the declared defaults)")
        for name in names:
            cls.variant(name)
            if not cls.variants[name].source:
                raise ValueError(f"method {cls.id}: variant '{name}' says no source")

    @classmethod
    def settings(cls, variant: str | None = None, schedule: str = "paper", dataset: str | None = None) -> dict[str, Any]:
        """The values a variant and a schedule preset set together, over the declared defaults: the schedule's budget
        (epochs, sizes) with the variant's settings on top, the variant winning where both name one (e.g. SENet's
        whole-set dictionary, dict_size 0, against the quick schedule's 500 random atoms)."""
        return {**cls.preset(schedule, dataset), **cls.variant(variant)}

    @classmethod
    def preset(cls, name: str, dataset: str | None = None) -> dict[str, Any]:
        """The values a schedule preset sets on a dataset (its id): {} for "paper" (the declared defaults); for
        "quick" the quick overlay, and on an uploaded table the quick_tables overlay on top of it."""
        if name not in PRESETS:
            raise ValueError(f"unknown schedule preset '{name}'; valid: {', '.join(PRESETS)}")
        if name != "quick":
            return {}
        return {**cls.quick, **(cls.quick_tables if dataset == TABLE_DATASET else {})}

    def check_data(self, data: BiasedDataset) -> None:
        """Raise ValueError when this method cannot run on data (checked before the run starts)."""
        if self.needs_groups and data.n_groups < 2:
            raise ValueError(ERR_NEEDS_GROUPS.format(name=self.name, dataset=data.id, n_groups=data.n_groups))
        k = self.hparams.get("n_clusters", 0) or data.n_clusters
        if k < 1:
            raise ValueError(ERR_NO_K.format(name=self.name, dataset=data.id))
        if k > len(data):
            raise ValueError(ERR_TOO_MANY_CLUSTERS.format(name=self.name, k=k, n=len(data)))

    def check_batch_size(self, n: int, what: str = "samples", name: str = "batch_size") -> None:
        """Raise ValueError when a batch-size hyperparameter exceeds the n samples its batches are drawn from, saying
        what to lower it to, or, when even its smallest allowed value is too large, that the data is too small."""
        value = self.hparams[name]
        if value <= n:
            return
        smallest = next((int(p.low) for p in self.params if p.name == name and p.low is not None), 1)
        label = "batch size" if name == "batch_size" else name.replace("_", " ")
        if n < smallest:
            raise ValueError(f"{self.name}: the data is too small: its batches take at least {smallest} of the "
                             f"{what}, which number {n}; upload more rows or choose another method")
        raise ValueError(f"{self.name}: {label} {value} is larger than the {n} {what}; lower {name} to at most {n}")

    def n_clusters(self, data: BiasedDataset) -> int:
        """K: the n_clusters hyperparameter, or the dataset's default when it is 0."""
        return int(self.hparams.get("n_clusters", 0) or data.n_clusters)

    def train(self, data: BiasedDataset, ctx: RunContext) -> "Method":
        """Train on data, talking to ctx; set labels_ (one int per sample of data) and embedding_ (or None)."""
        raise NotImplementedError

    # -- the scikit-learn estimator -----------------------------------------------------------------------------
    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Every hyperparameter (the value given, else the schedule's or the declared default) and the estimator's
        keywords, each the object given to the constructor or set_params."""
        overlay = self.preset(self.schedule)
        values = {p.name: self._given[p.name] if p.name in self._given else overlay.get(p.name, p.default)
                  for p in self.params}
        return {**values, "schedule": self.schedule, "random_state": self.random_state, "device": self.device,
                "progress": self.progress}

    def set_params(self, **params: Any) -> "Method":
        """Change hyperparameters or estimator keywords (validated as in the constructor); returns self."""
        before = {"_given": self._given, **{k: getattr(self, k) for k in ESTIMATOR_KEYWORDS}}
        self._given = {**self._given, **{k: v for k, v in params.items() if k not in ESTIMATOR_KEYWORDS}}
        for name in ESTIMATOR_KEYWORDS:
            if name in params:
                setattr(self, name, params[name])
        try:
            self._resolve()
        except ValueError:  # refused: the estimator stays as it was
            for name, value in before.items():
                setattr(self, name, value)
            raise
        return self

    def __repr__(self) -> str:
        shown = {**self._given, **{k: getattr(self, k) for k in ESTIMATOR_KEYWORDS
                                  if getattr(self, k) != inspect.signature(Method.__init__).parameters[k].default}}
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in shown.items())})"

    def fit(self, X, y=None, *, sensitive=None) -> "Method":
        """Train on X (an N × d or N × C × H × W array, or a BiasedDataset) with the sensitive attribute (one group label
        per sample; None: one group) and, optionally, the class labels y (for the metrics; classifiers need them).

        Trains through training.train_method, the path of the app's runs, with a context that keeps its records in
        memory: sets labels_, embedding_, history_ (the logged series, the evaluations and the reported tables as
        plain data), metrics_ (the final metrics), seed_ (the seed used) and device_. Seeds Python's, numpy's and
        torch's global generators, as a run does. Raises ValueError for input it cannot take, TrainingDiverged."""
        if isinstance(X, BiasedDataset):
            if y is not None or sensitive is not None:
                raise ValueError(ERR_DATASET_WITH_LABELS)
            data = X
        else:
            data = dataset_from_arrays(X, y, sensitive)
        device = self.device if isinstance(self.device, torch.device) else resolve_device(self.device or "auto")
        seed = secrets.randbelow(2**31) if self.random_state is None else int(self.random_state)
        bar = ProgressBar(self.name) if self.progress is True else None
        sink = MemorySink(bar or (self.progress if callable(self.progress) else None))
        seed_everything(seed)
        context = TrainingContext(sink, data, device, seed, advice=self.divergence_advice())
        try:
            sink.progress(0.0, "training")
            self.metrics_ = train_method(self, data, context)
            sink.progress(1.0, "done")
        finally:
            if bar is not None:
                bar.close()
        self.history_, self.seed_, self.device_ = sink.history, seed, device
        self.input_shape_ = tuple(data.X.shape[1:])
        return self

    def fit_predict(self, X, y=None, *, sensitive=None) -> np.ndarray:
        """fit(X, y, sensitive=sensitive).labels_."""
        return self.fit(X, y, sensitive=sensitive).labels_

    def predict(self, X) -> np.ndarray:
        """The cluster (or class) of each new point of X, as the fitted model assigns it; ValueError for a method that
        cannot assign new points (ERR_CANNOT_PREDICT)."""
        if not hasattr(self, "input_shape_"):
            raise ValueError(ERR_NOT_FITTED.format(name=type(self).__name__))
        X = features_from_array(X)
        if tuple(X.shape[1:]) != self.input_shape_:
            raise ValueError(ERR_PREDICT_SHAPE.format(got=tuple(X.shape[1:]), expected=self.input_shape_,
                                                      name=type(self).__name__))
        with torch.no_grad():
            labels = self.assign(X.to(self.device_))
        return labels.cpu().numpy() if torch.is_tensor(labels) else np.asarray(labels)

    def assign(self, X: torch.Tensor) -> torch.Tensor | np.ndarray:
        """The labels the fitted model gives the points X (a float32 tensor on device_). Methods that can assign new
        points override this; here: ValueError(ERR_CANNOT_PREDICT)."""
        raise ValueError(ERR_CANNOT_PREDICT.format(name=self.name))


def features_from_array(X) -> torch.Tensor:
    """X (a numpy array, a tensor or anything numpy reads) as a float32 CPU tensor, N × d or N × C × H × W, all finite."""
    X = X.detach().cpu().float() if torch.is_tensor(X) else torch.from_numpy(np.array(X, dtype=np.float32))
    if X.dim() not in (2, 4):
        raise ValueError(ERR_X_DIMENSIONS.format(ndim=X.dim(), shape=tuple(X.shape)))
    bad = int((~torch.isfinite(X)).sum())
    if bad:
        raise ValueError(ERR_X_NOT_FINITE.format(count=bad))
    return X.contiguous()


def _codes(values, name: str, n: int) -> tuple[np.ndarray, list[str]]:
    """Labels of any kind as codes 0..L-1 in sorted order of the values, with the values' names."""
    values = np.asarray(values.detach().cpu() if torch.is_tensor(values) else values)
    if values.ndim != 1 or len(values) != n:
        raise ValueError(ERR_LENGTH.format(name=name, length=len(values) if values.ndim else 1, n=n))
    uniques, codes = np.unique(values, return_inverse=True)
    return codes.astype(np.int64), [str(u) for u in uniques]


def dataset_from_arrays(X, y=None, sensitive=None) -> BiasedDataset:
    """The BiasedDataset a method trains on, from an estimator's arrays: X's rows with their group (sensitive; None:
    one group) and class (y; None: none, and then K must be given). Labels of any kind are coded in sorted order."""
    X = features_from_array(X)
    n = len(X)
    if sensitive is None:
        g, group_names = np.zeros(n, dtype=np.int64), ["all"]
    else:
        g, group_names = _codes(sensitive, "sensitive", n)
    codes, class_names = (None, None) if y is None else _codes(y, "y", n)
    return BiasedDataset(id=ARRAYS_ID, X=X, y=codes, g=g, group_names=group_names, class_names=class_names,
                         n_clusters=len(class_names or ()), info=DatasetInfo(name="arrays", source="arrays passed to fit"))


def precision_param() -> Param:
    return Param("precision", "fp32", kind="choice", choices=("fp32", "bf16"),
                 help="Arithmetic of the training steps. bf16: mixed precision (torch.autocast): the network's matrix "
                      "products in bfloat16, faster on CPUs with AVX-512 BF16 or AMX and on recent GPUs; "
                      "weights, optimiser and losses stay fp32; the embeddings for k-means and the metrics are computed in fp32. "
                      "Results differ slightly from fp32 (3 significant digits per product).",
                 source="ours (fp32 as in the papers' code)")


def n_clusters_param() -> Param:
    return Param("n_clusters", 0, kind="int", low=0, symbol="K", help="Number of clusters; 0 = the dataset's number of classes.")


def resolve_device(preference: str = "auto") -> torch.device:
    """'auto' → CUDA if present, else MPS, else CPU; a named device must exist."""
    preference = (preference or "auto").lower()
    cuda = torch.cuda.is_available()
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if preference == "auto":
        return torch.device("cuda" if cuda else "mps" if mps else "cpu")
    if preference == "cpu" or (preference == "cuda" and cuda) or (preference == "mps" and mps):
        return torch.device(preference)
    if preference in ("cuda", "mps"):
        raise ValueError(f"device '{preference}' is not available on this machine; use auto or cpu (available: {', '.join(available_devices())})")
    raise ValueError(f"unknown device '{preference}'; valid: auto, cpu, cuda, mps")


def available_devices() -> list[str]:
    out = ["cpu"]
    if torch.cuda.is_available():
        out.insert(0, "cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        out.insert(0, "mps")
    return out
