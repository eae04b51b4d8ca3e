"""A sweep's definition: its axes and spec (validated into one RunConfig per trial), the papers' analyses ready to run,
and the time estimate from the store's finished runs. Nothing here runs anything."""
from __future__ import annotations

import heapq
import itertools
import json
import math
from dataclasses import asdict, dataclass, field

import numpy as np

from .. import data as datasets
from .. import methods
from ..jobs import RunConfig
from ..methods import resolve_device
from ..params import Param

GRIDS = ("values", "linear", "log", "random")
MAX_TRIALS = 2000
MAX_AXES = 2
ERR_AXIS_KIND = "{name} is a {kind} hyperparameter of {method}: only numbers (int or float) can be swept"
ERR_NO_VALUES = "give {name} at least one value"
ERR_BOUNDS = "{name}: a {grid} grid needs low ≤ high and a count of at least 1 (got low={low}, high={high}, count={count})"
ERR_LOG_BOUNDS = "{name}: a log grid needs low > 0 (got {low})"
ERR_TOO_MANY = "this sweep has {n:,} trials; at most {max:,} can be started at once: fewer values or seeds"
ERR_COMPARE_AXES = ("a sweep that compares methods trains each at its own settings and varies no hyperparameter: drop "
                    "the axes, or sweep one method")
ERR_COMPARE_TWICE = ("{method} is compared twice: a comparison holds each method once (to vary its settings, sweep that "
                     "method's hyperparameter)")
ERR_COMPARE_KINDS = ("a comparison puts methods of one kind of task on one chart: {kinds}; compare clustering methods "
                     "or classifiers, not both")


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
class MethodEntry:
    """One method of a sweep that compares methods: trained at its schedule's and variant's settings with `fixed` on
    top, over the sweep's seeds."""

    method: str
    fixed: dict = field(default_factory=dict)
    variant: str | None = None


@dataclass
class SweepSpec:
    """Everything that defines a sweep; stored with it.

    Either one method (`method`) with one or two swept hyperparameters (`axes`, the others `fixed`), or a comparison
    of several methods (`compare`, each at its own settings, no axes; `method` is then the first of them) over the same
    data and seeds, whose runs share one Pareto chart.
    """

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
    compare: list[MethodEntry] = field(default_factory=list)  # the methods compared (empty: a sweep of `method`)

    @classmethod
    def from_dict(cls, d: dict) -> "SweepSpec":
        """A stored spec (a sweep stored before comparisons has no "compare")."""
        return cls(**{**d, "axes": [Axis(**a) for a in d["axes"]],
                      "compare": [MethodEntry(**e) for e in d.get("compare") or []]})

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def method_ids(self) -> list[str]:
        """The methods the sweep trains: the compared ones, or its one method."""
        return [e.method for e in self.compare] if self.compare else [self.method]

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
        if self.compare:
            return self._compared_trials()
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

    def _compared_trials(self) -> list[RunConfig]:
        """One validated RunConfig per compared method and seed, the seeds innermost."""
        if self.axes:
            raise ValueError(ERR_COMPARE_AXES)
        seen = set()
        for entry in self.compare:
            if entry.method in seen:
                raise ValueError(ERR_COMPARE_TWICE.format(method=entry.method))
            seen.add(entry.method)
        kinds = {e.method: methods.get_method(e.method).kind for e in self.compare}
        if len(set(kinds.values())) > 1:
            raise ValueError(ERR_COMPARE_KINDS.format(kinds=", ".join(f"{m} ({k})" for m, k in kinds.items())))
        n = len(self.compare) * self.seeds
        if n > MAX_TRIALS:
            raise ValueError(ERR_TOO_MANY.format(n=n, max=MAX_TRIALS))
        configs = []
        for entry in self.compare:
            hparams = {**methods.get_method(entry.method).settings(entry.variant, self.preset, self.dataset), **entry.fixed}
            for seed in range(self.first_seed, self.first_seed + self.seeds):
                configs.append(RunConfig(dataset=self.dataset, method=entry.method, hparams=dict(hparams), seed=seed,
                                         dataset_options=dict(self.dataset_options), device=self.device,
                                         data_dir=self.data_dir).resolved())
        return configs


# --- the papers' analyses, ready to run ----------------------------------------------------------------------------
@dataclass(frozen=True)
class SweepPreset:
    title: str
    description: str
    spec: SweepSpec


def _preset(title: str, description: str, method: str, axes: list[Axis], fixed: dict | None = None, seeds: int = 2) -> SweepPreset:
    return SweepPreset(title, description, SweepSpec(dataset=datasets.DEFAULT_DATASET, method=method, axes=axes, seeds=seeds,
                                                     preset="quick", fixed=fixed or {}, title=title))


def _comparison(title: str, description: str, entries: list[MethodEntry], seeds: int) -> SweepPreset:
    return SweepPreset(title, description, SweepSpec(dataset=datasets.DEFAULT_DATASET, method=entries[0].method, axes=[],
                                                     seeds=seeds, preset="quick", title=title, compare=entries))


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
    _preset("Variational fair clustering λ", "Ziko et al.'s fairness weight λ (Eq. 3): λ = 0 is k-means; larger λ pulls "
            "every cluster's group mix toward the data's, until clusters empty (one cluster is trivially fair).",
            "variational_fair", [Axis("lam", values=[0.0, 500.0, 1000.0, 2000.0, 3000.0, 5000.0])]),
    _comparison("Deep and classic fair clustering on the built-in digits",
                "Deep and classic fair clustering side by side on the same data and seeds: k-means (no fairness), FCMI "
                "on its quick demo (a deep fair method), and the four classic fair algorithms (fairlets, Bera et al.'s "
                "fair assignment, variational fair clustering, socially fair k-means) at their declared settings; one "
                "Pareto chart of ACC against Balance shows which trade-offs each reaches.",
                [MethodEntry("kmeans"), MethodEntry("fcmi"), MethodEntry("fairlets"), MethodEntry("fair_assignment"),
                 MethodEntry("variational_fair"), MethodEntry("socially_fair_kmeans")], seeds=3),
)}


# --- estimates, tables, aggregates -----------------------------------------------------------------------------------
def schedule_keys(method: str) -> list[str]:
    """The hyperparameters that set how long a run takes (its quick preset's keys; else its whole-number settings)."""
    cls = methods.get_method(method)
    return sorted(cls.quick) if cls.quick else sorted(p.name for p in cls.params if p.kind == "int")


@dataclass
class TimeEstimate:
    """How long a sweep will take, from this store's finished runs like its trials."""

    seconds_per_trial: float  # mean over the trials counted
    total_seconds: float  # wall time with `slots` trials at once
    slots: int
    basis: str  # what the figure comes from, to show beside it
    missing: list[str] = field(default_factory=list)  # methods with no finished run like theirs: their trials not counted


def estimate_time(store, configs: list[RunConfig], slots: int) -> TimeEstimate | None:
    """The sweep's wall time from this store's finished runs: each trial takes the median seconds of the finished runs
    of its method and dataset with the same schedule on the same kind of device (a trial whose schedule has none, the
    median of its method's matched trials), and the trials fill `slots` at once in their order, each starting when a
    slot frees (Ray's queue). A method none of whose trials matches is left out and named in `missing` (the figure is
    then a lower bound). None when nothing matches."""
    if not configs:
        return None
    kind = resolve_device(configs[0].device).type  # "auto": the device this machine would pick
    per_trial: list[float | None] = [None] * len(configs)
    runs_used, missing = 0, []
    for method in dict.fromkeys(c.method for c in configs):
        keys = schedule_keys(method)

        def schedule(hparams: dict, options: dict) -> tuple:  # what sets a run's length: its schedule and its data's size
            return (*(hparams.get(k) for k in keys), json.dumps(options, sort_keys=True))

        by_schedule: dict[tuple, list[float]] = {}
        for r in store.list_runs(dataset=configs[0].dataset, method=method, status="finished"):
            if r.seconds and r.device.split(":")[0] == kind:
                by_schedule.setdefault(schedule(r.hparams, r.config.get("dataset_options", {})), []).append(r.seconds)
        mine = [i for i, c in enumerate(configs) if c.method == method]
        used = set()
        for i in mine:
            key = schedule(configs[i].hparams, configs[i].dataset_options)
            if key in by_schedule:
                used.add(key)
                per_trial[i] = float(np.median(by_schedule[key]))
        matched = [per_trial[i] for i in mine if per_trial[i] is not None]
        if not matched:
            missing.append(method)
            continue
        runs_used += sum(len(by_schedule[k]) for k in used)
        for i in mine:
            per_trial[i] = float(np.median(matched)) if per_trial[i] is None else per_trial[i]
    counted = [t for t in per_trial if t is not None]
    if not counted:
        return None
    slots = max(1, min(slots, len(counted)))
    free = [0.0] * slots  # when each slot frees, as the queue hands the trials out in order
    for seconds in counted:
        heapq.heapreplace(free, free[0] + seconds)
    names = ", ".join(m for m in dict.fromkeys(c.method for c in configs) if m not in missing)
    basis = (f"median time of {runs_used} finished {names} run(s) on {configs[0].dataset} in this store with the same "
             f"schedule ({', '.join(sorted({k for m in names.split(', ') for k in schedule_keys(m)}))}) and dataset "
             "options")
    return TimeEstimate(float(np.mean(counted)), max(free), slots, basis, missing)
