"""Sweeps: one or two of a method's hyperparameters on a grid, times seeds; every trial a run trained on Ray.

spec: what a sweep is (axes, spec, the papers' presets, the time estimate); runner: running it on Ray (imported only
when a sweep starts); results: its table, aggregates and figures. The public names are here.
"""
from .results import BANDS, PARETO_AXES, aggregate, method_means, pareto_axes, sweep_figures, sweep_frame, sweep_metrics
from .runner import SweepRunner, StreamingStore, check_address, connect, disconnect, run_trial, slots
from .spec import GRIDS, MAX_AXES, MAX_TRIALS, SWEEP_PRESETS, Axis, MethodEntry, SweepPreset, SweepSpec, TimeEstimate, estimate_time, schedule_keys

__all__ = ["BANDS", "PARETO_AXES", "aggregate", "method_means", "pareto_axes", "sweep_figures", "sweep_frame", "sweep_metrics",
           "SweepRunner", "StreamingStore", "check_address", "connect", "disconnect", "run_trial", "slots",
           "GRIDS", "MAX_AXES", "MAX_TRIALS", "SWEEP_PRESETS", "Axis", "MethodEntry", "SweepPreset", "SweepSpec", "TimeEstimate",
           "estimate_time", "schedule_keys"]
