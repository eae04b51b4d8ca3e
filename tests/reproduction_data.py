"""A valid reproduction record, made by hand, for the unit and AppTest tests (no training)."""
from __future__ import annotations

import copy

BASE = {
    "schema": 1, "method": "dfc", "method_name": "DFC", "dataset": "mnist_usps",
    "data": {"id": "mnist_usps", "options": {"n": 10000, "seed": 0, "source": "npz"}},
    "schedule": "reduced", "seed": 0,
    "paper": {"metrics": {"acc": 0.825, "nmi": 0.789, "balance": 0.067, "mnce": None}, "source": "DFC Table 2",
              "note": None},
    "metrics": {"acc": 0.70, "nmi": 0.60, "balance": 0.05, "mnce": 0.50, "ari": 0.4},
    "columns": {"metrics": ["acc", "nmi", "balance", "mnce"], "curve": ["acc", "balance", "mnce"]},
    "budget": {"n": 10000, "n_samples": 10000, "n_train": None, "seeds": [0], "precision": "fp32", "dtype": "float32",
               "schedule": {"iterations": 300, "batch_per_group": 256}, "hparams": {"iterations": 300},
               "overrides": {}, "unit": "iteration"},
    "device": {"type": "cpu", "name": "cpu: test, 1 thread", "threads": 1}, "wall_s": 150.0,
    "git": {"commit": "0123456789abcdef0123456789abcdef01234567", "dirty": False}, "date": "2025-01-02T03:04:05+00:00",
    "curve": [{"step": 100, "acc": 0.5, "balance": 0.01, "mnce": 0.3}, {"step": 300, "acc": 0.7, "balance": 0.05, "mnce": 0.5}],
    "curve_unit": "iteration", "analysis": {},
}


def fake_record(**changes) -> dict:
    """BASE with top-level fields replaced; metrics={...} replaces the final metrics."""
    record = copy.deepcopy(BASE)
    record.update(copy.deepcopy(changes))
    return record
