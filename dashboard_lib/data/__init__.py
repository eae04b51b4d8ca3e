"""Dataset registry: every dataset family registers a DatasetSpec here."""
from __future__ import annotations

from pathlib import Path

from ..params import resolve_params
from . import colored, digits, har, imbalanced, mnist_family, mouse_atlas, mtfl, office31, run_embedding, upload
from .base import BiasedDataset, DatasetInfo, DatasetSpec
from .cache import cached, forget_cached, remember
from .catalog import count_table, max_balance
from .download import DATA_DIR_ENV, DataUnavailable, DownloadError, resolve_data_dir

DEFAULT_DATASET = digits.DATASET_ID
ERR_UNKNOWN_DATASET = "unknown dataset '{id}'; valid ids: {valid}"

REGISTRY: dict[str, DatasetSpec] = {spec.id: spec for spec in (
    digits.SPEC, colored.COLORED_SAMPLE_SPEC, imbalanced.IMBALANCED_SAMPLE_SPEC, *mnist_family.SPECS, *colored.SPECS, *imbalanced.SPECS, har.SPEC, office31.SPEC, mtfl.SPEC,
    mouse_atlas.SPEC, upload.SPEC,
    run_embedding.spec(lambda dataset_id, options, data_dir: load_dataset(dataset_id, options, data_dir)),
)}

def default_data_dir() -> Path | None:
    """The data folder from the environment (FCLAB_DATA_DIR), if set."""
    return resolve_data_dir(None)


def get_spec(dataset_id: str) -> DatasetSpec:
    if dataset_id not in REGISTRY:
        raise ValueError(ERR_UNKNOWN_DATASET.format(id=dataset_id, valid=", ".join(REGISTRY)))
    return REGISTRY[dataset_id]


def resolve_options(dataset_id: str, options: dict | None) -> dict:
    """Validated options with defaults filled in."""
    return resolve_params(get_spec(dataset_id).options, options, owner=f"dataset {dataset_id}", what="dataset option")


def _resolved(dataset_id: str, options: dict | None, data_dir: str | Path | None) -> tuple[dict, Path | None, tuple]:
    """Validated options, the data folder, and the cache key they make."""
    options = resolve_options(dataset_id, options)
    data_dir = Path(data_dir).expanduser() if data_dir else default_data_dir()
    return options, data_dir, (dataset_id, tuple(sorted(options.items())), str(data_dir))


def load_dataset(dataset_id: str, options: dict | None = None, data_dir: str | Path | None = None) -> BiasedDataset:
    """Build (or reuse from the in-process cache) a dataset with validated options."""
    options, data_dir, key = _resolved(dataset_id, options, data_dir)
    data = cached(key)
    if data is None:
        data = get_spec(dataset_id).load(options, data_dir)
        remember(key, data)
    return data


def built_dataset(dataset_id: str, options: dict | None = None, data_dir: str | Path | None = None) -> BiasedDataset | None:
    """The dataset as load_dataset gives it if this process has already built it (its cache), else None: builds nothing."""
    return cached(_resolved(dataset_id, options, data_dir)[2])


def dataset_catalog(data_dir: str | Path | None = None) -> list[dict]:
    """One entry per registered dataset: id, name, summary, size, whether it can be built now without the network, options."""
    data_dir = Path(data_dir).expanduser() if data_dir else default_data_dir()
    out = []
    for spec in REGISTRY.values():
        available = bool(spec.available(data_dir))
        out.append({
            "id": spec.id, "name": spec.name, "summary": spec.summary, "size": spec.size,
            "available": available, "needs_download": not spec.offline,
            "missing": "" if available else spec.needs(data_dir),
            "options": [p.describe() for p in spec.options],
        })
    return out


__all__ = ["BiasedDataset", "DatasetInfo", "DatasetSpec", "REGISTRY", "DEFAULT_DATASET", "get_spec", "load_dataset",
           "resolve_options", "default_data_dir", "forget_cached", "dataset_catalog", "count_table", "max_balance",
           "DataUnavailable", "DownloadError", "DATA_DIR_ENV"]
