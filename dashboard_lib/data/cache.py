"""The in-process cache of built datasets: the registry (load_dataset) fills it, an upload that replaces a dataset
empties that dataset's entries."""
from __future__ import annotations

import threading

from .base import BiasedDataset

CACHE_SIZE = 4  # datasets are large; keep only the last few built
_cache: dict[tuple, BiasedDataset] = {}
_lock = threading.Lock()


def cached(key: tuple) -> BiasedDataset | None:
    with _lock:
        return _cache.get(key)


def remember(key: tuple, data: BiasedDataset) -> None:
    """Keep a built dataset under key (its id first), dropping the oldest beyond CACHE_SIZE."""
    with _lock:
        _cache[key] = data
        while len(_cache) > CACHE_SIZE:
            _cache.pop(next(iter(_cache)))


def forget_cached(dataset_id: str) -> None:
    """Drop cached builds of dataset_id (e.g. after an upload of that name was replaced)."""
    with _lock:
        for key in [k for k in _cache if k[0] == dataset_id]:
            del _cache[key]
