"""The interface every method implements, and the context a running method talks to."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping, Protocol

import numpy as np
import torch

from ..data import BiasedDataset
from ..params import Param, resolve_params


PRESETS = ("paper", "quick")
TABLE_DATASET = "upload"  # the dataset id of uploaded tables, which get a method's quick_tables overlay


ERR_UNKNOWN_VARIANT = "unknown variant '{name}' of method {method}; valid: {valid}"
ERR_NO_VARIANTS = "method {method} has no named variants (only its declared defaults); drop the variant"


@dataclass(frozen=True)
class Variant:
    """A named reading of a method: the hyperparameter values that reproduce it (on top of the declared defaults)
    and where they come from (a paper's text, a public repository's file), shown beside the choice."""

    values: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""


class RunStopped(Exception):
    """Raised inside a method when the user asked the run to stop (checked at every logged step)."""


class TrainingDiverged(Exception):
    """Raised when a logged scalar (a loss, an accuracy) becomes NaN or infinite."""


GENERIC_ADVICE = "Lower the learning rate or the loss weights"
# The end of every divergence message (the Recorder's for a NaN loss, ensure_finite's for a NaN embedding).
DIVERGED = "training diverged. {advice}, and start again; the metrics of the last evaluation before it are kept."


class RunContext(Protocol):
    """What a method may use while it trains; the runner (jobs.py) provides it.

    device: torch.device to train on. seed: the run's seed (the runner already seeded torch and numpy).
    log(step, **scalars): record scalars (floats or 0-d tensors; tensors are read in batches, so logging
      every step costs no host-device sync). Raises RunStopped once stop was asked for.
    evaluate(epoch, embedding, assignment, extra=None): compute every metric that applies on the
      assignment, probe the group from the embedding, store both arrays for the embedding views.
    check_stop(): raise RunStopped if the user asked to stop (for long steps that log rarely).
    progress(fraction, stage=""): how far the run is (0..1) and what it is doing now.
    """

    device: torch.device
    seed: int

    def log(self, step: int, **scalars: Any) -> None: ...
    def evaluate(self, epoch: int, embedding: np.ndarray | torch.Tensor | None, assignment: np.ndarray | torch.Tensor,
                 extra: dict | None = None) -> dict: ...
    def check_stop(self) -> None: ...
    def progress(self, fraction: float, stage: str = "") -> None: ...


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

    Subclasses set the class attributes and implement fit(data, ctx). After fit, `labels_` holds the
    final assignment (one int per sample of the data fitted) and `embedding_` the final embedding (or None).
    """

    id: ClassVar[str]
    name: ClassVar[str]
    summary: ClassVar[str]
    paper: ClassVar[str] = ""
    params: ClassVar[tuple[Param, ...]] = ()
    needs_groups: ClassVar[bool] = False  # a fairness method that cannot run with one group
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
    # The metrics that say how the run did, in the order the Monitor and Compare pages show them.
    headline_metrics: ClassVar[tuple[str, ...]] = ("acc", "nmi", "ari", "balance", "entropy", "mnce", "f_beta", "probe_acc")
    curve_metrics: ClassVar[tuple[str, ...]] = ("acc", "nmi", "balance", "mnce", "f_beta")
    # What the live accuracy chart shows for this method and what a good run looks like there (Monitor's caption).
    accuracy_caption: ClassVar[str] = ""
    # The settings to lower when training diverges, the likeliest cause first (a learning rate, then loss weights).
    divergence_settings: ClassVar[tuple[str, ...]] = ("lr",)
    # Named readings of the method where its paper's text and its public code differ: {name: Variant}. The first one
    # sets nothing (the declared defaults); the others set what their source does. A variant sets settings, a schedule
    # preset (quick/paper) sets the budget: settings() composes them. Empty: one reading only.
    variants: ClassVar[dict[str, Variant]] = {}

    def __init__(self, **hparams: Any):
        self.hparams = resolve_params(self.params, hparams, owner=f"method {self.id}")
        self.labels_: np.ndarray | None = None
        self.embedding_: np.ndarray | None = None

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
            raise ValueError(f"{self.name} needs at least two groups in the sensitive attribute; {data.id} has {data.n_groups}")
        k = self.hparams.get("n_clusters", 0) or data.n_clusters
        if k > len(data):
            raise ValueError(f"{self.name}: K = {k} clusters is more than the {len(data)} samples")

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

    def fit(self, data: BiasedDataset, ctx: RunContext) -> "Method":
        raise NotImplementedError


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
